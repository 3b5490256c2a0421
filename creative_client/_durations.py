"""How long jobs take, learned from the jobs a client has seen (issue 16).

A client never sees a job end: it sees, at some read, that the job has ended since the
read before. So a finished job gives an interval, ``(lo, hi]``: it was running at age
``lo`` (0 at the submit) and over at age ``hi``. A job still running gives a lower
bound (a censored observation), and an estimator that ignored those would be biased
short: the first jobs of a batch to finish are the short ones.

``estimate`` is the self-consistency (Turnbull) estimator for such data, on a fixed
grid of ages (``EDGES``: 5% apart, from 1 ms to six hours): each finished job's one
unit is shared among the grid's bins inside its interval as the previous estimate
(``prior``) weighs them, evenly by length without one; jobs still running stay at risk
up to their age (the life-table rule: half a unit in the bin they are in); the hazard
of each bin is the ended weight over the weight at risk. A client refits now and then,
each time from its last estimate, which makes the refits the estimator's iterations.

It is one loop over the observations and one over the bins, so it is written here
rather than taken from a survival-analysis library: lifelines (the well-kept one)
brings pandas and scipy for the same few lines, and its interval-censored fitter is a
parametric one (Weibull and the like), which would miss a mix such as images in 5 s
and videos in a minute under one model.
"""

from __future__ import annotations

import bisect
import math
import operator
from collections import Counter
from collections.abc import Iterable

import attrs


def _edges() -> tuple[float, ...]:
    edges, age = [0.0], 0.001
    while age < 6 * 3600:
        edges.append(round(age, 6))
        age *= 1.05
    return tuple(edges)


#: The grid's bin edges in seconds: 0, then 1 ms growing 5% a step to six hours.
EDGES = _edges()


@attrs.frozen
class Survival:
    """``S(t)``: the estimated share of jobs still running ``t`` seconds after their
    submit, at the grid's ``edges`` (``left[i]`` at ``edges[i]``; linear between). It is
    known up to age ``known`` (the oldest job seen); beyond it, nothing is."""

    edges: tuple[float, ...]
    left: tuple[float, ...]
    known: float

    def survival(self, t: float) -> float:
        """The share of jobs still running at age ``t`` (constant past the grid)."""
        edges, left = self.edges, self.left
        i = bisect.bisect_right(edges, t) - 1
        if i < 0:
            return 1.0
        if i >= len(edges) - 1:
            return left[-1]
        lo, hi = edges[i], edges[i + 1]
        return left[i] + (left[i + 1] - left[i]) * (t - lo) / (hi - lo)

    def quantile(self, q: float, *, age: float = 0.0) -> float | None:
        """The age by which a share ``q`` of the jobs still running at ``age`` have
        ended; ``None`` when what was seen does not reach it."""
        if not 0.0 < q <= 1.0:
            raise ValueError("q must be in (0, 1]")
        base = self.survival(age)
        if base <= 0.0:
            return None
        target = base * (1.0 - q) + 1e-12
        edges, left = self.edges, self.left
        start = max(bisect.bisect_right(edges, age), 1)
        for i in range(start, len(edges)):
            if left[i] <= target:
                lo, s0, s1 = edges[i - 1], left[i - 1], left[i]
                t = max(lo, age)
                if s0 > s1 and s0 > target:
                    t = max(t, lo + (edges[i] - lo) * (s0 - target) / (s0 - s1))
                return min(t, self.known) if lo <= self.known else None
        return None

    def ended_by(self, age: float, later: float) -> float:
        """The chance a job running at ``age`` has ended by ``later``."""
        base = self.survival(age)
        return 1.0 if base <= 0.0 else 1.0 - self.survival(later) / base


def estimate(
    finished: Iterable[tuple[float, float]],
    running: Iterable[float],
    prior: Survival | None = None,
    *,
    rounds: int = 25,
) -> Survival | None:
    """The estimate from finished jobs' intervals ``(lo, hi]`` and the ages of jobs still
    running; ``None`` with no finished job. ``prior`` (an earlier estimate) is where the
    iterations start; ``rounds`` bounds them."""
    groups: Counter[tuple[int, int]] = Counter()  # intervals, as grid bins
    known = 0.0
    for lo, hi in finished:
        lo = max(lo, 0.0)
        hi = max(hi, lo)
        known = max(known, hi)
        end = _bin_of(hi)
        groups[(min(_bin_after(lo), end), end)] += 1
    if not groups:
        return None
    ages = list(running)
    known = min(max([known, *ages]), EDGES[-1])  # past the grid nothing is kept
    size = min(_bin_of(known) + _REACH + 2, _BINS)  # the bins that matter: up to known
    censored = [0.0] * size  # running jobs, by the bin their age is in
    for age in ages:
        censored[_bin_of(age)] += 1.0
    weights = _masses(prior.left, size) if prior is not None else list(_WIDTHS[:size])
    left: list[float] = []
    for _ in range(max(rounds, 1)):
        ended = [0.0] * size
        for (first, end), count in groups.items():
            if first == end:
                ended[end] += count
                continue
            share = count / math.fsum(weights[first : end + 1])
            for k in range(first, end + 1):
                ended[k] += weights[k] * share
        left = _life_table(ended, censored, known)
        masses = _smooth(_masses(left, size))
        change = max(abs(a - b) for a, b in zip(masses, weights, strict=True))
        weights = masses
        if change < 1e-3:
            break
    return Survival(EDGES[: len(left)], tuple(left), known)


def _smooth(masses: list[float]) -> list[float]:
    """The masses spread over their neighbours by ``_KERNEL`` (a binomial one, about 10%
    of the age either side): the smoothing step of EMS, as the bare estimator piles mass
    at the ends of the intervals the reads make."""
    padded = [masses[0]] * _REACH + masses + [masses[-1]] * _REACH
    width = len(_KERNEL)
    return [sum(map(operator.mul, _KERNEL, padded[k : k + width])) for k in range(len(masses))]


def _life_table(ended: list[float], censored: list[float], known: float) -> list[float]:
    """``S`` at the edges up to ``known``: each bin's hazard is its ended weight over the
    weight at risk, a job running in the bin counting half (it left partway)."""
    at_risk = math.fsum(ended) + math.fsum(censored)
    left = [1.0]
    s = 1.0
    for k in range(len(ended)):
        if EDGES[k] > known:
            break
        risk = at_risk - 0.5 * censored[k]
        if risk > 0.0:
            s *= max(0.0, 1.0 - ended[k] / risk)
        at_risk -= ended[k] + censored[k]
        left.append(s)
    return left


def _masses(left: tuple[float, ...] | list[float], size: int) -> list[float]:
    """The share of jobs ending in each of the first ``size`` bins, from ``S`` at the
    edges, never quite 0 (a bin an earlier estimate saw nothing in may still gain)."""
    padded = list(left[: size + 1]) + [left[-1]] * (size + 1 - min(len(left), size + 1))
    return [max(padded[k] - padded[k + 1], 0.0) + 1e-6 * _WIDTHS[k] for k in range(size)]


def _bin_of(age: float) -> int:
    """The bin ``(EDGES[k], EDGES[k + 1]]`` that holds ``age``."""
    return min(max(bisect.bisect_left(EDGES, age) - 1, 0), _BINS - 1)


def _bin_after(age: float) -> int:
    """The first bin with ages above ``age`` (an interval open at ``age``)."""
    return min(max(bisect.bisect_right(EDGES, age) - 1, 0), _BINS - 1)


#: The smoothing kernel: 12 passes of (1/4, 1/2, 1/4).
_KERNEL = tuple(math.comb(24, j) / 4**12 for j in range(25))
_REACH = len(_KERNEL) // 2
_BINS = len(EDGES) - 1
_WIDTHS = tuple(EDGES[k + 1] - EDGES[k] for k in range(_BINS))
