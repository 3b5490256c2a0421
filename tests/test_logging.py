"""Logging through the standard module, logger ``creative_client``: quiet when all goes
well, one INFO line per retry (with its fields on the record) when it does not."""

from __future__ import annotations

import logging

import pytest
from _helpers import client_for

from creative_client import GenerationRequest, RetryPolicy
from creative_client.testing import FakeServer, Reply


async def test_nothing_at_info_or_above_on_the_happy_path(
    fake: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.job_duration = 0.05
    async with client_for(fake) as client:
        job = await client.generate(prompt="x")
        await client.wait(job.id)
        outcomes = await client.generate_many(
            [GenerationRequest(prompt=f"p{i}") for i in range(20)]
        )
    assert all(o.ok for o in outcomes)
    ours = [r for r in caplog.records if r.name.startswith("creative_client")]
    assert ours, "the client logged nothing at all, not even DEBUG"
    loud = [r.getMessage() for r in ours if r.levelno >= logging.INFO]
    assert not loud, loud


async def test_one_info_line_per_retry_with_its_fields(
    fake: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    retry = RetryPolicy(max_attempts=6, base_delay=0.001, max_delay=0.01)
    async with client_for(fake, retry=retry) as client:
        job = await client.submit(prompt="x")
        fake.inject(
            "get",
            Reply(status=503, json={"error": "busy"}),
            Reply.html(502),
            Reply(status=429, json={"error": "slow down"}, headers={"Retry-After": "0"}),
            Reply(kind="cut"),
        )
        await client.get(job.id)
        fake.inject(
            "submit", Reply(status=429, json={"error": "slow"}, headers={"Retry-After": "0"})
        )
        await client.submit(prompt="y")
    retries = [
        r for r in caplog.records if r.name == "creative_client" and r.levelno == logging.INFO
    ]
    assert len(retries) == 5  # four failed reads, one refused submit: one line each
    reads, submit = retries[:4], retries[4]
    assert [r.status for r in reads] == [503, 502, 429, None]  # type: ignore[attr-defined]
    assert [r.attempt for r in reads] == [1, 2, 3, 4]  # type: ignore[attr-defined]
    for record in retries:
        fields = vars(record)
        assert fields["provider"] == fake.name
        assert isinstance(fields["delay"], float) and fields["delay"] >= 0
        message = record.getMessage()
        for key in ("provider", "method", "path"):
            assert str(fields[key]) in message
        assert f"status={fields['status']}" in message
        assert f"in {fields['delay']:.2f}s" in message
    assert {vars(r)["method"] for r in reads} == {"GET"}
    sent = [r.path for r in fake.requests if r.endpoint == "submit"][-1]
    assert vars(submit)["method"] == "POST"
    assert vars(submit)["path"] == sent.removeprefix(fake.prefix)  # "/generate", ...
    assert vars(submit)["status"] == 429
    assert not [
        r for r in caplog.records if r.name == "creative_client" and r.levelno > logging.INFO
    ]
