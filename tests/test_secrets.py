"""The API key never shows: not in logs at DEBUG, reprs, exception messages or tracebacks."""

from __future__ import annotations

import logging
import traceback

import pytest
from _helpers import API_KEY, FAST_RETRY, client_for

from creative_client import CreativeClient, CreativeError, GenerationRequest
from creative_client.testing import FakeServer, Reply


def _echoing_error(fake: FakeServer, status: int) -> Reply:
    """A provider that echoes the key back in its error body (some do, in 401s)."""
    text = f"invalid key {API_KEY}"
    doc = (
        {"status": "error", "message": text}
        if fake.name == "deepixels"
        else {"error": text, "message": text}
    )
    return Reply(status=status, json=doc)


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
        fake.name, API_KEY, base_url="http://127.0.0.1:9", model="m", retry=FAST_RETRY
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
