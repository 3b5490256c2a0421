"""The PostgreSQL journal's statements (its functions are in ``_schema.py``, version 3),
and the two connections ``PgJournal`` (``_journal.py``) runs them on: ``SyncLink`` for
setting up, before the batch, and ``AsyncLink`` while it runs.

Neither waits for ever. ``AsyncLink`` makes its connection again when it is lost and
tries the statement again, for up to ``patience`` seconds, then raises
``JournalError``; every statement it runs may run twice (a claim whose answer was
lost leaves rows held that the worker does not know of: it does not renew them, so
their lease runs out and they go back to the batch)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg

from .._journal._model import JournalError, Row
from .._options import shown_url
from ._link import _KEEPALIVE, CALL_TIMEOUT, _reason
from ._schema import SchemaError, ensure, ensure_sync

T = TypeVar("T")

#: Rows some worker is still to finish.
UNFINISHED = ("pending", "submitting", "submitted")
_LEASE = "clock_timestamp() + make_interval(secs => %(lease)s::float8)"
_LIVE = "(lease is not null and lease >= clock_timestamp())"

META = "select meta from creative_batches where name = %s"
SET_META = (
    "insert into creative_batches (name, meta) values (%s, %s) on conflict (name)"
    " do update set meta = creative_batches.meta || excluded.meta"
)
ADD_BATCH = "insert into creative_batches (name) values (%s) on conflict do nothing"
ADD_ROWS = (
    "insert into creative_rows (batch, key, line, request, state)"
    " select %s, e.key, e.line, e.request, 'pending'"
    " from jsonb_to_recordset(%s) as e(key text, line integer, request jsonb)"
    " on conflict do nothing"
)
#: Only rows no live worker holds (see ``PgJournal.move``); a row moved to pending is
#: let go, one moved elsewhere keeps its last worker (whose late word may still land).
MOVE = (
    "update creative_rows set state = %(new)s::text, error_type = %(error_type)s::text,"
    " error = %(error)s::text, lease = null,"
    " worker = case when %(new)s::text = 'pending' then null else worker end"
    f" where batch = %(batch)s and state = %(old)s::text and not {_LIVE}"
)
RETRY_FAILED = (
    "update creative_rows set state = 'pending', job_id = null, outputs = '[]',"
    " files = '[]', error_type = null, error = null, worker = null, lease = null"
    " where batch = %s and state = 'failed' and error_type = %s"
)
_COLUMNS = "key, line, state, job_id, outputs, files, error_type, error"
LOAD = f"select {_COLUMNS} from creative_rows where batch = %s"
REQUESTS = "select key, line, request from creative_rows where batch = %s"

WRITE = "select creative_write_rows(%s, %s, %s::float8, %s)"
CLAIM = f"select {_COLUMNS}, request from creative_claim(%s, %s, %s::integer, %s::float8)"
RENEW = (
    f"update creative_rows set lease = {_LEASE} where batch = %(batch)s"
    " and worker = %(worker)s and key = any(%(keys)s::text[]) and lease is not null"
)
#: A worker leaving: the rows it holds that are not in flight are free at once.
RELEASE = (
    "update creative_rows set lease = null where batch = %s and worker = %s"
    " and state in ('pending', 'submitted') and lease is not null"
)
HELD_ELSEWHERE = (
    "select count(*) from creative_rows where batch = %s and worker <> %s"
    f" and state in {UNFINISHED} and lease >= clock_timestamp()"
)
COUNTS = "select state, worker, count(*) from creative_rows where batch = %s group by 1, 2"
FINISHED = (
    f"select not exists (select 1 from creative_rows where batch = %s and state in {UNFINISHED})"
)


def row_of(values: Sequence[Any]) -> Row:
    """A ``Row`` from the columns ``_COLUMNS`` names."""
    key, line, state, job_id, outputs, files, error_type, error = values[:8]
    return Row(
        key=key,
        line=line,
        state=state,
        job_id=job_id,
        outputs=tuple(outputs),
        files=tuple(files),
        error_type=error_type,
        error=error,
    )


def row_json(row: Row) -> dict[str, Any]:
    """``row`` as ``creative_write_rows`` reads it."""
    return {
        "key": row.key,
        "state": row.state,
        "job_id": row.job_id,
        "outputs": list(row.outputs),
        "files": list(row.files),
        "error_type": row.error_type,
        "error": row.error,
    }


class SyncLink:
    """A sync connection (autocommit), made on first use, with the schema ensured; made
    again once if it was lost. Every driver error is a ``JournalError``."""

    def __init__(self, url: str, *, connect_timeout: float) -> None:
        self.url, self.shown, self.connect_timeout = url, shown_url(url), connect_timeout
        self.conn: psycopg.Connection[Any] | None = None

    def run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """``work(conn)`` in one transaction (run again on a new connection if the first
        was lost)."""
        for attempt in (1, 2):
            try:
                conn = self._connected()
                with conn.transaction():
                    return work(conn)
            except psycopg.OperationalError as exc:
                if attempt == 2 or self.conn is None or not self.conn.broken:
                    raise JournalError(f"the journal at {self.shown}: {_reason(exc)}") from None
                self.close()
            except psycopg.Error as exc:
                raise JournalError(f"the journal at {self.shown}: {_reason(exc)}") from None
        raise AssertionError("unreachable")

    def _connected(self) -> psycopg.Connection[Any]:
        if self.conn is None:
            timeout = max(1, round(self.connect_timeout))
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=timeout, **_KEEPALIVE)
            try:
                ensure_sync(conn)
            except SchemaError as exc:
                conn.close()
                raise JournalError(str(exc)) from None
            except BaseException:
                conn.close()
                raise
            self.conn = conn
        return self.conn

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                conn.close()


class AsyncLink:
    """An async connection (autocommit), made on first use (the schema ensured) and
    again when lost; ``rows`` tries a statement for up to ``patience`` seconds."""

    def __init__(self, url: str, *, patience: float, connect_timeout: float) -> None:
        self.url, self.shown = url, shown_url(url)
        self.patience, self.connect_timeout = patience, connect_timeout
        self.conn: psycopg.AsyncConnection[Any] | None = None
        self._lock: asyncio.Lock | None = None
        self._ensured = False

    async def rows(self, sql: str, params: Any) -> list[tuple[Any, ...]]:
        """Every row ``sql`` answers; ``JournalError`` once ``patience`` is spent."""
        loop = asyncio.get_running_loop()
        deadline, pause = loop.time() + self.patience, 0.05
        while True:
            conn = None
            try:
                conn = await self._connected()
                async with asyncio.timeout(CALL_TIMEOUT):
                    cursor = await conn.execute(sql, params)
                    return await cursor.fetchall() if cursor.description is not None else []
            except (psycopg.OperationalError, psycopg.InterfaceError, OSError, TimeoutError) as exc:
                await self._drop(conn)
                if loop.time() + pause > deadline:
                    raise JournalError(
                        f"the journal at {self.shown} is unreachable: {_reason(exc)}"
                    ) from None
            except psycopg.Error as exc:
                raise JournalError(f"the journal at {self.shown}: {_reason(exc)}") from None
            except BaseException:  # cancelled mid-statement: the connection is unsure
                await self._drop(conn)
                raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    async def _connected(self) -> psycopg.AsyncConnection[Any]:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.conn is None:
                timeout = max(1, round(self.connect_timeout))
                async with asyncio.timeout(self.connect_timeout + 1):
                    conn = await psycopg.AsyncConnection.connect(
                        self.url, autocommit=True, connect_timeout=timeout, **_KEEPALIVE
                    )
                try:
                    if not self._ensured:
                        await ensure(conn)
                        self._ensured = True
                except SchemaError as exc:
                    await conn.close()
                    raise JournalError(str(exc)) from None
                except BaseException:
                    await conn.close()
                    raise
                self.conn = conn
            return self.conn

    async def _drop(self, conn: psycopg.AsyncConnection[Any] | None) -> None:
        if conn is not None and conn is self.conn:
            self.conn = None
        if conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await conn.close()

    async def close(self) -> None:
        await self._drop(self.conn)

    def close_now(self) -> None:
        """Close the connection without the event loop (``PgJournal.close`` when
        ``stop`` was not awaited): what ``AsyncConnection.close`` does, minus the pool."""
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.pgconn.finish()
