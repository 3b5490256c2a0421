"""How long jobs take, learned from the jobs a client has seen (issue 16, first part:
the estimator; the poll schedule that uses it comes next).

Finished jobs give durations; jobs still running give lower bounds (censored
observations). An estimator that ignores the running ones is biased short: the first
jobs of a batch to finish are the short ones. The product-limit (Kaplan-Meier)
estimator takes both: at each finishing time ``t``, the share of the jobs still at
risk (running at ``t`` or later) that finished then. It is a few lines, so it is
written here rather than taken from a survival-analysis library (lifelines brings
pandas and numpy for what is one loop over sorted times).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

import attrs


@attrs.frozen
class Survival:
    """``S(t)``: the estimated share of jobs still running ``t`` seconds after their
    submit. ``times`` are the finishing times seen, ascending; ``left[i]`` is ``S``
    just after ``times[i]``."""

    times: tuple[float, ...]
    left: tuple[float, ...]

    def survival(self, t: float) -> float:
        """The share of jobs still running at ``t`` (1.0 before the first finish)."""
        i = bisect.bisect_right(self.times, t)
        return 1.0 if i == 0 else self.left[i - 1]

    def quantile(self, q: float, *, age: float = 0.0) -> float | None:
        """The time by which a share ``q`` of the jobs that ran ``age`` seconds have
        finished; ``None`` when what was seen does not reach it (too many still run)."""
        if not 0.0 < q <= 1.0:
            raise ValueError("q must be in (0, 1]")
        base = self.survival(age)
        if base <= 0.0:
            return None
        for t, s in zip(self.times, self.left, strict=True):
            if t >= age and 1.0 - s / base >= q - 1e-12:
                return t
        return None


def kaplan_meier(finished: Iterable[float], running: Iterable[float]) -> Survival:
    """The product-limit estimate from the durations of finished jobs and the ages of
    jobs still running (each at least that long)."""
    events = sorted(d for d in finished if d >= 0.0)
    censored = sorted(a for a in running if a >= 0.0)
    at_risk = len(events) + len(censored)
    times: list[float] = []
    left: list[float] = []
    s, e, c = 1.0, 0, 0
    while e < len(events):
        t = events[e]
        while c < len(censored) and censored[c] < t:  # ran less than t, unfinished:
            at_risk -= 1  # no longer at risk of finishing at t (still running, unseen)
            c += 1
        ended = 0
        while e < len(events) and events[e] == t:
            ended += 1
            e += 1
        s *= 1.0 - ended / at_risk
        at_risk -= ended
        times.append(t)
        left.append(s)
    return Survival(tuple(times), tuple(left))
