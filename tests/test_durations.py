"""The duration estimator on recorded samples, the censored case included."""

from __future__ import annotations

import random
import statistics

import pytest

from creative_client._durations import kaplan_meier


def test_without_running_jobs_it_is_the_empirical_distribution() -> None:
    survival = kaplan_meier([1.0, 2.0, 3.0, 4.0], [])
    assert survival.survival(0.5) == 1.0
    assert survival.survival(2.0) == pytest.approx(0.5)
    assert survival.survival(4.0) == pytest.approx(0.0)
    assert survival.quantile(0.5) == 2.0
    assert survival.quantile(1.0) == 4.0


def test_running_jobs_keep_the_median_from_being_biased_short() -> None:
    """Ten jobs started together; 5 s later three have finished (2, 3 and 4 s) and seven
    still run. Ignoring them says "median 3 s"; they say it is more than 4 s."""
    finished, running = [2.0, 3.0, 4.0], [5.0] * 7
    assert statistics.median(finished) == 3.0  # the naive, biased answer
    survival = kaplan_meier(finished, running)
    assert survival.survival(4.0) == pytest.approx(0.7)
    assert survival.quantile(0.5) is None  # not reached: more than 4 s, unknown how much
    assert survival.quantile(0.3) == 4.0


def test_a_censored_job_leaves_the_risk_set_at_its_age() -> None:
    # Finished 1, 3; one ran 2 s and is still running: at t=3 only 2 jobs are at risk.
    survival = kaplan_meier([1.0, 3.0], [2.0])
    assert survival.survival(1.0) == pytest.approx(2 / 3)
    assert survival.survival(3.0) == pytest.approx(0.0)


def test_quantile_given_the_age_a_job_has_reached() -> None:
    survival = kaplan_meier([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], [])
    assert survival.quantile(0.5) == 4.0
    # A job that already ran 4.5 s: half of those like it end by 6 s.
    assert survival.quantile(0.5, age=4.5) == 6.0
    assert survival.quantile(0.5, age=8.5) is None  # none seen run that long


def test_it_recovers_a_lognormal_median_from_a_censored_batch() -> None:
    """3,000 jobs of lognormal durations (median 6 s, sigma 0.5), all started at once,
    seen 6 s in: about half still run. The estimate's quartile is near the true one."""
    rng = random.Random(20261130)
    durations = [rng.lognormvariate(1.791759, 0.5) for _ in range(3000)]
    now = 6.0
    finished = [d for d in durations if d <= now]
    running = [now for d in durations if d > now]
    survival = kaplan_meier(finished, running)
    true_quartile = sorted(durations)[750]
    estimate = survival.quantile(0.25)
    assert estimate is not None and abs(estimate - true_quartile) < 0.15
    assert survival.quantile(0.75) is None  # beyond what 6 s can show


def test_bad_quantiles_are_refused() -> None:
    with pytest.raises(ValueError, match="q must be"):
        kaplan_meier([1.0], []).quantile(0.0)
