"""Fan-out at scale against a provider's fake: bounded jobs in flight, cancellation,
progress, and what polling costs."""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest

from ... import CreativeClient, GenerationRequest, Progress, SubmissionUncertainError
from ...providers import get_provider
from .._replies import Reply
from .._server import FakeServer
from ._support import API_KEY, client_for, client_tasks


async def test_a_batch_may_hold_more_jobs_than_the_pool_has_connections(
    fake: FakeServer,
) -> None:
    fake.job_duration = 0.3
    requests = [GenerationRequest(prompt=f"p{i}") for i in range(40)]
    async with client_for(fake, concurrency=4) as client:
        outcomes = await client.generate_many(requests, concurrency=16)
    assert all(o.ok for o in outcomes)
    assert 4 < fake.peak_active <= 16


async def test_generate_calls_share_the_clients_bound(fake: FakeServer) -> None:
    fake.job_duration = 0.1
    async with client_for(fake, concurrency=3) as client:
        jobs = await asyncio.gather(*(client.generate(prompt=f"p{i}") for i in range(12)))
    assert len(jobs) == 12
    assert fake.peak_active <= 3


async def _wait_for_no_connections(fake: FakeServer) -> int:
    for _ in range(100):  # bounded: at most one second
        if fake.open_connections == 0:
            break
        await asyncio.sleep(0.01)
    return fake.open_connections


@pytest.mark.parametrize("seed", range(6))
async def test_cancelling_at_random_points_leaves_nothing_behind(
    fake: FakeServer, seed: int
) -> None:
    fake.job_duration = 0.2
    async with client_for(fake, concurrency=8) as client:
        done = 0

        async def consume() -> None:
            nonlocal done
            requests = (GenerationRequest(prompt=f"p{i}") for i in range(200))
            async for _ in client.as_completed(requests):
                done += 1

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.02 + 0.05 * seed)  # before, during and after first outcomes
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not client_tasks()
        assert fake.count("submit") <= done + 8  # never more than 8 in flight
    assert await _wait_for_no_connections(fake) == 0


async def test_breaking_out_then_closing_leaves_no_connection(fake: FakeServer) -> None:
    fake.job_duration = 0.5
    async with client_for(fake, concurrency=8) as client:
        batch = client.as_completed(
            [GenerationRequest(prompt="")] + [GenerationRequest(prompt=f"p{i}") for i in range(8)]
        )
        async with contextlib.aclosing(batch):
            async for _ in batch:
                break
        assert not client_tasks()
    assert await _wait_for_no_connections(fake) == 0


@pytest.mark.parametrize("as_object", [True, False])
async def test_progress_counts_add_up(fake: FakeServer, as_object: bool) -> None:
    fake.inject("submit", Reply(status=500))  # one uncertain submit
    prompts = [f"p{i}" for i in range(10)] + ["bad [fail]", ""]
    seen: list[tuple[int, int, int, int, int]] = []
    tracked = Progress()

    def hook(p: Progress) -> None:
        assert p.running >= 0 and p.running <= p.submitted
        seen.append((p.submitted, p.running, p.succeeded, p.failed, p.uncertain))

    async with client_for(fake, concurrency=4) as client:
        await client.generate_many(
            [GenerationRequest(prompt=p) for p in prompts],
            progress=tracked if as_object else hook,
        )
    final = tracked if as_object else Progress(
        submitted=seen[-1][0], running=seen[-1][1], succeeded=seen[-1][2],
        failed=seen[-1][3], uncertain=seen[-1][4],
    )  # fmt: skip
    assert final.done == len(prompts)
    assert final.running == 0
    assert final.uncertain == 1
    assert final.failed == 2  # the failed job and the refused empty prompt
    assert final.succeeded == 9
    assert final.submitted == fake.count("submit") - 1 == 10
    if not as_object:
        assert len(seen) == final.submitted + final.done


async def test_an_uncertain_outcome_in_progress_is_not_resubmitted(fake: FakeServer) -> None:
    fake.inject("submit", Reply(kind="drop"))
    async with client_for(fake) as client:
        outcomes = await client.generate_many([GenerationRequest(prompt="x")])
    assert isinstance(outcomes[0].error, SubmissionUncertainError)
    assert fake.count("submit") == 1


async def test_an_instant_job_costs_two_requests(fake: FakeServer) -> None:
    model = fake.sample_model if get_provider(fake.name).takes_model else None
    async with CreativeClient(
        fake.name, API_KEY, base_url=fake.base_url, poll_initial=0.01, model=model
    ) as client:
        await client.generate(prompt="x")
    assert fake.count("submit") + fake.count("get") == 2


@pytest.mark.parametrize("seed", range(3))
async def test_a_long_job_costs_at_most_twelve_requests(fake: FakeServer, seed: int) -> None:
    """A 30-second job with the default poll_initial=0.5 and poll_max=5.0, run 10x faster:
    every delay scales the same way, so so does the count."""
    random.seed(seed)
    fake.job_duration = 3.0
    async with client_for(fake, poll_initial=0.05, poll_max=0.5) as client:
        await client.generate(prompt="x")
    assert fake.count("submit") + fake.count("get") <= 12
