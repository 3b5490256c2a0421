"""Shared test helpers (the fixtures are in conftest.py)."""

from __future__ import annotations

from typing import Any

from creative_client import CreativeClient, RetryPolicy
from creative_client.testing import FakeServer

API_KEY = "sk-test-SECRET-4f9c2e7a1b"

#: Fast retries so failing paths finish quickly; the counts stay those of production.
FAST_RETRY = RetryPolicy(max_attempts=4, max_time=10.0, base_delay=0.01, max_delay=0.05)


def client_for(fake: FakeServer, **options: Any) -> CreativeClient:
    """A client for ``fake``'s provider with quick polls and quick retries."""
    settings: dict[str, Any] = {
        "api_key": API_KEY,
        "base_url": fake.base_url,
        "poll_initial": 0.01,
        "poll_max": 0.05,
        "retry": FAST_RETRY,
        "request_timeout": 5.0,
    }
    if fake.name == "deepixels":
        settings["model"] = "flux-schnell"
    settings.update(options)
    return CreativeClient(fake.name, **settings)
