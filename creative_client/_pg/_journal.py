"""The batch journal on PostgreSQL: ``PgJournal``, for many workers (processes, machines)
on one batch, with the SQLite journal's state machine and promise: no job is sent
twice unless the user asks.

A batch is a row of ``creative_batches`` (its meta) and one row per input id in
``creative_rows`` (its request, state, and who holds it: ``worker`` until ``lease``);
the tables and the functions ``creative_claim`` and ``creative_write_rows`` are schema
version 3 (``_schema.py``), the statements and connections ``_journal_sql.py``.

A worker claims rows (``claim``), commits "submitting" before it sends one
(``write_durably``) and its later states as they come (``write``), and keeps what it
holds alive (``renew``, every lease/3). Another worker's rows are never taken while
its lease runs; once it is lost, its submitted rows are claimed again (reading a job is
safe) and its submitting ones become uncertain (they may have made a job): never sent
again unless the user asks (``move("uncertain", "pending", ...)``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from .._journal._model import FINISHED, JournalError, Row, RowTakenError, State
from . import _journal_sql as sql
from ._journal_sql import AsyncLink, SyncLink, row_json, row_of

#: Rows inserted per statement by ``add_requests``.
_CHUNK = 5000
#: The pause before a group the database refused is tried again (seconds).
_AGAIN = 0.5


def _worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class PgJournal:
    """The batch ``batch`` in the PostgreSQL database at ``url``, as worker ``worker``.

    Implements ``JournalBackend`` (``creative_client/_journal/_model.py``): setting up (``meta``,
    ``set_meta``, ``add``, ``add_requests``, ``move``, ``retry_failed``, ``load``,
    ``requests``) is synchronous, on a connection of its own; while the batch runs
    (``start``), ``write`` queues a row's state and a task commits what is queued, in
    one call per group; ``write_durably`` returns once its row is committed. The fleet's
    calls (``claim``, ``renew``, ``held_elsewhere``, ``counts``, ``finished``) are async.
    A lost database is waited for up to ``patience`` seconds a call, then
    ``JournalError``. ``stop`` commits what is queued and closes the async connection;
    ``close`` the rest.

    ``path`` is ``Path(batch)``: the protocol's name for the journal in messages;
    nothing is read or written there.
    """

    def __init__(
        self,
        url: str,
        batch: str,
        *,
        worker: str | None = None,
        lease: float = 30.0,
        patience: float = 30.0,
        connect_timeout: float = 5.0,
    ) -> None:
        self.batch = batch
        self.path = Path(batch)
        self.worker = worker or _worker_id()
        self.lease = lease
        #: Every row's latest state, as read by ``load`` and written (or claimed) since.
        self.current: dict[str, Row] = {}
        self._sync = SyncLink(url, connect_timeout=connect_timeout)
        self._async = AsyncLink(url, patience=patience, connect_timeout=connect_timeout)
        #: The rows this worker holds (claimed or written unfinished): what ``renew`` renews.
        self._held: set[str] = set()
        self._queue: dict[str, Row] = {}
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._failure: JournalError | None = None

    # -- before the batch (sync) -----------------------------------------------------

    def meta(self) -> dict[str, str]:
        found = self._sync.run(lambda c: c.execute(sql.META, (self.batch,)).fetchone())
        return {} if found is None else {k: str(v) for k, v in found[0].items()}

    def set_meta(self, **values: str) -> None:
        """Merge ``values`` into the batch's meta (making the batch if need be)."""
        self._sync.run(lambda c: c.execute(sql.SET_META, (self.batch, Jsonb(values))))

    def add(self, entries: Iterable[tuple[str, int]]) -> None:
        """``add_requests`` with no requests (``{}``): for the protocol; a worker without
        the input file cannot send such rows, so a run on PostgreSQL uses
        ``add_requests``."""
        self.add_requests((key, line, {}) for key, line in entries)

    def add_requests(self, entries: Iterable[tuple[str, int, Mapping[str, Any]]]) -> None:
        """Add ``(key, line, request)`` rows as pending (making the batch if need be);
        keys already there keep their state, line and request."""
        rows = [{"key": key, "line": line, "request": request} for key, line, request in entries]

        def work(conn: Any) -> None:
            conn.execute(sql.ADD_BATCH, (self.batch,))
            for start in range(0, len(rows), _CHUNK):
                conn.execute(sql.ADD_ROWS, (self.batch, Jsonb(rows[start : start + _CHUNK])))

        self._sync.run(work)

    def move(self, old: State, new: State, *, error_type: str | None, error: str | None) -> int:
        """Move every row in state ``old`` that no live worker holds to ``new``; how many
        moved. A row another worker holds under a running lease is its: a "submitting"
        one is that worker's submit in flight right now, not one lost by an earlier run,
        and it will write the outcome itself."""
        params: dict[str, str | None] = {"batch": self.batch, "old": old, "new": new}
        params |= {"error_type": error_type, "error": error}
        count: int = self._sync.run(lambda c: c.execute(sql.MOVE, params).rowcount)
        return count

    def release(self) -> int:
        """This worker leaves: its pending and submitted rows are the others' at once
        (not after the lease); a submit in flight stays held until its lease runs out
        (then uncertain). How many were let go."""
        params = (self.batch, self.worker)
        count: int = self._sync.run(lambda c: c.execute(sql.RELEASE, params).rowcount)
        self._held.clear()
        return count

    def retry_failed(self, error_type: str) -> int:
        """Move the failed rows whose error is ``error_type`` back to pending, their job
        forgotten (a new one will be made); how many moved."""
        args = (self.batch, error_type)
        count: int = self._sync.run(lambda c: c.execute(sql.RETRY_FAILED, args).rowcount)
        return count

    def load(self) -> dict[str, Row]:
        """Read every row; ``current`` from now on."""
        found = self._sync.run(lambda c: c.execute(sql.LOAD, (self.batch,)).fetchall())
        self.current = {row.key: row for row in map(row_of, found)}
        return self.current

    def requests(self) -> dict[str, tuple[int, dict[str, Any]]]:
        """Every row's ``(line, request)`` by key: a worker's entries without the input."""
        found = self._sync.run(lambda c: c.execute(sql.REQUESTS, (self.batch,)).fetchall())
        return {key: (line, request) for key, line, request in found}

    # -- while the batch runs ----------------------------------------------------------

    def start(self) -> None:
        """Start the writer task; call from the running loop."""
        self._wake, self._stopping, self._failure = asyncio.Event(), False, None
        self._task = asyncio.create_task(self._write_groups(), name="creative-pg-journal")

    def write(self, row: Row) -> None:
        """Queue ``row``'s new state; it is committed with the next group."""
        assert self._wake is not None and not self._stopping, "start() the journal first"
        self.current[row.key] = row
        if row.state in FINISHED or row.state == "pending":
            self._held.discard(row.key)
        else:
            self._held.add(row.key)
        self._queue[row.key] = row
        self._wake.set()

    async def write_durably(self, row: Row) -> None:
        """Queue ``row``'s new state and return once it is committed: ``RowTakenError``
        if another worker holds the row, ``JournalError`` if the database could not be
        reached in time (the row's earlier state then back in ``current``)."""
        done = asyncio.get_running_loop().create_future()
        before = self.current.get(row.key)
        self.write(row)
        self._waiters.setdefault(row.key, []).append(done)
        try:
            await done
        except JournalError:
            self._held.discard(row.key)  # unless written again, its lease runs out
            if self.current.get(row.key) is row:
                if before is None:
                    del self.current[row.key]
                else:
                    self.current[row.key] = before
            raise

    async def _write_groups(self) -> None:
        """Commit what is queued, group by group, until ``stop``. A group the database
        could not take is tried again (its durable rows are dropped: their writers
        heard why) until ``stop``, which gives up after one more try."""
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                rows, self._queue = self._queue, {}
                waiters, self._waiters = self._waiters, {}
                try:
                    skipped = await self._commit(rows)
                except Exception as exc:  # whatever it is, no writer may wait for ever
                    if not isinstance(exc, JournalError):
                        exc = JournalError(f"writing the journal failed: {exc!r}")
                    _settle(waiters, set(), exc)
                    kept = {key: row for key, row in rows.items() if key not in waiters}
                    self._queue = {**kept, **self._queue}
                    if self._stopping:
                        self._failure = exc
                        return
                    await asyncio.sleep(_AGAIN)  # an error, not a lost database: no spin
                    continue
                _settle(waiters, skipped, None)
            if self._stopping:
                return

    async def _commit(self, rows: Mapping[str, Row]) -> set[str]:
        """Write ``rows`` in one call; the keys not written (held by another worker)."""
        group = Jsonb([row_json(row) for row in rows.values()])
        found = await self._async.rows(sql.WRITE, (self.batch, self.worker, self.lease, group))
        skipped = set(found[0][0])
        self._held -= skipped
        return skipped

    async def stop(self) -> None:
        """Commit what is queued (``JournalError`` if it could not be) and close the
        async connection."""
        task, self._task = self._task, None
        try:
            if task is not None:
                assert self._wake is not None
                self._stopping = True
                self._wake.set()
                await task
                if self._failure is not None:
                    left = len(self._queue)
                    raise JournalError(f"{left} row state(s) not written: {self._failure}")
        finally:
            await self._async.close()

    def close(self) -> None:
        """Release the connections (the async one is closed by ``stop``; if that was
        not awaited, here, without the loop). Idempotent."""
        self._sync.close()
        self._async.close_now()

    # -- the fleet ---------------------------------------------------------------------

    async def claim(self, n: int) -> list[tuple[Row, dict[str, Any]]]:
        """Take up to ``n`` rows for this worker, in line order, each with its request:
        submitted rows no live worker holds (to read their jobs again), then pending
        ones. Submits whose worker was lost become uncertain on the way."""
        if n <= 0:
            return []
        found = await self._async.rows(sql.CLAIM, (self.batch, self.worker, n, self.lease))
        claimed = sorted(((row_of(values), values[8]) for values in found), key=_line)
        for row, _ in claimed:
            self.current[row.key] = row
            self._held.add(row.key)
        return claimed

    async def renew(self) -> int:
        """Extend the lease of every unfinished row this worker holds (a heartbeat, every
        lease/3); how many. Rows another worker took meanwhile are not renewed."""
        if not self._held:
            return 0
        params = {"batch": self.batch, "worker": self.worker, "lease": self.lease}
        params["keys"] = sorted(self._held)
        found = await self._async.rows(sql.RENEW + " returning 1", params)
        return len(found)

    async def held_elsewhere(self) -> int:
        """Unfinished rows held by other workers whose lease runs: what a worker with
        nothing to claim waits for (they come back if their worker is lost)."""
        found = await self._async.rows(sql.HELD_ELSEWHERE, (self.batch, self.worker))
        count: int = found[0][0]
        return count

    async def counts(self) -> dict[str, dict[str, int]]:
        """Rows per state: under ``"*"`` all of them, under each worker's id the rows it
        holds or last wrote (rows nobody claimed yet are only under ``"*"``)."""
        found = await self._async.rows(sql.COUNTS, (self.batch,))
        counts: dict[str, dict[str, int]] = {"*": {}}
        for state, worker, n in found:
            counts["*"][state] = counts["*"].get(state, 0) + n
            if worker is not None:
                counts.setdefault(worker, {})[state] = n
        return counts

    async def finished(self) -> bool:
        """Every row of the batch is succeeded, failed or uncertain."""
        found = await self._async.rows(sql.FINISHED, (self.batch,))
        return bool(found[0][0])


def _line(claimed: tuple[Row, dict[str, Any]]) -> int:
    return claimed[0].line


def _settle(
    waiters: Mapping[str, list[asyncio.Future[None]]],
    skipped: set[str],
    failure: JournalError | None,
) -> None:
    for key, futures in waiters.items():
        for done in futures:
            if done.done():  # its writer was cancelled; the write went in all the same
                continue
            if failure is not None:
                done.set_exception(failure)
            elif key in skipped:
                done.set_exception(RowTakenError(f"the row {key!r} is held by another worker"))
            else:
                done.set_result(None)
