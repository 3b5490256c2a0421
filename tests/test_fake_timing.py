"""The fakes' per-job durations (``durations=``) and per-job timings (``timings()``)."""

from __future__ import annotations

import asyncio
import json
import math
import random
import statistics
import subprocess
import sys
import urllib.request
from typing import Any

import aiohttp
import pytest
from _helpers import client_for

from creative_client import GenerationRequest
from creative_client.errors import InvalidRequestError
from creative_client.testing import FakeDeepixels, FakeNeocu, fake_for
from creative_client.testing._timing import Distribution, Durations

# -- parsing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "by_model", "default"),
    [
        ("fixed:2", {}, Distribution("fixed", 2.0)),
        (" uniform:1:3 ", {}, Distribution("uniform", 1.0, 3.0)),
        ("lognormal:6:0.5", {}, Distribution("lognormal", 6.0, 0.5)),
        ("lognormal: 6 : 0", {}, Distribution("lognormal", 6.0, 0.0)),
        (
            "flux-schnell=lognormal:5:0.3, video-gen=lognormal:60:0.3",
            {
                "flux-schnell": Distribution("lognormal", 5.0, 0.3),
                "video-gen": Distribution("lognormal", 60.0, 0.3),
            },
            None,
        ),
        (
            "a:b=c=fixed:1,*=uniform:0:0.5",
            {"a:b=c": Distribution("fixed", 1.0)},
            Distribution("uniform", 0.0, 0.5),
        ),
    ],
)
def test_good_specs_parse(
    spec: str, by_model: dict[str, Distribution], default: Distribution | None
) -> None:
    durations = Durations.parse(spec)
    assert dict(durations.by_model) == by_model
    assert durations.default == default
    assert str(durations) == spec


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("fixed", "is not a distribution"),
        ("fixed:1:2", "is not a distribution"),
        ("normal:1:2", "is not a distribution"),
        ("lognormal:6", "is not a distribution"),
        ("uniform:a:b", "take numbers"),
        ("fixed:-1", "finite and >= 0"),
        ("fixed:inf", "finite and >= 0"),
        ("lognormal:nan:0.5", "finite and >= 0"),
        ("uniform:3:1", "A <= B"),
        ("lognormal:0:0.5", "median must be > 0"),
        ("m=fixed:1,m=fixed:2", "two entries"),
        ("*=fixed:1,*=fixed:2", "two entries"),
        ("=fixed:1", "is not MODEL=DISTRIBUTION"),
        ("m=fixed:1,fixed:2", "is not MODEL=DISTRIBUTION"),
        ("m=fixed:1,", "is not MODEL=DISTRIBUTION"),
        ("m=lognormal:x:1", "take numbers"),
    ],
)
def test_bad_specs_are_a_value_error_naming_the_spec(spec: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as caught:
        Durations.parse(spec)
    assert repr(spec) in str(caught.value)


def test_a_fake_takes_a_spec_and_refuses_a_bad_one() -> None:
    assert FakeDeepixels(durations="fixed:1").durations == Durations.parse("fixed:1")
    assert FakeDeepixels().durations is None
    with pytest.raises(ValueError, match="'fixed:x'"):
        FakeDeepixels(durations="fixed:x")


# -- drawing --------------------------------------------------------------------------


def test_draws_are_reproducible_by_seed() -> None:
    durations = Durations.parse("a=lognormal:6:0.5,*=uniform:1:3")
    models = ["a", "b", None] * 20

    def draws(seed: int) -> list[float]:
        rng = random.Random(seed)
        return [durations.draw(rng, model) for model in models]

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)


def test_lognormal_draws_have_the_median_and_sigma_asked_for() -> None:
    rng = random.Random(1)
    dist = Distribution.parse("lognormal:6:0.5")
    draws = [dist.draw(rng) for _ in range(2_000)]
    assert statistics.median(draws) == pytest.approx(6.0, rel=0.05)
    assert statistics.stdev(math.log(d) for d in draws) == pytest.approx(0.5, rel=0.05)


def test_uniform_and_fixed_draws_stay_in_their_bounds() -> None:
    rng = random.Random(2)
    uniform = [Distribution.parse("uniform:1:3").draw(rng) for _ in range(2_000)]
    assert 1.0 <= min(uniform) < 1.1 and 2.9 < max(uniform) <= 3.0
    assert statistics.mean(uniform) == pytest.approx(2.0, rel=0.05)
    assert {Distribution.parse("fixed:2.5").draw(rng) for _ in range(10)} == {2.5}


def test_a_mix_routes_by_model() -> None:
    durations = Durations.parse("img=fixed:5,vid=uniform:50:70,*=fixed:1")
    rng = random.Random(3)
    assert [durations.draw(rng, "img") for _ in range(5)] == [5.0] * 5
    assert all(50 <= durations.draw(rng, "vid") <= 70 for _ in range(50))
    assert durations.draw(rng, "other") == 1.0 and durations.draw(rng, None) == 1.0

    strict = Durations.parse("img=fixed:5")
    assert strict.covers("img") and not strict.covers("vid") and not strict.covers(None)
    with pytest.raises(ValueError, match="name no duration for the model 'vid'"):
        strict.draw(rng, "vid")
    with pytest.raises(ValueError, match="jobs without a model"):
        strict.draw(rng, None)


def test_without_durations_a_fakes_durations_are_as_before() -> None:
    """``durations=None``: ``job_duration`` times 1 +/- ``job_spread``, from the seeded RNG,
    after each job's failure draw, exactly as before ``durations`` existed."""
    fake = FakeDeepixels(job_duration=2.0, job_spread=0.25, seed=5)
    made = [fake.new_job({"model": "m", "input": {}}, f"p{i}").duration for i in range(20)]
    rng = random.Random(5)
    expected = []
    for _ in range(20):
        rng.random()  # the failure draw
        expected.append(2.0 * rng.uniform(0.75, 1.25))
    assert made == expected
    fixed = FakeDeepixels(job_duration=1.5)
    assert {fixed.new_job({"model": "m", "input": {}}, "p").duration for _ in range(5)} == {1.5}


def test_a_fakes_durations_follow_its_seed_and_the_jobs_model() -> None:
    spec = "flux-schnell=uniform:1:2,video-gen=uniform:50:60"
    bodies: list[dict[str, Any]] = [
        {"model": ("video-gen" if i % 3 else "flux-schnell"), "input": {}} for i in range(30)
    ]

    def durations(seed: int) -> list[tuple[str | None, float]]:
        fake = FakeDeepixels(durations=spec, seed=seed)
        jobs = [fake.new_job(body, "p") for body in bodies]
        return [(job.model, job.duration) for job in jobs]

    first = durations(11)
    assert first == durations(11) and first != durations(12)
    for (model, duration), body in zip(first, bodies, strict=True):
        assert model == body["model"]
        assert (50 <= duration <= 60) if model == "video-gen" else (1 <= duration <= 2)


# -- over HTTP ------------------------------------------------------------------------


def check_timings(timings: dict[str, dict[str, Any]], gets: int, jobs: int) -> None:
    """Every job ended, was seen ended no sooner, was read at least once; the reads add
    up to the fake's count of reads."""
    assert len(timings) == jobs
    for job_id, timing in timings.items():
        assert timing["seen"] is not None, job_id
        assert timing["ended"] <= timing["seen"] < timing["ended"] + 5, (job_id, timing)
        assert timing["reads"] >= 1, (job_id, timing)
    assert sum(t["reads"] for t in timings.values()) == gets


async def fetch_timings(root_url: str) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{root_url}/_fake/timings") as resp,
    ):
        assert resp.status == 200
        return await resp.json()


@pytest.mark.timeout(30)
async def test_timings_over_http_for_a_mix_of_models() -> None:
    spec = "flux-schnell=uniform:0.05:0.15,video-gen=uniform:0.2:0.3"
    async with FakeDeepixels(durations=spec, seed=4) as fake, client_for(fake) as client:
        requests = [
            GenerationRequest(prompt=f"p{i}", model="video-gen" if i % 2 else "flux-schnell")
            for i in range(24)
        ]
        outcomes = await asyncio.wait_for(
            client.generate_many(requests, concurrency=12), timeout=20
        )
        assert all(outcome.ok for outcome in outcomes)
        timings = fake.timings()
        check_timings(timings, fake.count("get"), 24)
        by_model: dict[str | None, list[float]] = {}
        for outcome in outcomes:
            assert outcome.job is not None
            timing = timings[outcome.job.id]
            assert timing["model"] == outcome.request.model
            by_model.setdefault(timing["model"], []).append(timing["duration"])
        assert len(by_model["flux-schnell"]) == len(by_model["video-gen"]) == 12
        assert all(0.05 <= d <= 0.15 for d in by_model["flux-schnell"])
        assert all(0.2 <= d <= 0.3 for d in by_model["video-gen"])
        assert await fetch_timings(fake.root_url) == timings


@pytest.mark.timeout(30)
async def test_timings_count_reads_and_the_first_read_that_saw_the_end(provider: str) -> None:
    """Every fake: reads before the end count, the first read after it is ``seen``, reads
    after that count but do not move it; a job never read ended is ``seen`` None."""
    async with fake_for(provider, durations="fixed:0.5") as fake, client_for(fake) as client:
        job = await client.submit("a red fox")
        idle = await client.submit("never read")
        early = await client.get(job.id)
        assert not early.status.is_terminal
        timing = fake.timings()[job.id]
        assert (timing["reads"], timing["seen"], timing["duration"]) == (1, None, 0.5)
        await asyncio.sleep(0.55)
        assert (await client.get(job.id)).status.is_terminal
        seen = fake.timings()[job.id]["seen"]
        assert seen is not None and timing["ended"] <= seen
        await client.get(job.id)
        after = fake.timings()
        assert (after[job.id]["reads"], after[job.id]["seen"]) == (3, seen)
        assert (after[idle.id]["reads"], after[idle.id]["seen"]) == (0, None)
        assert fake.count("get") == 3
        assert await fetch_timings(fake.root_url) == after


@pytest.mark.timeout(30)
async def test_many_jobs_polled_by_the_client_are_all_seen_after_they_ended() -> None:
    async with (
        FakeNeocu(durations="lognormal:0.1:0.5", seed=9) as fake,
        client_for(fake, poll_initial=0.02, poll_max=0.1) as client,
    ):
        prompts = [f"a fox {i}" for i in range(40)]
        outcomes = await asyncio.wait_for(client.generate_many(prompts, concurrency=20), 20)
        assert all(outcome.ok for outcome in outcomes)
        timings = fake.timings()
        check_timings(timings, fake.count("get"), 40)
        assert {t["model"] for t in timings.values()} == {None}  # Neocu names no model
        assert len({t["duration"] for t in timings.values()}) == 40  # drawn per job


@pytest.mark.timeout(30)
async def test_a_submit_for_a_model_the_mix_does_not_name_is_refused() -> None:
    async with (
        FakeDeepixels(durations="flux-schnell=fixed:0.05") as fake,
        client_for(fake) as client,
    ):
        with pytest.raises(InvalidRequestError, match="name no duration for the model 'other'"):
            await client.submit("a fox", model="other")
        assert fake.stats()["jobs"] == 0
        assert (await client.submit("a fox", model="flux-schnell")).id


@pytest.mark.timeout(30)
async def test_neocu_refuses_before_spending_its_balance() -> None:
    async with (
        FakeNeocu(durations="only-model=fixed:1", balance=1) as fake,
        client_for(fake) as client,
    ):
        with pytest.raises(InvalidRequestError, match="jobs without a model"):
            await client.submit("a fox")
        async with (
            aiohttp.ClientSession(headers={"api-key": "k"}) as session,
            session.get(f"{fake.base_url}/compute") as resp,
        ):
            assert (await resp.json())["compute"] == 1  # not spent on the refused submit


@pytest.mark.timeout(30)
def test_the_fake_process_takes_durations_and_serves_timings() -> None:
    command = [sys.executable, "-m", "creative_client.testing", "deepixels", "--watch-stdin"]
    bad = subprocess.run(
        [*command, "--durations", "lognormal:6"], capture_output=True, text=True, timeout=20
    )
    assert bad.returncode == 2
    assert bad.stdout.startswith("ERROR durations 'lognormal:6'"), bad.stdout

    proc = subprocess.Popen(
        [*command, "--durations", "flux-schnell=fixed:0.01,*=fixed:7", "--seed", "3"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        ready = proc.stdout.readline().strip()
        assert ready.startswith("READY "), ready
        base = ready.split(" ", 1)[1]
        for model in ("flux-schnell", "video-gen"):
            request = urllib.request.Request(
                f"{base}/generate",
                data=f'{{"model": "{model}", "input": {{"prompt": "x"}}}}'.encode(),
                headers={"x-api-key": "k", "content-type": "application/json"},
            )
            urllib.request.urlopen(request, timeout=10).close()
        root = base.rsplit("/", 1)[0]
        with urllib.request.urlopen(f"{root}/_fake/timings", timeout=10) as resp:
            timings = json.load(resp)
        durations = sorted((t["model"], t["duration"]) for t in timings.values())
        assert durations == [("flux-schnell", 0.01), ("video-gen", 7.0)]
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
        proc.stdout.close()
