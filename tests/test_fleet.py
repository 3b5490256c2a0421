"""Many workers drain one batch kept in PostgreSQL (``creative batch --journal URL``).

Workers are real ``creative`` processes against one fake provider process and the
suite's PostgreSQL server; the fake counts what the fleet sent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from creative_client.testing import FakeProcess, PostgresServer

KEY = "fleet-test-key-5b2e91"


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREATIVE_")}
    env.update(CREATIVE_PROVIDER="deepixels", CREATIVE_MODEL="m", DEEPIXELS_API_KEY=KEY)
    return env


def _inputs(path: Path, n: int) -> None:
    lines = [json.dumps({"id": f"job-{i}", "prompt": f"prompt {i}"}) for i in range(n)]
    path.write_text("\n".join(lines) + "\n")


def _database(postgres: PostgresServer, name: str) -> str:
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name}")
        conn.execute(f"create database {name}")
    return postgres.url.rsplit("/", 1)[0] + "/" + name


def _worker(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "creative_client", "batch", *args, "--quiet"],
        cwd=cwd,
        env=_environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _out(path: Path) -> dict[str, dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return {line["id"]: line for line in lines}


def test_two_workers_drain_one_batch(postgres: PostgresServer, tmp_path: Path) -> None:
    url = _database(postgres, "fleet_two")
    _inputs(tmp_path / "in.jsonl", 60)
    with FakeProcess("deepixels", job_duration=0.2) as fake:
        common = ["--journal", url, "--base-url", fake.base_url, "--concurrency", "8"]
        first = _worker(tmp_path, "in.jsonl", "--out", "out.jsonl", "--batch", "b1", *common)
        time.sleep(0.5)  # the first loads the rows; the second joins by name
        second = _worker(tmp_path, "--batch", "b1", "--out", "out2.jsonl", *common)
        for worker in (first, second):
            _, err = worker.communicate(timeout=60)
            assert worker.returncode == 0, err
        stats, prompts = fake.stats(), fake.prompts()
    assert stats["submit"] == 60 and max(prompts.values()) == 1  # none sent twice
    written = [p for p in (tmp_path / "out.jsonl", tmp_path / "out2.jsonl") if p.exists()]
    assert written  # the worker that saw the batch finish wrote its OUT
    out = _out(written[0])
    assert sorted(out) == sorted(f"job-{i}" for i in range(60))
    assert all(line["status"] == "succeeded" for line in out.values())
    status = subprocess.run(
        [sys.executable, "-m", "creative_client", "status", "--journal", url, "--batch", "b1"],
        capture_output=True, text=True, timeout=60, env=_environment(),
    )  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert "succeeded" in status.stdout and status.stdout.count("worker ") == 2
    rebuilt = subprocess.run(
        [sys.executable, "-m", "creative_client", "status", "--journal", url, "--batch", "b1",
         "--out", "rebuilt.jsonl"],
        capture_output=True, text=True, timeout=60, env=_environment(), cwd=tmp_path,
    )  # fmt: skip
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert _out(tmp_path / "rebuilt.jsonl") == out


def test_a_lost_workers_rows_are_finished_by_another(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = _database(postgres, "fleet_lost")
    _inputs(tmp_path / "in.jsonl", 30)
    with FakeProcess("deepixels", job_duration=0.3, hold_submits_after=10) as fake:
        common = ["--journal", url, "--base-url", fake.base_url, "--lease", "1"]
        doomed = _worker(
            tmp_path, "in.jsonl", "--batch", "b2", "--out", "x.jsonl", "--concurrency", "8", *common
        )
        for _ in range(300):  # at most 30 s: 10 submits answered, more held in flight
            if fake.stats()["submit"] >= 14:
                break
            time.sleep(0.1)
        doomed.send_signal(signal.SIGKILL)
        doomed.communicate(timeout=30)
        fake.release()
        survivor = _worker(tmp_path, "--batch", "b2", "--out", "out.jsonl", *common)
        _, err = survivor.communicate(timeout=60)
        stats, prompts = fake.stats(), fake.prompts()
        out = _out(tmp_path / "out.jsonl")
        # Asked to, a worker sends the uncertain ones again (each may cost twice).
        again = _worker(
            tmp_path, "--batch", "b2", "--out", "again.jsonl", "--resubmit-uncertain", *common
        )
        _, again_err = again.communicate(timeout=60)
        assert again.returncode == 0, again_err
        assert all(
            line["status"] == "succeeded" for line in _out(tmp_path / "again.jsonl").values()
        )
        assert fake.stats()["submit"] == stats["submit"] + sum(
            line["status"] == "uncertain" for line in out.values()
        )
    assert sorted(out) == sorted(f"job-{i}" for i in range(30))
    states = [line["status"] for line in out.values()]
    uncertain = states.count("uncertain")
    assert 4 <= uncertain <= 8  # the submits in flight when it died: never resent
    assert states.count("succeeded") == 30 - uncertain
    assert max(prompts.values()) == 1  # no prompt reached the provider twice
    assert survivor.returncode == 1, err  # uncertain rows: not every job succeeded
    assert stats["submit"] == sum(prompts.values())


def test_a_restarted_database_pauses_the_batch_and_loses_nothing(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = _database(postgres, "fleet_restart")
    _inputs(tmp_path / "in.jsonl", 80)
    with FakeProcess("deepixels", job_duration=0.2) as fake:
        worker = _worker(
            tmp_path, "in.jsonl", "--journal", url, "--base-url", fake.base_url,
            "--out", "out.jsonl", "--concurrency", "8",
        )  # fmt: skip
        for _ in range(300):  # at most 30 s: well into the batch
            if fake.stats()["submit"] >= 20:
                break
            time.sleep(0.1)
        postgres.restart()
        _, err = worker.communicate(timeout=90)
        stats, prompts = fake.stats(), fake.prompts()
    assert worker.returncode == 0, err
    out = _out(tmp_path / "out.jsonl")
    assert len(out) == 80 and all(line["status"] == "succeeded" for line in out.values())
    assert stats["submit"] == 80 and max(prompts.values()) == 1


def test_strict_loads_nothing_when_a_line_is_bad(postgres: PostgresServer, tmp_path: Path) -> None:
    url = _database(postgres, "fleet_strict")
    (tmp_path / "in.jsonl").write_text('{"id": 1, "prompt": "fine"}\n{"id": 2}\n')
    with FakeProcess("deepixels") as fake:
        worker = _worker(
            tmp_path, "in.jsonl", "--journal", url, "--base-url", fake.base_url, "--strict"
        )
        _, err = worker.communicate(timeout=60)
        assert worker.returncode == 2, err
        assert "in.jsonl:2:" in err and fake.stats()["submit"] == 0
    with psycopg.connect(url) as conn:
        found = conn.execute("select count(*) from creative_rows").fetchone()
    assert found is not None and found[0] == 0


def test_max_jobs_bounds_the_whole_fleet(postgres: PostgresServer, tmp_path: Path) -> None:
    """Each worker may run 8 at once; --max-jobs 3 holds for the fleet, through the
    journal's database as the shared budget."""
    url = _database(postgres, "fleet_budget")
    _inputs(tmp_path / "in.jsonl", 24)
    with FakeProcess("deepixels", job_duration=0.2) as fake:
        common = ["--journal", url, "--base-url", fake.base_url, "--concurrency", "8"]
        budget = ["--max-jobs", "3", "--batch", "b5", "--out", "out.jsonl"]
        first = _worker(tmp_path, "in.jsonl", *budget, *common)
        time.sleep(0.5)
        second = _worker(tmp_path, *budget, *common)
        for worker in (first, second):
            _, err = worker.communicate(timeout=60)
            assert worker.returncode == 0, err
        stats = fake.stats()
    assert stats["submit"] == 24
    assert stats["peak_active"] <= 3
