"""The SDK's fan-out next to a minimal raw-aiohttp loop, against one fake server process.

    python benchmarks/fanout.py                       # N=10,000 at concurrency 256, 5 pairs
    python benchmarks/fanout.py --memory              # SDK peak RSS, N=10,000 vs N=100,000

Each run is its own child process (so peak RSS is that run's), in pairs A B A B ...
against the same fake Deepixels server, itself a separate process. Instant jobs:
each costs one submit and one read on both sides. Both children run with the same
pinned glibc allocator settings (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_).
Prints the medians and the ratios SDK / raw. Times are noisy on shared machines;
ratios taken in one run are what to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from creative_client.testing import FakeProcess

KEY = "bench-key"
ALLOCATOR = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}


# -- the two clients, each run in a child process -----------------------------------------


async def run_raw(url: str, n: int, concurrency: int) -> int:
    """What a careful user writes by hand with aiohttp: gather under a semaphore."""
    import aiohttp

    headers = {"x-api-key": KEY}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(i: int) -> bool:
            async with semaphore:
                body = {"model": "m", "input": {"prompt": f"prompt {i}"}}
                async with session.post(f"{url}/generate", json=body, headers=headers) as resp:
                    job = await resp.json()
                params = {"jobId": job["jobId"]}
                async with session.get(f"{url}/get", params=params, headers=headers) as resp:
                    doc = await resp.json()
                return bool(doc["status"] == "completed")

        results = await asyncio.gather(*(one(i) for i in range(n)))
    return sum(results)


async def run_sdk(url: str, n: int, concurrency: int) -> int:
    from creative_client import CreativeClient, GenerationRequest

    requests = (GenerationRequest(prompt=f"prompt {i}") for i in range(n))
    ok = 0
    async with CreativeClient(
        "deepixels", KEY, base_url=url, model="m", concurrency=concurrency, poll_initial=0
    ) as client:
        async for outcome in client.as_completed(requests, concurrency=concurrency):
            ok += outcome.ok
    return ok


#: A side: (url, n, concurrency) -> jobs that succeeded, maybe with more figures to print.
Run = Callable[[str, int, int], int | tuple[int, dict[str, Any]]]

RUNNERS: dict[str, Run] = {
    "raw": lambda url, n, concurrency: asyncio.run(run_raw(url, n, concurrency)),
    "sdk": lambda url, n, concurrency: asyncio.run(run_sdk(url, n, concurrency)),
}


def child(run: Run, url: str, n: int, concurrency: int) -> None:
    """Time one run in this process; print its figures as JSON."""
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    result = run(url, n, concurrency)
    ok, more = result if isinstance(result, tuple) else (result, {})
    elapsed = time.perf_counter() - start
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    print(
        json.dumps(
            {
                "ok": ok,
                "seconds": elapsed,
                "jobs_per_s": n / elapsed,
                "cpu_per_job": cpu / max(n, 1),
                "peak_rss_mib": usage1.ru_maxrss / 1024,
                **more,
            }
        )
    )


# -- the driver ---------------------------------------------------------------------------


def measure(
    side: str,
    fake: FakeProcess,
    n: int,
    concurrency: int,
    script: str = __file__,
    options: Sequence[str] = (),
) -> dict[str, Any]:
    """Run ``script --child side [options]`` in a fresh process; its figures, with
    requests/job."""
    url = fake.base_url
    before = fake.stats()
    out = subprocess.run(
        [
            sys.executable,
            script,
            "--child",
            side,
            "--url",
            url,
            "--n",
            str(n),
            "--concurrency",
            str(concurrency),
            *options,
        ],
        env={**os.environ, **ALLOCATOR},
        capture_output=True,
        text=True,
        timeout=900,
    )
    if out.returncode != 0:
        raise SystemExit(f"{side} run failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout)
    after = fake.stats()
    requests = (after["submit"] - before["submit"]) + (after["get"] - before["get"])
    result["requests_per_job"] = requests / n
    if result["ok"] != n:
        raise SystemExit(f"{side}: only {result['ok']} of {n} jobs succeeded")
    return result


def median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(float(r[key]) for r in runs))


def throughput(
    fake: FakeProcess,
    n: int,
    concurrency: int,
    pairs: int,
    sides: tuple[str, str] = ("raw", "sdk"),
    names: tuple[str, str, str] = ("raw aiohttp", "SDK", "SDK / raw"),
    script: str = __file__,
) -> None:
    """Run the two sides in pairs; print each run, then the medians and the ratios
    second / first (``names``: the two columns and the ratio's heading)."""
    first, second = sides
    runs: dict[str, list[dict[str, Any]]] = {first: [], second: []}
    for i in range(pairs):
        for side in sides:
            result = measure(side, fake, n, concurrency, script)
            runs[side].append(result)
            print(
                f"pair {i + 1} {side:>3}: {result['jobs_per_s']:8.0f} jobs/s  "
                f"{result['cpu_per_job'] * 1e6:7.1f} us CPU/job  "
                f"{result['peak_rss_mib']:6.1f} MiB  {result['requests_per_job']:.2f} req/job",
                flush=True,
            )
    print(f"\nmedians of {pairs} pairs, N={n:,}, concurrency {concurrency}:")
    # "per pair" is the median of each pair's own ratio: the two runs of a pair are
    # neighbours in time, so it is the figure least moved by a machine that drifts.
    print(f"{'':24}{names[0]:>14}{names[1]:>16}{names[2]:>12}{'per pair':>11}")
    rows = [
        ("jobs/s", "jobs_per_s", 1.0),
        ("client CPU us/job", "cpu_per_job", 1e6),
        ("peak RSS MiB", "peak_rss_mib", 1.0),
        ("HTTP requests/job", "requests_per_job", 1.0),
    ]
    for label, key, scale in rows:
        a, b = median(runs[first], key), median(runs[second], key)
        pairs_ = zip(runs[first], runs[second], strict=True)
        paired = statistics.median(float(y[key]) / float(x[key]) for x, y in pairs_)
        print(f"{label:24}{a * scale:14.2f}{b * scale:16.2f}{b / a:12.3f}{paired:11.3f}")


def memory(fake: FakeProcess, concurrency: int, pairs: int, small: int, large: int) -> None:
    runs: dict[int, list[dict[str, Any]]] = {small: [], large: []}
    for i in range(pairs):
        for n in (small, large):
            result = measure("sdk", fake, n, concurrency)
            runs[n].append(result)
            print(
                f"pair {i + 1} N={n:>7,}: peak RSS {result['peak_rss_mib']:6.1f} MiB  "
                f"{result['jobs_per_s']:8.0f} jobs/s",
                flush=True,
            )
    a, b = median(runs[small], "peak_rss_mib"), median(runs[large], "peak_rss_mib")
    print(f"\nSDK as_completed, concurrency {concurrency}, median of {pairs}:")
    print(f"peak RSS N={small:,}: {a:.1f} MiB   N={large:,}: {b:.1f} MiB   ratio {b / a:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--memory", action="store_true", help="N=10,000 vs N=100,000, SDK")
    parser.add_argument("--child", choices=["raw", "sdk"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(RUNNERS[args.child], args.url, args.n, args.concurrency)
        return
    with FakeProcess("deepixels") as fake:
        if args.memory:
            memory(fake, args.concurrency, args.pairs, 10_000, 100_000)
        else:
            throughput(fake, args.n, args.concurrency, args.pairs)


if __name__ == "__main__":
    main()
