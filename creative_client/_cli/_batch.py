"""``creative batch``: run a JSONL file of requests, journaled, resumable, with progress."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from .._client import CreativeClient
from .._download import safe_stem
from .._fanout import bounded_map
from .._models import Job, JobStatus
from ..errors import CreativeError, SubmissionUncertainError
from ._files import FileError, describe, write_atomically
from ._inputs import Entry, Inputs, Problem
from ._journal import FINISHED, Journal, JournalError, Row, State
from ._out import out_text
from ._progress import Counts, Display
from ._setup import BatchOptions, open_journal

#: Exit statuses of ``creative batch`` (also in ``creative batch --help`` and the README).
EXIT_OK = 0  # every job succeeded
EXIT_FAILED = 1  # the run ended, but not every job succeeded (or a line was rejected)
EXIT_USAGE = 2  # nothing ran: bad arguments, configuration, input (--strict) or journal
# 128 + the signal's number (130 for Ctrl-C): stopped by a signal; run it again to resume.


class Batch:
    """One run of a batch: set up the journal, run what is left, write the output."""

    def __init__(
        self,
        options: BatchOptions,
        inputs: Inputs,
        make_client: Callable[[], CreativeClient],
        stderr: TextIO,
    ) -> None:
        self.options = options
        self.inputs = inputs
        self._make_client = make_client
        self._stderr = stderr
        self.problems = list(inputs.problems)
        self.counts = Counts()
        self.download_failures = 0
        self.journal: Journal | None = None
        self.client: CreativeClient | None = None
        self._display: Display | None = None
        self._stopping = False
        self._signal: int | None = None
        self._interruptible: set[asyncio.Task[Any]] = set()
        #: The batch's own tasks (the client's are its business): a second Ctrl-C and
        #: the "jobs open" count use these.
        self._live: set[asyncio.Task[Any]] = set()
        self._main: asyncio.Task[Any] | None = None
        self._names: dict[str, str] = {}

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
            failure: JournalError | None = None
            interrupted = False
            try:
                try:
                    interrupted = await self._run(await asyncio.to_thread(self._plan, entries))
                except JournalError as exc:
                    failure = exc
                finally:
                    try:
                        await journal.stop()
                    except JournalError as exc:
                        failure = failure or exc
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

    def _validated(self, client: CreativeClient) -> list[Entry]:
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

    def _open_journal(self, entries: list[Entry]) -> Journal:
        assert self.client is not None
        return open_journal(self.options, self.inputs, self.client.provider, entries, self._warn)

    def _plan(self, entries: list[Entry]) -> list[tuple[Entry, Row]]:
        """What this run must do, in input order; counts what earlier runs finished."""
        assert self.journal is not None
        rows = self.journal.load()
        if self.options.download is not None:
            self._names = _file_names(entries)
        work: list[tuple[Entry, Row]] = []
        counts = self.counts
        counts.total = len(entries)
        for entry in entries:
            row = rows[entry.key]
            if row.state in FINISHED and not self._needs_download(row):
                self._count(row)
            else:
                work.append((entry, row))
        counts.earlier = counts.done
        counts.started_at = time.monotonic()
        return work

    async def _run(self, work: list[tuple[Entry, Row]]) -> bool:
        """Run the work; True when a signal stopped it."""
        assert self.client is not None and self.journal is not None
        opts = self.options
        self._display = Display(self.counts, self._stderr, opts.progress, every=opts.progress_every)
        loop = asyncio.get_running_loop()
        self._main = asyncio.current_task()
        handled = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._on_signal, sig)
                handled.append(sig)
        self.journal.start()
        self._display.start()
        try:
            batch = bounded_map(self._feed(work), self._one, opts.concurrency, self._live)
            async with contextlib.aclosing(batch) as stream:
                async for _ in stream:
                    pass
        except asyncio.CancelledError:
            if self._signal is None:
                raise
            current = asyncio.current_task()
            assert current is not None
            current.uncancel()
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
            await self._display.stop()
        return self._signal is not None

    def _feed(self, work: list[tuple[Entry, Row]]) -> Iterator[tuple[Entry, Row]]:
        for item in work:
            if self._stopping:
                return
            yield item

    def _on_signal(self, sig: int) -> None:
        if self._signal is None:
            self._signal = sig
            self._stopping = True
            in_flight = len(self._live)
            self._warn(
                f"\ncreative: stopping ({signal.Signals(sig).name}): no new submits; "
                f"finishing the submits in flight ({in_flight} jobs open) so their ids are "
                "journaled. Press Ctrl-C again to abandon them (they would be uncertain)."
            )
            for task in list(self._interruptible):
                task.cancel()
        elif self._main is not None:
            self._warn("creative: abandoning the submits in flight")
            self._main.cancel()

    # -- one row -----------------------------------------------------------------------

    async def _one(self, _index: int, item: tuple[Entry, Row]) -> None:
        entry, row = item
        client, journal = self.client, self.journal
        assert client is not None and journal is not None
        job: Job | str | None = row.job_id
        if row.state == "pending":
            if self._stopping:
                return
            sending = row.moved("submitting")
            try:
                await journal.write_durably(sending)
            except asyncio.CancelledError:
                journal.write(row)  # nothing was sent
                raise
            if self._stopping:
                journal.write(row)
                return
            try:
                job = await client.submit(entry.request)
            except asyncio.CancelledError:
                self._finish(
                    row.moved(
                        "uncertain",
                        error=(
                            SubmissionUncertainError.__name__,
                            "interrupted while the submit was in flight; it may or may not "
                            "have created a job",
                        ),
                    )
                )
                raise
            except SubmissionUncertainError as exc:
                self._finish(_failed(row, exc, state="uncertain"))
                return
            except CreativeError as exc:
                self._finish(_failed(row, exc))
                return
            row = row.moved("submitted", job_id=job.id)
            journal.write(row)
            if self._stopping:
                return
        assert job is not None
        if row.state == "submitted":
            finished = await self._interruptible_call(self._wait, row, job)
            if finished is None:
                return
            row, job = finished
            journal.write(row)
            if row.state == "submitted":  # gave up waiting: the next run reads it again
                return
        if self._needs_download(row):
            saved = await self._interruptible_call(self._download, row, job)
            if saved is not None:
                row = saved
                journal.write(row)
        self._count(row)

    async def _interruptible_call(self, call: Callable[..., Any], *args: Any) -> Any:
        """``await call(*args)``; None if a first Ctrl-C stopped it (the row stays as it is)."""
        task = asyncio.current_task()
        assert task is not None
        self._interruptible.add(task)
        try:
            if self._stopping:
                return None
            return await call(*args)
        except asyncio.CancelledError:
            if self._stopping and self._signal is not None and not self._main_cancelled():
                task.uncancel()
                return None
            raise
        finally:
            self._interruptible.discard(task)

    def _main_cancelled(self) -> bool:
        return self._main is not None and self._main.cancelling() > 0

    async def _wait(self, row: Row, job: Job | str) -> tuple[Row, Job | str]:
        assert self.client is not None
        try:
            done = await self.client.wait(job)
        except CreativeError as exc:
            # The job exists (and is paid for): never give up on it here. It stays
            # "submitted", with why, and the next run reads it again by its id.
            return _failed(row, exc, state="submitted"), job
        if done.status is JobStatus.SUCCEEDED:
            outputs = tuple(asset.url for asset in done.outputs)
            return row.moved("succeeded", outputs=outputs), done
        error = ("JobFailedError", done.error or "the job failed")
        return row.moved("failed", error=error), done

    async def _download(self, row: Row, job: Job | str) -> Row:
        assert self.client is not None and self.options.download is not None
        try:
            if not isinstance(job, Job):  # a finished job of an earlier run: read its URLs
                job = await self.client.get(job)
            paths = await self.client.download(
                job,
                self.options.download,
                name=self._names[row.key],
                max_size=self.options.max_download,
            )
        except CreativeError as exc:
            self.download_failures += 1
            return row.moved(
                row.state, error=(type(exc).__name__, f"download failed: {exc.message}")
            )
        except OSError as exc:  # our folder: full, or made unwritable since the start
            self.download_failures += 1
            where = f" ({exc.filename})" if exc.filename else ""
            return row.moved(
                row.state, error=(type(exc).__name__, f"download failed: {describe(exc)}{where}")
            )
        return row.moved(row.state, files=tuple(str(p) for p in paths))

    def _needs_download(self, row: Row) -> bool:
        return (
            self.options.download is not None
            and row.state == "succeeded"
            and bool(row.outputs)
            and not row.files
        )

    def _finish(self, row: Row) -> None:
        assert self.journal is not None
        self.journal.write(row)
        self._count(row)

    def _count(self, row: Row) -> None:
        if row.state == "succeeded":
            self.counts.succeeded += 1
        elif row.state == "failed":
            self.counts.failed += 1
        elif row.state == "uncertain":
            self.counts.uncertain += 1

    # -- the end -------------------------------------------------------------------------

    def _write_out(self, entries: list[Entry], rows: dict[str, Row]) -> None:
        """OUT.jsonl, one line per input line in input order, replaced in one step."""
        assert self.client is not None
        text = out_text(entries, rows, self.problems, self.client.provider)
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
            assert self._signal is not None
            return 128 + self._signal
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

    def _say(self, message: str) -> None:
        """Progress and the summary: not with --quiet."""
        if self.options.progress != "none":
            self._warn(message)

    def _warn(self, message: str) -> None:
        """What the user must know: bad lines, uncertain jobs, how to resume (even --quiet)."""
        if self._display is not None and self.options.progress != "none":
            self._display.say(message)
        else:
            print(message, file=self._stderr, flush=True)


def _failed(row: Row, exc: CreativeError, *, state: State = "failed") -> Row:
    return row.moved(state, error=(type(exc).__name__, exc.message))


def _file_names(entries: list[Entry]) -> dict[str, str]:
    """A file-name stem per id: the id made safe, with a short hash where two would clash."""
    stems: dict[str, list[str]] = {}
    for entry in entries:
        ident = json.loads(entry.key)
        stems.setdefault(safe_stem(str(ident)), []).append(entry.key)
    names: dict[str, str] = {}
    for stem, keys in stems.items():
        for key in keys:
            if len(keys) == 1:
                names[key] = stem
            else:
                names[key] = f"{stem}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
    return names
