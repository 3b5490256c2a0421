"""Retry policy and Retry-After parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from creative_client import RetryPolicy
from creative_client.errors import RateLimitError, ServerError

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        ("Thu, 01 Jan 2026 12:00:30 GMT", 30.0),
        ("Thu, 01 Jan 2026 11:00:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    from creative_client._retry import parse_retry_after

    assert parse_retry_after(header, now=NOW) == seconds


def test_wait_gen_grows_with_jitter_and_caps() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=4.0)
    gen = policy.wait_gen()
    next(gen)
    delays = [gen.send(ServerError("x")) for _ in range(6)]
    ceilings = [1, 2, 4, 4, 4, 4]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert delay is not None and ceiling / 2 <= delay <= ceiling


def test_wait_gen_honours_retry_after_capped() -> None:
    policy = RetryPolicy(max_retry_after=10.0)
    gen = policy.wait_gen()
    next(gen)
    assert gen.send(RateLimitError("x", retry_after=2.5)) == 2.5
    assert gen.send(RateLimitError("x", retry_after=3600)) == 10.0
    assert gen.send(RateLimitError("x", retry_after=None)) is not None


def test_policy_validates() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="max_time"):
        RetryPolicy(max_time=0)
