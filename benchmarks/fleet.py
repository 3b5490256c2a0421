"""Many workers, one batch kept in PostgreSQL (issue 15), measured against a fake provider.

    python benchmarks/fleet.py            # the issue's sizes; several minutes
    python benchmarks/fleet.py --quick    # everything tiny: does it run, and in what shape

A throwaway PostgreSQL server (``PostgresServer``) holds the journals, a fresh database
per run; a fresh fake Deepixels process (``FakeProcess``) serves each run, so its
counters are that run's. Every worker is a real ``creative batch --journal
postgresql://... --batch NAME`` process (``python -m creative_client``).

1. Losing a worker: ``--workers`` workers on one batch of ``--jobs`` jobs of
   ``--duration`` s, ``--concurrency`` each, ``--lease``. The first loads IN.jsonl, the
   others join with ``--batch NAME`` and no input. The first is SIGKILLed at the first
   moment, ``--kill-after`` s or more after the provider saw the first submit, when the
   journal shows it with a submit in flight (a "submitting" row; the journal read every
   5 ms, for at most ``--catch`` s: jobs of one length come in waves, and a kill between
   two waves has no submit in flight). Right after, the journal's rows it holds are read
   (``creative_rows.worker`` is the worker id of whoever last wrote or claimed the row:
   ``host-PID-hex``, matched here by PID). Checked: OUT has every id once, the provider
   saw no prompt twice, the uncertain rows are among the killed worker's "submitting"
   rows at the kill (its submits in flight as the journal knew them; at most its
   concurrency), every other row succeeded, and the rows it had submitted, and those it
   had claimed, were finished (last written) by the others.
1b. The worst case for 1: the fake answers the submits of its first ``--hold-after``
   jobs, then makes the jobs but holds every answer, so each worker's slots fill with
   submits in flight; the first worker is killed once all of its slots are (at most
   ``--catch`` s after the holding began), then the fake answers the others. Checked
   as in 1.
2. Scaling: 1, 2 and 3 workers, every one the same command (IN.jsonl ``--batch NAME``,
   started together), on ``--scale-jobs`` jobs of ``--duration`` s, concurrency
   ``--concurrency`` each: jobs/s from the provider's first submit to the last worker's
   exit, and the ratios to one worker.
3. Cost: one worker, ``--cost-jobs`` instant jobs, concurrency ``--cost-concurrency``,
   ``poll_initial = 0`` (one submit and one read per job) from a config file, as
   ``journal.py`` runs it: ``creative batch --journal postgresql://...`` against
   ``creative batch --journal PATH`` (SQLite) against a plain ``as_completed`` loop, each
   run a fresh child process timed from ``main()`` to its return, in rounds. (No peak
   RSS: a child's ``ru_maxrss`` starts at its parent's, and this parent is the larger.)
4. PostgreSQL restarted (``PostgresServer.restart``: ``pg_ctl restart -m fast``, every
   connection cut) ``--restart-after`` s or more after the first submit, when the
   journal shows a submit in flight (as in 1), under ``--restart-workers`` workers on
   ``--restart-jobs`` jobs: the batch pauses (no submit goes out without its
   "submitting" row committed) and goes on. Then the same with the server up but the
   batch's database refusing connections for ``--outage`` s (``ALTER DATABASE ...
   ALLOW_CONNECTIONS false``, its backends terminated): a longer outage than a restart.
   Checked as in 2; timed against the same run without either; the lines the workers
   wrote to stderr are shown.

The machines are noisy (2 shared vCPUs here): read ratios and counts, not seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from fanout import ALLOCATOR, KEY, RUNNERS, child, measure

from creative_client.testing import FakeProcess, PostgresServer

#: How often the parent reads the fake's counters while a fleet runs (seconds).
SAMPLE_EVERY = 0.05

#: How often the journal is read while the kill (1) or the restart (4) waits for a
#: submit in flight (seconds).
LOOK = 0.005

#: Correctness checks that failed (the script exits 1 if any did).
FAILED: list[str] = []


def check(ok: bool, what: str) -> str:
    """``yes``/``NO`` for a printed line; a ``NO`` is remembered."""
    if not ok:
        FAILED.append(what)
    return "yes" if ok else "NO"


# -- set-up ---------------------------------------------------------------------------------


def database(pg: PostgresServer, name: str) -> str:
    """A fresh database on the server; its URL."""
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name}")
        conn.execute(f"create database {name}")
    return pg.url.rsplit("/", 1)[0] + "/" + name


def prompt_of(i: int) -> str:
    return f"prompt {i}"


def write_inputs(path: Path, n: int) -> None:
    lines = [json.dumps({"id": f"job-{i}", "prompt": prompt_of(i)}) for i in range(n)]
    path.write_text("\n".join(lines) + "\n")


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREATIVE_")}
    env.update(CREATIVE_PROVIDER="deepixels", CREATIVE_MODEL="m", DEEPIXELS_API_KEY=KEY)
    env.update(ALLOCATOR)
    return env


def cpu_times() -> tuple[int, int, int]:
    """The machine's (total, idle + iowait, steal) jiffies, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    except (OSError, ValueError):
        return (0, 0, 0)
    return sum(fields), fields[3] + fields[4], fields[7]


def cpu_share(before: tuple[int, int, int], after: tuple[int, int, int]) -> str:
    total = after[0] - before[0]
    if total <= 0:
        return "machine CPU: not measured"
    busy = 1 - (after[1] - before[1]) / total
    steal = (after[2] - before[2]) / total
    return f"machine CPU busy {busy:.0%} (steal {steal:.0%}) of {os.cpu_count()}"


# -- one fleet run ---------------------------------------------------------------------------


@dataclass
class Plan:
    name: str  # the database's and the batch's name
    jobs: int
    duration: float
    workers: int
    concurrency: int
    lease: float
    same_command: bool  # every worker given IN.jsonl; else the first, the others join
    kill_after: float | None = None
    restart_after: float | None = None
    catch: float = 5.0  # the kill or restart waits this long, at most, for a submit in flight
    hold: int | None = None  # the fake holds the answers of submits after this many jobs
    outage: float | None = None  # at restart_after, the database shut this long instead


class Worker:
    """``python -m creative_client batch ... --quiet`` in a process of its own."""

    def __init__(self, name: str, folder: Path, argv: list[str]) -> None:
        self.name = name
        self.out = folder / f"out-{name}.jsonl"
        self._log = open(folder / f"{name}.log", "w+b")  # noqa: SIM115 (closed in stop())
        command = [sys.executable, "-m", "creative_client", "batch", *argv]
        self.proc = subprocess.Popen(
            [*command, "--out", str(self.out), "--quiet"],
            cwd=folder,
            env=environment(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._log.close()


def journal_rows(url: str, batch: str) -> list[tuple[str, str, str | None]]:
    """Every row of the batch as ``(key, state, worker)``, read from ``creative_rows``."""
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        cursor = conn.execute(
            "select key, state, worker from creative_rows where batch = %s", (batch,)
        )
        return [(str(k), str(s), w) for k, s, w in cursor.fetchall()]


def shut(pg: PostgresServer, name: str, closed: bool) -> None:
    """The database ``name`` refuses connections, every one of it cut (``closed``), or
    takes them again: the journal's database lost, the server still up."""
    with psycopg.connect(pg.url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f"alter database {name} allow_connections {str(not closed).lower()}")
        if closed:
            conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s",
                (name,),
            )


def in_flight(conn: psycopg.Connection[Any], batch: str) -> Counter[int | None]:
    """The batch's rows in state "submitting" (submits in flight, as the journal has
    them), by the PID of the worker holding them."""
    cursor = conn.execute(
        "select worker from creative_rows where batch = %s and state = 'submitting'", (batch,)
    )
    return Counter(pid_of(worker) for (worker,) in cursor.fetchall())


def pid_of(worker_id: str | None) -> int | None:
    """The PID in a worker id (``host-PID-hex``: ``_pg/_journal.py``'s ``_worker_id``)."""
    if worker_id is None:
        return None
    parts = worker_id.rsplit("-", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def wait_for_rows(url: str, batch: str, n: int, loader: Worker, timeout: float) -> None:
    """Until the batch has its ``n`` rows (the loader's work), at most ``timeout`` s."""
    for _ in range(int(timeout / 0.1) + 1):
        if loader.proc.poll() is not None:
            raise SystemExit(f"{loader.name} ended while loading: {loader.log()}")
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
                row = conn.execute(
                    "select count(*) from creative_rows where batch = %s", (batch,)
                ).fetchone()
            if row is not None and row[0] >= n:
                return
        except psycopg.errors.UndefinedTable:
            pass  # the loader has not made the schema yet
        time.sleep(0.1)
    raise SystemExit(f"the batch {batch!r} did not get its {n} rows in {timeout} s")


def run_fleet(pg: PostgresServer, plan: Plan, timeout: float) -> dict[str, Any]:
    """Run ``plan`` against a fresh database and a fresh fake; what everyone saw."""
    url = database(pg, plan.name)
    result: dict[str, Any] = {"plan": plan}
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeProcess("deepixels", job_duration=plan.duration, hold_submits_after=plan.hold) as fake,
    ):
        folder = Path(tmp)
        write_inputs(folder / "in.jsonl", plan.jobs)
        common = ["--journal", url, "--batch", plan.name, "--base-url", fake.base_url]
        common += ["--concurrency", str(plan.concurrency), "--lease", f"{plan.lease:g}"]
        workers: list[Worker] = []
        try:
            workers.append(Worker("w0", folder, ["in.jsonl", *common]))
            if not plan.same_command:
                wait_for_rows(url, plan.name, plan.jobs, workers[0], timeout=60)
            for i in range(1, plan.workers):
                source = ["in.jsonl"] if plan.same_command else []
                workers.append(Worker(f"w{i}", folder, [*source, *common]))
            result.update(watch(pg, url, plan, fake, workers, timeout))
            result["rows"] = journal_rows(url, plan.name)
            result["stats"], result["prompts"] = fake.stats(), fake.prompts()
            result["outs"] = {w.name: read_out(w.out) for w in workers if w.out.exists()}
            result["codes"] = {w.name: w.proc.returncode for w in workers}
            result["names"] = {w.proc.pid: w.name for w in workers}
            result["logs"] = {w.name: w.log() for w in workers}
        except BaseException:
            for worker in workers:
                if worker.proc.poll() is not None and worker.proc.returncode not in (0, 1, -9):
                    print(f"-- {worker.name} exited {worker.proc.returncode}:\n{worker.log()}")
            raise
        finally:
            for worker in workers:
                worker.stop()
    return result


def watch(
    pg: PostgresServer,
    url: str,
    plan: Plan,
    fake: FakeProcess,
    workers: list[Worker],
    timeout: float,
) -> dict[str, Any]:
    """Sample the fake until every live worker ended (at most ``timeout`` s); kill the
    first worker or restart PostgreSQL on the way, as ``plan`` says: ``after`` s or more
    after the first submit, once the journal shows a submit in flight (the first
    worker's, for a kill), or ``plan.catch`` s later without."""
    samples: list[tuple[float, int]] = []  # (time.monotonic(), the fake's submits)
    first: float | None = None
    cpu0 = cpu_times()
    got: dict[str, Any] = {}
    live, victim = list(workers), workers[0]
    event, after = "", 0.0
    if plan.kill_after is not None:
        event, after = "kill", plan.kill_after
    elif plan.restart_after is not None:
        event, after = ("outage" if plan.outage else "restart"), plan.restart_after
    outage_ends: float | None = None  # when the database takes connections again
    conn: psycopg.Connection[Any] | None = None  # the journal, while waiting to strike
    deadline = time.monotonic() + timeout
    next_sample = 0.0
    holding: float | None = None  # since when the fake holds submits (plan.hold)
    try:
        while True:
            now = time.monotonic()
            if outage_ends is not None and now >= outage_ends:
                shut(pg, plan.name, False)
                outage_ends = None
            if all(w.proc.poll() is not None for w in live):
                break
            if now > deadline:
                logs = "\n".join(f"-- {w.name}:\n{w.log()}" for w in workers)
                raise SystemExit(f"{plan.name}: not done in {timeout} s\n{logs}")
            if now >= next_sample:
                stats = fake.stats()
                samples.append((now, stats["submit"]))
                next_sample = now + SAMPLE_EVERY
                if first is None and stats["submit"] > 0:
                    first, cpu0 = now, cpu_times()
                if holding is None and plan.hold is not None and stats["jobs"] > plan.hold:
                    holding = now
            if plan.hold is not None:
                due = holding is not None
            else:
                due = first is not None and now - first >= after
            if not event or event in got or first is None or not due:
                time.sleep(SAMPLE_EVERY)
                continue
            if conn is None:
                conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
            flying = in_flight(conn, plan.name)
            seen = flying[victim.proc.pid] if event == "kill" else flying.total()
            if holding is not None:  # strike once every slot of the victim's is a held submit
                ready = seen >= plan.concurrency or now - holding >= plan.catch
            else:  # strike while the journal shows a submit in flight
                ready = seen > 0 or now - first >= after + plan.catch
            if not ready:
                time.sleep(LOOK)
                continue
            conn.close()
            conn = None
            got["caught"] = seen  # submits in flight the journal showed just before
            if event == "kill":
                got["kill"] = victim.proc.poll() is None
                if got["kill"]:
                    victim.proc.kill()
                    victim.proc.wait()
                    got["killed_at"] = time.monotonic() - first
                    got["kill_stats"] = fake.stats()
                    got["kill_rows"] = journal_rows(url, plan.name)
                    got["victim_pid"] = victim.proc.pid
                if plan.hold is not None:
                    fake.release()  # the others' held submits are answered
                live = workers[1:]
            elif event == "restart":
                began = time.monotonic()
                pg.restart()
                got["restart"] = (began - first, time.monotonic() - began)
            else:
                shut(pg, plan.name, True)
                got["outage"] = time.monotonic() - first
                outage_ends = time.monotonic() + (plan.outage or 0.0)
    finally:
        if conn is not None:
            conn.close()
        if outage_ends is not None:
            shut(pg, plan.name, False)
    end = time.monotonic()
    if first is None:
        raise SystemExit(f"{plan.name}: the provider saw no submit")
    got.update(elapsed=end - first, samples=samples, first=first, cpu=cpu_share(cpu0, cpu_times()))
    return got


def read_out(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def longest_pause(samples: list[tuple[float, int]], first: float) -> float:
    """The longest stretch without a new submit, from the first submit to the last."""
    last = max(n for _, n in samples)
    longest, since, seen = 0.0, first, 0
    for t, n in samples:
        if t < first:
            continue
        if n > seen:
            longest, since, seen = max(longest, t - since), t, n
        if n >= last:
            break
    return longest


def report_common(run: dict[str, Any], uncertain_ok: bool) -> Counter[str]:
    """OUT, the provider's prompts and the rows' states; the states, from OUT."""
    plan: Plan = run["plan"]
    outs: dict[str, list[dict[str, Any]]] = run["outs"]
    expected = {f"job-{i}" for i in range(plan.jobs)}
    if not outs:
        print(f"OUT written: {check(False, f'{plan.name}: no OUT written')}")
        return Counter()
    writers = ", ".join(sorted(outs))
    states: Counter[str] = Counter()
    for name, lines in sorted(outs.items()):
        ids = Counter(str(line["id"]) for line in lines)
        once = set(ids) == expected and max(ids.values()) == 1 and len(lines) == plan.jobs
        print(
            f"OUT written by {name}: {len(lines):,} lines, {len(ids):,} ids of {plan.jobs:,}: "
            f"every id once: {check(once, f'{plan.name}: OUT of {name}: every id once')}"
        )
        states = Counter(str(line["status"]) for line in lines)
    if len(outs) > 1:
        same = all(
            sorted(a, key=lambda x: x["id"]) == sorted(b, key=lambda x: x["id"])
            for a, b in zip(outs.values(), list(outs.values())[1:], strict=False)
        )
        print(f"the OUTs of {writers} are the same: {check(same, f'{plan.name}: OUTs differ')}")
    stats, prompts = run["stats"], run["prompts"]
    most = max(prompts.values(), default=0)
    print(
        f"the provider: {stats['submit']:,} submits, {len(prompts):,} prompts, the most jobs "
        f"for one prompt: {most}: no prompt twice: "
        f"{check(most <= 1, f'{plan.name}: a prompt sent twice')}"
    )
    shown = ", ".join(f"{s} {n:,}" for s, n in sorted(states.items()))
    print(f"states in OUT: {shown}")
    if not uncertain_ok:
        all_ok = states["succeeded"] == plan.jobs
        print(
            f"all succeeded: {states['succeeded']:,} of {plan.jobs:,}: "
            f"{check(all_ok, f'{plan.name}: not all succeeded')}"
        )
    codes = ", ".join(f"{name} {code}" for name, code in run["codes"].items())
    print(f"exit codes: {codes}")
    return states


# -- 1: a worker lost -------------------------------------------------------------------------


def figure_kill(pg: PostgresServer, args: argparse.Namespace, hold: int | None) -> None:
    """1 (``hold`` None) and 1b (the fake holding submits after ``hold`` jobs)."""
    plan = Plan(
        name="fleet_kill" if hold is None else "fleet_kill_held",
        jobs=args.jobs,
        duration=args.duration,
        workers=args.workers,
        concurrency=args.concurrency,
        lease=args.lease,
        same_command=False,
        kill_after=args.kill_after,
        catch=args.catch,
        hold=hold,
    )
    if hold is None:
        print(
            f"\n== 1. {plan.workers} workers, one batch of {plan.jobs:,} jobs of "
            f"{plan.duration:g} s, --concurrency {plan.concurrency} each, --lease "
            f"{plan.lease:g}; w0 loads IN.jsonl, the others join with --batch; w0 SIGKILLed "
            f"{args.kill_after:g} s or more after the first submit, when the journal shows it "
            f"with a submit in flight",
            flush=True,
        )
    else:
        print(
            f"\n== 1b. the same, the worst case: the fake answers the submits of its first "
            f"{hold:,} jobs, then makes the jobs but holds the answers; w0 SIGKILLed once "
            f"every one of its {plan.concurrency} slots is a submit in flight (at most "
            f"{plan.catch:g} s after the holding began), then the fake answers the others' "
            f"held submits",
            flush=True,
        )
    run = run_fleet(pg, plan, args.timeout)
    print(
        f"ran: {plan.jobs:,} rows in {run['elapsed']:.1f} s from the first submit to the "
        f"last worker's exit; {run['cpu']}"
    )
    if not run.get("kill"):
        print(f"w0 killed while it ran: {check(False, 'kill: w0 ended before its kill')}")
        return
    pid = run["victim_pid"]
    held: dict[str, list[str]] = {}  # state -> keys w0 held (last wrote) at the kill
    for key, state, worker in run["kill_rows"]:
        if pid_of(worker) == pid:
            held.setdefault(state, []).append(key)
    at_kill = Counter(state for _, state, _ in run["kill_rows"])
    caught = run["caught"]
    print(
        f"w0 killed {run['killed_at']:.2f} s after the first submit, "
        + (
            f"the journal showing it with {caught} submit(s) in flight just before"
            if caught
            else f"no submit of it in flight seen in {plan.catch:g} s"
        )
        + (
            f"; the fake held {run['kill_stats']['jobs'] - hold} submits (every worker's)"
            if hold is not None
            else ""
        )
    )
    print(
        f"at the kill: the provider had had "
        f"{run['kill_stats']['submit']:,} submits; the batch: "
        + ", ".join(f"{s} {n:,}" for s, n in sorted(at_kill.items()))
    )
    print(
        "w0's rows in the journal right after (worker column = w0): "
        + ", ".join(f"{s} {len(k):,}" for s, k in sorted(held.items()))
        + " (pending: claimed, not yet sent)"
    )
    states = report_common(run, uncertain_ok=True)
    final = {key: (state, worker) for key, state, worker in run["rows"]}
    names: dict[int, str] = run["names"]
    flying = held.get("submitting", [])
    # A key is the input id as JSON ('"job-7"'); the prompt of "job-7" is "prompt 7".
    made = sum(run["prompts"][prompt_of(int(json.loads(k).split("-")[1]))] > 0 for k in flying)
    uncertain = [key for key, (state, _) in final.items() if state == "uncertain"]
    bounded = set(uncertain) <= set(flying) and len(flying) <= plan.concurrency
    print(
        f"uncertain rows: {len(uncertain)} (OUT: {states['uncertain']}); w0's submits in "
        f"flight at the kill (its 'submitting' rows): {len(flying)}, a job made for {made} "
        f"of them (its id never committed: w0 lost the answer); w0's concurrency "
        f"{plan.concurrency}: uncertain <= in flight: "
        f"{check(bounded, 'kill: uncertain rows not within the submits in flight')}"
    )
    others = plan.jobs - len(uncertain)
    print(
        f"all other rows succeeded: {states['succeeded']:,} of {others:,}: "
        f"{check(states['succeeded'] == others, 'kill: other rows not all succeeded')}"
    )
    for state, what in (("submitted", "submitted"), ("pending", "claimed, pending")):
        keys = held.get(state, [])
        by: Counter[str] = Counter()
        for key in keys:
            end_state, worker = final[key]
            owner = names.get(pid_of(worker) or -1, str(worker))
            by[f"{end_state} by {owner}"] += 1
        done = all(final[k][0] == "succeeded" and pid_of(final[k][1]) != pid for k in keys)
        shown = ", ".join(f"{label} {n:,}" for label, n in sorted(by.items())) or "none"
        print(
            f"w0's {len(keys):,} {what} rows at the kill, now: {shown}: finished by the "
            f"others: {check(done, f'kill: w0 {state} rows not finished by the others')}"
        )
    per: dict[str, Counter[str]] = {}
    for _, state, worker in run["rows"]:
        per.setdefault(names.get(pid_of(worker) or -1, str(worker)), Counter())[state] += 1
    print("rows by the worker that last wrote them (the journal's worker column):")
    for name, counts in sorted(per.items()):
        print(f"  {name}: " + ", ".join(f"{s} {n:,}" for s, n in sorted(counts.items())))


# -- 2: scaling ---------------------------------------------------------------------------------


def figure_scaling(pg: PostgresServer, args: argparse.Namespace) -> None:
    print(
        f"\n== 2. scaling: {args.scale_jobs:,} jobs of {args.duration:g} s, --concurrency "
        f"{args.concurrency} per worker, every worker the same command (IN.jsonl --batch "
        f"NAME), started together; {os.cpu_count()} CPUs (shared vCPUs: every worker, the "
        f"fake provider and PostgreSQL run on them)",
        flush=True,
    )
    rates: dict[int, float] = {}
    for n in range(1, args.max_workers + 1):
        plan = Plan(
            name=f"fleet_scale{n}",
            jobs=args.scale_jobs,
            duration=args.duration,
            workers=n,
            concurrency=args.concurrency,
            lease=30.0,
            same_command=True,
        )
        run = run_fleet(pg, plan, args.timeout)
        rates[n] = plan.jobs / run["elapsed"]
        stats = run["stats"]
        per_job = (stats["submit"] + stats["get"]) / max(stats["jobs"], 1)
        print(
            f"{n} worker(s): {plan.jobs:,} jobs in {run['elapsed']:.1f} s: {rates[n]:.1f} "
            f"jobs/s; the fake's peak in flight {stats['peak_active']}; {per_job:.2f} "
            f"requests/job; {run['cpu']}",
            flush=True,
        )
        report_common(run, uncertain_ok=False)
    one = rates[1]
    ratios = "   ".join(f"{n}w/1w: {rates[n] / one:.2f}" for n in sorted(rates) if n > 1)
    print(f"jobs/s ratios: {ratios}")
    if 3 in rates:
        met = "met" if rates[3] / one >= 2.5 else "MISSED"
        print(f"goal 3w/1w >= 2.5 ({os.cpu_count()} shared vCPUs): {met}")


# -- 3: the cost of the journal --------------------------------------------------------------


def cli_runner(folder: Path, n: int, journal: str) -> Any:
    """``creative batch IN --journal JOURNAL`` in this process (journal.py's runner with a
    journal given): the input and config are written first, outside the clock."""
    source = folder / "in.jsonl"
    write_inputs(source, n)
    config = folder / "creative.toml"

    def run(url: str, n: int, concurrency: int) -> int:
        from creative_client._cli import main

        config.write_text(
            f'provider = "deepixels"\npoll_initial = 0\n[deepixels]\napi_key = "{KEY}"\n'
            f'base_url = "{url}"\nmodel = "m"\n'
        )
        out = folder / "out.jsonl"
        argv = ["batch", str(source), "--out", str(out), "--config", str(config)]
        argv += ["--journal", journal, "--concurrency", str(concurrency), "--quiet"]
        if journal.startswith("postgresql://"):
            argv += ["--batch", "cost"]
        status = main(argv)
        if status != 0:
            raise SystemExit(f"creative batch exited {status}")
        lines = out.read_text().splitlines()
        return sum(json.loads(line)["status"] == "succeeded" for line in lines)

    return run


def figure_cost(pg: PostgresServer, args: argparse.Namespace) -> None:
    sides = {"sdk": "as_completed", "sqlite": "SQLite", "pg": "PostgreSQL"}
    print(
        f"\n== 3. the journal's cost: 1 worker, {args.cost_jobs:,} instant jobs, concurrency "
        f"{args.cost_concurrency}, poll_initial=0; creative batch --journal postgresql:// "
        f"(pg), --journal PATH (sqlite), plain as_completed (sdk); each run a fresh process",
        flush=True,
    )
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    with FakeProcess("deepixels") as fake:
        for i in range(args.pairs):
            for side in sides:
                options: list[str] = []
                if side == "pg":
                    options = ["--db", database(pg, f"fleet_cost{i}")]
                result = measure(
                    side, fake, args.cost_jobs, args.cost_concurrency, __file__, options
                )
                runs[side].append(result)
                print(
                    f"round {i + 1} {side:>6}: {result['jobs_per_s']:8.0f} jobs/s  "
                    f"{result['cpu_per_job'] * 1e6:7.1f} us CPU/job  "
                    f"{result['requests_per_job']:.2f} req/job",
                    flush=True,
                )
    print(f"medians of {args.pairs} round(s), N={args.cost_jobs:,}:")
    heads = ("sdk", "sqlite", "pg", "sqlite / sdk", "pg / sdk", "pg / sqlite")
    print(f"{'':22}" + "".join(f"{h:>13}" for h in heads))
    for label, key, scale in (
        ("jobs/s", "jobs_per_s", 1.0),
        ("client CPU us/job", "cpu_per_job", 1e6),
        ("HTTP requests/job", "requests_per_job", 1.0),
    ):
        med = {s: statistics.median(float(r[key]) for r in runs[s]) for s in sides}
        cells = [med["sdk"] * scale, med["sqlite"] * scale, med["pg"] * scale]
        cells += [med["sqlite"] / med["sdk"], med["pg"] / med["sdk"], med["pg"] / med["sqlite"]]
        print(f"{label:22}" + "".join(f"{c:13.2f}" for c in cells[:3]), end="")
        print("".join(f"{c:13.3f}" for c in cells[3:]))
    rounds = list(zip(runs["sdk"], runs["sqlite"], runs["pg"], strict=True))
    paired = {
        name: statistics.median(r[i]["jobs_per_s"] / r[j]["jobs_per_s"] for r in rounds)
        for name, i, j in (("sqlite / sdk", 1, 0), ("pg / sdk", 2, 0), ("pg / sqlite", 2, 1))
    }
    print(
        "jobs/s, the median of each round's own ratio: "
        + ", ".join(f"{name} {ratio:.3f}" for name, ratio in paired.items())
    )


# -- 4: PostgreSQL restarted ---------------------------------------------------------------------


def figure_restart(pg: PostgresServer, args: argparse.Namespace) -> None:
    print(
        f"\n== 4. the journal's database lost mid-batch: {args.restart_workers} workers (the "
        f"same command), {args.restart_jobs:,} jobs of {args.duration:g} s, --concurrency "
        f"{args.concurrency} each; {args.restart_after:g} s or more after the first submit, "
        f"with a submit in flight, PostgreSQL restarted (pg_ctl restart -m fast); then the "
        f"batch's database shut for {args.outage:g} s instead (ALTER DATABASE ... "
        f"ALLOW_CONNECTIONS false, its connections terminated); against the same run "
        f"without either",
        flush=True,
    )
    elapsed: dict[str, float] = {}
    runs = (
        ("without", "fleet_calm", None, None),
        ("restarted", "fleet_restart", args.restart_after, None),
        ("shut", "fleet_shut", args.restart_after, args.outage),
    )
    for label, name, after, outage in runs:
        plan = Plan(
            name=name,
            jobs=args.restart_jobs,
            duration=args.duration,
            workers=args.restart_workers,
            concurrency=args.concurrency,
            lease=30.0,
            same_command=True,
            restart_after=after,
            catch=args.catch,
            outage=outage,
        )
        run = run_fleet(pg, plan, args.timeout)
        elapsed[label] = run["elapsed"]
        pause = longest_pause(run["samples"], run["first"])
        shown = f"{run['caught']} submit(s) in flight" if run.get("caught") else "none seen"
        how = ""
        if "restart" in run:
            at, took = run["restart"]
            how = f"; restarted {at:.2f} s in ({shown}), it took {took:.2f} s"
        elif "outage" in run:
            how = f"; shut {run['outage']:.2f} s in ({shown}) for {outage:g} s"
        elif after is not None:
            how = f"; the batch ended first: {check(False, f'{name}: the batch ended first')}"
        print(
            f"{label}: {plan.jobs:,} jobs in {run['elapsed']:.1f} s{how}; the longest stretch "
            f"without a new submit: {pause:.2f} s",
            flush=True,
        )
        report_common(run, uncertain_ok=False)
        said = {
            name: [ln for ln in log.splitlines() if ln.strip()] for name, log in run["logs"].items()
        }
        print(
            "the workers' stderr: "
            + ", ".join(f"{name} {len(lines)} line(s)" for name, lines in said.items())
            + "".join(
                f"\n  {name}: {line[:150]}" for name, lines in said.items() for line in lines[:6]
            )
        )
    print(
        f"time restarted / without: {elapsed['restarted'] / elapsed['without']:.2f}; "
        f"shut for {args.outage:g} s / without: {elapsed['shut'] / elapsed['without']:.2f}"
    )


# -- the driver -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=6000, help="jobs of the kill run (1)")
    parser.add_argument("--duration", type=float, default=1.0, help="seconds a job lasts")
    parser.add_argument("--workers", type=int, default=3, help="workers of the kill run (1)")
    parser.add_argument("--concurrency", type=int, default=100, help="per worker (1, 2, 4)")
    parser.add_argument("--lease", type=float, default=5.0, help="--lease of the kill run (1)")
    parser.add_argument("--kill-after", type=float, default=5.0, help="seconds after 1st submit")
    parser.add_argument("--scale-jobs", type=int, default=3000, help="jobs of each run of 2")
    parser.add_argument("--max-workers", type=int, default=3, help="2: 1 .. this many workers")
    parser.add_argument("--cost-jobs", type=int, default=5000)
    parser.add_argument("--cost-concurrency", type=int, default=256)
    parser.add_argument("--pairs", type=int, default=3, help="rounds of cost runs (3)")
    parser.add_argument("--restart-jobs", type=int, default=2000)
    parser.add_argument("--restart-workers", type=int, default=2)
    parser.add_argument("--restart-after", type=float, default=3.0, help="seconds, in 4")
    parser.add_argument("--outage", type=float, default=5.0, help="4: seconds the db is shut")
    parser.add_argument(
        "--catch", type=float, default=5.0, help="1, 4: at most this long for a submit in flight"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds, per run")
    parser.add_argument(
        "--hold-after", type=int, default=1000, help="1b: the fake holds submits after this"
    )
    parser.add_argument("--only", default="1,1b,2,3,4", help="which parts, comma-separated")
    parser.add_argument("--quick", action="store_true", help="everything tiny")
    parser.add_argument("--child", choices=sorted(("sdk", "sqlite", "pg")), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory() as folder:
            if args.child == "sdk":
                runner = RUNNERS["sdk"]
            else:
                journal = args.db if args.child == "pg" else str(Path(folder) / "journal")
                runner = cli_runner(Path(folder), args.n, journal)
            child(runner, args.url, args.n, args.concurrency)
        return
    if args.quick:
        args.jobs, args.duration, args.workers, args.concurrency = 90, 0.3, 3, 15
        args.lease, args.kill_after, args.catch, args.hold_after = 0.5, 0.5, 0.5, 30
        args.scale_jobs = 30
        args.cost_jobs, args.cost_concurrency, args.pairs = 200, 32, 1
        args.restart_jobs, args.restart_after, args.outage = 90, 0.4, 1.0
        args.timeout = 60.0
    parts = set(args.only.split(","))
    with PostgresServer() as pg:
        print(f"PostgreSQL {pg.url}; fake Deepixels processes; {os.cpu_count()} CPUs", flush=True)
        if "1" in parts:
            figure_kill(pg, args, hold=None)
        if "1b" in parts:
            figure_kill(pg, args, hold=args.hold_after)
        if "2" in parts:
            figure_scaling(pg, args)
        if "3" in parts:
            figure_cost(pg, args)
        if "4" in parts:
            figure_restart(pg, args)
    if FAILED:
        print("\nCHECKS FAILED: " + "; ".join(FAILED))
        raise SystemExit(1)
    print("\nevery check passed")


if __name__ == "__main__":
    main()
