"""The batch journal's model, whatever stores it: the row states, ``Row``,
``JournalError`` and ``JournalBackend``, the protocol a storage backend implements.

A row is ``pending`` until its submit is about to leave, ``submitting`` (committed
*before* the POST is sent), ``submitted`` with the job id the provider answered, then
``succeeded``, ``failed`` or ``uncertain`` (a submit whose outcome is unknown).

The SQLite backend is ``SqliteJournal`` in ``_sqlite.py`` (its group-commit
writer thread in ``_writer.py``); ``creative_client/_cli/_journal.py`` names the backend a run uses
and reads a journal for ``creative status``. Nothing here knows about a database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, Protocol

import attrs

State = Literal["pending", "submitting", "submitted", "succeeded", "failed", "uncertain"]
#: Rows that need nothing more. A failed row is final: its job failed, or its submit was
#: refused. A row whose wait gave up (a read error, a timeout) stays "submitted", with
#: the error, so that the next run reads its job again rather than paying for another.
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "uncertain"})


class JournalError(Exception):
    """The journal cannot be used: locked by another run, unreadable, or a write failed."""


class RowTakenError(JournalError):
    """A journal shared by many workers: the row is another worker's now (this one's
    lease on it ran out and it was claimed). The write is not made, and this worker
    must not send the row."""


@attrs.frozen(kw_only=True)
class Row:
    """One id of a journaled batch, as the journal holds it (``JournalRow`` in the
    public API): ``id``, ``state`` (pending, submitting, submitted, succeeded, failed,
    uncertain), ``job_id``, ``outputs`` (URLs), ``files`` (downloaded paths, CLI) and
    ``error_type``/``error`` when it did not succeed. ``provider`` is the provider that
    holds the job (with a fallback, not always the first), or whose error ended the row;
    ``None`` before that (and in journals made before it was kept). ``key`` is the id
    as JSON."""

    key: str
    line: int
    state: State = "pending"
    job_id: str | None = None
    outputs: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    error_type: str | None = None
    error: str | None = None
    provider: str | None = None

    @property
    def id(self) -> str | int:
        """The row's id, as given (the key is its JSON)."""
        ident: str | int = json.loads(self.key)
        return ident

    def moved(
        self,
        state: State,
        *,
        job_id: str | None = None,
        outputs: tuple[str, ...] | None = None,
        files: tuple[str, ...] | None = None,
        error: tuple[str, str] | None = None,
        provider: str | None = None,
    ) -> Row:
        """This row in ``state``: the job id, outputs, files and provider kept unless
        given, the error (type, message) replaced (by none unless given)."""
        return Row(
            key=self.key,
            line=self.line,
            state=state,
            job_id=self.job_id if job_id is None else job_id,
            outputs=self.outputs if outputs is None else outputs,
            files=self.files if files is None else files,
            error_type=None if error is None else error[0],
            error=None if error is None else error[1],
            provider=self.provider if provider is None else provider,
        )

    def values(self) -> tuple[object, ...]:
        return (
            self.state,
            self.job_id,
            self.outputs,
            self.files,
            self.error_type,
            self.error,
            self.key,
            self.provider,
        )


class JournalBackend(Protocol):
    """What a journal backend offers a run (``_setup.py``, ``_batch.py`` and
    ``_batch_row.py`` hold a journal as this).

    Opened for one run, and held by it alone: a second run on the same journal is
    refused with ``JournalError``. Setting up (``meta``, ``set_meta``, ``add``,
    ``move``, ``retry_failed``, ``load``) is synchronous, before the batch starts;
    while it runs (after ``start``, called from the running loop), ``write`` queues a
    row's new state and ``write_durably`` returns once it is on disk (``JournalError``
    if it could not be, the row's earlier state then back in ``current``). ``stop``
    commits what is queued; ``close`` releases the journal.
    """

    path: Path
    #: Every row's latest state, as read by ``load`` and written since.
    current: dict[str, Row]

    def meta(self) -> dict[str, str]: ...

    def set_meta(self, **values: str) -> None: ...

    def add(self, entries: Iterable[tuple[str, int]]) -> None:
        """Add ``(key, line)`` rows as pending; keys already there keep their state."""

    def move(self, old: State, new: State, *, error_type: str | None, error: str | None) -> int:
        """Move every row in state ``old`` to ``new``; how many moved. Rows made
        pending forget their provider."""

    def retry_failed(self, error_type: str) -> int:
        """Move the failed rows whose error is ``error_type`` back to pending, their job
        forgotten; how many moved."""

    def load(self) -> dict[str, Row]:
        """Read every row; ``current`` from now on."""

    def start(self) -> None: ...

    def write(self, row: Row) -> None: ...

    async def write_durably(self, row: Row) -> None: ...

    async def stop(self) -> None: ...

    def close(self) -> None: ...
