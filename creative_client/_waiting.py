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
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._budget import Turns
from ._http import answer
from ._learning import Learned, Learning
from ._models import Job
from ._schedule import Plan
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
#: A planned pause shorter than this is not slept (jobs that end as soon as they are
#: made, read at once as the backoff schedule reads them with ``poll_initial=0``).
_SHORTEST_SLEEP = 0.002
#: Submitted jobs remembered for the waits to come (the oldest forgotten beyond it).
_STARTED_KEPT = 100_000


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
        #: What was learned of the jobs' durations (``None``: ``poll="backoff"``).
        self.learning = (
            Learning(self._provider.name, self.poll_initial, self.poll_max)
            if options.poll == "learned"
            else None
        )
        #: Jobs submitted and not yet waited for: when, and their model.
        self._started: OrderedDict[str, tuple[float, str | None]] = OrderedDict()

    async def read(self, job_id: str, priority: float = Turns.NEUTRAL) -> Job:
        call = self._provider.status_call(job_id)
        body = await self._transport.request(call, priority=priority)
        return self._provider.parse_job(job_id, body)

    def started(self, job_id: str, model: str | None) -> None:
        """A job was submitted now: its reads learn from its age (``poll="learned"``)."""
        if self.learning is not None:
            started = self._started
            if len(started) >= _STARTED_KEPT:  # submits nobody waits for: forget the oldest
                started.popitem(last=False)
            started[job_id] = (asyncio.get_running_loop().time(), model)

    def _learned(self, job_id: str) -> tuple[Learned | None, float]:
        """What a wait for ``job_id`` learns into, and when the job was submitted."""
        entry = self._started.pop(job_id, None) if self.learning is not None else None
        if entry is None or self.learning is None:
            return None, 0.0
        return self.learning.of(entry[1]), entry[0]

    async def poll(self, job_id: str, last: Job | None, limit: float) -> Job:
        """Read until the job ends; sleeps ``poll_initial`` first when ``last`` is given."""
        # The deadline is kept by clipping the pauses and, for a read that could outlast
        # it, by a timeout around that read: a short job's reads need no timer at all.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        longest_read = self._transport.longest_call
        status_call = self._provider.status_call
        learned, since = self._learned(job_id)
        seen, delay = 0.0, self.poll_initial  # seen: the age it was last seen running at
        pause = -1.0 if last is not None else 0.0  # -1: the next poll interval
        trouble: _Trouble | None = None  # made at the first failed read: most waits have none
        planned = final = False
        try:
            while True:
                if pause < 0:
                    plan = learned.plan if learned is not None else None
                    if planned := plan is not None:
                        pause = self._planned(plan, seen, loop.time() - since)
                    else:
                        pause = delay * random.uniform(0.9, 1.1)
                        delay = min(self.poll_max, max(delay * 2, 0.05))
                if pause:
                    left = deadline - loop.time()
                    if pause >= left:
                        if not planned or final:
                            await asyncio.sleep(max(left, 0.0))
                            raise _Expired
                        # A learned read (a first one may be late) that would come after
                        # the deadline: one last read just before it, not none at all.
                        final, pause = True, max(left - min(1.0, left / 2), 0.0)
                    await asyncio.sleep(pause)
                asked = loop.time()
                try:
                    if asked + longest_read < deadline:
                        body = await self._transport.request(status_call(job_id))
                        last = self._provider.parse_job(job_id, body)
                    else:  # near the deadline, or waiting for turns (rate): ranked
                        rank = _rank(learned, seen, asked - since)
                        last = await self._read_by(job_id, deadline, rank)
                except CreativeError as exc:
                    trouble = trouble or _Trouble(self, loop.time)
                    pause, planned = trouble.pause_after(exc), False  # or raises it
                    continue
                if learned is not None:
                    learned, seen = self._saw(learned, job_id, last, seen, asked, since)
                if last.status.is_terminal:
                    return last
                if trouble is not None:
                    trouble.over()
                pause = -1.0
        except _Expired:
            trouble = trouble or _Trouble(self, loop.time)
            raise trouble.timeout(job_id, limit, last) from trouble.error
        finally:
            if learned is not None:
                learned.left(job_id)

    def _saw(
        self, learned: Learned, job_id: str, job: Job, seen: float, asked: float, since: float
    ) -> tuple[Learned | None, float]:
        """``_learn`` from a read sent at ``asked``. The provider looked after it was
        sent and before it was answered; a read that waited for a turn was sent late,
        so its job had ended by the answer."""
        ended = asyncio.get_running_loop().time() if self._transport.ranked else asked
        return _learn(learned, job_id, job, seen, asked - since, ended - since)

    def _planned(self, plan: Plan, seen: float, age: float) -> float:
        """The pause before the next read of a job seen running at age ``seen``, now
        ``age`` old, by ``plan`` (which keeps the bounds), jittered by 10% either way as
        the backoff schedule's pauses are."""
        # A first read's time is jittered more: reads of some jobs a little sooner or
        # later than planned keep what the estimate sees of the earliest ends fresh.
        jitter = 0.1 if seen > 0.0 else 0.25
        pause = (plan.next_read(seen) - age) * random.uniform(1.0 - jitter, 1.0 + jitter)
        pause = max(pause, self.poll_initial * 0.9)  # the backoff's first pause at least
        return pause if pause >= _SHORTEST_SLEEP else 0.0

    async def called_back(
        self,
        job_id: str,
        last: Job | None,
        limit: float,
        expected: Expected,
        on_lost: Callable[[str], None],
    ) -> Job:
        """Wait for a job whose callback is expected, with a fallback read in case it is
        lost: once nearly every job like it has ended (learned), else every
        ``webhook_poll`` seconds (sooner, by the backoff, after one failed)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        trouble = _Trouble(self, loop.time)
        learned, since = self._learned(job_id)
        if learned is not None:
            learned.awaiting(job_id, since)
        pause, seen = self._fallback(learned, since, 0.0), 0.0
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
                if learned is not None:
                    learned, seen = _learn(learned, job_id, last, seen, loop.time() - since)
                if last.status.is_terminal:
                    if not expected.called:
                        on_lost(job_id)
                    return last
                pause = self._fallback(learned, since, seen)
        except _Expired:
            raise trouble.timeout(job_id, limit, last) from trouble.error
        finally:
            if learned is not None:
                learned.left(job_id)
        if learned is not None:  # the callback came as the job ended: its duration
            age = loop.time() - since
            learned.over(job_id, age, age)
        return expected.job

    def _fallback(self, learned: Learned | None, since: float, seen: float) -> float:
        """The pause before a webhook's fallback read of a job seen running at ``seen``."""
        plan = learned.plan if learned is not None else None
        late = plan.late(seen) if plan is not None else None
        if late is None:
            return self.webhook_poll * random.uniform(0.9, 1.1)
        age = asyncio.get_running_loop().time() - since
        return max(late - age, self.poll_initial) * random.uniform(1.0, 1.1)

    async def _read_by(self, job_id: str, deadline: float, priority: float = Turns.NEUTRAL) -> Job:
        """``read``, cut off at ``deadline`` with ``_Expired``."""
        scope = asyncio.timeout_at(deadline)
        try:
            async with scope:
                return await self.read(job_id, priority)
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


def _rank(learned: Learned | None, seen: float, age: float) -> float:
    """A read's priority for a turn: the chance its job, seen running at age ``seen``,
    has ended by ``age`` (``NEUTRAL`` when nothing is learned)."""
    plan = learned.plan if learned is not None else None
    return Turns.NEUTRAL if plan is None else plan.survival.ended_by(seen, age)


def _learn(
    learned: Learned, job_id: str, job: Job, seen: float, age: float, ended: float | None = None
) -> tuple[Learned | None, float]:
    """Tell ``learned`` what a read saw: the job ended by age ``ended`` (``age`` when not
    given; then nothing is left to learn from this wait) or ran at least ``age``."""
    if job.status.is_terminal:
        learned.over(job_id, seen, age if ended is None else ended)
        return None, seen
    learned.running(job_id, age)
    return learned, age


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
