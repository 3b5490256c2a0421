"""The benchmark scripts keep working (a tiny run; nothing here is timed or compared)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("script", "ratio"), [("fanout.py", "SDK / raw"), ("journal.py", "batch / ac")]
)
def test_benchmark_runs(script: str, ratio: str) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--n", "60", "--pairs", "1",
         "--concurrency", "8"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert ratio in out.stdout and "jobs/s" in out.stdout
    requests = out.stdout.split("HTTP requests/job")[1].split()
    assert requests[:3] == ["2.00", "2.00", "1.000"]  # both sides: one submit, one read


def test_webhook_benchmark_runs() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "webhooks.py"), "--n", "20", "--pairs", "1",
         "--concurrency", "10", "--job-duration", "0.2"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "hook: SDK/raw" in out.stdout and "targets, SDK by webhook" in out.stdout
    requests = out.stdout.split("HTTP requests/job")[1].split()
    assert requests[:2] == ["2.000", "2.000"]  # both webhook sides: a submit, a confirming read
    latency = out.stdout.split("callback->yield median ms")[1].split()
    assert float(latency[1]) >= 0  # the SDK's jobs were matched with their callbacks


@pytest.mark.timeout(240)
def test_share_benchmark_runs() -> None:
    """``share.py --quick``: a PostgreSQL server, fleets of worker processes, a kill, the
    cost pairs and the webhook fan-in, all tiny. Counts are checked, not figures."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "share.py"), "--quick"],
        capture_output=True, text=True, timeout=200, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    for line in (
        "peak jobs in flight (the fake's count)",
        "busiest one-second window",
        "the budget allows min(max_jobs / mean job time seen, rate / requests per job)",
        "the other 2 processes: 48 of 48 jobs ok (all)",
        "what the share prevents",
        "share / local",
        "callback -> yield on A: p50",
        "callbacks taken by A's own receiver: 0; relayed by B to A: 30",
        "requests per job (submit + get)",
    ):
        assert line in out.stdout, (line, out.stdout)
    assert "killed p" in out.stdout  # the kill came while the victim still ran
    unshared = out.stdout.split("== 2. without share")[1]
    peak = unshared.split("peak jobs in flight (the fake's count): ")[1].split()[0]
    assert 12 < int(peak) <= 36  # each process its own max_jobs=12: the overshoot shows
    # With the share, the fleet holds the bounds (max_jobs=12; rate 60/s: 1.1x + 1).
    shared = out.stdout.split("== 2. without share")[0]
    for peak in shared.split("peak jobs in flight")[1:]:
        assert "(max_jobs 12: within)" in peak.split("\n")[0], peak.split("\n")[0]
    for window in shared.split("busiest one-second window: ")[1:]:
        assert int(window.split()[0]) <= 67


@pytest.mark.timeout(150)
def test_fleet_benchmark_runs() -> None:
    """``fleet.py --quick``: a PostgreSQL server, fleets of ``creative batch`` workers on one
    batch (one SIGKILLed, twice; 1-3 workers; the database restarted, then shut for a
    second) and the journal's cost, all tiny. Counts are checked, not figures."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "fleet.py"), "--quick"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    for line in (
        "finished by the others: yes",
        "jobs/s ratios: 2w/1w: ",
        "pg / sqlite",
        "time restarted / without: ",
        "every check passed",
    ):
        assert line in text, (line, text)
    # Eight fleet runs (two kill runs, 1-3 workers, calm, restarted and shut): in each,
    # every OUT has every id once and the provider saw no prompt twice.
    assert text.count("the provider: ") == 8
    assert text.count("the most jobs for one prompt: 1: no prompt twice: yes") == 8
    assert text.count("every id once: yes") >= 8 and "every id once: NO" not in text
    kills, rest = text.split("== 2.")
    assert kills.count("exit codes: w0 -9") == 2  # killed while it ran, both times
    assert kills.count("uncertain <= in flight: yes") == 2
    # The worst case (1b): w0's slots submits in flight, held by the fake, when it was
    # killed (all 15 of them, unless a loaded machine kept some from leaving within the
    # wait); those rows, and only those, are uncertain.
    held = kills.split("== 1b.")[1]
    found = re.search(
        r"uncertain rows: (\d+) \(OUT: (\d+)\); w0's submits in flight at the kill"
        r" \(its 'submitting' rows\): (\d+)",
        held,
    )
    assert found is not None, held
    uncertain, in_out, in_flight = map(int, found.groups())
    assert uncertain == in_out and 1 <= uncertain <= in_flight <= 15
    assert f"all other rows succeeded: {90 - uncertain} of {90 - uncertain}: yes" in held
    # The runs without a kill: every job succeeded (3 scaling runs of 30, 3 of 90).
    done = [line for line in rest.splitlines() if line.startswith("all succeeded: ")]
    assert done.count("all succeeded: 30 of 30: yes") == 3
    assert done.count("all succeeded: 90 of 90: yes") == 3 and len(done) == 6
    assert "the batch ended first" not in rest  # the restart and the shut came mid-batch


@pytest.mark.timeout(60)
def test_polling_benchmark_runs() -> None:
    """``polling.py`` tiny (job times and polls at 1/100): both arms of two distributions,
    the table with each arm's figures and their ratios, and the verdicts."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "polling.py"), "--only",
         "lognormal-6-0.5,bimodal-5-60", "--jobs", "16", "--in-flight", "8", "--scale", "0.01"],
        capture_output=True, text=True, timeout=50, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "warning" not in text, text  # the fake's counts and its timings agree
    assert "requests/job" in text and "p50 delay end->seen s" in text, text
    # The headline also runs as a later batch ("warm": from the first run's durations).
    for name in ("lognormal-6-0.5", "lognormal-6-0.5 warm", "bimodal-5-60"):
        rows = [line.split() for line in text.splitlines() if line.startswith(name + " ")]
        rows = [row for row in rows if len(row) == len(name.split()) + 11]
        assert len(rows) == 1, text
        jobs, flight, *figures = rows[0][len(name.split()) :]
        assert (jobs, flight) == ("16", "8")
        values = [float(value) for value in figures]
        assert len(values) == 9
        for learned, backoff, ratio in zip(values[::3], values[1::3], values[2::3], strict=True):
            assert learned >= 0 and backoff > 0
            # The figures are shown rounded to 0.01, the ratio of the unrounded ones.
            assert ratio == pytest.approx(learned / backoff, abs=0.006 * (1 + ratio) / backoff)
        assert values[0] >= 2 and values[1] >= 2  # a submit and at least one read per job
        assert values[3] <= values[6] and values[4] <= values[7]  # p50 <= p90
    assert "goals on lognormal-6-0.5, learned: requests/job " in text
    assert "goals on lognormal-6-0.5 warm, learned: requests/job " in text
    assert "learned worse than backoff on both requests/job and p50 delay: " in text
