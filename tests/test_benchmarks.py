"""The benchmark scripts keep working (a tiny run; nothing here is timed or compared)."""

from __future__ import annotations

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
