"""Learned polling against backoff (issue 16): requests per job, and how late a job's end
is noticed, for jobs whose durations vary as real ones do.

    python benchmarks/polling.py                          # every distribution, ~20 min
    python benchmarks/polling.py --only lognormal-6-0.5   # the headline case, ~2 min
    python benchmarks/polling.py --scale 0.1              # times shrunk tenfold, ~2-3 min

For each distribution of job durations, the two arms run at the same time, each a
client in its own child process (``CreativeClient(..., poll="learned")`` and
``poll="backoff"``), each against its own fake Deepixels process: both fakes have the
same ``--durations`` spec and seed, so both arms get the same job durations. Each arm
keeps ``--in-flight`` jobs in flight (``as_completed``) until it has run ``--jobs``.

Per arm: HTTP requests per job (submits and reads, counted by its fake), and the delay
from each job's end to the first read that saw it ended, p50 and p90 (both times taken
by the fake, ``GET /_fake/timings``: one clock); then learned / backoff. Ratios compare;
absolute times move with the machine.

The headline case runs alone; the others run two at a time (``--lanes``), longest
first, so the whole benchmark takes about 20 minutes (most of it the heavy tails: a
lognormal of median 60 s and sigma 0.8 has a p99 of 6.4 minutes). Jobs may run up to
an hour (the client's ``timeout``). ``--scale S`` multiplies job times and the clients'
``poll_initial`` and ``poll_max`` by S and divides the delays shown by S (real-speed
seconds): a quick look, not the figures (the learned schedule's own constants do not
scale).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs

from creative_client.testing import FakeProcess

KEY = "bench-key"
ARMS = ("learned", "backoff")
HEADLINE = "lognormal-6-0.5"
#: The goals on the headline case, for the learned arm (issue 16).
GOALS = {"requests_per_job": 3.0, "p50": 1.5, "p90": 3.5}
IMAGE, VIDEO = "flux-schnell", "video-gen"  # a Deepixels image model and a video one


@attrs.frozen
class Case:
    """A distribution of job durations (lognormal, per model), and how many jobs run."""

    name: str
    #: (model, median seconds, sigma); the jobs cycle through the models.
    models: tuple[tuple[str, float, float], ...]
    jobs: int
    in_flight: int

    def spec(self, scale: float) -> str:
        """The fakes' ``--durations``: one lognormal for every job, or one per model."""
        dists = {
            model: f"lognormal:{median * scale:.6g}:{sigma:g}"
            for model, median, sigma in self.models
        }
        if len(dists) == 1:
            return next(iter(dists.values()))
        return ",".join(f"{model}={dist}" for model, dist in dists.items())


def lognormal(median: float, sigma: float, jobs: int, in_flight: int) -> Case:
    return Case(f"lognormal-{median:g}-{sigma:g}", ((IMAGE, median, sigma),), jobs, in_flight)


#: In the order shown. Sizes: about 2 min for the headline (3,000 jobs, 300 in flight,
#: alone), the rest 1-12 min each (the sigma 0.8 tails the longest), two at a time.
CASES = (
    lognormal(6, 0.5, 3000, 300),
    lognormal(3, 0.3, 3000, 300),
    lognormal(3, 0.8, 3000, 300),
    lognormal(20, 0.3, 1500, 300),
    lognormal(20, 0.8, 1000, 250),
    lognormal(60, 0.3, 600, 300),
    lognormal(60, 0.8, 300, 300),
    Case("bimodal-5-60", ((IMAGE, 5, 0.3), (VIDEO, 60, 0.3)), 1500, 300),
)
#: The order the others run in: longest first, so the lanes end together.
LONGEST_FIRST = (
    "lognormal-60-0.8",
    "lognormal-20-0.8",
    "lognormal-60-0.3",
    "bimodal-5-60",
    "lognormal-20-0.3",
    "lognormal-3-0.8",
    "lognormal-3-0.3",
)


# -- an arm, run in a child process -------------------------------------------------------


async def run_arm(
    arm: str,
    url: str,
    models: Sequence[str],
    jobs: int,
    in_flight: int,
    scale: float,
    learned: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``jobs`` jobs, ``in_flight`` at a time, polling as ``arm`` says; the counts,
    and the durations learned. ``learned``: durations to start from."""
    from creative_client import CreativeClient, GenerationRequest

    options: dict[str, Any] = {"poll": arm, "timeout": max(3600 * scale, 60.0)}
    if scale != 1:
        options |= {"poll_initial": 0.5 * scale, "poll_max": 5.0 * scale}
    requests = (
        GenerationRequest(prompt=f"prompt {i}", model=models[i % len(models)]) for i in range(jobs)
    )
    ok = failed = 0
    async with CreativeClient(
        "deepixels", KEY, base_url=url, model=models[0], concurrency=in_flight, **options
    ) as client:
        if learned is not None:
            client.load_durations(learned)
        async for outcome in client.as_completed(requests, concurrency=in_flight):
            ok += outcome.ok
            failed += not outcome.ok
            if outcome.error is not None and failed == 1:
                print(f"{arm}: {type(outcome.error).__name__}: {outcome.error}", file=sys.stderr)
        return {"ok": ok, "failed": failed, "durations": client.export_durations()}


# -- the driver ---------------------------------------------------------------------------


class TimedFake(FakeProcess):
    """A fake Deepixels process whose job durations follow ``spec`` (``--durations``),
    with its per-job timings."""

    def __init__(self, spec: str, seed: int) -> None:
        super().__init__("deepixels")
        self._args += ["--durations", spec, "--seed", str(seed)]

    def timings(self) -> dict[str, dict[str, Any]]:
        timings: dict[str, dict[str, Any]] = self._call("GET", "timings")
        return timings


def percentile(values: Sequence[float], q: int) -> float:
    """The ``q``-th percentile (``q`` a multiple of 10), NaN without values."""
    if not values:
        return float("nan")
    if len(values) == 1 or q == 50:
        return float(statistics.median(values))
    return statistics.quantiles(values, n=10)[q // 10 - 1]


def figures(fake: TimedFake, scale: float) -> dict[str, Any]:
    """An arm's figures from its fake: requests per job, delays from end to seen."""
    stats, timings = fake.stats(), fake.timings()
    jobs = max(stats["jobs"], 1)
    delays = [(t["seen"] - t["ended"]) / scale for t in timings.values() if t["seen"] is not None]
    reads = sum(t["reads"] for t in timings.values())
    return {
        "jobs": stats["jobs"],
        "requests_per_job": (stats["submit"] + stats["get"]) / jobs,
        # The timings' own count: what reads answered a job's document (no faults here).
        "requests_per_job_timings": (stats["jobs"] + reads) / jobs,
        "p50": percentile(delays, 50),
        "p90": percentile(delays, 90),
        "unseen": len(timings) - len(delays),
    }


def run_case(
    case: Case, args: argparse.Namespace, seed: int, carry: tuple[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """Both arms of ``case`` at once, each against its own fake; each arm's figures.
    ``carry``: ``("--export", PATH)`` or ``("--load", PATH)`` for the learned arm."""
    jobs = args.jobs or case.jobs
    in_flight = args.in_flight or case.in_flight
    spec = case.spec(args.scale)
    models = ",".join(model for model, _, _ in case.models)
    started = time.monotonic()
    with TimedFake(spec, seed) as learned, TimedFake(spec, seed) as backoff:
        fakes = {"learned": learned, "backoff": backoff}
        children = {
            arm: subprocess.Popen(
                [
                    sys.executable, __file__, "--child", arm, "--url", fake.base_url,
                    "--models", models, "--jobs", str(jobs), "--in-flight", str(in_flight),
                    "--scale", str(args.scale),
                    *(carry if carry is not None and arm == "learned" else ()),
                ],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for arm, fake in fakes.items()
        }  # fmt: skip
        try:
            outs = {arm: child.communicate(timeout=7200) for arm, child in children.items()}
        finally:
            for child in children.values():
                if child.poll() is None:
                    child.kill()
                    child.wait()
        results: dict[str, dict[str, Any]] = {}
        for arm, (stdout, stderr) in outs.items():
            if children[arm].returncode != 0:
                raise SystemExit(f"{case.name} {arm}: the run failed:\n{stderr}")
            run = json.loads(stdout)
            if run["ok"] != jobs:
                raise SystemExit(
                    f"{case.name} {arm}: only {run['ok']} of {jobs} jobs ok:\n{stderr}"
                )
            results[arm] = result = {**run, **figures(fakes[arm], args.scale)}
            if result["requests_per_job"] != result["requests_per_job_timings"]:
                print(f"warning: {case.name} {arm}: the fake's counts and timings disagree")
    seconds = time.monotonic() - started
    name = case.name + (" warm" if carry is not None and carry[0] == "--load" else "")
    for arm, result in results.items():
        print(
            f"{name:>22} {arm:>7}: {jobs} jobs ({in_flight} in flight) in {seconds:.0f} s, "
            f"{result['requests_per_job']:.2f} requests/job, delay end->seen "
            f"p50 {result['p50']:.2f} s, p90 {result['p90']:.2f} s",
            flush=True,
        )
    return results


def ratio(results: dict[str, dict[str, Any]], key: str) -> float:
    a, b = results["learned"][key], results["backoff"][key]
    return float(a / b) if b else float("nan")


def table(
    cases: Sequence[Case], runs: dict[str, dict[str, dict[str, Any]]], args: argparse.Namespace
) -> None:
    titles = ("requests/job", "p50 delay end->seen s", "p90 delay end->seen s")
    print("\n" + " " * 37 + "".join(f"{title:^27}" for title in titles))
    metric = f"{'learned':>9}{'backoff':>9}{'ratio':>9}"
    print(f"{'distribution':23}{'jobs':>6}{'flight':>7} " + metric * 3)
    by_name = {case.name: case for case in cases}
    for name, results in runs.items():
        case = by_name[name.removesuffix(" warm")]
        row = f"{name:23}{args.jobs or case.jobs:>6}{args.in_flight or case.in_flight:>7} "
        for key in ("requests_per_job", "p50", "p90"):
            row += f"{results['learned'][key]:9.2f}{results['backoff'][key]:9.2f}"
            row += f"{ratio(results, key):9.3f}"
        print(row)


def verdicts(runs: dict[str, dict[str, dict[str, Any]]]) -> None:
    for name in (HEADLINE, HEADLINE + " warm"):
        if name in runs:
            goals(name, runs[name]["learned"])
    if HEADLINE not in runs:
        print(f"\ngoals on {HEADLINE}: not run")
    worse = [
        name
        for name, results in runs.items()
        if ratio(results, "requests_per_job") > 1 and ratio(results, "p50") > 1
    ]
    print(
        "learned worse than backoff on both requests/job and p50 delay: "
        + (", ".join(worse) if worse else "nowhere")
    )


def goals(name: str, learned: dict[str, Any]) -> None:
    said = [
        f"{label} {learned[key]:.2f}{unit} (<= {GOALS[key]:g}: "
        f"{'met' if learned[key] <= GOALS[key] else 'MISSED'})"
        for key, label, unit in (
            ("requests_per_job", "requests/job", ""),
            ("p50", "p50 delay", " s"),
            ("p90", "p90 delay", " s"),
        )
    ]
    held = all(learned[key] <= goal for key, goal in GOALS.items())
    print(
        f"\ngoals on {name}, learned: {', '.join(said)}: {'all held' if held else 'NOT all held'}"
    )


def lanes(cases: Sequence[Case], args: argparse.Namespace) -> Iterator[tuple[str, Any]]:
    """Run the headline case alone, then the others ``args.lanes`` at a time."""
    rest = [case for case in cases if case.name != HEADLINE]
    rest.sort(key=lambda case: LONGEST_FIRST.index(case.name))
    if len(rest) < len(cases):
        headline = next(c for c in cases if c.name == HEADLINE)
        with tempfile.TemporaryDirectory() as folder:
            kept = os.path.join(folder, "durations.json")
            yield HEADLINE, run_case(headline, args, args.seed, ("--export", kept))
            if args.warm:  # a later batch: the learned arm starts from what the first learned
                yield HEADLINE + " warm", run_case(headline, args, args.seed + 1, ("--load", kept))
    with ThreadPoolExecutor(max_workers=max(args.lanes, 1)) as pool:
        futures = [(case.name, pool.submit(run_case, case, args, args.seed)) for case in rest]
        for name, future in futures:
            yield name, future.result()


def main() -> None:
    names = [case.name for case in CASES]
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", help=f"comma-separated, of: {', '.join(names)}")
    parser.add_argument("--jobs", type=int, help="jobs per arm (default: per distribution)")
    parser.add_argument("--in-flight", type=int, help="jobs in flight per arm (default: per one)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply job times by this")
    parser.add_argument("--lanes", type=int, default=2, help="distributions run at once")
    parser.add_argument("--seed", type=int, default=1, help="the fakes' seed")
    parser.add_argument("--child", choices=ARMS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--models", help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--export", help=argparse.SUPPRESS)
    parser.add_argument(
        "--no-warm",
        dest="warm",
        action="store_false",
        help="skip the headline case's second run, a later batch started from the first's "
        "learned durations",
    )
    args = parser.parse_args()
    if args.child:
        models = args.models.split(",")
        start = json.loads(Path(args.load).read_text()) if args.load else None
        run = run_arm(args.child, args.url, models, args.jobs, args.in_flight, args.scale, start)
        result = asyncio.run(run)
        if args.export:
            Path(args.export).write_text(json.dumps(result["durations"]))
        del result["durations"]
        print(json.dumps(result))
        return
    if args.scale <= 0:
        parser.error("--scale must be > 0")
    chosen = args.only.split(",") if args.only else names
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        parser.error(f"unknown distribution(s) {', '.join(unknown)}; known: {', '.join(names)}")
    cases = [case for case in CASES if case.name in chosen]
    if args.scale != 1:
        print(
            f"note: --scale {args.scale:g}: job times, poll_initial and poll_max scaled; "
            "delays shown at real speed (divided by the scale); indicative only"
        )
    started = time.monotonic()
    runs = dict(lanes(cases, args))
    print(
        f"\nlearned / backoff polling, Deepixels fakes (seed {args.seed}), "
        f"{(time.monotonic() - started) / 60:.1f} min in all:"
    )
    table(cases, runs, args)
    verdicts(runs)


if __name__ == "__main__":
    main()
