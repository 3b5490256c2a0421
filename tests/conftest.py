from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable

import pytest
from _helpers import API_KEY

from creative_client.testing import FakeDeepixels, FakeNeocu, FakeServer


@pytest.fixture(autouse=True)
async def _no_leaks() -> AsyncIterator[None]:
    """Fail a test that leaves a pending task, an unretrieved exception or an open session.

    aiohttp reports an unclosed session and asyncio a destroyed pending task through
    the loop's exception handler, not as warnings, so collect them here.
    """
    loop = asyncio.get_running_loop()
    problems: list[str] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: problems.append(str(ctx.get("message"))))
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)
    gc.collect()
    left = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()]
    loop.set_exception_handler(previous)
    assert not left, f"tasks still pending after the test: {left}"
    assert not problems, f"asyncio reported: {problems}"


@pytest.fixture
async def deepixels() -> AsyncIterator[FakeDeepixels]:
    async with FakeDeepixels(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
async def neocu() -> AsyncIterator[FakeNeocu]:
    async with FakeNeocu(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture(params=["deepixels", "neocu"])
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[FakeServer]:
    """Each test that takes ``fake`` runs once per provider."""
    cls: Callable[..., FakeServer] = FakeDeepixels if request.param == "deepixels" else FakeNeocu
    async with cls(api_key=API_KEY) as server:
        yield server
