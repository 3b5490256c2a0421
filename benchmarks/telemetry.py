"""What OpenTelemetry costs the fan-out: raw aiohttp, the SDK without OpenTelemetry
installed, and the SDK with telemetry on, side by side.

    python benchmarks/telemetry.py                  # N=10,000 at concurrency 256, 3 rounds
    python benchmarks/telemetry.py --instructions   # instructions/job under callgrind

The same fan-out as ``fanout.py`` (instant jobs: one submit, one read each), each run
in a child process of its own, in rounds raw / absent / on, against one fake Deepixels
process. "absent": the SDK's default client, in a process where ``opentelemetry``
cannot be imported (as if the extra were not installed; the child checks that nothing
of it was loaded). "on": ``telemetry=Telemetry(...)`` with the OpenTelemetry SDK's
providers as an app would set them up for production (a ``BatchSpanProcessor``, whose
thread's CPU counts too, to an exporter that drops what it is handed, and a metric
reader), so what is measured is the instrumentation and the SDK, not a network.

With ``--instructions``, each side runs under valgrind's callgrind instead, with N jobs
and with none (``instructions.py``'s way): instructions per job do not move with the
neighbours on a shared machine, as times do.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from fanout import ALLOCATOR, Run, child, measure, median, run_raw, run_sdk

from creative_client.testing import FakeProcess

SIDES = ("raw", "absent", "on")


class _NoOpenTelemetry:
    """An import finder for which ``opentelemetry`` is not installed."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.split(".")[0] == "opentelemetry":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def run_absent(url: str, n: int, concurrency: int) -> int:
    sys.meta_path.insert(0, _NoOpenTelemetry())
    ok = asyncio.run(run_sdk(url, n, concurrency))
    loaded = [m for m in sys.modules if m.split(".")[0] == "opentelemetry"]
    if loaded:
        raise SystemExit(f"telemetry off imported {loaded}")
    return ok


def run_on(url: str, n: int, concurrency: int) -> tuple[int, dict[str, Any]]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    from creative_client import CreativeClient, GenerationRequest, Telemetry

    exported = [0]

    class Dropped(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            exported[0] += len(spans)
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Dropped()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    telemetry = Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)

    async def run() -> int:
        requests = (GenerationRequest(prompt=f"prompt {i}") for i in range(n))
        ok = 0
        async with CreativeClient(
            "deepixels", "bench-key", base_url=url, model="m", concurrency=concurrency,
            poll_initial=0, telemetry=telemetry,
        ) as client:  # fmt: skip
            async for outcome in client.as_completed(requests, concurrency=concurrency):
                ok += outcome.ok
        return ok

    ok = asyncio.run(run())
    tracer_provider.shutdown()  # the spans still queued are exported (and timed) too
    meter_provider.shutdown()
    return ok, {"spans": exported[0]}


RUNNERS: dict[str, Run] = {
    "raw": lambda url, n, concurrency: asyncio.run(run_raw(url, n, concurrency)),
    "absent": run_absent,
    "on": run_on,
}


def rounds(fake: FakeProcess, n: int, concurrency: int, count: int) -> None:
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    for i in range(count):
        for side in SIDES:
            result = measure(side, fake, n, concurrency, __file__)
            runs[side].append(result)
            spans = f"  {result['spans']:,} spans" if "spans" in result else ""
            print(
                f"round {i + 1} {side:>6}: {result['jobs_per_s']:8.0f} jobs/s  "
                f"{result['cpu_per_job'] * 1e6:7.1f} us CPU/job  "
                f"{result['peak_rss_mib']:6.1f} MiB  {result['requests_per_job']:.2f} req/job"
                f"{spans}",
                flush=True,
            )
    print(f"\nmedians of {count} rounds, N={n:,}, concurrency {concurrency}:")
    print(
        f"{'':20}{'raw':>10}{'absent':>10}{'on':>10}{'absent/raw':>12}{'on/raw':>9}"
        f"{'on/absent':>11}{'per round':>11}"
    )
    rows = [
        ("jobs/s", "jobs_per_s", 1.0),
        ("client CPU us/job", "cpu_per_job", 1e6),
        ("peak RSS MiB", "peak_rss_mib", 1.0),
        ("HTTP requests/job", "requests_per_job", 1.0),
    ]
    for label, key, scale in rows:
        raw, absent, on = (median(runs[side], key) for side in SIDES)
        # The median of each round's own ratio: the runs of a round are neighbours in
        # time, so it is the figure least moved by a machine that drifts.
        paired = statistics.median(
            float(b[key]) / float(a[key]) for a, b in zip(runs["absent"], runs["on"], strict=True)
        )
        print(
            f"{label:20}{raw * scale:10.2f}{absent * scale:10.2f}{on * scale:10.2f}"
            f"{absent / raw:12.3f}{on / raw:9.3f}{on / absent:11.3f}{paired:11.3f}"
        )


def instructions(side: str, url: str, n: int, concurrency: int) -> int:
    """The instructions callgrind counts for one child run (all its threads)."""
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, __file__, "--child", side, "--url", url, "--n", str(n),
        "--concurrency", str(concurrency),
    ]  # fmt: skip
    out = subprocess.run(
        command, env={**os.environ, **ALLOCATOR}, capture_output=True, text=True, timeout=3600
    )
    found = re.search(r"Collected : (\d+)", out.stderr)
    if out.returncode != 0 or not found:
        raise SystemExit(f"{side} under callgrind failed:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def counted(fake: FakeProcess, n: int, concurrency: int) -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    per_job = {}
    for side in SIDES:
        base = instructions(side, fake.base_url, 0, concurrency)
        full = instructions(side, fake.base_url, n, concurrency)
        per_job[side] = (full - base) / n
        print(f"{side:>6}: {per_job[side] / 1e3:8.1f} k instructions/job", flush=True)
    raw, absent, on = (per_job[side] for side in SIDES)
    print(
        f"absent/raw: {absent / raw:.3f}  on/raw: {on / raw:.3f}  on/absent: {on / absent:.3f}"
        f"  (N={n:,}, concurrency {concurrency})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--instructions", action="store_true", help="count, under callgrind")
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(RUNNERS[args.child], args.url, args.n, args.concurrency)
        return
    with FakeProcess("deepixels") as fake:
        if args.instructions:
            counted(fake, args.n, args.concurrency)
        else:
            rounds(fake, args.n, args.concurrency, args.rounds)


if __name__ == "__main__":
    main()
