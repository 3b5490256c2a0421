"""One row of ``creative batch``: submitted (its ``submitting`` state committed first, so
that a crash never sends it twice), waited for, its outputs downloaded, each step
journaled, and counted when it is finished.

``Batch`` (``_batch.py``) runs ``RowRun.one`` for every row left; ``Stop``
(``_batch_stop.py``) says when a signal came. The row states are in
``creative_client/_journal/_model.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json

from .._client import CreativeClient
from .._download import safe_stem
from .._fallback import FallbackClient
from .._journal._steps import submit_row, wait_row
from .._models import Job
from ..errors import CreativeError
from ._batch_stop import Stop
from ._files import describe
from ._inputs import Entry
from ._journal import JournalBackend, Row
from ._progress import Counts
from ._setup import BatchOptions


class RowRun:
    """Runs rows with ``client``, journaling them in ``journal``; ``names`` are the
    download file-name stems (by key), ``counts`` what the display shows. A row's job
    is read from the provider that holds it (``Row.provider``; the first provider for
    a row of a journal from before it was kept)."""

    def __init__(
        self,
        *,
        client: FallbackClient | CreativeClient,
        journal: JournalBackend,
        options: BatchOptions,
        counts: Counts,
        stop: Stop,
        names: dict[str, str],
    ) -> None:
        self._client = client
        self._journal = journal
        self._options = options
        self._counts = counts
        self._stop = stop
        self._names = names
        self.download_failures = 0

    async def one(self, _index: int, item: tuple[Entry, Row]) -> None:
        """Take one row as far as it goes in this run."""
        entry, row = item
        job: Job | str | None = row.job_id
        if row.state == "pending":
            submitted = await self._submit(entry, row)
            if submitted is None:
                return
            row, job = submitted
        assert job is not None
        if row.state == "submitted":
            finished = await self._stop.interruptible(self._wait, row, job)
            if finished is None:
                return
            row, job = finished
            self._journal.write(row)
            if row.state == "submitted":  # gave up waiting: the next run reads it again
                return
        if needs_download(self._options, row):
            saved = await self._stop.interruptible(self._download, row, job)
            if saved is not None:
                row = saved
                self._journal.write(row)
        count(self._counts, row)

    async def _submit(self, entry: Entry, row: Row) -> tuple[Row, Job] | None:
        """Send a pending row's request; the row as submitted and its job, or None when
        this run is done with the row (refused, uncertain, or a stop came)."""
        if self._stop.stopping:
            return None
        try:
            result = await submit_row(
                self._client, self._journal, row, entry.request, lambda: self._stop.stopping
            )
        except asyncio.CancelledError:
            left = self._journal.current.get(row.key)
            if left is not None and left.state == "uncertain":  # cut short in flight
                count(self._counts, left)
            raise
        if isinstance(result, Row):
            count(self._counts, result)
            return None
        if result is None or self._stop.stopping:
            return None
        return result

    async def _wait(self, row: Row, job: Job | str) -> tuple[Row, Job | str]:
        return await wait_row(self._holder(row), row, job)

    def _holder(self, row: Row) -> CreativeClient:
        client = self._client
        if isinstance(client, CreativeClient):
            return client
        return client.client(row.provider or client.provider)

    async def _download(self, row: Row, job: Job | str) -> Row:
        assert self._options.download is not None
        try:
            if not isinstance(job, Job):  # a finished job of an earlier run: read its URLs
                job = await self._holder(row).get(job)
            paths = await self._client.download(
                job,
                self._options.download,
                name=self._names[row.key],
                max_size=self._options.max_download,
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


def needs_download(options: BatchOptions, row: Row) -> bool:
    """The row succeeded with outputs that are to be downloaded and are not yet."""
    return (
        options.download is not None
        and row.state == "succeeded"
        and bool(row.outputs)
        and not row.files
    )


def count(counts: Counts, row: Row) -> None:
    """Count a finished row."""
    if row.state == "succeeded":
        counts.succeeded += 1
    elif row.state == "failed":
        counts.failed += 1
    elif row.state == "uncertain":
        counts.uncertain += 1


def file_names(entries: list[Entry]) -> dict[str, str]:
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
