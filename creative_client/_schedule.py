"""When to read a job again, from how long jobs like it take (issue 16).

A read costs a request (and, against a rate-limited account, a turn a submit could have
had); a read too late costs the delay between the job's end and the read that sees it.
``plan`` finds the reads that make (cost of a read) x (expected reads) + (expected
delay) least over the estimated durations (``creative_client/_durations.py``), a read
costing a share of the median duration (``READ_SHARE``, up to ``READ_SECONDS``): a
shortest path over candidate read ages, solved backwards once per refit, so that each
job's next read is one lookup from the age at which it was last seen running.

Bounds kept whatever the estimate says: reads of a job at least ``poll_initial`` apart
(the first one ``poll_initial`` after the submit), at most ``poll_max``. Past the age
of the oldest job seen, nothing is known, and the reads space out as the backoff
schedule's do (``gap = age``, within the bounds).
"""

from __future__ import annotations

import bisect

import attrs

from ._durations import Survival

#: What one read is worth in delay: a share of the jobs' median duration, at most
#: ``READ_SECONDS``. The planner reads again when that saves more expected delay than
#: this per read (1.1 s for jobs of 6 s). A share for short jobs, so that their plan
#: scales with them (jobs of 0.3 s are read as jobs of 6 s are, twenty times faster);
#: seconds for long ones, whose delays would otherwise grow with them.
READ_SHARE = 0.18
READ_SECONDS = 1.1
#: Candidate read ages grow by this factor until they are ``poll_max / 4`` apart.
_GROWTH = 1.05


@attrs.frozen
class Plan:
    """Each candidate read age's best next read (``after[i]`` follows ``ages[i]``)."""

    ages: tuple[float, ...]
    after: tuple[float, ...]
    survival: Survival
    poll_initial: float
    poll_max: float

    def next_read(self, age: float) -> float:
        """The age for the next read of a job last seen running at ``age``."""
        ages = self.ages
        lo = age + self.poll_initial
        hi = age + self.poll_max if age > 0.0 else float("inf")
        if age >= ages[-1]:
            return age + min(max(age, self.poll_initial), self.poll_max)
        i = bisect.bisect_right(ages, age) - 1
        return min(max(self.after[i], lo), hi)

    def late(self, age: float, q: float = 0.99) -> float | None:
        """An age by which nearly every job running at ``age`` (a share ``q``) has
        ended, with a margin: where a webhook's fallback read goes. ``None``: unknown."""
        quantile = self.survival.quantile(q, age=age)
        if quantile is None:
            return None
        return quantile * 1.2 + 2 * self.poll_initial


def plan(survival: Survival, poll_initial: float, poll_max: float) -> Plan:
    """The best reads for jobs whose durations follow ``survival``."""
    ages = _candidates(survival.known, poll_initial, poll_max)
    n = len(ages)
    left = [survival.survival(a) for a in ages]
    moment = _moments(survival, ages)
    read_cost = min(READ_SHARE * (survival.quantile(0.5) or survival.known), READ_SECONDS)
    cost = [0.0] * n
    after = [0.0] * n
    # Past the last candidate the backoff-like spacing takes over: its cost, roughly.
    tail = ages[-1]
    cost[-1] = left[-1] * (read_cost + min(max(tail, poll_initial), poll_max) / 2)
    after[-1] = tail + min(max(tail, poll_initial), poll_max)
    j_lo = j_hi = n - 1
    for i in range(n - 2, -1, -1):
        a_i, s_i, m_i = ages[i], left[i], moment[i]
        while j_lo > i + 1 and ages[j_lo - 1] - a_i >= poll_initial:
            j_lo -= 1
        while j_hi > j_lo and ages[j_hi] - a_i > poll_max:
            j_hi -= 1
        best, best_j = float("inf"), j_hi
        read = read_cost * s_i
        # The first read (i = 0: from the submit) may come later than poll_max.
        for j in range(j_lo, (j_hi if i else n - 1) + 1):
            a_j = ages[j]
            # ended in (a_i, a_j]: seen at a_j, each after a_j - t.
            total = read + a_j * (s_i - left[j]) - (moment[j] - m_i) + cost[j]
            if total < best:
                best, best_j = total, j
        cost[i] = best
        after[i] = ages[best_j]
    return Plan(tuple(ages), tuple(after), survival, poll_initial, poll_max)


def _candidates(known: float, poll_initial: float, poll_max: float) -> list[float]:
    """Ages a read may go at: 0 (the submit), then from ``poll_initial`` (0: at once)
    growing by 5% until ``poll_max / 4`` apart, then evenly, up to the oldest job seen."""
    ages = [0.0]
    age = poll_initial
    # At most about 2,000 evenly spaced ones: a plan is made on the client's loop.
    step_cap = max(poll_max / 4, poll_initial / 2, known / 2000, 1e-3)
    while age <= known:
        ages.append(age)
        age += min(max(age, 0.01) * (_GROWTH - 1), step_cap)
    ages.append(max(known, ages[-1] + 1e-3) if len(ages) > 1 else max(known, age))
    return ages


def _moments(survival: Survival, ages: list[float]) -> list[float]:
    """``M(a) = E[T; T <= a]`` at each of ``ages`` (ascending): the jobs ended by ``a``,
    each weighed by when it ended (uniform within each grid bin)."""
    edges, left = survival.edges, survival.left
    out: list[float] = []
    total, k = 0.0, 0  # the moment up to edges[k]
    for a in ages:
        while k + 1 < len(edges) and edges[k + 1] <= a:
            total += (left[k] - left[k + 1]) * (edges[k] + edges[k + 1]) / 2
            k += 1
        s_a = survival.survival(a)
        out.append(total + (left[k] - s_a) * (edges[k] + a) / 2 if a > edges[k] else total)
    return out
