"""Polling that learns how long jobs take (issue 16), end to end: the real client over
HTTP against a fake whose jobs run for random, known durations.

Time-scaled: jobs of a median 0.3 s with poll bounds of 0.025 s and 0.25 s are the
benchmark's jobs of 6 s with the default bounds (0.5 s, 5 s), twenty times faster (the
plan scales with the jobs). Requests per job are counted by the fake, not timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sqlite3
import statistics
from pathlib import Path
from typing import Any

import pytest
from _helpers import API_KEY, client_for

from creative_client import CreativeClient, GenerationRequest, SyncCreativeClient
from creative_client._budget import Turns
from creative_client.errors import ConfigurationError
from creative_client.testing import FakeDeepixels, FakeProcess, Reply

SCALED = {"poll_initial": 0.025, "poll_max": 0.25}
SPEC = "lognormal:0.3:0.5"


async def run_batch(poll: str, jobs: int, in_flight: int, seed: int = 1) -> tuple[float, float]:
    """Requests per job and the median delay (end to seen) of one batch."""
    async with FakeDeepixels(api_key=API_KEY, durations=SPEC, seed=seed, record=False) as fake:
        async with client_for(fake, poll=poll, **SCALED) as client:
            requests = [GenerationRequest(prompt=f"job {i}") for i in range(jobs)]
            async with asyncio.timeout(60):
                outcomes = await client.generate_many(requests, concurrency=in_flight)
        assert all(o.ok for o in outcomes)
        timings = fake.timings().values()
        delays = [t["seen"] - t["ended"] for t in timings]
        return (fake.count("submit") + fake.count("get")) / jobs, statistics.median(delays)


@pytest.mark.timeout(120)
async def test_learned_polling_spends_fewer_requests_per_job() -> None:
    """600 jobs, 60 in flight: the learned schedule spends at most 4 requests a job
    (about 3.4; the first 60 jobs are read on the backoff schedule, having no history);
    today's backoff spends over 5."""
    learned, _ = await run_batch("learned", 600, 60)
    backoff, _ = await run_batch("backoff", 600, 60)
    assert backoff > 4.8, backoff
    assert learned <= 4.0, (learned, backoff)


@pytest.mark.timeout(60)
async def test_durations_carry_over_to_another_client() -> None:
    """A client that loads another's durations reads its very first jobs on the plan."""
    async with FakeDeepixels(api_key=API_KEY, durations=SPEC, seed=3, record=False) as fake:
        async with client_for(fake, **SCALED) as teacher:
            batch = [GenerationRequest(prompt=f"a {i}") for i in range(80)]
            await teacher.generate_many(batch, concurrency=40)
            state = json.loads(json.dumps(teacher.export_durations()))
        assert state["provider"] == "deepixels" and len(state["models"][0]["ended"]) == 80
        spent: dict[str, float] = {}
        for name, load in (("cold", False), ("warm", True)):
            async with client_for(fake, **SCALED) as client:
                if load:
                    assert client.load_durations(state) == 80
                before = fake.count("submit") + fake.count("get")
                batch = [GenerationRequest(prompt=f"{name} {i}") for i in range(40)]
                await client.generate_many(batch, concurrency=40)
                spent[name] = (fake.count("submit") + fake.count("get") - before) / 40
    assert spent["warm"] <= 3.6 < spent["cold"], spent


async def test_durations_cannot_be_loaded_into_a_backoff_client_or_from_junk() -> None:
    async with FakeDeepixels(api_key=API_KEY) as fake:
        async with client_for(fake, poll="backoff") as client:
            assert client.export_durations()["models"] == []
            with pytest.raises(ConfigurationError, match="backoff"):
                client.load_durations({"version": 1, "provider": "deepixels", "models": []})
        async with client_for(fake) as client:
            with pytest.raises(ConfigurationError, match="cannot load"):
                client.load_durations({"version": 7})
    with pytest.raises(ConfigurationError, match="poll must be one of"):
        CreativeClient("deepixels", "key", poll="fast")


def test_the_sync_client_exports_and_loads() -> None:
    with FakeProcess("deepixels", job_duration=0.2, job_spread=0.5) as fake:
        model = FakeDeepixels.sample_model
        options: dict[str, Any] = {"base_url": fake.base_url, "model": model, **SCALED}
        with SyncCreativeClient("deepixels", API_KEY, **options) as c:
            for outcome in c.generate_many([f"s {i}" for i in range(25)], concurrency=25):
                assert outcome.ok
            state = c.export_durations()
        with SyncCreativeClient("deepixels", API_KEY, **options) as c:
            assert c.load_durations(state) == 25


@pytest.mark.timeout(60)
async def test_a_journaled_batch_keeps_its_durations_for_the_next(tmp_path: Path) -> None:
    journal = tmp_path / "batch.sqlite"
    async with FakeDeepixels(api_key=API_KEY, durations=SPEC, seed=5, record=False) as fake:
        async with client_for(fake, **SCALED) as client:
            requests = {f"r{i}": f"first {i}" for i in range(30)}
            rows = [row async for row in client.journaled(requests, journal)]
            assert len(rows) == 30
        with contextlib.closing(sqlite3.connect(journal)) as db:
            (text,) = db.execute("SELECT value FROM meta WHERE key = 'durations'").fetchone()
        assert len(json.loads(text)["models"][0]["ended"]) == 30
        async with client_for(fake, **SCALED) as client:
            requests = {f"s{i}": f"second {i}" for i in range(10)}
            rows = [row async for row in client.journaled(requests, journal, batch="next")]
            assert len(rows) == 10
            # The second batch started from the first's 30 and added its own 10.
            assert len(client.export_durations()["models"][0]["ended"]) == 40


@pytest.mark.timeout(60)
async def test_a_lost_callback_is_found_when_nearly_every_job_has_ended() -> None:
    """Every callback lost, webhook_poll 60 s: with durations learned, the fallback read
    goes soon after nearly every job like it has ended (about 1 s here), not at 60 s."""
    state = {
        "version": 1,
        "provider": "deepixels",
        "models": [
            {
                "model": FakeDeepixels.sample_model,
                "ended": [[0.2, 0.3 + i / 100] for i in range(40)],
            }
        ],
    }
    options: dict[str, Any] = {"webhook_listen": "127.0.0.1:0", "webhook_poll": 60.0}
    async with FakeDeepixels(api_key=API_KEY, job_duration=0.3, webhook_loss=1.0) as fake:
        async with client_for(fake, **options, **SCALED) as client:
            client.load_durations(state)
            async with asyncio.timeout(10):
                outcomes = await client.generate_many(["one", "two", "three"], concurrency=3)
        assert all(o.ok for o in outcomes)
        assert fake.webhooks_lost >= 3
        assert fake.count("get") <= 6  # one fallback read each (and no backoff polling)


async def test_a_read_answered_retry_after_waits_that_long() -> None:
    """The provider's Retry-After on a read comes before the plan's next read."""
    async with FakeDeepixels(api_key=API_KEY, job_duration=0.6) as fake:
        async with client_for(fake, **SCALED) as client:
            job = await client.submit("slow")
            fake.inject("get", *[Reply(status=429, headers={"Retry-After": "1"})] * 4)
            async with asyncio.timeout(20):
                await client.wait(job.id)
        gets = [r.at for r in fake.requests if r.endpoint == "get"]
    # The 429s are read again after the hint (1 s), never at the plan's 25-250 ms.
    gaps = [b - a for a, b in itertools.pairwise(gets)][:4]
    assert min(gaps) >= 0.95, gaps


async def test_turns_go_to_the_reads_most_likely_to_find_their_job_ended() -> None:
    """Under a bound rate, waiting calls get their turns highest priority first."""

    class Slow:
        async def acquire(self) -> None:
            await asyncio.sleep(0.01)

    turns = Turns(Slow())
    order: list[float] = []

    async def read(priority: float) -> None:
        await turns.acquire(priority)
        order.append(priority)

    try:
        async with asyncio.timeout(5), asyncio.TaskGroup() as group:
            for priority in (0.1, 0.9, 0.5, 0.7, 0.3):
                group.create_task(read(priority))
    finally:
        await turns.close()
    assert order == sorted(order, reverse=True), order


async def test_a_cancelled_turn_goes_to_the_next_and_close_fails_the_rest() -> None:
    class Held:
        def __init__(self) -> None:
            self.gate = asyncio.Event()

        async def acquire(self) -> None:
            await self.gate.wait()

    held = Held()
    turns = Turns(held)
    first = asyncio.create_task(turns.acquire(0.9))
    second = asyncio.create_task(turns.acquire(0.1))
    await asyncio.sleep(0.01)
    first.cancel()
    held.gate.set()
    async with asyncio.timeout(2):
        await second  # the cancelled call's turn went on to the next
        held.gate.clear()
        await turns.acquire()  # and the turn asked for by the cancelled call, kept: at once
    third = asyncio.create_task(turns.acquire())
    await asyncio.sleep(0.01)
    assert not third.done()
    await turns.close()
    with pytest.raises(RuntimeError, match="closed"):
        await third


async def test_the_gate_sees_every_waiting_call() -> None:
    """A shared budget sizes its blocks of tokens by the calls waiting at its gate: the
    priority layer must not hide them behind one asker (it did: a shared rate of 1,000/s
    fell to one turn per database round trip)."""

    class Counting:
        def __init__(self) -> None:
            self.waiting = self.most = 0

        async def acquire(self) -> None:
            self.waiting += 1
            self.most = max(self.most, self.waiting)
            await asyncio.sleep(0.02)
            self.waiting -= 1

    gate = Counting()
    turns = Turns(gate)
    try:
        async with asyncio.timeout(5), asyncio.TaskGroup() as group:
            for i in range(20):
                group.create_task(turns.acquire(i / 20))
    finally:
        await turns.close()
    assert gate.most == 20


@pytest.mark.timeout(30)
async def test_a_late_learned_first_read_still_reads_before_the_deadline() -> None:
    """Learned durations of ~30 s put a job's first read at ~30 s; a job that ends in
    0.2 s, awaited for 2 s, is read once just before the deadline, not given up unread."""
    state = {
        "version": 1,
        "provider": "deepixels",
        "models": [{"model": FakeDeepixels.sample_model, "ended": [[29.0, 30.0]] * 40}],
    }
    async with FakeDeepixels(api_key=API_KEY, job_duration=0.2) as fake:
        async with client_for(fake, poll_initial=0.5, poll_max=5.0) as client:
            client.load_durations(state)
            async with asyncio.timeout(10):
                job = await client.generate("quick", timeout=2.0)
        assert job.status.is_terminal
        assert fake.count("get") == 1


async def test_loading_is_all_or_nothing_and_bounded() -> None:
    model = FakeDeepixels.sample_model
    good = {"model": model, "ended": [[1.0, 2.0]] * 30}
    async with FakeDeepixels(api_key=API_KEY) as fake, client_for(fake) as client:
        for bad in (
            [good, {"model": "other", "ended": [[1.0, "2"]]}],  # the second is junk
            [{"model": model, "ended": [[0, 9_999_999]]}],  # past what is kept (6 h)
        ):
            with pytest.raises(ConfigurationError, match="cannot load"):
                client.load_durations({"version": 1, "provider": "deepixels", "models": bad})
            assert client.export_durations()["models"] == []  # nothing was taken
