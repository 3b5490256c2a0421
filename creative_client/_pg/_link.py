"""One connection to the share's database that comes back by itself: a call on a lost
connection raises ``Down`` at once (nothing waits on a dead socket), and a task makes
the connection again with backoff, then runs ``on_up`` on it (re-register, LISTEN)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import backoff
import psycopg

from .._options import shown_url
from ..errors import ShareUnavailableError

logger = logging.getLogger("creative_client")

#: How long one statement may take before the connection counts as lost (seconds).
CALL_TIMEOUT = 5.0


#: A peer that went silent (a partition, no RST) is noticed in seconds, not hours.
_KEEPALIVE: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
    "tcp_user_timeout": 10000,
}


class Down(Exception):
    """The connection is lost (or not made yet); a new one is on its way."""


class Link:
    """A psycopg connection (autocommit) to ``url``, made again whenever it is lost."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 5.0,
        on_up: Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]] | None = None,
    ) -> None:
        self.url = url
        self.shown = shown_url(url)
        self.connect_timeout = connect_timeout
        self.on_up = on_up
        self.conn: psycopg.AsyncConnection[Any] | None = None
        self.up = asyncio.Event()
        self._again: asyncio.Task[None] | None = None
        self._closed = False
        self.losses = 0

    async def open(self) -> psycopg.AsyncConnection[Any]:
        """The first connection; ``ShareUnavailableError`` (no hang) if it cannot be made."""
        try:
            conn = await self._connect()
        except (psycopg.Error, OSError, TimeoutError) as exc:
            raise ShareUnavailableError(
                f"cannot reach the share's database at {self.shown}: {_reason(exc)}"
            ) from None
        self.conn = conn
        self.up.set()
        return conn

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        timeout = max(1, round(self.connect_timeout))
        async with asyncio.timeout(self.connect_timeout + 1):
            conn = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, connect_timeout=timeout, **_KEEPALIVE
            )
            try:
                if self.on_up is not None:
                    await self.on_up(conn)
            except BaseException:
                await conn.close()
                raise
        return conn

    async def call(
        self, sql: str, params: Sequence[object], *, timeout: float = CALL_TIMEOUT
    ) -> tuple[Any, ...]:
        """The first row of ``sql``; ``Down`` when the connection is (or gets) lost.

        Any driver error counts as a lost connection (a failover to a read-only server,
        a revoked grant): the connection is made again, with backoff, and the callers'
        loops go on waiting for it rather than ending."""
        conn = self.conn
        if conn is None:
            raise Down
        try:
            async with asyncio.timeout(timeout):
                row = await (await conn.execute(sql, params)).fetchone()
        except (psycopg.Error, TimeoutError) as exc:
            self.lost(exc, conn)
            raise Down from exc
        if row is None:
            raise Down  # not what this schema's functions answer: as good as lost
        return tuple(row)

    def lost(
        self, exc: BaseException | None = None, conn: psycopg.AsyncConnection[Any] | None = None
    ) -> None:
        """Drop the connection (``conn``, if it is still the current one) and start making
        a new one (once)."""
        if conn is not None and conn is not self.conn:
            return  # an old connection's late failure: the new one is fine
        if self.conn is not None:
            self.losses += 1
            logger.warning("lost the share's database (%s): reconnecting", _reason(exc))
            conn, self.conn = self.conn, None
            self.up.clear()
            task = asyncio.ensure_future(_close_quietly(conn))
            task.add_done_callback(lambda t: t.exception())
        if not self._closed and (self._again is None or self._again.done()):
            self._again = asyncio.create_task(self._reconnect())

    async def _reconnect(self) -> None:
        for delay in backoff.expo(base=2, factor=0.1, max_value=5.0):
            await asyncio.sleep(backoff.full_jitter(delay or 0.1))
            if self._closed:
                return
            try:
                self.conn = await self._connect()
            except (psycopg.Error, OSError, TimeoutError) as exc:
                logger.debug("the share's database is still away: %s", _reason(exc))
                continue
            self.up.set()
            logger.warning("the share's database is back")
            return

    async def close(self) -> None:
        self._closed = True
        again, self._again = self._again, None
        if again is not None:
            again.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await again
        conn, self.conn = self.conn, None
        self.up.clear()
        if conn is not None:
            await _close_quietly(conn)


async def listen(
    link: Link, heard: Callable[[str], object], *, again: Callable[[], object]
) -> None:
    """Hand the payload of each notification ``link``'s connection gets to ``heard``, for
    ever, across lost connections (``again`` is called after one: a notification may
    have been missed meanwhile). ``link``'s ``on_up`` says LISTEN."""
    while True:
        conn = link.conn
        if conn is None:
            await link.up.wait()
            again()
            continue
        try:
            async for note in conn.notifies():
                heard(note.payload)
        except psycopg.Error as exc:
            link.lost(exc, conn)


async def _close_quietly(conn: psycopg.AsyncConnection[Any]) -> None:
    with contextlib.suppress(psycopg.Error, OSError):
        await conn.close()


def _reason(exc: BaseException | None) -> str:
    """The first line of a driver error (its DSN-free part), for a message."""
    if exc is None:
        return "connection lost"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
