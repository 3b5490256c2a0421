"""``creative``: jobs that outlive a run. A paid job is never given up on, ``--simulate``
keeps its jobs between commands, and a batch's record is never silently replaced."""

from __future__ import annotations

import json
import re
import signal
from collections import Counter
from pathlib import Path

import pytest
from test_cli import (
    TIMEOUT,
    by_id,
    creative,
    environment,
    read_out,
    start,
    submits_per_id,
    until,
    write_inputs,
)

from creative_client.testing import FakeProcess

SIM = ("--simulate", "--simulate-duration", "0")


def simulated_prompts(folder: Path, provider: str = "deepixels") -> Counter[str]:
    """Jobs made per prompt, from the simulated provider's state file."""
    path = folder / f"simulated-{provider}.jsonl"
    if not path.exists():
        return Counter()
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return Counter(line["prompt"] for line in lines)


# -- a job whose wait ended unfinished stays resumable ---------------------------------------


def test_a_job_not_finished_in_time_stays_submitted_and_a_rerun_finishes_it(
    tmp_path: Path,
) -> None:
    ids = write_inputs(tmp_path / "in.jsonl", 3)
    with FakeProcess(job_duration=2.0) as fake:
        url = ("--base-url", fake.base_url)
        first = creative("batch", "in.jsonl", "--timeout", "0.3", *url, cwd=tmp_path)
        assert first.returncode == 1, first.stderr
        assert "3 still running/unfinished" in first.stderr
        assert "run again to pick them up" in first.stderr
        out = by_id(read_out(tmp_path / "in.out.jsonl"))
        for line in out.values():
            assert line["status"] == "submitted" and line["job_id"], line
            assert line["error"]["type"] == "JobTimeoutError"
        status = creative("status", "in.out.jsonl", cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        assert re.search(r"submitted\s+3\n", status.stdout), status.stdout
        assert "run the same `creative batch` command again" in status.stdout

        rerun = creative("batch", "in.jsonl", *url, cwd=tmp_path)
        assert rerun.returncode == 0, rerun.stderr
        assert submits_per_id(fake, ids) == dict.fromkeys(ids, 1)
    again = by_id(read_out(tmp_path / "in.out.jsonl"))
    assert all(line["status"] == "succeeded" for line in again.values())
    assert {i: line["job_id"] for i, line in again.items()} == {
        i: line["job_id"] for i, line in out.items()
    }


# -- --simulate keeps its jobs between commands ---------------------------------------------


def test_simulate_generate_then_get_finds_the_job(tmp_path: Path) -> None:
    made = creative("generate", "a fox", *SIM, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    job = json.loads(made.stdout)
    read = creative("get", job["id"], "--simulate", cwd=tmp_path)
    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout)["id"] == job["id"]
    assert json.loads(read.stdout)["status"] == "succeeded"
    assert simulated_prompts(tmp_path / ".simulated") == {"a fox": 1}
    # Another process, another fake: a new job never takes an earlier one's id.
    second = json.loads(creative("generate", "a fox", *SIM, cwd=tmp_path).stdout)
    assert second["id"] != job["id"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_generate_stopped_while_waiting_prints_the_job_id(tmp_path: Path, sig: int) -> None:
    """The job exists and may be paid for: its id is said, so it can be read later."""
    proc = start("generate", "a slow fox", "--simulate", "--simulate-duration", "30", cwd=tmp_path)
    try:
        until(lambda: sum(simulated_prompts(tmp_path / ".simulated").values()) == 1)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.returncode is None:  # pipes closed too: no ResourceWarning later
            proc.kill()
            proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 128 + sig, stderr
    assert "Traceback" not in stderr
    (job_id,) = re.findall(r"the job (\S+) was submitted; `creative get \S+ --simulate`", stderr)
    read = creative("get", job_id, "--simulate", cwd=tmp_path)
    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout)["status"] in ("queued", "running")


def test_simulate_keeps_its_jobs_in_the_per_user_state_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = environment(HOME=str(home), CREATIVE_SIMULATE_STATE="")
    env.pop("XDG_STATE_HOME", None)
    made = creative("generate", "a fox", *SIM, cwd=tmp_path, env=env)
    assert made.returncode == 0, made.stderr
    assert simulated_prompts(home / ".local" / "state" / "creative") == {"a fox": 1}
    xdg = tmp_path / "xdg"
    env["XDG_STATE_HOME"] = str(xdg)
    made = creative("generate", "an owl", *SIM, "--provider", "neocu", cwd=tmp_path, env=env)
    assert made.returncode == 0, made.stderr
    assert simulated_prompts(xdg / "creative", "neocu") == {"an owl": 1}
    # A state folder that cannot be used: said before anything runs.
    (tmp_path / "blocked").write_text("a file\n")
    env["CREATIVE_SIMULATE_STATE"] = str(tmp_path / "blocked" / "state")
    refused = creative("generate", "a fox", *SIM, cwd=tmp_path, env=env)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "CREATIVE_SIMULATE_STATE" in refused.stderr


def test_an_interrupted_simulated_batch_resumes_with_simulate(tmp_path: Path) -> None:
    ids = write_inputs(tmp_path / "in.jsonl", 12)
    args = ("batch", "in.jsonl", "--simulate", "--concurrency", "4")
    state = tmp_path / ".simulated"
    proc = start(*args, "--simulate-duration", "1.5", cwd=tmp_path)
    try:
        until(lambda: sum(simulated_prompts(state).values()) >= 4)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.returncode is None:  # pipes closed too: no ResourceWarning later
            proc.kill()
            proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 130, stderr
    out = by_id(read_out(tmp_path / "in.out.jsonl"))
    assert any(line["status"] == "submitted" for line in out.values())
    rerun = creative(*args, "--simulate-duration", "0", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    out = by_id(read_out(tmp_path / "in.out.jsonl"))
    assert list(out) == ids and all(line["status"] == "succeeded" for line in out.values())
    assert simulated_prompts(state) == {f"prompt for {i}": 1 for i in ids}


# -- --retry-failed ---------------------------------------------------------------------------


def test_retry_failed_resends_only_the_jobs_that_failed(tmp_path: Path) -> None:
    ids = write_inputs(tmp_path / "in.jsonl", 3, '{"id": "bad", "prompt": "no luck [fail]"}')
    with FakeProcess() as fake:
        url = ("--base-url", fake.base_url)
        first = creative("batch", "in.jsonl", *url, cwd=tmp_path)
        assert first.returncode == 1, first.stderr
        plain = creative("batch", "in.jsonl", *url, cwd=tmp_path)
        assert plain.returncode == 1 and fake.stats()["submit"] == 4
        again = creative("batch", "in.jsonl", "--retry-failed", *url, cwd=tmp_path)
        assert again.returncode == 1, again.stderr
        assert "resending 1 failed job(s) (--retry-failed)" in again.stderr
        assert submits_per_id(fake, ids) == dict.fromkeys(ids, 1)
        assert fake.prompts()["no luck [fail]"] == 2
        status = creative("status", "in.out.jsonl.journal", cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        assert "--retry-failed to send the 1 failed job(s) again" in status.stdout
    out = by_id(read_out(tmp_path / "in.out.jsonl"))
    assert out["bad"]["status"] == "failed" and out["bad"]["error"]["type"] == "JobFailedError"


# -- the record of a batch is not replaced silently ------------------------------------------


def test_an_out_with_jobs_is_not_overwritten_when_its_journal_is_gone(tmp_path: Path) -> None:
    ids = write_inputs(tmp_path / "in.jsonl", 3)
    with FakeProcess() as fake:
        url = ("--base-url", fake.base_url)
        assert creative("batch", "in.jsonl", *url, cwd=tmp_path).returncode == 0
        before = (tmp_path / "in.out.jsonl").read_text()
        (tmp_path / "in.out.jsonl.journal").unlink()
        refused = creative("batch", "in.jsonl", *url, cwd=tmp_path)
        assert refused.returncode == 2, refused.stderr
        assert "in.out.jsonl" in refused.stderr and "--force" in refused.stderr
        assert fake.stats()["submit"] == 3
        assert (tmp_path / "in.out.jsonl").read_text() == before
        forced = creative("batch", "in.jsonl", "--force", *url, cwd=tmp_path)
        assert forced.returncode == 0, forced.stderr
        assert submits_per_id(fake, ids) == dict.fromkeys(ids, 2)


def test_a_journal_of_another_input_file_is_called_that(tmp_path: Path) -> None:
    write_inputs(tmp_path / "a.jsonl", 2)
    write_inputs(tmp_path / "b.jsonl", 3)
    with FakeProcess() as fake:
        url = ("--base-url", fake.base_url)
        first = creative("batch", "a.jsonl", "--out", "out.jsonl", *url, cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        other = creative("batch", "b.jsonl", "--out", "out.jsonl", *url, cwd=tmp_path)
        assert other.returncode == 2
        assert "was made from a different input file" in other.stderr
        assert "a.jsonl" in other.stderr and "has changed" not in other.stderr
        assert fake.stats()["submit"] == 2
