"""How long a fake's jobs run, drawn per job: ``FakeServer(durations=...)``.

A spec is one distribution for every job, or a mix by model::

    fixed:2                        every job runs 2 s
    uniform:1:3                    between 1 and 3 s, uniformly
    lognormal:6:0.5                lognormal: median 6 s, sigma 0.5 (of the log)
    flux-schnell=lognormal:5:0.3,video-gen=lognormal:60:0.3,*=fixed:1

In a mix, each entry is ``MODEL=DISTRIBUTION``; ``*`` is the entry for every model the
others do not name (and for jobs without a model, such as Neocu's). A mix without
``*`` covers only the models it names: a submit for any other model is refused by
the fake with a 400 naming the model, rather than given a duration nobody asked for.
A model name may not contain a comma; it may contain ``=`` or ``:``.

Draws come from the fake's seeded RNG, so a fake with the same seed and spec gives
its n-th job the same duration.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Literal, cast

import attrs

__all__ = ["Distribution", "Durations"]

Kind = Literal["fixed", "uniform", "lognormal"]
_ARITY: Mapping[str, int] = {"fixed": 1, "uniform": 2, "lognormal": 2}
_FORMS = "fixed:S, uniform:A:B or lognormal:MEDIAN:SIGMA"


@attrs.frozen
class Distribution:
    """One distribution of job durations (seconds): ``fixed`` (``a``), ``uniform``
    (between ``a`` and ``b``) or ``lognormal`` (median ``a``, sigma ``b`` of the log)."""

    kind: Kind
    a: float
    b: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Distribution:
        """``fixed:S``, ``uniform:A:B`` or ``lognormal:MEDIAN:SIGMA``; raises ``ValueError``
        naming ``text``."""
        kind, *raw = (part.strip() for part in text.strip().split(":"))
        arity = _ARITY.get(kind)
        if arity is None or len(raw) != arity:
            raise ValueError(f"{text.strip()!r} is not a distribution ({_FORMS})")
        try:
            numbers = [float(value) for value in raw]
        except ValueError:
            raise ValueError(f"{text.strip()!r}: {_FORMS} take numbers") from None
        if not all(math.isfinite(n) and n >= 0 for n in numbers):
            raise ValueError(f"{text.strip()!r}: the numbers must be finite and >= 0")
        if kind == "uniform" and numbers[0] > numbers[1]:
            raise ValueError(f"{text.strip()!r}: uniform:A:B needs A <= B")
        if kind == "lognormal" and numbers[0] <= 0:
            raise ValueError(f"{text.strip()!r}: a lognormal's median must be > 0")
        return cls(cast(Kind, kind), numbers[0], numbers[1] if arity == 2 else 0.0)

    def draw(self, rng: random.Random) -> float:
        """A duration, drawn from ``rng``."""
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        return rng.lognormvariate(math.log(self.a), self.b)

    def __str__(self) -> str:
        if self.kind == "fixed":
            return f"fixed:{self.a:g}"
        return f"{self.kind}:{self.a:g}:{self.b:g}"


@attrs.frozen
class Durations:
    """Job durations by model, parsed from a spec (see the module's docstring).

    ``by_model`` maps model names to their distribution; ``default`` (the ``*`` entry,
    or the whole spec when it is one distribution) covers every other model, and jobs
    without one. ``spec`` is the text it was parsed from.
    """

    spec: str
    by_model: Mapping[str, Distribution] = attrs.field(factory=dict)
    default: Distribution | None = None

    @classmethod
    def parse(cls, spec: str) -> Durations:
        """The durations a spec says; raises ``ValueError`` naming the spec when it is
        not one."""
        text = spec.strip()
        if not text:
            raise ValueError(f"durations {spec!r}: the spec is empty")
        try:
            if "=" not in text:
                return cls(spec, {}, Distribution.parse(text))
            by_model: dict[str, Distribution] = {}
            default: Distribution | None = None
            for entry in text.split(","):
                model, equals, dist = entry.rpartition("=")
                model = model.strip()
                if not equals or not model:
                    raise ValueError(f"{entry.strip()!r} is not MODEL=DISTRIBUTION")
                if model in by_model or (model == "*" and default is not None):
                    raise ValueError(f"the model {model!r} has two entries")
                if model == "*":
                    default = Distribution.parse(dist)
                else:
                    by_model[model] = Distribution.parse(dist)
        except ValueError as exc:
            raise ValueError(f"durations {spec!r}: {exc}") from None
        return cls(spec, by_model, default)

    def covers(self, model: str | None) -> bool:
        """Whether a job of ``model`` (None: a job without one) gets a duration here."""
        return self.default is not None or (model is not None and model in self.by_model)

    def draw(self, rng: random.Random, model: str | None) -> float:
        """A duration for a job of ``model``, drawn from ``rng``; ``ValueError`` naming
        the model when the spec does not cover it (see ``covers``)."""
        dist = self.by_model.get(model, self.default) if model is not None else self.default
        if dist is None:
            raise ValueError(self.uncovered(model))
        return dist.draw(rng)

    def uncovered(self, model: str | None) -> str:
        """What to say about a job whose model the spec does not cover."""
        what = f"the model {model!r}" if model is not None else "jobs without a model"
        return f"the fake's durations {self.spec!r} name no duration for {what} (add '*=...')"

    def __str__(self) -> str:
        return self.spec
