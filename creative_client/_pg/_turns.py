"""The request turns of a shared budget (``rate``): one token bucket per account in the
database (``creative_take_tokens`` in ``creative_client/_pg/_schema.py``), taken in
blocks of at most ``BLOCK`` seconds of ``rate``; a token not spent within ``BLOCK``
seconds of asking is dropped. While the database is away, a process sends at ``rate``
divided by the holders it last saw (``creative_client/_pg/_budget.py``)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
from typing import TYPE_CHECKING

from aiolimiter import AsyncLimiter

from .._budget import local_limiter
from ._link import Down

if TYPE_CHECKING:
    from ._budget import SharedBudget

#: Seconds of ``rate`` a process takes at most at once, and how long a token lives.
BLOCK = 0.05

#: A turn is never held up long by a database that went quiet (then: the fallback).
TOKEN_TIMEOUT = 1.0

_TOKENS = "select * from creative_take_tokens(%s, %s, %s, %s)"


class Turns:
    """The gate the transport takes a turn at: a token from the account's bucket."""

    def __init__(self, budget: SharedBudget) -> None:
        assert budget.rate is not None
        self._budget = budget
        self.rate = budget.rate
        self.block = max(1, math.floor(budget.rate * BLOCK))
        self.tokens = 0
        self.until = 0.0
        self.waiters: collections.deque[asyncio.Future[bool]] = collections.deque()
        self._fetching = False
        self._fallback: AsyncLimiter | None = None
        #: Turns taken in the current window, and the rate measured over the last one:
        #: a block asks for what this process will spend before the tokens expire.
        self._used = 0
        self._window = 0.0
        self._recent = 0.0

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        self._used += 1
        if self.tokens > 0 and loop.time() < self.until and not self.waiters:
            self.tokens -= 1
            return
        if not self._budget._opened:  # a client used without ``async with``
            await self._budget.open()
        if not self._budget.link.up.is_set():  # the database is away: a share of the rate
            await self._fallback_limiter().acquire()
            return
        waiter: asyncio.Future[bool] = loop.create_future()
        self.waiters.append(waiter)
        if not self._fetching:
            self._fetching = True
            self._budget._start(self._fetch())
        try:
            shared = await waiter
        except asyncio.CancelledError:
            with contextlib.suppress(ValueError):
                self.waiters.remove(waiter)
            raise
        if not shared:  # the database is away: this process's share of the rate
            await self._fallback_limiter().acquire()

    def _fallback_limiter(self) -> AsyncLimiter:
        if self._fallback is None:
            self._fallback = local_limiter(self.rate / (self._budget.holders + 1))
        return self._fallback

    async def _fetch(self) -> None:
        budget, loop = self._budget, asyncio.get_running_loop()
        try:
            while self.waiters:
                if self.tokens > 0 and loop.time() < self.until:
                    self._hand(self.tokens)
                    continue
                asked = loop.time()
                want = self._want(asked)
                try:
                    granted, wait = await budget.link.call(
                        _TOKENS,
                        (budget.account, want, self.rate, float(self.block)),
                        timeout=TOKEN_TIMEOUT,
                    )
                except Down:
                    self._release_all(shared=False)
                    continue
                self._fallback = None
                self.tokens, self.until = granted, asked + BLOCK
                self._hand(granted)
                if self.waiters and granted < want:
                    await asyncio.sleep(max(wait, 0.001))
        finally:
            self._fetching = False

    def _want(self, now: float) -> int:
        """As many tokens as wait, or as this process spent lately in ``BLOCK`` seconds
        (what it will spend before they expire), up to a block."""
        if now - self._window >= 2 * BLOCK:
            self._recent = self._used / (now - self._window) if self._window else 0.0
            self._window, self._used = now, 0
        return min(self.block, max(len(self.waiters), math.ceil(self._recent * BLOCK)))

    def _hand(self, count: int) -> None:
        while count > 0 and self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)
                count -= 1
                self.tokens -= 1

    def _release_all(self, *, shared: bool) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(shared)
