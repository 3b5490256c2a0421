"""The duration estimator and the read planner on recorded samples, the censored case
included (issue 16). The samples (``tests/data/durations-*.json``) are what a client's
reads saw of jobs of known durations: each ended job as ``[lo, hi]`` (running at age
``lo``, seen ended at ``hi``), each running one as the age it was last seen running."""

from __future__ import annotations

import bisect
import itertools
import json
import math
import random
import statistics
import time
from pathlib import Path
from statistics import NormalDist
from typing import Any

import pytest

from creative_client._durations import Survival, estimate
from creative_client._learning import MIN_ENDED, Learning
from creative_client._schedule import plan

DATA = Path(__file__).parent / "data"


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"durations-{name}.json").read_text())
    return data


def true_survival(t: float, median: float = 6.0, sigma: float = 0.5) -> float:
    return 1.0 - NormalDist().cdf(math.log(t / median) / sigma)


def test_exact_durations_give_the_empirical_distribution() -> None:
    survival = estimate([(d, d) for d in (1.0, 2.0, 3.0, 4.0)], [])
    assert survival is not None
    assert survival.survival(0.5) == 1.0
    assert survival.survival(2.5) == pytest.approx(0.5, abs=0.06)
    assert survival.survival(4.5) == pytest.approx(0.0, abs=0.01)
    median = survival.quantile(0.5)
    assert median is not None and 1.9 <= median <= 2.7


def test_no_ended_job_is_no_estimate() -> None:
    assert estimate([], [3.0, 4.0]) is None


def test_intervals_of_backoff_reads_recover_the_distribution() -> None:
    """1,000 jobs read at 0.5, 1.5, 3.5, 7.5, 12.5 ... s: the intervals are up to 5 s
    wide, yet the estimate's survival is within a few points of the true one."""
    data = sample("lognormal-6")
    survival = estimate([tuple(pair) for pair in data["ended"]], data["running"])
    assert survival is not None
    for t in (3.0, 4.5, 6.0, 8.0, 10.0, 14.0):
        assert survival.survival(t) == pytest.approx(true_survival(t), abs=0.06), t
    median = survival.quantile(0.5)
    assert median is not None and 5.4 <= median <= 6.6
    # Taking the age each job was seen ended as its duration is biased long:
    naive = statistics.median(hi for _, hi in data["ended"])
    assert naive > 7.0


def test_running_jobs_keep_the_estimate_from_being_biased_short() -> None:
    """300 jobs started together, seen 6 s in: the 42 that ended are the short ones
    (their median is under 3 s); the 258 still running say the median is past 3.5 s,
    not yet known."""
    data = sample("censored-6")
    ended = [tuple(pair) for pair in data["ended"]]
    assert statistics.median(hi for _, hi in ended) <= 3.5  # the naive, biased answer
    survival = estimate(ended, data["running"])
    assert survival is not None
    assert survival.survival(3.5) == pytest.approx(true_survival(3.5), abs=0.05)
    assert survival.quantile(0.5) is None  # not reached: nothing is known past 3.5 s
    ignoring = estimate(ended, [])
    assert ignoring is not None and ignoring.quantile(0.5) is not None  # the bias, shown
    assert survival.known == pytest.approx(max(data["running"]))


def test_quantile_given_the_age_a_job_has_reached() -> None:
    survival = estimate([(float(d), float(d)) for d in range(1, 9)], [])
    assert survival is not None
    assert survival.quantile(0.5) == pytest.approx(4.0, abs=0.3)
    later = survival.quantile(0.5, age=4.5)  # of those that ran 4.5 s, half end by ~6.5
    assert later is not None and 6.0 <= later <= 7.0
    assert survival.quantile(0.5, age=8.5) is None  # none seen run that long
    with pytest.raises(ValueError, match="q must be"):
        survival.quantile(0.0)


def read_schedule(survival: Survival, poll_initial: float, poll_max: float) -> list[float]:
    planned = plan(survival, poll_initial, poll_max)
    reads = [planned.next_read(0.0)]
    while reads[-1] < 120:
        reads.append(planned.next_read(reads[-1]))
    return reads


def cost_of(reads: list[float], durations: list[float]) -> tuple[float, float]:
    """Requests per job (the submit and the reads) and the median delay."""
    count, delays = 0, []
    for d in durations:
        i = bisect.bisect_left(reads, d)
        count += i + 2
        delays.append(reads[i] - d)
    return count / len(durations), statistics.median(delays)


def backoff(poll_initial: float = 0.5, poll_max: float = 5.0) -> list[float]:
    reads, gap = [poll_initial], poll_initial * 2
    while reads[-1] < 120:
        reads.append(reads[-1] + gap)
        gap = min(gap * 2, poll_max)
    return reads


def test_the_plan_from_recorded_reads_beats_the_backoff_on_both_counts() -> None:
    """Planned from the recorded intervals, scored on fresh jobs of the same durations:
    about 3 requests a job and a median delay near 1.5 s, against 5.3 and 2.2."""
    data = sample("lognormal-6")
    survival = estimate([tuple(pair) for pair in data["ended"]], [])
    assert survival is not None
    rng = random.Random(5)
    durations = [rng.lognormvariate(math.log(6.0), 0.5) for _ in range(5000)]
    planned = cost_of(read_schedule(survival, 0.5, 5.0), durations)
    today = cost_of(backoff(), durations)
    assert today[0] > 5.0 and today[1] > 2.0
    assert planned[0] <= 3.3 and planned[1] <= 1.7, planned


def test_the_plan_keeps_the_poll_bounds() -> None:
    data = sample("lognormal-6")
    survival = estimate([tuple(pair) for pair in data["ended"]], [])
    assert survival is not None
    for poll_initial, poll_max in ((0.5, 5.0), (2.0, 3.0), (0.1, 1.0)):
        reads = read_schedule(survival, poll_initial, poll_max)
        assert reads[0] >= poll_initial
        gaps = [b - a for a, b in itertools.pairwise(reads)]
        assert min(gaps) >= poll_initial - 1e-9
        assert max(gaps) <= poll_max + 1e-9


def test_past_what_was_seen_reads_space_out_as_the_backoff_does() -> None:
    survival = estimate([(1.0, 2.0)] * 30, [])
    assert survival is not None and survival.known == 2.0
    planned = plan(survival, 0.5, 5.0)
    assert planned.next_read(10.0) == pytest.approx(15.0)
    assert planned.next_read(3.0) == pytest.approx(6.0)
    assert planned.late(0.0) is not None
    assert planned.late(3.0) is None  # nothing known past 2 s: the fixed fallback poll


def test_the_webhook_fallback_read_goes_after_nearly_every_job_has_ended() -> None:
    data = sample("lognormal-6")
    survival = estimate([tuple(pair) for pair in data["ended"]], [])
    assert survival is not None
    late = plan(survival, 0.5, 5.0).late(0.0)
    assert late is not None
    assert true_survival(late) < 0.01  # past the 99th percentile (19 s) ...
    assert late < 30.0  # ... and sooner than the fixed 30 s


def test_learning_plans_after_enough_jobs_and_carries_over() -> None:
    data = sample("lognormal-6")
    learning = Learning("deepixels", 0.5, 5.0)
    learned = learning.of("model-a")
    for i, (lo, hi) in enumerate(data["ended"][: MIN_ENDED - 1]):
        learned.running(i, lo)
        learned.over(i, lo, hi)
    assert learned.plan is None  # too few yet: the backoff schedule
    for i, (lo, hi) in enumerate(data["ended"][MIN_ENDED - 1 :]):
        learned.over(i, lo, hi)
    assert learned.plan is not None
    state = json.loads(json.dumps(learning.export()))
    other = Learning("deepixels", 0.5, 5.0)
    assert other.load(state) == len(data["ended"])
    assert other.of("model-a").plan is not None
    assert other.of("model-b").plan is None  # learned per model
    assert Learning("neocu", 0.5, 5.0).load(state) == 0  # another provider's: ignored
    for bad in ({}, {"version": 1, "provider": "deepixels", "models": [{"ended": [[3, 1]]}]}):
        with pytest.raises(ValueError, match=r"durations|interval"):
            other.load(bad)


def test_a_very_old_running_job_keeps_the_plan_small() -> None:
    """Ages past the grid (six hours) count as six hours: the plan stays a few
    thousand candidate reads, even with reads allowed every 10 ms."""
    survival = estimate([(1.0, 2.0)] * 30, [10 * 24 * 3600.0])
    assert survival is not None and survival.known <= 6 * 3600 + 1
    assert len(plan(survival, 0.0, 0.01).ages) < 5000


def test_jobs_awaiting_their_callback_count_as_running() -> None:
    """Early in a batch waited by webhook, the first callbacks are the short jobs: the
    jobs still awaiting theirs keep the estimate from being biased short."""
    learning = Learning("deepixels", 0.5, 5.0)
    learned = learning.of(None)
    now = time.monotonic()
    for i in range(80):
        learned.awaiting(i, now - 10.0)  # submitted 10 s ago, no callback yet
    for i in range(MIN_ENDED):
        learned.over(i, 2.0, 2.0)  # ... but for these, in 2 s
    assert learned.plan is not None
    assert learned.plan.survival.survival(5.0) > 0.7  # 60 of 80 still running at 10 s
