"""What a client's jobs and requests draw from: job slots (``max_jobs``, jobs in flight at
the provider) and request turns (``rate``, HTTP requests per second).

``LocalBudget`` holds them for one process. With ``share=`` the budget is an account's,
shared by every process given the same database: ``creative_client/_pg/_budget.py``.
The runner (``creative_client/_runner.py``) takes a slot per job; the transport
(``creative_client/_transport.py``) takes a turn per request through ``gate``.
"""

from __future__ import annotations

import abc
import asyncio
import heapq
import itertools
from typing import TYPE_CHECKING, Protocol

from aiolimiter import AsyncLimiter

if TYPE_CHECKING:
    from ._options import ClientOptions
    from ._webhook_server import FanIn
    from ._webhooks import Reader
    from .providers import Provider


class Gate(Protocol):
    """A turn per request: ``acquire`` returns when the request may go."""

    async def acquire(self) -> None: ...


class Budget(abc.ABC):
    """Job slots and request turns. ``slots`` says whether jobs take slots at all."""

    #: Taken before each HTTP request; ``None`` when the rate is not bounded.
    gate: Gate | None = None
    #: Whether jobs take slots (``max_jobs`` was given).
    slots: bool = False

    async def open(self) -> None:  # noqa: B027 (a hook: nothing to do by default)
        """Make ready, in the client's loop (a shared budget connects here)."""

    async def close(self) -> None:  # noqa: B027
        """Give back what is held; idempotent."""

    def fan_in(self, provider: Provider, reader: Reader) -> FanIn | None:
        """A shared budget's part in webhooks across replicas; ``None`` for a local one."""
        return None

    @abc.abstractmethod
    async def take_slot(self) -> None:
        """Wait for a job slot."""

    @abc.abstractmethod
    def give_slot(self) -> None:
        """A job took its slot back: it ended, was refused, or is given up on."""


def local_limiter(rate: float) -> AsyncLimiter:
    """A leaky bucket holding a tenth of a second's worth: about ``rate`` requests in any
    second, without a whole second's burst at the start."""
    burst = max(1.0, rate / 10)
    return AsyncLimiter(burst, burst / rate)


def make_budget(options: ClientOptions) -> Budget:
    """The budget ``options`` ask for: shared through ``share``'s database, or local."""
    if options.share is None:
        return LocalBudget(options.max_jobs, options.rate)
    from ._pg._budget import SharedBudget  # psycopg is imported only for a share

    return SharedBudget(options)


class LocalBudget(Budget):
    """The budget of one process: a semaphore of ``max_jobs`` slots, a leaky bucket."""

    def __init__(self, max_jobs: int | None, rate: float | None) -> None:
        self.gate = local_limiter(rate) if rate else None
        self.slots = max_jobs is not None
        self._free = asyncio.Semaphore(max_jobs or 1)

    async def take_slot(self) -> None:
        await self._free.acquire()

    def give_slot(self) -> None:
        self._free.release()


class Turns:
    """A gate's turns handed out by priority (0 to 1), highest first, first come among
    equals: when ``rate`` binds, a read of a job likely to have ended goes before one of
    a job that likely runs on. Calls without a priority rank ``NEUTRAL``; waiting raises
    a call's rank (``AGING``).

    Each waiting call asks the gate for a turn in a task of its own (so the gate sees as
    many callers as wait: a shared budget sizes its blocks of tokens by them), and each
    turn the gate gives goes to the best-ranked call still waiting, which may be another.
    A turn that finds no one (its call was cancelled) is kept for the next call.
    ``close`` stops the asking and fails the calls still waiting.
    """

    NEUTRAL = 0.5
    #: A call's wait ranks as a priority of 1 per this many seconds: a call that has
    #: waited that much longer goes before any, so none waits for ever.
    AGING = 5.0

    def __init__(self, gate: Gate) -> None:
        self._gate = gate
        self._waiting: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._asking: set[asyncio.Task[None]] = set()
        self._spare = 0  # turns given when no one waited

    async def acquire(self, priority: float = NEUTRAL) -> None:
        if self._spare and not self._waiting:
            self._spare -= 1
            return
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[None] = loop.create_future()
        rank = loop.time() / self.AGING - priority  # lowest first
        heapq.heappush(self._waiting, (rank, next(self._order), turn))
        asking = loop.create_task(self._ask())
        self._asking.add(asking)
        asking.add_done_callback(self._asking.discard)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # given a turn as it was cancelled
                self._give()
            raise

    async def _ask(self) -> None:
        try:
            await self._gate.acquire()
        except Exception as exc:  # the gate closed or broke: the best-ranked call learns it
            while self._waiting:
                turn = heapq.heappop(self._waiting)[2]
                if not turn.done():
                    turn.set_exception(exc)
                    return
            return
        self._give()

    def _give(self) -> None:
        """A turn to the best-ranked call still waiting, or kept for the next."""
        waiting = self._waiting
        while waiting:
            turn = heapq.heappop(waiting)[2]
            if not turn.done():
                turn.set_result(None)
                return
        self._spare += 1

    async def close(self) -> None:
        asking = list(self._asking)
        for task in asking:
            task.cancel()
        await asyncio.gather(*asking, return_exceptions=True)
        error = RuntimeError("this client is closed; create a new one")
        for _, _, turn in self._waiting:
            if not turn.done():
                turn.set_exception(error)
        self._waiting.clear()
