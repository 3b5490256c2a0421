"""An account's budget shared through PostgreSQL: job slots (``max_jobs``) and request
turns (``rate``) for every process given the same ``share`` and the same account.

Slots: each process (a holder) states in the database how many it holds, under a
lease it renews every third of the lease; one that dies gives them back when the lease
runs out. A process takes slots for the jobs waiting in it, hands a finished job's slot
straight to the next job waiting in it, and gives spare ones back after 250 ms, or at
once when another holder says (on the account's channel) that it waits. While others
wait, no holder is granted more than a fair share (``max_jobs`` / holders), and one
holding more has its next jobs ask like the others. ``max_jobs`` is never exceeded
while every holder is connected.

Turns (``creative_client/_pg/_turns.py``): one token bucket per account in the
database, refilled at ``rate`` up to ``rate * BLOCK`` tokens. A process takes at most
that many at a time (as many as wait in it, or as it spent lately in that time), and
a token not spent within ``BLOCK`` seconds of asking is dropped, so in any one-second
window the fleet sends at most ``rate * (1 + 2 * BLOCK) + 1`` requests.

Losing the database, a process keeps its jobs and its slots, takes no new slots, sends
at ``rate`` divided by the holders it last saw (on top of what the others send: the
rate bound then holds only up to that share), and reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import uuid
from collections.abc import Callable
from typing import Any

import psycopg

from .._budget import Budget
from .._options import ClientOptions
from .._webhook_server import FanIn
from .._webhooks import Reader
from ..errors import ShareUnavailableError
from ..providers import Provider
from ._link import Down, Link, listen
from ._schema import SchemaError, account_of, channel_of, ensure
from ._turns import Turns

logger = logging.getLogger("creative_client")

CLOSED = "this CreativeClient is closed; create a new one"

#: How long spare slots stay before they go back (seconds), unless another holder
#: says it waits for slots: then at once.
LINGER = 0.25
#: How often a process waiting for slots asks again with no word from the others.
RETRY = 0.25

_TAKE = "select * from creative_take_slots(%s, %s, %s, %s, %s, %s, %s, %s)"
_HOLD = "select * from creative_hold(%s, %s, %s, %s, %s, %s)"
_LEAVE = "select creative_leave(%s, %s, %s)"


class SharedBudget(Budget):
    """The account's budget, shared by every client with the same ``share``."""

    def __init__(self, options: ClientOptions) -> None:
        assert options.share is not None
        self._options = options
        self.max_jobs = options.max_jobs
        self.rate = options.rate
        self.lease = options.share_lease
        self.slots = options.max_jobs is not None
        self.gate = Turns(self) if options.rate else None
        self.holder = uuid.uuid4()
        self.account = self.channel = ""
        self.secret = b""
        self.link = Link(options.share, on_up=self._registered)
        self.listen = Link(options.share, on_up=self._listening)
        self.held = self.busy = 0
        self.others_wanting = self.holders = 0
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.freed = asyncio.Event()
        self._ops = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._fetching = False
        self._flush: asyncio.TimerHandle | None = None
        self._opened = False
        self._opening = asyncio.Lock()
        self._closed = False
        #: Called with each notification's payload other than "slots" (webhook fan-in).
        self.on_notify: Callable[[str], object] | None = None

    async def open(self) -> None:
        """Connect, set the schema up and register; once, whoever asks first (a client
        used without ``async with`` opens it at its first slot or turn)."""
        async with self._opening:
            if not self._opened:
                await self._open()
                self._opened = True

    async def _open(self) -> None:
        conn = await self.link.open()
        try:
            salt, self.secret = await ensure(conn)
        except (psycopg.Error, SchemaError) as exc:
            raise ShareUnavailableError(
                f"cannot use the share's database at {self.link.shown}: {exc}"
            ) from None
        provider = self._options.provider
        self.account = account_of(salt, provider.name, provider.base_url, self._options.api_key)
        self.channel = channel_of(self.account)
        await self._registered(conn)
        await self.listen.open()  # LISTENs on the channel (on_up), now that it is known
        self._start(listen(self.listen, self._heard, again=self.freed.set))
        self._start(self._heartbeat())

    def fan_in(self, provider: Provider, reader: Reader) -> FanIn | None:
        from ._fanin import FanIn as SharedFanIn

        return SharedFanIn(self, provider, reader)

    def _start(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self._closed = True
        if self._flush is not None:
            self._flush.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        _fail(self.waiters)
        if isinstance(self.gate, Turns):
            _fail(self.gate.waiters)
        if self.account:
            with contextlib.suppress(Down):
                await self.link.call(_LEAVE, (self.account, self.holder, self.channel))
        self.held = self.busy = 0
        await self.listen.close()
        await self.link.close()

    # -- slots --------------------------------------------------------------------------

    async def take_slot(self) -> None:
        if not self._opened:
            await self.open()
        if self._closed:
            raise RuntimeError(CLOSED)
        owes = self._owes()
        if self.held > self.busy and not self.waiters and not owes:
            self.busy += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        if not owes:  # else the spare ones go back, and this job asks like the others
            self._serve()
        if not waiter.done() and not self._fetching:
            self._fetching = True
            self._start(self._fetch_slots())
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give_slot()  # handed over as the caller was cancelled
            else:
                with contextlib.suppress(ValueError):
                    self.waiters.remove(waiter)
                self._serve(0)  # nobody may wait any more: spare ones go back
            raise

    def give_slot(self) -> None:
        if self.busy <= 0:
            return  # closed meanwhile: everything went back then
        self.busy -= 1
        self._serve(0 if self._owes() else None)

    def _wanted(self, holder: str) -> None:
        """Another holder could not get the slots it wants: spare slots go back now, and
        one holding more than its fair share has its next jobs ask like the others."""
        if holder == str(self.holder):
            return
        self.others_wanting = max(self.others_wanting, 1)
        self._serve(0, at_once=True)  # spare slots go back now (all of them, if it owes)

    def _owes(self) -> bool:
        """Others wait and this process holds more than its fair share."""
        if not self.others_wanting or self.max_jobs is None:
            return False
        return self.held > math.ceil(self.max_jobs / (self.holders + 1))

    def _serve(self, most: int | None = None, *, at_once: bool = False) -> None:
        """Hand free slots to the jobs waiting here, first come first served (at most
        ``most`` of them); free ones left over go back soon."""
        while self.waiters and self.held > self.busy and (most is None or most > 0):
            waiter = self.waiters.popleft()
            if not waiter.done():
                self.busy += 1
                waiter.set_result(None)
                most = None if most is None else most - 1
        if self.held > self.busy and (not self.waiters or self._owes()) and not self._closed:
            if at_once and self._flush is not None:
                self._flush.cancel()
                self._flush = None
            if self._flush is None:
                delay = 0.0 if at_once else LINGER
                self._flush = asyncio.get_running_loop().call_later(delay, self._flushing)

    async def _fetch_slots(self) -> None:
        assert self.max_jobs is not None
        try:
            while self.waiters and not self._closed:
                if not self.link.up.is_set():
                    await self.link.up.wait()
                    continue
                self.freed.clear()
                want = len(self.waiters)
                async with self._ops:
                    try:
                        args = (self.account, self.holder, self.held, want, self.max_jobs)
                        granted, self.others_wanting, self.holders = await self.link.call(
                            _TAKE, (*args, self.lease, want, self.channel)
                        )
                    except Down:
                        continue
                    self.held += granted
                # What the database granted is this process's to use; spare slots it
                # already held are not, while it holds more than its share and others wait.
                self._serve(granted if self._owes() else None)
                if self.waiters and granted < want:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(RETRY):
                            await self.freed.wait()
        finally:
            self._fetching = False

    def _flushing(self) -> None:
        self._flush = None
        self._start(self._give_back())

    async def _give_back(self) -> None:
        """Spare slots go back: all of them when this process owes, else those no job
        waiting here needs."""
        async with self._ops:
            spare = self.held - self.busy
            keep = 0 if self._owes() else min(spare, len(self.waiters))
            if spare - keep <= 0:
                return
            giving = spare - keep
            self.held -= giving  # before the call: no job here may take them meanwhile
            try:
                await self._renew()
            except Down:
                self.held += giving  # the database never heard: still this process's
        self._serve()

    async def _renew(self) -> None:
        """State what this process holds (renewing its lease). Raises ``Down``."""
        row = await self.link.call(_HOLD, self._hold(self.held))
        self._renewed(row)

    def _renewed(self, row: tuple[Any, ...]) -> None:
        self.others_wanting, self.holders, lapsed = row
        if lapsed:
            logger.warning(
                "this process's lease on its %d job slots had run out (cut off from the "
                "share's database for longer than share_lease?): others may have taken "
                "them meanwhile, so the jobs in flight may exceed max_jobs until some end",
                self.held,
            )

    async def _registered(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """State what this process holds, on a new connection (after a loss too)."""
        if not self.account:
            return  # the first connection: open() registers once the schema is there
        row = await (await conn.execute(_HOLD, self._hold(self.held))).fetchone()
        if row is not None:
            self._renewed(tuple(row))

    def _hold(self, held: int) -> tuple[object, ...]:
        """``creative_hold``'s arguments: this process now holds ``held`` slots."""
        wanting = len(self.waiters)
        return (self.account, self.holder, held, self.lease, wanting, self.channel)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            async with self._ops:
                with contextlib.suppress(Down):
                    await self._renew()

    # -- notifications ------------------------------------------------------------------

    async def _listening(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if self.channel:
            await conn.execute(f'listen "{self.channel}"')

    def _heard(self, payload: str) -> None:
        if payload == "slots":
            self.freed.set()
        elif payload.startswith("want "):
            self._wanted(payload[5:])
        elif self.on_notify is not None:
            self.on_notify(payload)


def _fail(waiters: collections.deque[Any]) -> None:
    """The client closes: whoever still waits for a slot or a turn hears so."""
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_exception(RuntimeError(CLOSED))
