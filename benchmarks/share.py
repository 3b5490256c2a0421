"""Many processes, one budget: ``share=`` (issue 14) measured against a fake provider.

    python benchmarks/share.py            # 4 processes x 1,500 jobs of 1 s, max_jobs=64, rate=150
    python benchmarks/share.py --quick    # everything tiny: does it run, and in what shape

A PostgreSQL server (``PostgresServer``: a throwaway one on loopback) holds the share; a
fresh fake Deepixels process (``FakeProcess``) serves each run, so its counters are that
run's. Every client is a process of its own: this script again, with ``--worker``.

1. Fleet: ``--procs`` processes x ``--jobs`` jobs of ``--duration`` seconds, all with
   ``share=``, ``max_jobs`` and ``rate``, polling at the client's defaults. The fake's
   peak of jobs in flight (a job counts from its submit to the read that sees it
   finished), the busiest one-second window of requests (the fake's submit + get
   counts, sampled every 20 ms from here), jobs/s against what the budget allows.
   Then the same with one process SIGKILLed ``--kill-after`` seconds in, under
   ``share_lease=--lease``: the others finish, and the dead one's slots come back.
2. The same fleet without ``share``: each process has a budget of its own.
3. Cost: one process, instant jobs, a budget too large to bind, with ``share`` against
   the same budget in-process; jobs/s and client CPU per job, in pairs.
4. Webhook fan-in: replica A awaits ``--hook-jobs`` jobs whose callbacks all go to
   replica B (A's ``webhook_public_url`` is B's receiver), ``webhook_poll=30``: only
   the hand-over through LISTEN/NOTIFY can end A's waits quickly.

The machines are noisy: read ratios and counts, not seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import Any

from fanout import ALLOCATOR, KEY

from creative_client.testing import FakeProcess, PostgresServer

#: The stated bound (``creative_client/_pg/_budget.py``): in any one-second window at
#: most ``rate * (1 + 2 * BLOCK) + 1`` requests, BLOCK = 0.05.
OVERSHOOT = 1.1
#: How often the fake's counters are read during a fleet run (seconds).
SAMPLE_EVERY = 0.02
#: Jobs in flight counted as "recovered" after a kill: this fraction of max_jobs.
RECOVERED = 0.9

Sample = tuple[float, int, int]  # (time.monotonic(), submits + gets, jobs in flight)


# -- a worker: one client in a process of its own -------------------------------------------


async def _line() -> str:
    """The next line the parent writes to stdin ("" once it is closed)."""
    loop = asyncio.get_running_loop()
    fd = sys.stdin.fileno()
    got: asyncio.Future[str] = loop.create_future()

    def readable() -> None:
        if not got.done():
            got.set_result(os.read(fd, 256).decode())

    loop.add_reader(fd, readable)
    try:
        return await got
    finally:
        loop.remove_reader(fd)


async def work(settings: dict[str, Any]) -> dict[str, Any]:
    """Open a client, say ``ready``, wait for ``go``, run ``n`` jobs; the figures.

    ``role``: ``run`` (as_completed over ``n`` jobs) or ``receiver`` (replica B: only
    takes callbacks, until the parent says ``stop``)."""
    from creative_client import CreativeClient, GenerationRequest

    async with CreativeClient(
        "deepixels", KEY, base_url=settings["url"], model="m", **settings["options"]
    ) as client:
        if settings["role"] == "receiver":
            address = client.webhook_address
            assert address is not None
            print(f"ready {address[1]}", flush=True)
            await _line()  # "stop", or the parent is gone
            receiver = client.webhook_receiver
            assert receiver is not None
            return {"relayed": receiver.relayed, "callbacks": receiver.callbacks}
        print("ready", flush=True)
        if (await _line()).strip() != "go":
            return {"ok": 0, "aborted": True}
        n, tag = int(settings["n"]), settings["tag"]
        requests = (GenerationRequest(prompt=f"{tag}-{i}") for i in range(n))
        ok, seen, yielded = 0, 0.0, dict[str, float]()
        usage0 = resource.getrusage(resource.RUSAGE_SELF)
        start = time.monotonic()
        async for outcome in client.as_completed(requests, concurrency=settings["concurrency"]):
            now = time.monotonic()
            ok += outcome.ok
            job = outcome.job
            if job is not None:
                yielded[job.id] = now
                if job.created_at is not None:  # the fake's clock, to the millisecond
                    seen += time.time() - job.created_at.timestamp()
        end = time.monotonic()
        usage1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
        result: dict[str, Any] = {"ok": ok, "n": n, "start": start, "end": end, "cpu": cpu}
        result.update(seen=seen, tag=tag)
        if settings.get("yields"):
            result["yielded"] = yielded
        if (receiver := client.webhook_receiver) is not None:
            result["callbacks"], result["relayed"] = receiver.callbacks, receiver.relayed
        return result


def worker_main(raw: str) -> None:
    settings = json.loads(raw)
    try:
        result = asyncio.run(asyncio.wait_for(work(settings), settings["timeout"]))
    except TimeoutError:
        message = f"worker {settings.get('tag')}: not done in {settings['timeout']} s"
        raise SystemExit(message) from None
    print(json.dumps(result), flush=True)


# -- the parent's side of a worker ---------------------------------------------------------


class Worker:
    """``share.py --worker SETTINGS`` in a process of its own."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.timeout = float(settings["timeout"])
        self.tag = str(settings.get("tag", settings["role"]))
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", json.dumps(settings)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            bufsize=0,
            env={**os.environ, **ALLOCATOR},
        )

    def ready(self, timeout: float = 60.0) -> str:
        """Wait for the worker's ``ready`` line; what follows ``ready`` on it."""
        line = self._read_line(timeout)
        if not line.startswith("ready"):
            raise RuntimeError(f"worker {self.tag} said {line!r}: {self.stderr()}")
        return line[len("ready") :].strip()

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def result(self) -> dict[str, Any]:
        """The worker's figures, once it ends (within its own timeout, and a bit)."""
        try:
            out, _ = self.proc.communicate(timeout=self.timeout + 30)
        except subprocess.TimeoutExpired:
            self.stop()
            raise RuntimeError(f"worker {self.tag} hung: {self.stderr()}") from None
        if self.proc.returncode != 0:
            raise RuntimeError(f"worker {self.tag} failed: {self.stderr()}")
        lines = out.decode().strip().splitlines()
        return dict(json.loads(lines[-1]))

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        """End the worker if it still runs (a run cut short: an error, a Ctrl-C)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()
        self._err.close()

    def stderr(self) -> str:
        self._err.seek(0)
        return self._err.read().decode(errors="replace")[-3000:]

    def _read_line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        fd, line = self.proc.stdout.fileno(), b""
        deadline = time.monotonic() + timeout
        while not line.endswith(b"\n") and len(line) < 4096:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise RuntimeError(f"worker {self.tag}: no line in {timeout} s: {self.stderr()}")
            byte = os.read(fd, 1)
            if not byte:
                raise RuntimeError(f"worker {self.tag} ended: {self.stderr()}")
            line += byte
        return line.decode().strip()


def stop_all(workers: Sequence[Worker]) -> None:
    for worker in workers:
        worker.stop()


# -- sampling the fake -----------------------------------------------------------------------


class Sampler(threading.Thread):
    """Reads the fake's counters every ``SAMPLE_EVERY`` seconds, at most ``limit`` s."""

    def __init__(self, fake: FakeProcess, limit: float) -> None:
        super().__init__(daemon=True)
        self.fake, self.limit = fake, limit
        self.samples: list[Sample] = []
        self._done = threading.Event()

    def run(self) -> None:
        began = next_at = time.monotonic()
        while not self._done.is_set() and time.monotonic() - began < self.limit:
            before = time.monotonic()
            try:
                stats = self.fake.stats()
            except OSError:
                self._done.wait(SAMPLE_EVERY)
                continue
            at = (before + time.monotonic()) / 2
            self.samples.append((at, stats["submit"] + stats["get"], stats["active"]))
            next_at += SAMPLE_EVERY
            self._done.wait(max(0.0, next_at - time.monotonic()))

    def finish(self) -> list[Sample]:
        self._done.set()
        self.join(timeout=15)
        return self.samples


def busiest_second(samples: Sequence[Sample]) -> int:
    """max over t of count(t + 1 s) - count(t), over pairs of samples at most 1 s apart."""
    most, j = 0, 0
    for i, (t, count, _) in enumerate(samples):
        j = max(j, i)
        while j + 1 < len(samples) and samples[j + 1][0] - t <= 1.0:
            j += 1
        most = max(most, samples[j][1] - count)
    return most


# -- 1 and 2: fleets ----------------------------------------------------------------------------


def fleet(
    args: argparse.Namespace, share: str | None, kill_after: float | None = None
) -> dict[str, Any]:
    """Run ``args.procs`` workers against a fresh fake; what the fake and they saw."""
    options: dict[str, Any] = {
        "max_jobs": args.max_jobs,
        "rate": args.rate,
        "concurrency": args.max_jobs,
    }
    if share is not None:
        options["share"] = share
        if kill_after is not None:
            options["share_lease"] = args.lease
    with FakeProcess("deepixels", job_duration=args.duration) as fake:
        workers: list[Worker] = []
        sampler = Sampler(fake, limit=args.timeout + 60)
        killed_at: float | None = None
        try:
            for i in range(args.procs):
                settings = {
                    "role": "run",
                    "url": fake.base_url,
                    "tag": f"p{i}",
                    "n": args.jobs,
                    "concurrency": args.max_jobs,
                    "options": options,
                    "timeout": args.timeout,
                }
                workers.append(Worker(settings))
            for worker in workers:
                worker.ready()
            sampler.start()
            time.sleep(0.1)  # a sample or more before the first request
            for worker in workers:
                worker.send("go")
            began = time.monotonic()
            live = workers
            made: dict[str, int] = {}
            victim = ""
            if kill_after is not None:
                time.sleep(max(0.0, began + kill_after - time.monotonic()))
                # The victim: the process that made the most jobs so far, so likely the
                # one holding the most slots (the others' lose nothing by its death).
                for prompt, count in fake.prompts().items():
                    tag = prompt.split("-")[0]
                    made[tag] = made.get(tag, 0) + count
                doomed = max(workers, key=lambda w: made.get(w.tag, 0))
                victim = doomed.tag
                if doomed.proc.poll() is None:
                    doomed.kill()
                    killed_at = time.monotonic()
                live = [worker for worker in workers if worker is not doomed]
            results = [worker.result() for worker in live]
            time.sleep(0.1)  # the last samples, after the last request
        finally:
            samples = sampler.finish()
            stop_all(workers)
        stats = fake.stats()
    return {
        "results": results,
        "samples": samples,
        "stats": stats,
        "killed_at": killed_at,
        "began": began,
        "made": made,
        "victim": victim,
    }


def verdict(ok: bool) -> str:
    return "within" if ok else "EXCEEDED"


def report_fleet(args: argparse.Namespace, run: dict[str, Any]) -> dict[str, float]:
    results, stats, samples = run["results"], run["stats"], run["samples"]
    ok, n = sum(r["ok"] for r in results), sum(r["n"] for r in results)
    start, end = min(r["start"] for r in results), max(r["end"] for r in results)
    jobs_per_s = ok / (end - start)
    requests = stats["submit"] + stats["get"]
    per_job = requests / max(stats["jobs"], 1)
    seen = sum(r["seen"] for r in results) / max(ok, 1)
    window = [s for s in samples if start <= s[0] <= end]
    mean_in_flight = statistics.fmean(s[2] for s in window) if window else float("nan")
    busiest = busiest_second(samples)
    bound = args.rate * OVERSHOOT + 1
    print(f"jobs: {ok:,} of {n:,} ok in {end - start:.1f} s: {jobs_per_s:.1f} jobs/s")
    print(
        f"peak jobs in flight (the fake's count): {stats['peak_active']} "
        f"(max_jobs {args.max_jobs}: {verdict(stats['peak_active'] <= args.max_jobs)})"
    )
    print(
        f"busiest one-second window: {busiest} requests "
        f"(bound rate*1.1+1 = {bound:.0f}: {verdict(busiest <= bound)})"
    )
    print(f"requests per job: {per_job:.2f} ({requests:,} submits and reads)")
    print(f"mean job time seen: {seen:.3f} s (the fake making it -> the client yielding it)")
    print(f"mean jobs in flight (sampled): {mean_in_flight:.1f}")
    by_slots, by_rate = args.max_jobs / seen, args.rate / per_job
    allowed = min(by_slots, by_rate)
    print(
        f"the budget allows min(max_jobs / mean job time seen, rate / requests per job) = "
        f"min({by_slots:.1f}, {by_rate:.1f}) = {allowed:.1f} jobs/s"
    )
    print(f"fleet jobs/s / what the budget allows: {jobs_per_s / allowed:.3f}")
    ends = sorted(r["end"] - r["start"] for r in results)
    print(
        f"each process's {args.jobs:,} jobs took {ends[0]:.1f} to {ends[-1]:.1f} s "
        f"(first done / last done: {ends[0] / ends[-1]:.2f}; 1.00 is an even split)"
    )
    return {"peak": stats["peak_active"], "busiest": busiest, "jobs_per_s": jobs_per_s}


def report_kill(args: argparse.Namespace, run: dict[str, Any]) -> None:
    results, stats, samples = run["results"], run["stats"], run["samples"]
    killed_at = run["killed_at"]
    ok, n = sum(r["ok"] for r in results), sum(r["n"] for r in results)
    print(
        f"the other {len(results)} processes: {ok:,} of {n:,} jobs ok "
        f"({'all' if ok == n else 'NOT ALL'})"
    )
    if killed_at is None:
        print("the doomed process ended before its kill: nothing measured")
        return
    # Every job of a live process was read to its end, so what the fake still counts
    # in flight now is the dead process's: submitted, never read, in flight there for
    # ever. A real provider ends them after their duration; they are left out below.
    orphans = stats["active"]
    before = [s[2] for s in samples if killed_at - 1.0 <= s[0] < killed_at]
    after = [(t, active - orphans) for t, _, active in samples if t >= killed_at]
    threshold = math.ceil(RECOVERED * args.max_jobs)
    made, victim = run["made"], run["victim"]
    print(
        f"killed {victim} {killed_at - run['began']:.1f} s in, the process that had made the "
        f"most jobs (jobs made by then: "
        + ", ".join(f"p{i} {made.get(f'p{i}', 0)}" for i in range(args.procs))
        + ")"
    )
    print(
        f"it left {orphans} jobs unread (the fake counts them in flight for ever, its peak "
        f"{stats['peak_active']} with them; left out below)"
    )
    dipped = next((i for i, (_, live) in enumerate(after) if live < threshold), None)
    back = None
    if dipped is not None:
        back = next(((t, live) for t, live in after[dipped:] if live >= threshold), None)
    until = back[0] if back is not None else killed_at + args.lease + 2.0
    lowest = min((live for t, live in after if t <= until), default=0)
    print(
        f"in flight the second before the kill: max {max(before, default=0)}, "
        f"then down to {lowest} (the dead process's slots held until its lease ends)"
    )
    if dipped is None:
        print(f"in flight never fell below {threshold} after the kill")
    elif back is None:
        print(f"in flight did not come back to >= {threshold} before the run ended")
    else:
        print(
            f"in flight back to >= {threshold} ({RECOVERED:.0%} of max_jobs): "
            f"{back[0] - killed_at:.2f} s after the kill (share_lease {args.lease:g} s)"
        )
    live_counts = [s[2] for s in samples if s[0] < killed_at] + [live for _, live in after]
    peak = max(live_counts, default=0)
    bound = args.rate * OVERSHOOT + 1
    busiest = busiest_second(samples)
    print(
        f"peak jobs in flight (sampled, the dead process's unread jobs left out): {peak} "
        f"(max_jobs {args.max_jobs}: {verdict(peak <= args.max_jobs)})"
    )
    print(
        f"busiest one-second window: {busiest} requests "
        f"(bound rate*1.1+1 = {bound:.0f}: {verdict(busiest <= bound)})"
    )


# -- 3: the cost of the share ---------------------------------------------------------------


def cost(args: argparse.Namespace, share: str) -> None:
    options = {
        "max_jobs": args.cost_concurrency,
        "rate": 100_000,
        "poll_initial": 0,
        "concurrency": args.cost_concurrency,
    }
    runs: dict[str, list[dict[str, float]]] = {"local": [], "share": []}
    with FakeProcess("deepixels") as fake:
        for i in range(args.pairs):
            for side in ("local", "share"):
                more = {"share": share} if side == "share" else {}
                settings = {
                    "role": "run",
                    "url": fake.base_url,
                    "tag": f"{side}{i}",
                    "n": args.cost_jobs,
                    "concurrency": args.cost_concurrency,
                    "options": {**options, **more},
                    "timeout": args.timeout,
                }
                before = fake.stats()
                worker = Worker(settings)
                try:
                    worker.ready()
                    worker.send("go")
                    result = worker.result()
                finally:
                    worker.stop()
                after = fake.stats()
                if result["ok"] != args.cost_jobs:
                    raise SystemExit(f"cost {side}: {result['ok']} of {args.cost_jobs} ok")
                requests = after["submit"] + after["get"] - before["submit"] - before["get"]
                figures = {
                    "jobs_per_s": result["ok"] / (result["end"] - result["start"]),
                    "cpu_per_job": result["cpu"] / result["ok"],
                    "requests_per_job": requests / result["ok"],
                }
                runs[side].append(figures)
                print(
                    f"pair {i + 1} {side:>5}: {figures['jobs_per_s']:8.0f} jobs/s  "
                    f"{figures['cpu_per_job'] * 1e6:7.1f} us CPU/job  "
                    f"{figures['requests_per_job']:.2f} req/job",
                    flush=True,
                )
    print(
        f"{'medians of ' + str(args.pairs) + ' pairs':24}{'local':>10}{'share':>10}"
        f"{'share / local':>15}{'per pair':>10}"
    )
    for label, key, scale in (
        ("jobs/s", "jobs_per_s", 1.0),
        ("client CPU us/job", "cpu_per_job", 1e6),
        ("HTTP requests/job", "requests_per_job", 1.0),
    ):
        a = statistics.median(r[key] for r in runs["local"])
        b = statistics.median(r[key] for r in runs["share"])
        pairs = zip(runs["local"], runs["share"], strict=True)
        paired = statistics.median(y[key] / x[key] for x, y in pairs)
        print(f"{label:24}{a * scale:10.2f}{b * scale:10.2f}{b / a:15.3f}{paired:10.3f}")


# -- 4: webhook fan-in ----------------------------------------------------------------------


def fan_in(args: argparse.Namespace, share: str) -> None:
    hooks = {
        "share": share,
        "webhook_listen": "127.0.0.1:0",
        "webhook_poll": 30.0,
        "concurrency": args.hook_concurrency,
    }
    with FakeProcess("deepixels", job_duration=args.hook_duration, job_spread=0.2) as fake:
        workers: list[Worker] = []
        try:
            b = Worker(
                {
                    "role": "receiver",
                    "url": fake.base_url,
                    "options": hooks,
                    "timeout": args.timeout + 60,
                }
            )
            workers.append(b)
            port = int(b.ready())
            a_options = {**hooks, "webhook_public_url": f"http://127.0.0.1:{port}"}
            a = Worker(
                {
                    "role": "run",
                    "url": fake.base_url,
                    "tag": "a",
                    "n": args.hook_jobs,
                    "concurrency": args.hook_concurrency,
                    "options": a_options,
                    "yields": True,
                    "timeout": args.timeout,
                }
            )
            workers.append(a)
            a.ready()
            a.send("go")
            result = a.result()
            b.send("stop")
            relays = b.result()
        finally:
            stop_all(workers)
        stats, sent = fake.stats(), fake.callbacks()
    yielded: dict[str, float] = result["yielded"]
    delays = sorted((t - sent[job]) * 1000 for job, t in yielded.items() if job in sent)
    per_job = (stats["submit"] + stats["get"]) / max(stats["jobs"], 1)
    print(
        f"A: {result['ok']} of {result['n']} ok; callbacks taken by A's own receiver: "
        f"{result['callbacks']}; relayed by B to A: {relays['relayed']}"
    )
    if len(delays) > 1:
        cuts = statistics.quantiles(delays, n=100, method="inclusive")
        print(
            f"callback -> yield on A: p50 {cuts[49]:.1f} ms, p99 {cuts[98]:.1f} ms "
            f"(max {delays[-1]:.1f}; {len(delays)} jobs; A's fallback poll is 30 s away)"
        )
    else:
        print("callback -> yield on A: no callbacks matched")
    print(
        f"requests per job (submit + get): {per_job:.3f} "
        f"(goal <= 2.2: {'met' if per_job <= 2.2 else 'MISSED'})"
    )


# -- the driver -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--procs", type=int, default=4, help="processes in the fleet")
    parser.add_argument("--jobs", type=int, default=1500, help="jobs per process")
    parser.add_argument("--duration", type=float, default=1.0, help="seconds a job lasts")
    parser.add_argument("--max-jobs", type=int, default=64, help="the shared max_jobs")
    parser.add_argument("--rate", type=float, default=150.0, help="the shared rate, requests/s")
    parser.add_argument("--lease", type=float, default=5.0, help="share_lease of the kill run")
    parser.add_argument("--kill-after", type=float, default=5.0, help="seconds, in the kill run")
    parser.add_argument("--cost-jobs", type=int, default=3000)
    parser.add_argument("--cost-concurrency", type=int, default=256)
    parser.add_argument("--pairs", type=int, default=3, help="pairs of cost runs")
    parser.add_argument("--hook-jobs", type=int, default=500)
    parser.add_argument("--hook-duration", type=float, default=2.0, help="+/- 20%%")
    parser.add_argument("--hook-concurrency", type=int, default=250)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds, per run")
    parser.add_argument("--only", default="1,2,3,4", help="which parts, comma-separated")
    parser.add_argument("--quick", action="store_true", help="everything tiny")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args.worker)
        return
    if args.quick:
        args.procs, args.jobs, args.duration, args.max_jobs, args.rate = 3, 24, 0.2, 12, 60.0
        args.lease, args.kill_after = 1.0, 0.8
        args.cost_jobs, args.cost_concurrency, args.pairs = 200, 32, 1
        args.hook_jobs, args.hook_duration, args.hook_concurrency = 30, 0.3, 30
        args.timeout = 60.0
    parts = set(args.only.split(","))
    with PostgresServer() as pg:
        print(f"PostgreSQL {pg.url}; fake Deepixels processes; {os.cpu_count()} CPUs", flush=True)
        what = (
            f"{args.procs} processes x {args.jobs:,} jobs of {args.duration:g} s, "
            f"max_jobs={args.max_jobs}, rate={args.rate:g}/s, polling at the defaults"
        )
        shared = unshared = None
        if "1" in parts:
            print(f"\n== 1. one budget, shared: {what}", flush=True)
            shared = report_fleet(args, fleet(args, pg.url))
            print(
                f"\n== 1b. the same, one process SIGKILLed {args.kill_after:g} s in, "
                f"share_lease={args.lease:g} s",
                flush=True,
            )
            report_kill(args, fleet(args, pg.url, kill_after=args.kill_after))
        if "2" in parts:
            print(f"\n== 2. without share (each process its own budget): {what}", flush=True)
            unshared = report_fleet(args, fleet(args, None))
        if shared and unshared:
            print(
                f"\nwhat the share prevents: peak in flight {unshared['peak']} without, "
                f"{shared['peak']} with ({unshared['peak'] / args.max_jobs:.2f}x max_jobs "
                f"without); busiest second {unshared['busiest']} without, "
                f"{shared['busiest']} with ({unshared['busiest'] / args.rate:.2f}x rate "
                f"without)"
            )
        if "3" in parts:
            print(
                f"\n== 3. the share's cost: 1 process, {args.cost_jobs:,} instant jobs, "
                f"concurrency {args.cost_concurrency}, max_jobs={args.cost_concurrency}, "
                f"rate=100000, poll_initial=0; share against the same budget in-process",
                flush=True,
            )
            cost(args, pg.url)
        if "4" in parts:
            print(
                f"\n== 4. webhook fan-in: {args.hook_jobs} jobs of {args.hook_duration:g} s "
                f"(+/- 20%) awaited on replica A, every callback sent to replica B, "
                f"webhook_poll=30",
                flush=True,
            )
            fan_in(args, pg.url)


if __name__ == "__main__":
    main()
