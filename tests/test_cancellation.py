"""Cancellation and shutdown: nothing left running, no connection left open, no warning.

Warnings are errors in this suite and the autouse ``_no_leaks`` fixture fails a
test that leaves a task pending or makes asyncio report anything.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest
from _helpers import client_for

from creative_client import CreativeClient, CreativeError, GenerationRequest
from creative_client.testing import FakeServer

#: The fake server's own tasks: accepting a connection, handling a request.
_SERVER_SIDE = ("RequestHandler", "BaseSelectorEventLoop._accept_connection")


def _client_tasks() -> set[asyncio.Task[object]]:
    """Tasks still running, other than this test's and the fake server's handlers."""
    current = asyncio.current_task()
    return {
        t
        for t in asyncio.all_tasks()
        if t is not current
        and not t.done()
        and not t.get_coro().__qualname__.startswith(_SERVER_SIDE)  # type: ignore[union-attr]
    }


async def _settled(fake: FakeServer) -> int:
    """Open connections on the server once closing has had a moment (at most one second)."""
    for _ in range(100):
        if fake.open_connections == 0:
            break
        await asyncio.sleep(0.01)
    return fake.open_connections


def _calls(
    client: CreativeClient, job_id: str
) -> dict[str, Callable[[], Coroutine[Any, Any, object]]]:
    async def batch() -> None:
        requests = (GenerationRequest(prompt=f"b{i}") for i in range(50))
        async for _ in client.as_completed(requests, concurrency=8):
            pass

    return {
        "generate": lambda: client.generate(prompt="x"),
        "wait": lambda: client.wait(job_id),
        "as_completed": batch,
    }


async def test_cancelling_at_random_points_leaves_nothing(fake: FakeServer) -> None:
    rng = random.Random(20261122)
    fake.job_duration = 0.08
    cancelled = finished = 0
    async with client_for(fake, concurrency=8) as client:
        job = await client.submit(prompt="long")
        fake.jobs[job.id].duration = 3600.0  # a job that never ends, for wait()
        calls = _calls(client, job.id)
        for trial in range(60):
            kind = rng.choice(sorted(calls))
            task = asyncio.create_task(calls[kind]())
            # From before the first request is sent to well after the first answers.
            await asyncio.sleep(rng.choice([0.0, rng.uniform(0, 0.003), rng.uniform(0, 0.15)]))
            task.cancel()
            try:
                await task
                finished += 1
            except asyncio.CancelledError:
                cancelled += 1
            await asyncio.sleep(0)
            assert not _client_tasks(), f"trial {trial} ({kind}) left {_client_tasks()}"
    assert cancelled > 30 and finished > 0  # both sides of the race were hit
    assert await _settled(fake) == 0


async def test_leaving_the_block_with_calls_in_flight(fake: FakeServer) -> None:
    fake.job_duration = 5.0
    async with client_for(fake, concurrency=8) as client:
        job = await client.submit(prompt="long")
        calls = _calls(client, job.id)
        tasks = {kind: asyncio.create_task(call()) for kind, call in calls.items()}
        await asyncio.sleep(0.2)  # all of them are waiting on the server now
    assert client.closed
    results = await asyncio.gather(*tasks.values(), return_exceptions=True)
    for kind, result in zip(tasks, results, strict=True):
        # Each ends at once, with an error that says why; none hangs or is lost.
        assert isinstance(result, CreativeError | RuntimeError), (kind, result)
    assert not _client_tasks()
    assert await _settled(fake) == 0


async def test_a_closed_client_refuses_every_call(fake: FakeServer) -> None:
    async with client_for(fake) as client:
        job = await client.submit(prompt="x")
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: client.submit(prompt="x"),
        lambda: client.get(job.id),
        lambda: client.wait(job.id),
        lambda: client.generate(prompt="x"),
        lambda: client.generate_many([GenerationRequest(prompt="x")]),
        lambda: anext(client.as_completed([GenerationRequest(prompt="x")])),
    ]
    for call in calls:
        with pytest.raises(RuntimeError, match="closed; create a new one"):
            await call()
    assert fake.count("submit") == 1
    await client.aclose()  # idempotent
