"""Waiting for a job: the poll schedule, the deadline, and reads that outlast a bad spell.

A job the caller waits for exists and may already be paid for, so a read that fails
for a while (429, 5xx, a timeout, a dropped connection) never ends the wait: the
next read comes after the usual backoff, until the deadline. Only an answer that
cannot change ends it early: 401/403, a contract-breaking document, or a job the
provider still says does not exist after ``not_found_grace`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._http import answer
from ._models import Job
from ._transport import Transport
from ._webhooks import Expected
from .errors import (
    CreativeError,
    JobTimeoutError,
    NotFoundError,
    TransportError,
)

if TYPE_CHECKING:
    from ._options import ClientOptions

logger = logging.getLogger("creative_client")

#: The shortest pause between a wait's failed read and its next one (seconds).
MIN_PAUSE = 0.05


class Waiting:
    """How one client waits for its jobs, by polling or by callback."""

    def __init__(self, transport: Transport, options: ClientOptions) -> None:
        self._transport = transport
        self._provider = options.provider
        self._retry = options.retry
        self.poll_initial = options.poll_initial
        self.poll_max = options.poll_max
        self.webhook_poll = options.webhook_poll
        self.not_found_grace = options.not_found_grace

    async def read(self, job_id: str) -> Job:
        body = await self._transport.request(self._provider.status_call(job_id))
        return self._provider.parse_job(job_id, body)

    async def poll(self, job_id: str, last: Job | None, limit: float) -> Job:
        """Read until the job ends; sleeps ``poll_initial`` first when ``last`` is given."""
        # The deadline is kept by clipping the pauses and, for a read that could outlast
        # it, by a timeout around that read: a short job's reads need no timer at all.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        longest_read = self._transport.longest_call
        status_call = self._provider.status_call
        delay = self.poll_initial
        pause = -1.0 if last is not None else 0.0  # -1: the next poll interval
        trouble: _Trouble | None = None  # made at the first failed read: most waits have none
        try:
            while True:
                if pause < 0:
                    pause = delay * random.uniform(0.9, 1.1)
                    delay = min(self.poll_max, max(delay * 2, 0.05))
                if pause:
                    left = deadline - loop.time()
                    if pause >= left:
                        await asyncio.sleep(max(left, 0.0))
                        raise _Expired
                    await asyncio.sleep(pause)
                try:
                    if loop.time() + longest_read < deadline:
                        body = await self._transport.request(status_call(job_id))
                        last = self._provider.parse_job(job_id, body)
                    else:
                        last = await self._read_by(job_id, deadline)
                except CreativeError as exc:
                    if trouble is None:
                        trouble = _Trouble(self, loop.time)
                    pause = trouble.pause_after(exc)  # or raises it
                    continue
                if last.status.is_terminal:
                    return last
                if trouble is not None:
                    trouble.over()
                pause = -1.0
        except _Expired:
            if trouble is None:
                trouble = _Trouble(self, loop.time)
            raise trouble.timeout(job_id, limit, last) from trouble.error

    async def called_back(
        self,
        job_id: str,
        last: Job | None,
        limit: float,
        expected: Expected,
        on_lost: Callable[[str], None],
    ) -> Job:
        """Wait for a job whose callback is expected: the confirmed callback, or a slow
        poll every ``webhook_poll`` seconds in case it is lost (sooner, by the backoff,
        after a fallback read failed)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        trouble = _Trouble(self, loop.time)
        pause = self.webhook_poll * random.uniform(0.9, 1.1)
        try:
            while expected.job is None:
                left = deadline - loop.time()
                if left <= 0:
                    raise _Expired
                # Awaited directly (one hop from the confirming read to this task), and
                # woken by a timer for the fallback poll.
                wake = expected.wake = loop.create_future()
                timer = loop.call_later(min(pause, left), _wake, wake)
                try:
                    await wake
                finally:
                    timer.cancel()
                    expected.wake = None
                if expected.job is not None:
                    break
                if expected.gone:  # only close() lets go of a callback someone waits for
                    raise RuntimeError("this CreativeClient is closed; create a new one")
                if loop.time() >= deadline:
                    raise _Expired
                try:
                    last = await self._read_by(job_id, deadline)  # rare: a timer is fine
                except CreativeError as exc:
                    pause = min(trouble.pause_after(exc), self.webhook_poll)
                    continue
                trouble.over()
                if last.status.is_terminal:
                    if not expected.called:
                        on_lost(job_id)
                    return last
                pause = self.webhook_poll * random.uniform(0.9, 1.1)
        except _Expired:
            raise trouble.timeout(job_id, limit, last) from trouble.error
        return expected.job

    async def _read_by(self, job_id: str, deadline: float) -> Job:
        """``read``, cut off at ``deadline`` with ``_Expired``."""
        scope = asyncio.timeout_at(deadline)
        try:
            async with scope:
                return await self.read(job_id)
        except TimeoutError:
            if scope.expired():
                raise _Expired from None
            raise


class _Trouble:
    """A wait's run of failed reads: whether to go on, and how long to pause."""

    __slots__ = ("_clock", "_failures", "_missing_since", "_waiting", "error")

    def __init__(self, waiting: Waiting, clock: Callable[[], float]) -> None:
        self._waiting = waiting
        self._clock = clock
        self._failures = 0
        self._missing_since: float | None = None
        #: The last read's error, while reads fail (``None`` once one succeeds).
        self.error: CreativeError | None = None

    def pause_after(self, exc: CreativeError) -> float:
        """The pause before the next read, or ``exc`` raised when it cannot change.

        The pause grows with the run of failures as the retry policy's backoff does,
        and a ``Retry-After`` only lengthens it: a provider answering "429, retry after
        0" again and again does not get each waiting job's reads back to back.
        """
        if isinstance(exc, NotFoundError):
            now = self._clock()
            if self._missing_since is None:
                self._missing_since = now
            if now - self._missing_since >= self._waiting.not_found_grace:
                raise exc
        elif not _transient(exc):
            raise exc
        self.error = exc
        retry = self._waiting._retry
        delay = retry.backoff(self._failures)
        self._failures += 1
        hint = getattr(exc, "retry_after", None)
        if hint is not None:
            delay = max(delay, min(hint, retry.max_retry_after))
        delay = max(delay, MIN_PAUSE)
        logger.debug("a read failed (%s); reading again in %.2fs", type(exc).__name__, delay)
        return delay

    def over(self) -> None:
        """A read answered: the next failure starts a new run."""
        if self.error is not None or self._missing_since is not None:
            self.error = None
            self._failures = 0
            self._missing_since = None

    def timeout(self, job_id: str, limit: float, last: Job | None) -> JobTimeoutError:
        return JobTimeoutError(
            job_id,
            limit,
            job=last,
            provider=self._waiting._provider.name,
            last_error=self.error,
        )


def _transient(exc: CreativeError) -> bool:
    """A read failure another read may not meet: busy, down for a while, cut off, or a
    proxy's timeout (408, 5xx such as Cloudflare's 52x): ``Answer.transient``."""
    if isinstance(exc, TransportError):
        return True
    return exc.status is not None and answer(exc.status).transient


class _Expired(Exception):
    """A wait's deadline passed."""


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
