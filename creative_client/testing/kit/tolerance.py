"""Tolerant parsing end to end: odd-case and unknown statuses, extra and missing fields.

The documents come from the fake (``read_answer``, ``status_for``); the kit makes
them odd: other letter case, unknown statuses, fields nobody documented, at every
level.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from ... import CreativeClient, GenerationRequest, JobStatus, SubmissionUncertainError
from ...providers import get_provider
from .._replies import Reply
from .._server import FakeServer
from ._support import API_KEY, client_for, fake_for


def sprinkle(document: Any) -> Any:
    """``document`` with a field nobody documented added to every object in it."""
    if isinstance(document, dict):
        extra = {"x-future": {"deep": [None, 1]}}
        return {**{k: sprinkle(v) for k, v in document.items()}, **extra}
    if isinstance(document, list):
        return [sprinkle(v) for v in document]
    return document


async def test_odd_case_statuses_from_the_server(provider: str) -> None:
    fake = fake_for(provider, api_key=API_KEY, odd_case=True, job_duration=0.05)
    async with fake, client_for(fake) as client:
        outcomes = await client.generate_many(
            [GenerationRequest(prompt=f"p{i}") for i in range(10)]
        )
    assert all(o.ok for o in outcomes)
    raw = {o.job.raw_status for o in outcomes if o.job is not None}
    done = fake.status_for("completed")
    assert raw <= {done.upper(), done.capitalize()}, raw


async def test_extra_and_missing_optional_fields_over_http(fake: FakeServer) -> None:
    answer = fake.read_answer
    async with client_for(fake) as client:
        job = await client.submit(prompt="x")
        rows: list[tuple[dict[str, Any], JobStatus, int]] = [
            ({**sprinkle(answer(job.id, "upscaling")), "newField": [1, 2]}, JobStatus.RUNNING, 0),
            (sprinkle(answer(job.id, fake.status_for("completed").upper(), outputs=1)),
             JobStatus.SUCCEEDED, 1),
            (answer(job.id, fake.status_for("completed"), minimal=True), JobStatus.SUCCEEDED, 0),
            (answer(job.id, fake.status_for("completed"), outputs=2, minimal=True),
             JobStatus.SUCCEEDED, 2),
            (answer(job.id, f" {fake.status_for('failed').capitalize()} ", minimal=True),
             JobStatus.FAILED, 0),
        ]  # fmt: skip
        for doc, status, outputs in rows:
            fake.inject("get", Reply(json=doc))
            read = await client.get(job.id)
            assert read.status is status, doc
            assert len(read.outputs) == outputs, doc
            assert read.id == job.id
        for phase in ("queued", "running"):
            plain = fake.status_for(phase)
            fake.inject("get", Reply(json=answer(job.id, plain)))
            fake.inject("get", Reply(json=answer(job.id, plain.capitalize(), minimal=True)))
            expected = (await client.get(job.id)).status
            assert expected in (JobStatus.QUEUED, JobStatus.RUNNING), plain
            assert (await client.get(job.id)).status is expected, plain


async def test_unknown_status_then_done_is_waited_through(fake: FakeServer) -> None:
    async with client_for(fake) as client:
        job = await client.submit(prompt="x")
        odd = fake.read_answer(job.id, "warming_up", minimal=True)
        fake.inject("get", Reply(json=odd), Reply(json=odd))
        done = await client.wait(job.id, timeout=5)
    assert done.status is JobStatus.SUCCEEDED
    assert fake.count("get") == 3


def test_client_built_outside_a_running_loop(provider: str) -> None:
    """Built in plain sync code; the session is made later, inside the loop that uses it."""
    with socket.socket() as probe:  # a free loopback port, chosen now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fake = fake_for(provider, api_key=API_KEY, port=port)
    model = fake.sample_model if get_provider(provider).takes_model else None
    client = CreativeClient(
        provider,
        API_KEY,
        base_url=f"http://127.0.0.1:{port}{fake.prefix}",
        poll_initial=0.01,
        model=model,
    )

    async def use() -> JobStatus:
        async with fake, client:
            return (await client.generate(prompt="x")).status

    assert asyncio.run(use()) is JobStatus.SUCCEEDED
    assert client.closed


async def test_a_submit_answered_with_an_empty_job_id_is_uncertain(fake: FakeServer) -> None:
    # Found by the hostile tests: an empty id made a Job nobody could wait for.
    fake.inject("submit", Reply(json=fake.submit_answer("")), Reply(json=fake.submit_answer("  ")))
    async with client_for(fake) as client:
        for _ in range(2):
            with pytest.raises(SubmissionUncertainError, match="job id is empty") as info:
                await client.submit(prompt="x")
            assert info.value.request is not None
    assert fake.count("submit") == 2
