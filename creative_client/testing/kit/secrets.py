"""The API key never shows: not in logs at DEBUG, reprs, exception messages or tracebacks."""

from __future__ import annotations

import logging
import traceback

import pytest

from ... import CreativeClient, CreativeError, GenerationRequest, RetryPolicy
from .._replies import Reply
from .._server import FakeServer
from ._support import API_KEY, FAST_RETRY, client_for


def _echoing_error(fake: FakeServer, status: int) -> Reply:
    """A provider that echoes the key back in its error body (some do, in 401s)."""
    return fake.error_reply(status, f"invalid key {API_KEY}")


async def test_key_never_appears(fake: FakeServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, aiohttp's, asyncio's
    errors: list[BaseException] = []
    seen: list[str] = []
    client = client_for(fake)
    seen += [repr(client), str(client), repr(client._transport), repr(client._provider)]
    async with client:
        job = await client.generate(prompt="a red fox")
        seen += [repr(job), str(job)]
        fake.inject("submit", _echoing_error(fake, 401))
        fake.inject("get", *[_echoing_error(fake, 500)] * 4)
        for attempt in (
            client.submit(prompt="x"),
            client.get(job.id),
            client.get("missing"),
        ):
            try:
                await attempt
            except CreativeError as exc:
                errors.append(exc)
        fake.inject("submit", Reply(kind="drop"), Reply(status=500, body=f"key={API_KEY}"))
        for _ in range(2):
            try:
                await client.submit(prompt="x")
            except CreativeError as exc:
                errors.append(exc)
        outcomes = await client.generate_many([GenerationRequest(prompt="y [fail]")])
        errors += [o.error for o in outcomes if o.error is not None]
        seen += [repr(o) for o in outcomes]
    # A connection that is never made, too.
    async with CreativeClient(
        fake.name, API_KEY, base_url="http://127.0.0.1:9", model=fake.sample_model, retry=FAST_RETRY
    ) as down:
        try:
            await down.submit(prompt="x")
        except CreativeError as exc:
            errors.append(exc)
    assert len(errors) == 7
    for error in errors:
        seen += [str(error), repr(error), "".join(traceback.format_exception(error))]
        seen += [str(v) for v in vars(error).values()]
    seen += [r.getMessage() for r in caplog.records]
    seen.append(caplog.text)
    assert any("[redacted]" in s for s in seen), "the echoed key was not exercised"
    leaks = [s for s in seen if API_KEY in s]
    assert not leaks, leaks[0][:300]
    assert any(r.levelno == logging.DEBUG and r.name == "creative_client" for r in caplog.records)


def _chain(error: BaseException) -> list[BaseException]:
    """The error and every exception behind it, suppressed context included."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo:
        exc = todo.pop()
        if exc is None or any(exc is s for s in seen):
            continue
        seen.append(exc)
        todo += [exc.__cause__, exc.__context__]
        if isinstance(exc, BaseExceptionGroup):
            todo += list(exc.exceptions)
    return seen


async def test_key_never_appears_in_errors_from_inside_aiohttp(
    fake: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Failures aiohttp raises (refused, reset, cut body, timeout) and what we make of them,
    down to the context we suppress, with every logger at DEBUG."""
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    fast = RetryPolicy(max_attempts=2, max_time=2.0, base_delay=0.001, max_delay=0.001)
    async with client_for(fake, request_timeout=0.3, retry=fast) as client:
        job = await client.submit(prompt="x")
        fake.inject("submit", Reply(kind="drop"), Reply(kind="cut"), Reply(kind="hang", delay=5))
        fake.inject("get", *[Reply(kind="cut")] * 2, *[Reply(kind="trickle", delay=0.5)] * 2)
        fake.inject("get", *[Reply(kind="drop")] * 2, Reply(kind="endless"))
        # An answer that is not HTTP: aiohttp's error for it carries the request's headers.
        fake.inject("get", *[Reply(kind="garbage")] * 2)
        calls = [client.submit(prompt="x") for _ in range(3)] + [
            client.get(job.id) for _ in range(5)
        ]
        for call in calls:
            try:
                await call
            except CreativeError as exc:
                errors.append(exc)
    async with CreativeClient(
        fake.name, API_KEY, base_url="http://127.0.0.1:9", model=fake.sample_model, retry=fast
    ) as down:
        for down_call in (down.submit(prompt="x"), down.get("j")):
            try:
                await down_call
            except CreativeError as exc:
                errors.append(exc)
    try:
        CreativeClient(fake.name, API_KEY + "\n", base_url=fake.base_url)
    except CreativeError as exc:
        errors.append(exc)
    # aiohttp retries a GET itself when a pooled connection drops, so not every read
    # above fails; every kind of failure still did, at least once.
    said = "\n".join(str(e) for e in errors)
    for kind in ("Server disconnected", "payload", "timed out", "over 8388608 bytes", "abc"):
        assert kind in said, (kind, said)
    for kind in ("could not connect", "control character"):
        assert kind in said, (kind, said)
    seen = [caplog.text, *(r.getMessage() for r in caplog.records)]
    for error in errors:
        seen.append("".join(traceback.format_exception(error)))
        for inner in _chain(error):
            seen += [str(inner), repr(inner), *(repr(a) for a in inner.args)]
            seen += [repr(v) for v in getattr(inner, "__dict__", {}).values()]
    assert len(_chain(errors[0])) > 1, "aiohttp's own error was not exercised"
    leaks = [s for s in seen if API_KEY in s]
    assert not leaks, leaks[0][:300]
