"""Tolerant parsing end to end: odd-case and unknown statuses, extra and missing fields."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from _helpers import API_KEY, client_for

from creative_client import CreativeClient, GenerationRequest, JobStatus, SubmissionUncertainError
from creative_client.testing import FakeDeepixels, FakeNeocu, FakeServer, Reply


async def test_odd_case_statuses_from_the_server() -> None:
    for cls in (FakeDeepixels, FakeNeocu):
        async with cls(api_key=API_KEY, odd_case=True, job_duration=0.05) as fake:
            async with client_for(fake) as client:
                outcomes = await client.generate_many(
                    [GenerationRequest(prompt=f"p{i}") for i in range(10)]
                )
            assert all(o.ok for o in outcomes)
            raw = {o.job.raw_status for o in outcomes if o.job is not None}
            assert raw <= {"COMPLETED", "Completed"}, raw


def _documents(fake: FakeServer, job_id: str) -> list[tuple[dict[str, Any], JobStatus, int]]:
    """(document, expected status, expected number of outputs)."""
    if fake.name == "deepixels":
        return [
            ({"status": "upscaling", "newField": [1, 2]}, JobStatus.RUNNING, 0),
            ({"status": "Pending", "output": None, "webhook": None}, JobStatus.QUEUED, 0),
            (
                {
                    "jobId": job_id,
                    "status": "COMPLETED",
                    "output": {"imageUrl": ["https://c/x.png"]},
                    "extra": {"deep": {"er": None}},
                },
                JobStatus.SUCCEEDED,
                1,
            ),
            ({"status": "completed", "output": {}}, JobStatus.SUCCEEDED, 0),
        ]
    return [
        ({"task": {"status": "uploading"}, "future": True}, JobStatus.RUNNING, 0),
        (
            {"isSuccess": True, "task": {"status": "GENERATING", "message": []}},
            JobStatus.RUNNING,
            0,
        ),
        (
            {
                "isSuccess": True,
                "task": {"status": "completed", "extra": 1},
                "asset": [{"url": "https://n/a.png", "type": "image", "new": "x"}],
            },
            JobStatus.SUCCEEDED,
            1,
        ),
        ({"isSuccess": True, "task": {"status": "Failed", "message": None}}, JobStatus.FAILED, 0),
    ]


async def test_extra_and_missing_optional_fields_over_http(fake: FakeServer) -> None:
    async with client_for(fake) as client:
        job = await client.submit(prompt="x")
        for doc, status, outputs in _documents(fake, job.id):
            fake.inject("get", Reply(json=doc))
            read = await client.get(job.id)
            assert read.status is status, doc
            assert len(read.outputs) == outputs
            assert read.id == job.id


async def test_unknown_status_then_done_is_waited_through(fake: FakeServer) -> None:
    async with client_for(fake) as client:
        job = await client.submit(prompt="x")
        odd = {"status": "warming_up"} if fake.name == "deepixels" else {"task": {"status": "x"}}
        fake.inject("get", Reply(json=odd), Reply(json=odd))
        done = await client.wait(job.id, timeout=5)
    assert done.status is JobStatus.SUCCEEDED
    assert fake.count("get") == 3


def test_client_built_outside_a_running_loop() -> None:
    """Built in plain sync code; the session is made later, inside the loop that uses it."""
    with socket.socket() as probe:  # a free loopback port, chosen now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = CreativeClient(
        "neocu", API_KEY, base_url=f"http://127.0.0.1:{port}/v1", poll_initial=0.01
    )

    async def use() -> JobStatus:
        async with FakeNeocu(api_key=API_KEY, port=port), client:
            return (await client.generate(prompt="x")).status

    assert asyncio.run(use()) is JobStatus.SUCCEEDED
    assert client.closed


async def test_a_submit_answered_with_an_empty_job_id_is_uncertain(fake: FakeServer) -> None:
    # Found by tests/test_hostile.py: an empty id made a Job nobody could wait for.
    key = "jobId" if fake.name == "deepixels" else "task_id"
    fake.inject("submit", Reply(json={key: ""}), Reply(json={key: "  "}))
    async with client_for(fake) as client:
        for _ in range(2):
            with pytest.raises(SubmissionUncertainError, match="job id is empty") as info:
                await client.submit(prompt="x")
            assert info.value.request is not None
    assert fake.count("submit") == 2
