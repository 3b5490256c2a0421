"""The facade end to end: validation, waiting, deadlines, fan-out, session ownership."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from _helpers import API_KEY, FAST_RETRY, client_for

from creative_client import (
    CreativeClient,
    GenerationRequest,
    InvalidRequestError,
    JobFailedError,
    JobStatus,
    JobTimeoutError,
    NotFoundError,
    Outcome,
    RetryPolicy,
    SubmissionUncertainError,
    TransportError,
)
from creative_client.testing import FakeDeepixels, FakeNeocu, FakeServer, Reply

# -- validation: refused before any request ---------------------------------------------

INVALID = [
    ("deepixels", {"prompt": ""}, "prompt"),
    ("deepixels", {"prompt": "   "}, "prompt"),
    ("deepixels", {"prompt": "x", "webhook": "ftp://example.com/hook"}, "webhook"),
    ("deepixels", {"prompt": "x", "webhook": "not a url"}, "webhook"),
    ("deepixels", {"prompt": "x", "files": ["f1"]}, "files"),
    ("deepixels", {"prompt": "x", "input": {"prompt": "other"}}, "input"),
    ("neocu", {"prompt": ""}, "prompt"),
    ("neocu", {"prompt": "x", "model": "flux"}, "model"),
    ("neocu", {"prompt": "x", "webhook": "https://example.com/hook"}, "webhook"),
    ("neocu", {"prompt": "x", "input": {"steps": 4}}, "input"),
    ("neocu", {"prompt": "x", "files": [""]}, "files"),
]


@pytest.mark.parametrize(("provider", "fields", "field"), INVALID)
async def test_invalid_requests_are_refused_before_sending(
    provider: str, fields: dict[str, object], field: str
) -> None:
    cls = FakeDeepixels if provider == "deepixels" else FakeNeocu
    async with cls(api_key=API_KEY) as fake:
        async with client_for(fake) as client:
            with pytest.raises(InvalidRequestError) as info:
                await client.submit(GenerationRequest(**fields))  # type: ignore[arg-type]
            with pytest.raises(InvalidRequestError):
                await client.generate(**fields)  # type: ignore[arg-type]
        assert fake.count("submit") == 0
    assert f"'{field}'" in str(info.value)
    assert provider in str(info.value)


async def test_deepixels_needs_a_model_from_somewhere(deepixels: FakeDeepixels) -> None:
    async with client_for(deepixels, model=None) as client:
        with pytest.raises(InvalidRequestError, match="'model' is required"):
            await client.submit(prompt="x")
        job = await client.submit(prompt="x", model="sdxl")
    assert deepixels.count("submit") == 1
    assert deepixels.requests[0].json()["model"] == "sdxl"
    assert job.id in deepixels.jobs


async def test_default_model_is_ignored_by_neocu(neocu: FakeNeocu) -> None:
    async with client_for(neocu, model="flux-schnell") as client:
        assert client.model is None
        job = await client.generate(prompt="a red fox")
    assert job.status is JobStatus.SUCCEEDED
    assert neocu.requests[0].json() == {"query": "a red fox"}


async def test_wire_bodies(deepixels: FakeDeepixels, neocu: FakeNeocu) -> None:
    async with client_for(deepixels) as client:
        await client.submit(
            prompt="a fox", input={"width": 512}, webhook="https://example.com/hook"
        )
    assert deepixels.requests[0].json() == {
        "model": "flux-schnell",
        "input": {"width": 512, "prompt": "a fox"},
        "webhook": "https://example.com/hook",
    }
    assert deepixels.requests[0].headers["x-api-key"] == API_KEY
    async with client_for(neocu) as client:
        await client.submit(prompt="a fox", files=["file-1", "file-2"])
    assert neocu.requests[0].json() == {"query": "a fox", "files": ["file-1", "file-2"]}
    assert neocu.requests[0].headers["api-key"] == API_KEY


@pytest.mark.parametrize("prefix", ["", "/v1", "/proxy/some/deep/path/v2"])
async def test_any_base_url_with_or_without_prefix(prefix: str) -> None:
    for cls in (FakeDeepixels, FakeNeocu):
        async with cls(api_key=API_KEY, prefix=prefix) as fake:
            for base in (fake.base_url, fake.base_url + "/"):
                async with client_for(fake, base_url=base) as client:
                    job = await client.generate(prompt="x")
                assert job.status is JobStatus.SUCCEEDED


async def test_job_ids_are_escaped_in_paths(neocu: FakeNeocu) -> None:
    async with client_for(neocu) as client:
        with pytest.raises(NotFoundError):
            await client.get("../../etc/passwd?x=1")
    assert neocu.requests[-1].path.startswith(neocu.prefix + "/task/")


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


async def test_submit_to_a_closed_port_is_retried_then_transport_error() -> None:
    fake = FakeDeepixels()
    await fake.start()
    base = fake.base_url
    await fake.close()  # nothing listens there now: the connection is never made
    client = CreativeClient("deepixels", API_KEY, base_url=base, model="m", retry=FAST_RETRY)
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
        assert not client._live
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
        assert not client._live
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
    assert not client._live


# -- lifecycle --------------------------------------------------------------------------


async def test_closed_client_refuses_calls(fake: FakeServer) -> None:
    client = client_for(fake)
    async with client:
        await client.submit(prompt="x")
    with pytest.raises(RuntimeError, match="closed"):
        await client.submit(prompt="x")
    with pytest.raises(RuntimeError, match="closed"):
        await client.get("x")
    with pytest.raises(RuntimeError, match="closed"):
        async with client:
            pass
    await client.aclose()  # idempotent


async def test_a_callers_session_is_used_and_left_open(fake: FakeServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with client_for(fake, session=session) as client:
            job = await client.generate(prompt="x")
        assert not session.closed
        async with session.get(fake.root_url + "/files/x.png") as resp:
            assert resp.status == 200
    assert job.status is JobStatus.SUCCEEDED


async def test_works_without_async_with_when_closed_explicitly(fake: FakeServer) -> None:
    client = client_for(fake)
    try:
        job = await client.generate(prompt="x")
    finally:
        await client.aclose()
    assert job.status is JobStatus.SUCCEEDED


@pytest.mark.parametrize(
    "options",
    [{"concurrency": 0}, {"timeout": -1}, {"poll_initial": -0.1}, {"concurrency": 2.5}],
)
def test_bad_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must be a"):  # ConfigurationError is a ValueError
        CreativeClient("neocu", API_KEY, **options)  # type: ignore[arg-type]


async def test_empty_job_ids_are_refused_before_sending(fake: FakeServer) -> None:
    async with client_for(fake) as client:
        for call in (client.get(""), client.wait("")):
            with pytest.raises(InvalidRequestError, match="job_id"):
                await call
    assert fake.count("get") == 0
