"""What a client has learned of its jobs' durations, per model (issue 16).

Each wait reports what its reads saw: running at some age, or ended between two ages.
``Learned`` keeps the last ``KEEP`` ended jobs' intervals and the ages of the jobs still
running, and refits its ``Plan`` (``creative_client/_schedule.py``) when enough is new:
half as many ended jobs again as the last fit had (at most once a second), or five
and ten seconds. Until
``MIN_ENDED`` jobs have ended it has no plan, and waits use the backoff schedule.

``export``/``load`` carry it between clients, processes and batches as plain JSON.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from ._durations import EDGES, estimate
from ._schedule import Plan, plan

#: Ended jobs kept per model (the newest).
KEEP = 2000
#: Ended jobs a model needs before its reads follow a plan.
MIN_ENDED = 20
#: Models ``load`` takes in at most.
MAX_MODELS = 1000
#: The version of ``export``'s shape.
VERSION = 1


class Learned:
    """One model's durations: what was seen, and the plan made from it."""

    __slots__ = (
        "_called", "_fit_at", "_fit_count", "_poll", "_running", "count", "ended", "plan",
    )  # fmt: skip

    def __init__(self, poll_initial: float, poll_max: float) -> None:
        self._poll = (poll_initial, poll_max)
        #: Ended jobs' ``(lo, hi)``: running at age ``lo``, over at ``hi``.
        self.ended: deque[tuple[float, float]] = deque(maxlen=KEEP)
        #: Jobs waited for now, by key: the age each was last seen running at.
        self._running: dict[object, float] = {}
        #: Jobs whose callback is awaited, by key: when each was submitted (the loop's
        #: clock, ``time.monotonic`` for asyncio's loops). No callback yet: running now.
        self._called: dict[object, float] = {}
        self.count = 0  # ended jobs seen, all told
        self.plan: Plan | None = None
        self._fit_count = 0
        self._fit_at = 0.0

    def running(self, key: object, age: float) -> None:
        if key not in self._called:  # its callback's wait says more: running until now
            self._running[key] = age

    def awaiting(self, key: object, since: float) -> None:
        """The job's callback is awaited; it was submitted at ``since``."""
        self._called[key] = since

    def over(self, key: object, lo: float, hi: float) -> None:
        """The job ended after age ``lo``, by ``hi``."""
        self._running.pop(key, None)
        self._called.pop(key, None)
        self.ended.append((lo, hi))
        self.count += 1
        new = self.count - self._fit_count
        if new >= 5 and self.due(new, time.monotonic() - self._fit_at):
            self.refit()

    def due(self, new: int, since: float) -> bool:
        """Whether to refit, ``new`` ended jobs and ``since`` seconds after the last fit:
        half as many again as it had (at most once a second), or any ten seconds on."""
        return (new >= self._fit_count // 2 and since >= 1.0) or since >= 10.0

    def left(self, key: object) -> None:
        """The job is no longer waited for (given up on, cancelled): it says nothing."""
        self._running.pop(key, None)
        self._called.pop(key, None)

    def refit(self) -> None:
        if len(self.ended) < MIN_ENDED:
            return
        now = time.monotonic()
        ages = [*self._running.values(), *(now - since for since in self._called.values())]
        prior = self.plan.survival if self.plan is not None else None  # where to start
        survival = estimate(self.ended, ages, prior)
        if survival is None:
            return
        self._fit_count = self.count
        self._fit_at = time.monotonic()
        self.plan = plan(survival, *self._poll)


class Learning:
    """A client's learned durations, by model (``None``: a provider without models)."""

    def __init__(self, provider: str, poll_initial: float, poll_max: float) -> None:
        self.provider = provider
        self._poll = (poll_initial, poll_max)
        self.models: dict[str | None, Learned] = {}

    def of(self, model: str | None) -> Learned:
        learned = self.models.get(model)
        if learned is None:
            learned = self.models[model] = Learned(*self._poll)
        return learned

    def export(self) -> dict[str, Any]:
        """What was learned, as JSON-able data for ``load``."""
        return {
            "version": VERSION,
            "provider": self.provider,
            "models": [
                {"model": model, "ended": [[round(lo, 3), round(hi, 3)] for lo, hi in kept.ended]}
                for model, kept in self.models.items()
                if kept.ended
            ],
        }

    def load(self, state: Mapping[str, Any]) -> int:
        """Take in what ``export`` gave (another provider's is ignored): the ended jobs
        taken. Raises ``ValueError`` for data of another shape, having taken nothing."""
        if not isinstance(state, Mapping) or state.get("version") != VERSION:
            raise ValueError("not learned durations (export()'s data, version 1)")
        if state.get("provider") != self.provider:
            return 0
        entries = _list(state.get("models"))
        if len(entries) > MAX_MODELS:
            raise ValueError(f"learned durations: more than {MAX_MODELS} models")
        taken: dict[str | None, list[tuple[float, float]]] = {}
        for entry in entries:  # all checked before any is taken
            model = entry.get("model") if isinstance(entry, Mapping) else None
            if not isinstance(entry, Mapping) or not (model is None or isinstance(model, str)):
                raise ValueError("a learned model entry is malformed")
            pairs = _list(entry.get("ended"))
            taken.setdefault(model, []).extend(_pair(pair) for pair in pairs[-KEEP:])
        for model, pairs in taken.items():
            learned = self.of(model)
            learned.ended.extend(pairs)
            learned.count += len(pairs)
            learned.refit()
        return sum(len(pairs) for pairs in taken.values())


def _list(value: object) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError("learned durations: expected a list")
    return value


def _pair(value: object) -> tuple[float, float]:
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        and 0 <= value[0] <= value[1] <= EDGES[-1]
    ):
        return float(value[0]), float(value[1])
    raise ValueError(f"learned durations: {repr(value)[:80]} is not an interval [lo, hi]")
