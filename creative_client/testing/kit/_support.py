"""What the kit's tests share: the key, quick retries, a client for a fake, the fixtures."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import pytest
import pytest_asyncio

from ... import CreativeClient, RetryPolicy
from ...providers import get_provider
from .. import fake_for, fake_names
from .._server import FakeServer

__all__ = [
    "API_KEY",
    "FAST_RETRY",
    "client_for",
    "client_tasks",
    "fake_for",
    "fake_names",
    "leak_check",
]

API_KEY = "sk-test-SECRET-4f9c2e7a1b"

#: Fast retries so failing paths finish quickly; the counts stay those of production.
FAST_RETRY = RetryPolicy(max_attempts=4, max_time=10.0, base_delay=0.01, max_delay=0.05)


_PACKAGE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_TESTING = os.path.join(_PACKAGE, "testing")


def client_tasks() -> set[asyncio.Task[Any]]:
    """Tasks still running that the client started (running code of ``creative_client``
    outside ``creative_client.testing``), found through asyncio alone: the kit checks
    what a user could, not a client's private state."""
    current = asyncio.current_task()
    found = set()
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        where = code.co_filename if code is not None else ""
        ours = where.startswith(_PACKAGE) and not where.startswith(_TESTING)
        if ours and task is not current and not task.done():
            found.add(task)
    return found


def client_for(fake: FakeServer, **options: Any) -> CreativeClient:
    """A client for ``fake``'s provider with quick polls and quick retries.

    A provider whose requests take a model gets the fake's ``sample_model``.
    """
    settings: dict[str, Any] = {
        "api_key": API_KEY,
        "base_url": fake.base_url,
        "poll_initial": 0.01,
        "poll_max": 0.05,
        "retry": FAST_RETRY,
        "request_timeout": 5.0,
    }
    if get_provider(fake.name).takes_model:
        settings["model"] = fake.sample_model
    settings.update(options)
    return CreativeClient(fake.name, **settings)


@pytest_asyncio.fixture(autouse=True)
async def leak_check() -> AsyncIterator[None]:
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


def fake_fixture(providers: Sequence[str]) -> Any:
    """A ``fake`` fixture: a started fake (key ``API_KEY``) for each of ``providers``."""

    @pytest_asyncio.fixture(params=list(providers))
    async def fake(request: pytest.FixtureRequest) -> AsyncIterator[FakeServer]:
        """Each test that takes ``fake`` runs once per provider."""
        async with fake_for(request.param, api_key=API_KEY) as server:
            yield server

    return fake


def module_fixture(providers: Sequence[str], name: str, make: Callable[[str], Any]) -> Any:
    """A module-scoped fixture ``name``: ``make(provider)`` for each provider, closed after."""

    @pytest.fixture(scope="module", params=list(providers), name=name)
    def fixture(request: pytest.FixtureRequest) -> Iterator[Any]:
        value = make(request.param)
        yield value
        value.close()

    return fixture


def provider_fixture(providers: Sequence[str]) -> Any:
    """A ``provider`` fixture: each of ``providers``' names, for tests that make their own fake."""

    @pytest.fixture(params=list(providers))
    def provider(request: pytest.FixtureRequest) -> str:
        name: str = request.param
        return name

    return provider
