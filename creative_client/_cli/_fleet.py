"""``creative batch --journal postgresql://...``: many workers, on any machines, drain one
batch. The journal is ``PgJournal`` (``creative_client/_pg/_journal.py``); one row's life
is ``RowRun`` (``_batch_row.py``), as for a batch on one machine (``_batch.py``).

A worker loads the input's rows (the first to come; the others find them there), then
claims rows a few at a time (``FOR UPDATE SKIP LOCKED``): pending rows, and submitted
rows whose worker's lease ran out (reads are safe). A lost worker's submits in flight
become uncertain, never resent. A worker with nothing left to claim waits while rows
are held by live workers, so the batch ends complete with any one survivor. The
worker that sees the batch finish writes OUT.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any, TextIO

from .._client import CreativeClient
from .._journal._durations import keep, recall
from .._journal._steps import claimed, document_of, heartbeat
from ..errors import CreativeError
from ._balance import balance_allows
from ._batch import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from ._batch_row import RowRun, file_names
from ._batch_stop import Stop, drive
from ._files import FileError, write_atomically
from ._inputs import Entry, Inputs, Problem, request_of
from ._journal import FINISHED, JournalError, Row
from ._out import out_text
from ._progress import Counts, Display, Speaking
from ._setup import BatchOptions, UsageError

#: Rows a worker claims at once (at most; fewer when its concurrency is lower).
CLAIM = 32


class FleetBatch(Speaking):
    """One worker's run on a batch kept in PostgreSQL."""

    def __init__(
        self,
        options: BatchOptions,
        journal: Any,
        inputs: Inputs | None,
        make_client: Callable[[], CreativeClient],
        stderr: TextIO,
    ) -> None:
        self.options = options
        self.journal = journal
        self.inputs = inputs
        self._make_client = make_client
        self._stderr = stderr
        self._progress = options.progress
        self.problems: list[Problem] = list(inputs.problems) if inputs is not None else []
        self.counts = Counts()
        self._stop = Stop(self._warn)
        self._display: Display | None = None
        self._names: dict[str, str] = {}

    async def run(self) -> int:
        async with self._make_client() as client:
            await asyncio.to_thread(self._load, client)
            await recall(self.journal, client)  # how long jobs took for the other workers
            await asyncio.to_thread(self._file_names)
            failure: JournalError | None = None
            try:
                submits, force = await self._pending(), self.options.force
                if not await balance_allows(client, submits, force, self._warn):
                    return EXIT_USAGE
                interrupted = await self._run(client)
            except JournalError as exc:
                failure, interrupted = exc, False
            finally:
                try:
                    await self.journal.stop()
                except JournalError as exc:
                    failure = failure or exc
                await keep(self.journal, client)
        if failure is not None:
            self._warn(f"creative: error: {failure}")
            return EXIT_USAGE
        return await asyncio.to_thread(self._end, client.provider, interrupted)

    # -- before -------------------------------------------------------------------------

    def _load(self, client: CreativeClient) -> None:
        """The input's rows into the journal (once: keys there keep their state)."""
        meta = self.journal.meta()
        made_for = meta.get("provider")
        if made_for is not None and made_for != client.provider:
            raise UsageError(
                f"the batch {self.journal.batch!r} runs on {made_for}, not {client.provider}"
            )
        if self.inputs is None:
            if not meta:
                raise UsageError(
                    f"there is no batch {self.journal.batch!r} in the journal: give the "
                    "input file (the first worker loads it)"
                )
        else:
            self._add(client)
        self._again()

    def _again(self) -> None:
        """What this worker is told to send again (rows no live worker holds)."""
        if self.options.resubmit_uncertain:
            again = self.journal.move("uncertain", "pending", error_type=None, error=None)
            self._warn(
                f"creative: resubmitting {again} uncertain job(s) (--resubmit-uncertain); "
                "each may cost a second generation"
            )
        if self.options.retry_failed:
            again = self.journal.retry_failed("JobFailedError")
            self._warn(f"creative: resending {again} failed job(s) (--retry-failed)")

    def _add(self, client: CreativeClient) -> None:
        assert self.inputs is not None
        good: list[tuple[str, int, dict[str, Any]]] = []
        for entry in self.inputs.entries:
            try:
                client.validate(entry.request)
            except CreativeError as exc:
                self.problems.append(Problem(entry.line, exc.message, entry.key))
            else:
                good.append((entry.key, entry.line, document_of(entry.request)))
        if self.problems and self.options.strict:
            for problem in self.problems:
                self._warn(f"{self.options.source}:{problem.line}: {problem.message}")
            raise UsageError(f"{len(self.problems)} bad input line(s); nothing was run")
        problems = [[p.line, p.message, p.key] for p in self.problems]
        self.journal.set_meta(
            provider=client.provider,
            input_sha256=self.inputs.digest,
            problems=json.dumps(problems),
        )
        self.journal.add_requests(good)
        for problem in self.problems:
            self._warn(f"{self.options.source}:{problem.line}: {problem.message}")

    def _file_names(self) -> None:
        """Download names for every row of the batch, as one machine's run names them."""
        if self.options.download is not None:
            requests = self.journal.requests()
            entries = [Entry(k, line, request_of(d)) for k, (line, d) in requests.items()]
            self._names.update(file_names(entries))

    async def _pending(self) -> bool:
        """Rows are left to submit, so the balance matters; assumed so when the journal
        cannot say (its database is away: the claims wait that out)."""
        try:
            counts: dict[str, dict[str, int]] = await self.journal.counts()
        except JournalError:
            return True
        return counts["*"].get("pending", 0) > 0

    # -- the run ------------------------------------------------------------------------

    async def _run(self, client: CreativeClient) -> bool:
        opts, stop = self.options, self._stop
        self.counts.started_at = time.monotonic()
        self._display = Display(self.counts, self._stderr, opts.progress, every=opts.progress_every)
        rows = RowRun(
            client=client,
            journal=self.journal,
            options=opts,
            counts=self.counts,
            stop=stop,
            names=self._names,
        )
        self.journal.start()
        self._display.start()
        beat = asyncio.create_task(heartbeat(self.journal))
        try:
            return await drive(self._claimed(), rows.one, opts.concurrency, stop)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            await self._display.stop()

    async def _claimed(self) -> AsyncIterator[tuple[Entry, Row]]:
        """Rows this worker takes on, a few at a time, until none is left anywhere."""
        chunk = max(1, min(CLAIM, self.options.concurrency))
        async for row, document in claimed(
            self.journal, chunk, lambda: self._stop.stopping, self._warn
        ):
            self.counts.total += 1
            yield Entry(row.key, row.line, request_of(document)), row

    # -- after --------------------------------------------------------------------------

    def _end(self, provider: str, interrupted: bool) -> int:
        rows: dict[str, Row] = self.journal.load()
        states: Counter[str] = Counter(row.state for row in rows.values())
        finished = sum(states[s] for s in FINISHED)
        done = finished == len(rows)
        self._say(
            f"creative: this worker ran {self.counts.done} job(s); the batch "
            f"{self.journal.batch!r}: {finished} of {len(rows)} done ({states['succeeded']} "
            f"succeeded, {states['failed']} failed, {states['uncertain']} uncertain)"
        )
        if done and self.options.out is not None:
            try:
                write_out(self.journal, self.options.out, provider)
            except FileError as exc:
                self._warn(f"creative: error: {exc}")
                return EXIT_FAILED
            self._say(f"creative: the batch is finished; results in {self.options.out}")
        self.journal.release()  # what is left is the other workers' at once
        self.journal.close()
        if interrupted:
            assert self._stop.signal is not None
            return 128 + self._stop.signal
        if done and states["succeeded"] == len(rows) and not self.problems:
            return EXIT_OK
        return EXIT_FAILED


def write_out(journal: Any, out: Any, provider: str) -> None:
    """OUT from the journal alone: every row, and the lines the loader rejected."""
    rows: dict[str, Row] = journal.load()
    requests: dict[str, tuple[int, dict[str, Any]]] = journal.requests()
    entries = [Entry(key, line, request_of(document)) for key, (line, document) in requests.items()]
    meta = journal.meta()
    problems = [Problem(*p) for p in json.loads(meta.get("problems", "[]"))]
    write_atomically(out, out_text(entries, rows, problems, provider))
