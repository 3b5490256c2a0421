"""Webhook calls from a fake: a finished job's document POSTed to its loopback webhook."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp

if TYPE_CHECKING:
    from ._server import FakeJob

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def on_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine (a fake never calls anything beyond it)."""
    try:
        return urlsplit(url).hostname in _LOOPBACK
    except ValueError:  # "http://[" and the like: nothing to call
        return False


class WebhookSender:
    """Calls a job's webhook when it ends, ``copies`` times; ``loss`` of them (a fraction,
    drawn from ``rng``) are never sent.

    ``sent`` and ``lost`` count them; ``times`` holds when each job's first callback
    went out (``time.monotonic()`` as its headers were sent).
    """

    def __init__(self, rng: random.Random, *, loss: float = 0.0, copies: int = 1) -> None:
        self.loss = loss
        self.copies = copies
        self.sent = 0
        self.lost = 0
        self.times: dict[str, float] = {}
        self._rng = rng
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._session: aiohttp.ClientSession | None = None

    def later(self, job: FakeJob, url: str, document: Callable[[FakeJob], Any]) -> None:
        """POST ``document(job)`` to ``url`` once the job's duration has passed."""

        def fire() -> None:
            self._timers.discard(timer)
            task = asyncio.create_task(self._call(job, url, document))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        timer = asyncio.get_running_loop().call_later(job.duration, fire)
        self._timers.add(timer)

    @property
    def pending(self) -> int:
        """Callbacks scheduled or under way."""
        return len(self._timers) + len(self._tasks)

    async def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _call(self, job: FakeJob, url: str, document: Callable[[FakeJob], Any]) -> None:
        if self._rng.random() < self.loss:
            self.lost += 1
            return
        if self._session is None:
            trace = aiohttp.TraceConfig()
            trace.on_request_headers_sent.append(self._headers_sent)
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=10),
                connector=aiohttp.TCPConnector(limit=0),  # as if from many servers
                trace_configs=[trace],
            )
        for _ in range(self.copies):
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self._session.post(url, json=document(job), trace_request_ctx=job.id):
                    self.sent += 1

    async def _headers_sent(
        self, _session: aiohttp.ClientSession, context: Any, _params: object
    ) -> None:
        self.times.setdefault(context.trace_request_ctx, time.monotonic())
