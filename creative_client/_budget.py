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
import contextlib
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

    One task (the pump) takes the gate's turns while anyone waits, and is gone when no
    one does; ``close`` stops it and fails the calls still waiting.
    """

    NEUTRAL = 0.5
    #: A call's wait ranks as a priority of 1 per this many seconds: a call that has
    #: waited that much longer goes before any, so none waits for ever.
    AGING = 5.0

    def __init__(self, gate: Gate) -> None:
        self._gate = gate
        self._waiting: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._pump: asyncio.Task[None] | None = None

    async def acquire(self, priority: float = NEUTRAL) -> None:
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[None] = loop.create_future()
        rank = loop.time() / self.AGING - priority  # lowest first
        heapq.heappush(self._waiting, (rank, next(self._order), turn))
        if self._pump is None:
            self._pump = loop.create_task(self._run())
        await turn  # cancelled: the pump skips it, and its turn goes to the next

    async def _run(self) -> None:
        waiting = self._waiting
        try:
            while waiting:
                await self._gate.acquire()
                while waiting:
                    turn = heapq.heappop(waiting)[2]
                    if not turn.done():
                        turn.set_result(None)
                        break
        except Exception as exc:  # the gate closed or broke: the waiting calls learn it
            self._fail(exc)
        except BaseException as exc:
            self._fail(exc)
            raise
        finally:
            self._pump = None

    def _fail(self, exc: BaseException) -> None:
        error = exc if isinstance(exc, Exception) else RuntimeError("this client is closed")
        for _, _, turn in self._waiting:
            if not turn.done():
                turn.set_exception(error)
        self._waiting.clear()

    async def close(self) -> None:
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        self._fail(RuntimeError("this client is closed; create a new one"))
