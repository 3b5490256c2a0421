"""Fan-out at scale: the kit's ``fanout`` group (creative_client/testing/kit/fanout.py) for
every provider with a fake, and the client's rate limit."""

from __future__ import annotations

import asyncio

import aiohttp
from _helpers import API_KEY, client_for

from creative_client.testing import FakeDeepixels
from creative_client.testing.kit import conformance_tests

globals().update(conformance_tests(groups=["fanout"]))


async def test_rate_limit_holds() -> None:
    rate = 40.0
    async with FakeDeepixels(api_key=API_KEY) as fake:
        async with client_for(fake, rate=rate, concurrency=16) as client:
            job = await client.submit(prompt="x")
            await asyncio.gather(*(client.get(job.id) for _ in range(40)))
        times = sorted(r.at for r in fake.requests)
    assert len(times) == 41
    # At most a tenth of a second's burst plus `rate` per second, over every window.
    for window in (0.25, 0.5):
        allowed = rate * window + max(1, rate / 10) + 1
        for i, start in enumerate(times):
            inside = sum(1 for t in times[i:] if t - start < window)
            assert inside <= allowed, (window, inside)
    span = times[-1] - times[0]
    assert span >= (41 - rate / 10) / rate * 0.9


async def test_rate_limit_waiting_holds_no_connection() -> None:
    """Calls waiting for their turn must not sit on pooled connections: if they did, the
    few requests allowed through would have to queue for a connection."""
    queued = 0

    async def on_queued(*_: object) -> None:
        nonlocal queued
        queued += 1

    trace = aiohttp.TraceConfig()
    trace.on_connection_queued_start.append(on_queued)
    connector = aiohttp.TCPConnector(limit=2)
    async with (
        FakeDeepixels(api_key=API_KEY) as fake,
        aiohttp.ClientSession(connector=connector, trace_configs=[trace]) as session,
        client_for(fake, rate=20.0, session=session) as client,
    ):
        job = await client.submit(prompt="x")
        await asyncio.gather(*(client.get(job.id) for _ in range(12)))
    assert fake.count("get") == 12
    assert queued == 0
