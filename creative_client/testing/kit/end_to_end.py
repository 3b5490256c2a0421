"""The facade end to end against a provider's fake: waiting, deadlines, fan-out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest

from ... import (
    GenerationRequest,
    InvalidRequestError,
    JobFailedError,
    JobStatus,
    JobTimeoutError,
    Outcome,
    RetryPolicy,
    SubmissionUncertainError,
    TransportError,
)
from .._replies import Reply
from .._server import FakeServer
from ._support import FAST_RETRY, client_for, client_tasks, fake_for

# -- waiting ----------------------------------------------------------------------------


async def test_generate_waits_for_the_job(fake: FakeServer) -> None:
    fake.job_duration = 0.2
    async with client_for(fake) as client:
        job = await client.generate(prompt="a red fox")
    assert job.status is JobStatus.SUCCEEDED
    assert job.outputs and job.outputs[0].url.startswith("http://127.0.0.1")
    assert job.created_at is not None and job.created_at.tzinfo is not None
    assert fake.count("submit") == 1
    assert fake.count("get") >= 2


async def test_failed_job_raises_with_the_job_attached(fake: FakeServer) -> None:
    async with client_for(fake) as client:
        with pytest.raises(JobFailedError) as info:
            await client.generate(prompt="this will [fail]")
    assert info.value.job.status is JobStatus.FAILED
    assert info.value.job.error
    async with client_for(fake) as client:
        job = await client.submit(prompt="again [fail]")
        waited = await client.wait(job.id)
    assert waited.status is JobStatus.FAILED  # wait returns a failed job, generate raises


async def test_wait_deadline(fake: FakeServer) -> None:
    fake.job_duration = 30.0
    async with client_for(fake, poll_initial=0.05, poll_max=0.1) as client:
        job = await client.submit(prompt="slow")
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(JobTimeoutError) as info:
            await client.wait(job, timeout=0.4)
        elapsed = loop.time() - started
    assert 0.35 <= elapsed < 2.0
    assert info.value.job is not None and not info.value.job.status.is_terminal
    assert info.value.job_id == job.id


async def test_wait_deadline_cuts_a_hanging_read(fake: FakeServer) -> None:
    async with client_for(fake, request_timeout=30.0) as client:
        job = await client.submit(prompt="x")
        fake.inject("get", Reply(kind="hang", delay=20))
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(JobTimeoutError):
            await client.wait(job.id, timeout=0.3)
        assert loop.time() - started < 2.0


async def test_a_read_far_from_the_deadline_is_bounded_by_the_transport(fake: FakeServer) -> None:
    # With a deadline further away than the longest a read can take, the wait arms no
    # timer of its own: the request timeout and the retry policy end the read, and the
    # wait (whose job exists) reads again after a pause.
    retry = RetryPolicy(
        max_attempts=2, max_time=5, base_delay=0.01, max_delay=0.01, max_retry_after=0.01
    )
    async with client_for(fake, request_timeout=0.2, retry=retry) as client:
        job = await client.submit(prompt="x")
        fake.inject("get", Reply(kind="hang", delay=20), Reply(kind="hang", delay=20))
        loop = asyncio.get_running_loop()
        started = loop.time()
        done = await client.wait(job.id, timeout=30.0)
        assert loop.time() - started < 2.0
    assert done.status is JobStatus.SUCCEEDED
    assert fake.count("get") == 3


async def test_a_hanging_read_times_out_as_transport_error(fake: FakeServer) -> None:
    retry = FAST_RETRY.__class__(max_attempts=2, max_time=5, base_delay=0.01, max_delay=0.01)
    async with client_for(fake, request_timeout=0.2, retry=retry) as client:
        job = await client.submit(prompt="x")
        fake.inject("get", Reply(kind="hang", delay=20), Reply(kind="hang", delay=20))
        with pytest.raises(TransportError, match="timed out"):
            await client.get(job.id)
    assert fake.count("get") == 2


async def test_a_hanging_submit_is_uncertain_and_not_resent(fake: FakeServer) -> None:
    fake.inject("submit", Reply(kind="hang", delay=20))
    async with client_for(fake, request_timeout=0.2) as client:
        with pytest.raises(SubmissionUncertainError):
            await client.submit(prompt="x")
    assert fake.count("submit") == 1


async def test_submit_to_a_closed_port_is_retried_then_transport_error(provider: str) -> None:
    fake = fake_for(provider)
    await fake.start()
    await fake.close()  # nothing listens there now: the connection is never made
    client = client_for(fake, retry=FAST_RETRY)
    async with client:
        with pytest.raises(TransportError, match="could not connect"):
            await client.submit(prompt="x")


async def test_poll_initial_zero_polls_at_once(fake: FakeServer) -> None:
    async with client_for(fake, poll_initial=0, poll_max=0.05) as client:
        job = await client.generate(prompt="x")
    assert job.status is JobStatus.SUCCEEDED
    assert fake.count("get") == 1


async def test_poll_intervals_grow_to_poll_max(fake: FakeServer) -> None:
    fake.job_duration = 1.0
    async with client_for(fake, poll_initial=0.05, poll_max=0.2) as client:
        await client.generate(prompt="x")
    # 0.05, 0.1, 0.2, 0.2, ... (±10%): about 6-7 reads in one second, not 20.
    assert 4 <= fake.count("get") <= 9


# -- fan-out ----------------------------------------------------------------------------


async def test_as_completed_bounds_jobs_in_flight(fake: FakeServer) -> None:
    fake.job_duration = 0.1
    requests = [GenerationRequest(prompt=f"p{i}") for i in range(40)]
    async with client_for(fake) as client:
        outcomes = [o async for o in client.as_completed(requests, concurrency=5)]
    assert len(outcomes) == 40 and all(o.ok for o in outcomes)
    assert fake.peak_active <= 5
    assert fake.count("submit") == 40


async def test_as_completed_pulls_lazily(fake: FakeServer) -> None:
    pulled = 0

    def source() -> Iterator[GenerationRequest]:
        nonlocal pulled
        for i in range(1000):
            pulled += 1
            yield GenerationRequest(prompt=f"p{i}")

    fake.job_duration = 0.05
    async with client_for(fake) as client:
        seen = 0
        async for _ in client.as_completed(source(), concurrency=4):
            seen += 1
            assert pulled <= seen + 4
            if seen == 10:
                break
    assert pulled <= 14
    assert fake.count("submit") <= 14


async def test_as_completed_takes_async_iterables_and_reports_failures(fake: FakeServer) -> None:
    async def source() -> AsyncIterator[GenerationRequest]:
        for prompt in ["ok 1", "bad [fail]", "", "ok 2"]:
            yield GenerationRequest(prompt=prompt)

    async with client_for(fake) as client:
        outcomes = [o async for o in client.as_completed(source(), concurrency=2)]
    by_prompt = {o.request.prompt: o for o in outcomes}
    assert by_prompt["ok 1"].ok and by_prompt["ok 2"].ok
    failed = by_prompt["bad [fail]"]
    assert isinstance(failed.error, JobFailedError) and failed.job is not None
    assert isinstance(by_prompt[""].error, InvalidRequestError) and by_prompt[""].job is None
    assert fake.count("submit") <= 3


async def test_generate_many_keeps_input_order(fake: FakeServer) -> None:
    requests = [GenerationRequest(prompt=f"p{i}") for i in range(12)]
    async with client_for(fake) as client:
        outcomes = await client.generate_many(requests, concurrency=4)
    assert [o.request.prompt for o in outcomes] == [r.prompt for r in requests]
    assert all(isinstance(o, Outcome) and o.ok for o in outcomes)


async def test_uncertain_submits_are_outcomes_in_a_batch(fake: FakeServer) -> None:
    fake.inject("submit", Reply(status=500), Reply(kind="drop"))
    requests = [GenerationRequest(prompt=f"p{i}") for i in range(6)]
    async with client_for(fake) as client:
        outcomes = await client.generate_many(requests, concurrency=1)
    uncertain = [o for o in outcomes if isinstance(o.error, SubmissionUncertainError)]
    assert len(uncertain) == 2
    for o in uncertain:  # the error carries the request as it was sent
        assert isinstance(o.error, SubmissionUncertainError) and o.error.request is not None
        assert o.error.request.prompt == o.request.prompt
    assert sum(o.ok for o in outcomes) == 4
    assert fake.count("submit") == 6


async def test_breaking_out_cancels_work_in_flight(fake: FakeServer) -> None:
    fake.job_duration = 5.0
    # Three slow jobs and one refused at once: the first outcome comes while three run.
    requests = [GenerationRequest(prompt=f"p{i}") for i in range(3)] + [
        GenerationRequest(prompt="")
    ]
    async with client_for(fake) as client:
        batch = client.as_completed(requests, concurrency=4)
        async with contextlib.aclosing(batch):
            async for outcome in batch:
                assert isinstance(outcome.error, InvalidRequestError)
                break
        assert not client_tasks()
    assert fake.count("submit") <= 3


async def test_cancelling_the_consumer_leaves_nothing_running(fake: FakeServer) -> None:
    fake.job_duration = 5.0
    async with client_for(fake) as client:

        async def consume() -> None:
            async for _ in client.as_completed(
                (GenerationRequest(prompt=f"p{i}") for i in range(100)), concurrency=8
            ):
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not client_tasks()
    assert fake.count("submit") == 8


async def test_leaving_the_block_with_jobs_in_flight(fake: FakeServer) -> None:
    fake.job_duration = 5.0
    client = client_for(fake)
    async with client:
        batch = client.as_completed([GenerationRequest(prompt=f"p{i}") for i in range(4)])
        consumer = asyncio.ensure_future(anext(batch))
        await asyncio.sleep(0.1)
    assert client.closed
    with pytest.raises(RuntimeError, match="cancelled from outside"):
        await consumer
    await batch.aclose()
    assert not client_tasks()
