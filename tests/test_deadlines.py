"""Deadlines everywhere: a server that never answers, or answers a byte a second,
ends in ``TransportError``, ``SubmissionUncertainError`` or ``JobTimeoutError``
within the configured time, on submit, read and wait."""

from __future__ import annotations

import asyncio

import pytest
from _helpers import client_for

from creative_client import (
    JobTimeoutError,
    RetryPolicy,
    SubmissionUncertainError,
    TransportError,
)
from creative_client.testing import FakeServer, Reply

#: Two tries, no pause to speak of: a read may take 2 x request_timeout in all.
TWO_TRIES = RetryPolicy(max_attempts=2, max_time=5.0, base_delay=0.01, max_delay=0.01)

SLOW = {
    "hang": Reply(kind="hang", delay=30),
    "trickle": Reply(kind="trickle", delay=1.0),  # one byte a second
}


def _elapsed_since(started: float) -> float:
    return asyncio.get_running_loop().time() - started


@pytest.mark.parametrize("how", sorted(SLOW))
async def test_a_slow_submit_ends_uncertain_within_the_request_timeout(
    fake: FakeServer, how: str
) -> None:
    fake.inject("submit", SLOW[how])
    async with client_for(fake, request_timeout=0.3, retry=TWO_TRIES) as client:
        started = asyncio.get_running_loop().time()
        with pytest.raises(SubmissionUncertainError, match="timed out") as info:
            await client.submit(prompt="x")
        elapsed = _elapsed_since(started)
    assert 0.25 <= elapsed < 1.5
    assert info.value.request is not None
    assert fake.count("submit") == 1  # sent once, never again


@pytest.mark.parametrize("how", sorted(SLOW))
async def test_a_slow_read_ends_in_transport_error_after_its_tries(
    fake: FakeServer, how: str
) -> None:
    async with client_for(fake, request_timeout=0.3, retry=TWO_TRIES) as client:
        job = await client.submit(prompt="x")
        fake.inject("get", SLOW[how], SLOW[how])
        started = asyncio.get_running_loop().time()
        with pytest.raises(TransportError, match="timed out"):
            await client.get(job.id)
        elapsed = _elapsed_since(started)
    assert 0.55 <= elapsed < 2.0  # two tries of 0.3 s
    assert fake.count("get") == 2


@pytest.mark.parametrize("how", sorted(SLOW))
async def test_a_wait_ends_at_its_deadline_whatever_the_reads_do(
    fake: FakeServer, how: str
) -> None:
    fake.job_duration = 60.0
    async with client_for(fake, request_timeout=30.0) as client:
        job = await client.submit(prompt="x")
        fake.inject("get", *[SLOW[how]] * 3)
        started = asyncio.get_running_loop().time()
        with pytest.raises(JobTimeoutError) as info:
            await client.wait(job.id, timeout=0.5)
        elapsed = _elapsed_since(started)
    assert 0.45 <= elapsed < 1.5
    assert info.value.job_id == job.id


async def test_a_generate_timeout_covers_the_wait(fake: FakeServer) -> None:
    fake.job_duration = 60.0
    async with client_for(fake) as client:
        started = asyncio.get_running_loop().time()
        with pytest.raises(JobTimeoutError):
            await client.generate(prompt="x", timeout=0.4)
        elapsed = _elapsed_since(started)
    assert 0.35 <= elapsed < 1.5
    assert fake.count("submit") == 1
