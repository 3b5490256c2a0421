"""The benchmark scripts keep working (a tiny run; nothing here is timed or compared)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_fanout_benchmark_runs() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "fanout.py"), "--n", "60", "--pairs", "1",
         "--concurrency", "8"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip()}
    assert "jobs/s" in lines
    requests = out.stdout.split("HTTP requests/job")[1].split()
    assert requests[:3] == ["2.00", "2.00", "1.000"]  # both sides: one submit, one read


def test_journal_benchmark_runs() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "journal.py"), "--n", "60", "--pairs", "1",
         "--concurrency", "8"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "batch / ac" in out.stdout
    requests = out.stdout.split("HTTP requests/job")[1].split()
    assert requests[:3] == ["2.00", "2.00", "1.000"]  # both sides: one submit, one read
