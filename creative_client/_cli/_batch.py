"""``creative batch``: run a JSONL file of requests, journaled, resumable, with progress.

``Batch`` here sets the run up (its inputs validated, its journal opened by
``_setup.py``), runs what is left, then writes OUT.jsonl (``_out.py``) and the
summary. One row's life is ``RowRun`` in ``_batch_row.py``; signals are ``Stop`` in
``_batch_stop.py``; the journal is ``_journal.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TextIO

from .._fallback import FallbackClient
from .._journal._durations import keep, recall
from ..errors import CreativeError
from ._balance import balance_allows
from ._batch_row import RowRun, count, file_names, needs_download
from ._batch_stop import Stop, drive
from ._files import FileError, write_atomically
from ._inputs import Entry, Inputs, Problem
from ._journal import FINISHED, JournalBackend, JournalError, Row
from ._out import out_text
from ._progress import Counts, Display, Speaking
from ._setup import BatchOptions, UsageError, open_journal

#: Exit statuses of ``creative batch`` (also in ``creative batch --help`` and the README).
EXIT_OK = 0  # every job succeeded
EXIT_FAILED = 1  # the run ended, but not every job succeeded (or a line was rejected)
EXIT_USAGE = 2  # nothing ran: bad arguments, configuration, input (--strict), journal,
# or no balance left (without --force)
# 128 + the signal's number (130 for Ctrl-C): stopped by a signal; run it again to resume.


class Batch(Speaking):
    """One run of a batch: set up the journal, run what is left, write the output."""

    def __init__(
        self,
        options: BatchOptions,
        inputs: Inputs,
        make_client: Callable[[], FallbackClient],
        stderr: TextIO,
    ) -> None:
        self.options = options
        self.inputs = inputs
        self._make_client = make_client
        self._stderr = stderr
        self._progress = options.progress
        self.problems = list(inputs.problems)
        self.counts = Counts()
        self.journal: JournalBackend | None = None
        self.client: FallbackClient | None = None
        self._display: Display | None = None
        self._stop = Stop(self._warn)
        self._rows: RowRun | None = None
        self._names: dict[str, str] = {}

    @property
    def download_failures(self) -> int:
        return 0 if self._rows is None else self._rows.download_failures

    # -- the run ---------------------------------------------------------------------

    async def run(self) -> int:
        async with self._make_client() as client:
            self.client = client
            entries = self._validated(client)
            self._report_problems()
            if self.problems and self.options.strict:
                self._warn(f"creative: {len(self.problems)} bad input line(s); nothing was run")
                return EXIT_USAGE
            journal = self.journal = await asyncio.to_thread(self._open_journal, entries)
            await recall(journal, client)  # how long jobs took in earlier runs (each provider)
            failure: JournalError | None = None
            interrupted = False
            try:
                try:
                    work = await asyncio.to_thread(self._plan, entries)
                    submits = any(row.state == "pending" for _, row in work)
                    if not await balance_allows(client, submits, self.options.force, self._warn):
                        return EXIT_USAGE  # the journal is stopped and closed on the way out
                    interrupted = await self._run(work)
                except JournalError as exc:
                    failure = exc
                finally:
                    try:
                        await journal.stop()
                    except JournalError as exc:
                        failure = failure or exc
                    await keep(journal, client)
                rows = journal.current
            finally:
                journal.close()
        # Written even when the journal failed: it then holds the job ids the journal
        # may have missed, so no job that was paid for goes unrecorded.
        try:
            await asyncio.to_thread(self._write_out, entries, rows)
        except FileError as exc:
            return self._out_failed(exc, failure)
        if failure is not None:
            self._warn(f"creative: error: {failure}")
            self._warn(f"creative: what this run knows is in {self.options.out}")
            return EXIT_USAGE
        return self._summary(entries, rows, interrupted)

    def _out_failed(self, exc: FileError, failure: JournalError | None) -> int:
        self._warn(f"creative: error: {exc}")
        if failure is not None:
            self._warn(f"creative: error: {failure}")
            return EXIT_USAGE
        self._warn(
            f"creative: every job's state is in the journal {str(self.options.journal)!r}; "
            f"make {str(self.options.out)!r} writable and run the same command again to "
            "write it (nothing is sent again)"
        )
        return EXIT_FAILED

    def _validated(self, client: FallbackClient) -> list[Entry]:
        """The entries the provider can take; the others become problems, before any request."""
        good: list[Entry] = []
        for entry in self.inputs.entries:
            try:
                client.validate(entry.request)
            except CreativeError as exc:
                self.problems.append(Problem(entry.line, exc.message, entry.key))
            else:
                good.append(entry)
        self.problems.sort(key=lambda p: p.line)
        return good

    def _open_journal(self, entries: list[Entry]) -> JournalBackend:
        assert self.client is not None
        return open_journal(self.options, self.inputs, self.client.provider, entries, self._warn)

    def _plan(self, entries: list[Entry]) -> list[tuple[Entry, Row]]:
        """What this run must do, in input order; counts what earlier runs finished."""
        assert self.journal is not None
        rows = self.journal.load()
        if self.options.download is not None:
            self._names = file_names(entries)
        work: list[tuple[Entry, Row]] = []
        counts = self.counts
        counts.total = len(entries)
        for entry in entries:
            row = rows[entry.key]
            if row.state in FINISHED and not needs_download(self.options, row):
                count(counts, row)
            else:
                work.append((entry, row))
        self._check_holders(work)
        counts.earlier = counts.done
        counts.started_at = time.monotonic()
        return work

    def _check_holders(self, work: list[tuple[Entry, Row]]) -> None:
        """Every job this run is to read is held by a provider it runs with (a fallback
        provider of an earlier run may be gone from the configuration)."""
        assert self.client is not None
        ours = self.client.providers
        held = {row.provider for _, row in work if row.job_id and row.provider}
        if held - set(ours):
            raise UsageError(
                f"the journal {str(self.options.journal)!r} has jobs held by "
                f"{', '.join(sorted(held - set(ours)))}, which this run does not use "
                f"({', '.join(ours)}): run with the configuration that sent them"
            )

    async def _run(self, work: list[tuple[Entry, Row]]) -> bool:
        """Run the work; True when a signal stopped it."""
        assert self.client is not None and self.journal is not None
        opts, stop = self.options, self._stop
        self._display = Display(self.counts, self._stderr, opts.progress, every=opts.progress_every)
        self._rows = rows = RowRun(
            client=self.client,
            journal=self.journal,
            options=opts,
            counts=self.counts,
            stop=stop,
            names=self._names,
        )
        self.journal.start()
        self._display.start()
        try:
            return await drive(self._feed(work), rows.one, opts.concurrency, stop)
        finally:
            await self._display.stop()

    def _feed(self, work: list[tuple[Entry, Row]]) -> Iterator[tuple[Entry, Row]]:
        for item in work:
            if self._stop.stopping:
                return
            yield item

    # -- the end -------------------------------------------------------------------------

    def _write_out(self, entries: list[Entry], rows: dict[str, Row]) -> None:
        """OUT.jsonl, one line per input line in input order, replaced in one step."""
        assert self.client is not None
        client = self.client
        alone = len(client.providers) == 1
        text = out_text(entries, rows, self.problems, client.provider, alone=alone)
        write_atomically(self.options.out, text)

    def _summary(self, entries: list[Entry], rows: dict[str, Row], interrupted: bool) -> int:
        # Counted from the rows as they end, not from the running counters: a row
        # abandoned by a second Ctrl-C is uncertain whichever path it took there.
        states = Counter(rows[entry.key].state for entry in entries)
        counts = self.counts
        done = states["succeeded"] + states["failed"] + states["uncertain"]
        elapsed = time.monotonic() - counts.started_at
        ran = done - counts.earlier
        self._say(
            f"creative: {done} of {len(entries)} jobs done: {states['succeeded']} succeeded, "
            f"{states['failed']} failed, {states['uncertain']} uncertain"
            + (f"; {len(self.problems)} input line(s) rejected" if self.problems else "")
            + (f"; {self.download_failures} download(s) failed" if self.download_failures else "")
            + (f" ({ran} in this run, {elapsed:.1f}s)" if ran > 0 else "")
        )
        self._say(f"creative: results in {self.options.out}")
        if states["uncertain"]:
            self._warn(
                f"creative: {states['uncertain']} submit(s) are uncertain: each may or may not "
                "have created (and been charged for) a job, so none was sent again. Run the "
                "same command with --resubmit-uncertain to send them again."
            )
        waiting = states["submitted"]
        if interrupted:
            self._warn(
                f"creative: interrupted. {waiting} submitted job(s) are in the journal "
                f"({self.options.journal}) and will be picked up by their ids; "
                "run the same command again to resume."
            )
            assert self._stop.signal is not None
            return 128 + self._stop.signal
        if waiting:
            self._warn(
                f"creative: {waiting} still running/unfinished (their job ids are in the "
                "journal): run again to pick them up; nothing is sent again"
            )
        complete = states["succeeded"] == len(entries)
        if complete and not self.problems and not self.download_failures:
            return EXIT_OK
        return EXIT_FAILED

    def _report_problems(self) -> None:
        for problem in self.problems:
            self._warn(f"{self.options.source}:{problem.line}: {problem.message}")
