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
