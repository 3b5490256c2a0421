"""The ``creative`` command, run as a real process against fake providers on loopback."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from creative_client.testing import FakeProcess

KEY = "cli-test-key-7f3a9c"
TIMEOUT = 60


def environment(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CREATIVE_") and not k.endswith("_API_KEY")
    }
    env.update(CREATIVE_PROVIDER="deepixels", CREATIVE_MODEL="flux-schnell", DEEPIXELS_API_KEY=KEY)
    env.update(extra)
    return env


def with_state(env: dict[str, str] | None, cwd: Path) -> dict[str, str]:
    """``env`` with the simulated providers' jobs kept beside the test, never in the
    real home folder."""
    env = dict(env or environment())
    env.setdefault("CREATIVE_SIMULATE_STATE", str(cwd / ".simulated"))
    return env


def creative(
    *args: str | Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    umask: int = -1,
) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "creative_client", *map(str, args)],
        cwd=cwd,
        env=with_state(env, cwd),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        umask=umask,
    )


def start(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "creative_client", *map(str, args)],
        cwd=cwd,
        env=with_state(env, cwd),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def signalled(
    args: tuple[str, ...], fake: FakeProcess, cwd: Path, when: Callable[[], bool], sig: int
) -> tuple[int, str]:
    """Run the command against ``fake``, send ``sig`` once ``when()`` holds; its exit
    status and stderr."""
    proc = start(*args, "--base-url", fake.base_url, cwd=cwd)
    try:
        until(when)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
    return proc.returncode, stderr


def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def write_inputs(path: Path, n: int, *extra: str) -> list[str]:
    ids = [f"job-{i}" for i in range(n)]
    lines = [json.dumps({"id": ident, "prompt": f"prompt for {ident}"}) for ident in ids]
    path.write_text("\n".join([*lines, *extra]) + "\n")
    return ids


def read_out(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def by_id(lines: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    ids = [line["id"] for line in lines]
    assert len(ids) == len(set(ids)), "an id appears twice in OUT"
    return {line["id"]: line for line in lines}


def submits_per_id(fake: FakeProcess, ids: list[str]) -> dict[str, int]:
    prompts = fake.prompts()
    return {ident: prompts[f"prompt for {ident}"] for ident in ids}


# -- batch: the happy path and the output ---------------------------------------------------


def test_batch_writes_one_line_per_id_and_exits_0(tmp_path: Path) -> None:
    ids = write_inputs(tmp_path / "in.jsonl", 40)
    with FakeProcess() as fake:
        url = fake.base_url
        done = creative("batch", "in.jsonl", "--out", "out.jsonl", "--base-url", url, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert fake.stats()["submit"] == 40
    out = by_id(read_out(tmp_path / "out.jsonl"))
    assert list(out) == ids  # input order
    line = out["job-0"]
    assert set(line) == {
        "id", "line", "status", "job_id", "provider", "outputs", "files", "error"
    }  # fmt: skip
    assert [line["line"] for line in out.values()] == list(range(1, 41))
    assert line["status"] == "succeeded" and line["provider"] == "deepixels"
    assert line["job_id"] and line["outputs"][0].startswith("http://127.0.0.1:")
    assert line["files"] == [] and line["error"] is None
    assert "40 of 40 jobs done: 40 succeeded, 0 failed, 0 uncertain" in done.stderr
    assert (tmp_path / "out.jsonl.journal").exists()
    # Run again: everything is finished, so nothing is sent and OUT is the same.
    with FakeProcess() as fake:
        again = creative(
            "batch", "in.jsonl", "--out", "out.jsonl", "--base-url", fake.base_url, cwd=tmp_path
        )
        assert again.returncode == 0, again.stderr
        assert fake.stats()["submit"] == 0 and fake.stats()["get"] == 0
    assert by_id(read_out(tmp_path / "out.jsonl")) == out


def test_a_failed_job_is_a_line_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text(
        '{"id": 1, "prompt": "fine"}\n{"id": 2, "prompt": "this one fails [fail]"}\n'
    )
    done = creative("batch", "in.jsonl", "--simulate", "--simulate-duration", "0", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    out = by_id(read_out(tmp_path / "in.out.jsonl"))  # the default --out
    assert out[1]["status"] == "succeeded"
    assert out[2]["status"] == "failed" and out[2]["job_id"]
    assert out[2]["error"]["type"] == "JobFailedError"


def test_bad_lines_are_reported_by_number_and_the_rest_runs(tmp_path: Path) -> None:
    write_inputs(
        tmp_path / "in.jsonl",
        3,
        "{not json",
        '{"id": "job-1", "prompt": "again"}',
        '{"id": "no-prompt"}',
        '{"id": "odd", "prompt": "p", "colour": "red"}',
        "",
        '["a list"]',
    )
    with FakeProcess() as fake:
        done = creative("batch", "in.jsonl", "--base-url", fake.base_url, cwd=tmp_path)
        assert fake.stats()["submit"] == 3
    assert done.returncode == 1
    for text in (
        "in.jsonl:4: not a JSON object",
        'in.jsonl:5: duplicate id "job-1" (first on line 2)',
        "in.jsonl:6: 'prompt' is missing",
        "in.jsonl:7: unknown field(s) 'colour'",
        "in.jsonl:9: not a JSON object",
    ):
        assert text in done.stderr
    out = by_id(read_out(tmp_path / "in.out.jsonl"))
    # Every line but the blank one, in order, each with its number: a line without a
    # usable id of its own (not JSON, a duplicate id, not an object) under "line:N".
    assert list(out) == [
        "job-0", "job-1", "job-2", "line:4", "line:5", "no-prompt", "odd", "line:9"
    ]  # fmt: skip
    assert [line["line"] for line in out.values()] == [1, 2, 3, 4, 5, 6, 7, 9]
    assert out["job-1"]["status"] == "succeeded"
    for ident in ("line:4", "line:5", "no-prompt", "odd", "line:9"):
        assert out[ident]["status"] == "invalid" and out[ident]["job_id"] is None
        assert out[ident]["error"]["type"] == "InvalidRequestError"
    assert "duplicate id" in out["line:5"]["error"]["message"]
    # --quiet silences progress and the summary, not what is wrong with the input.
    quiet = creative("batch", "in.jsonl", "--quiet", "--simulate", "--out", "q.jsonl", cwd=tmp_path)
    assert quiet.returncode == 1
    assert "in.jsonl:4: not a JSON object" in quiet.stderr and "jobs done" not in quiet.stderr


def test_strict_runs_nothing_when_a_line_is_bad(tmp_path: Path) -> None:
    write_inputs(tmp_path / "in.jsonl", 5, '{"id": "x", "prompt": "p", "files": ["f1"]}')
    with FakeProcess() as fake:
        done = creative("batch", "in.jsonl", "--strict", "--base-url", fake.base_url, cwd=tmp_path)
        assert fake.stats()["submit"] == 0
    assert done.returncode == 2
    # Deepixels takes no file ids: said before any request, with the line number.
    assert "in.jsonl:6:" in done.stderr and "files" in done.stderr
    assert "nothing was run" in done.stderr
    assert not (tmp_path / "in.out.jsonl").exists()


def test_a_changed_input_is_refused_unless_forced(tmp_path: Path) -> None:
    write_inputs(tmp_path / "in.jsonl", 4)
    with FakeProcess() as fake:
        url = fake.base_url
        assert creative("batch", "in.jsonl", "--base-url", url, cwd=tmp_path).returncode == 0
        ids = write_inputs(tmp_path / "in.jsonl", 6)
        refused = creative("batch", "in.jsonl", "--base-url", url, cwd=tmp_path)
        assert refused.returncode == 2
        assert "has changed since the journal" in refused.stderr and "--force" in refused.stderr
        assert fake.stats()["submit"] == 4
        forced = creative("batch", "in.jsonl", "--force", "--base-url", url, cwd=tmp_path)
        assert forced.returncode == 0, forced.stderr
        assert submits_per_id(fake, ids) == dict.fromkeys(ids, 1)
    assert list(by_id(read_out(tmp_path / "in.out.jsonl"))) == ids


def test_a_journal_in_use_by_another_run_is_refused(tmp_path: Path) -> None:
    from creative_client._cli._journal import Journal

    write_inputs(tmp_path / "in.jsonl", 2)
    journal = Journal(tmp_path / "in.out.jsonl.journal")
    try:
        done = creative("batch", "in.jsonl", "--simulate", cwd=tmp_path)
    finally:
        journal.close()
    assert done.returncode == 2
    assert "in use by another run" in done.stderr


def test_a_journal_that_cannot_be_written_stops_the_batch(tmp_path: Path) -> None:
    import sqlite3

    from creative_client._cli._journal import Journal

    ids = write_inputs(tmp_path / "in.jsonl", 30)
    path = tmp_path / "in.out.jsonl.journal"
    Journal(path).close()
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TRIGGER fail BEFORE INSERT ON log "
        "WHEN json_extract(new.row, '$[6]') = '\"job-10\"' "
        "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
    )
    db.commit()
    db.close()
    with FakeProcess() as fake:
        done = creative("batch", "in.jsonl", "--concurrency", "4", "--base-url", fake.base_url,
                        cwd=tmp_path)  # fmt: skip
        sent = submits_per_id(fake, ids)
    assert done.returncode == 2
    assert "writing the journal 'in.out.jsonl.journal' failed: disk on fire" in done.stderr
    assert sent["job-10"] == 0  # its "submitting" row was not committed, so it was not sent
    assert max(sent.values()) == 1
    # OUT is still written, from what the run knows: every job that was sent has its
    # id there, or is uncertain (its answer was abandoned when the run stopped).
    out = by_id(read_out(tmp_path / "in.out.jsonl"))
    assert list(out) == ids
    for ident, n in sent.items():
        if n:
            assert out[ident]["job_id"] or out[ident]["status"] == "uncertain", out[ident]
        else:
            assert out[ident]["job_id"] is None
            assert out[ident]["status"] == "pending", out[ident]  # never "submitting"


def test_downloads_are_named_by_id(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text(
        '{"id": "a/../b", "prompt": "p1", "input": {"num_outputs": 2}}\n'
        '{"id": "c", "prompt": "p2"}\n'
    )
    done = creative(
        "batch", "in.jsonl", "--simulate", "--simulate-duration", "0", "--download", "media",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = by_id(read_out(tmp_path / "in.out.jsonl"))
    assert out["a/../b"]["files"] == ["media/a_.._b-0.png", "media/a_.._b-1.png"]
    assert out["c"]["files"] == ["media/c-0.png"]
    assert sorted(p.name for p in (tmp_path / "media").iterdir()) == [
        "a_.._b-0.png",
        "a_.._b-1.png",
        "c-0.png",
    ]


# -- kill, Ctrl-C and resume ----------------------------------------------------------------


def test_sigkill_with_every_slot_in_a_submit_then_rerun(tmp_path: Path) -> None:
    """The worst moment to die: every slot has a submit in flight. Rerunning sends each
    id once; the ones in flight are uncertain and not resent until asked."""
    ids = write_inputs(tmp_path / "in.jsonl", 60)
    args = ("batch", "in.jsonl", "--concurrency", "8")
    with FakeProcess(hold_submits_after=20) as fake:
        url = ("--base-url", fake.base_url)
        proc = start(*args, *url, cwd=tmp_path)
        try:
            until(lambda: fake.stats()["jobs"] == 28)  # 20 answered, 8 held: all slots
            time.sleep(0.2)
            assert fake.stats()["jobs"] == 28
        finally:
            proc.kill()
            proc.communicate(timeout=TIMEOUT)
        fake.release()

        rerun = creative(*args, *url, cwd=tmp_path)
        assert rerun.returncode == 1, rerun.stderr
        assert "8 submit(s) were in flight when an earlier run stopped" in rerun.stderr
        assert "--resubmit-uncertain" in rerun.stderr
        assert submits_per_id(fake, ids) == dict.fromkeys(ids, 1)
        assert fake.stats()["submit"] == 60
        out = by_id(read_out(tmp_path / "in.out.jsonl"))
        assert list(out) == ids
        uncertain = [i for i, line in out.items() if line["status"] == "uncertain"]
        assert len(uncertain) == 8
        assert all(out[i]["status"] == "succeeded" for i in ids if i not in uncertain)
        assert {out[i]["error"]["type"] for i in uncertain} == {"SubmissionUncertainError"}

        again = creative(*args, "--resubmit-uncertain", *url, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert "resubmitting 8 uncertain job(s)" in again.stderr
        assert "each may cost a second generation" in again.stderr
        expected = {i: 2 if i in uncertain else 1 for i in ids}
        assert submits_per_id(fake, ids) == expected
    assert all(line["status"] == "succeeded" for line in read_out(tmp_path / "in.out.jsonl"))


def test_sigkill_at_a_random_moment_then_rerun(tmp_path: Path) -> None:
    ids = write_inputs(tmp_path / "in.jsonl", 200)
    args = ("batch", "in.jsonl", "--concurrency", "16")
    with FakeProcess(job_duration=0.2) as fake:
        url = ("--base-url", fake.base_url)
        signalled(args, fake, tmp_path, lambda: fake.stats()["submit"] >= 60, signal.SIGKILL)
        killed_at = fake.stats()["submit"]
        assert killed_at < 200, "the batch ended before it was killed"

        rerun = creative(*args, *url, cwd=tmp_path)
        assert rerun.returncode in (0, 1), rerun.stderr
        out = by_id(read_out(tmp_path / "in.out.jsonl"))
        assert list(out) == ids
        sent = submits_per_id(fake, ids)
        # Never twice; once for every id but those whose submit the kill left in doubt.
        assert max(sent.values()) == 1
        uncertain = {i for i, line in out.items() if line["status"] == "uncertain"}
        assert len(uncertain) <= 16
        assert all(
            sent[i] == 1 and out[i]["status"] == "succeeded" for i in ids if i not in uncertain
        )


def test_ctrl_c_stops_cleanly_and_the_rerun_resumes(tmp_path: Path) -> None:
    ids = write_inputs(tmp_path / "in.jsonl", 100)
    args = ("batch", "in.jsonl", "--concurrency", "16")
    with FakeProcess(job_duration=0.5) as fake:
        url = ("--base-url", fake.base_url)
        status, stderr = signalled(
            args, fake, tmp_path, lambda: fake.stats()["submit"] >= 30, signal.SIGINT
        )
        assert status == 130, stderr
        assert "stopping (SIGINT)" in stderr
        assert "run the same command again to resume" in stderr
        stopped_at = fake.stats()["submit"]
        assert stopped_at < 100
        out = by_id(read_out(tmp_path / "in.out.jsonl"))  # written on the way out
        assert list(out) == ids
        states = {line["status"] for line in out.values()}
        assert states <= {"succeeded", "submitted", "pending"} and "pending" in states
        # Every submit that left was answered and journaled: its job id is known.
        assert sum(1 for line in out.values() if line["job_id"]) == stopped_at

        rerun = creative(*args, *url, cwd=tmp_path)
        assert rerun.returncode == 0, rerun.stderr
        assert submits_per_id(fake, ids) == dict.fromkeys(ids, 1)
        assert fake.stats()["submit"] == 100
    out = by_id(read_out(tmp_path / "in.out.jsonl"))
    assert list(out) == ids
    assert all(line["status"] == "succeeded" for line in out.values())


def test_a_second_ctrl_c_abandons_submits_in_flight_as_uncertain(tmp_path: Path) -> None:
    ids = write_inputs(tmp_path / "in.jsonl", 20)
    with FakeProcess(hold_submits_after=5) as fake:
        proc = start("batch", "in.jsonl", "--concurrency", "4", "--base-url", fake.base_url,
                     cwd=tmp_path)  # fmt: skip
        try:
            until(lambda: fake.stats()["jobs"] == 9)
            proc.send_signal(signal.SIGINT)
            time.sleep(0.5)
            assert proc.poll() is None  # waiting for the submits in flight to answer
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=TIMEOUT)
        finally:
            proc.kill()
        assert proc.returncode == 130, stderr
        assert "abandoning the submits in flight" in stderr
        out = by_id(read_out(tmp_path / "in.out.jsonl"))
        assert list(out) == ids
        assert sum(1 for line in out.values() if line["status"] == "uncertain") == 4
        # The summary counts what OUT says, and says how to send them again.
        assert re.search(r"jobs done: \d+ succeeded, 0 failed, 4 uncertain", stderr), stderr
        assert "4 submit(s) are uncertain" in stderr and "--resubmit-uncertain" in stderr
        assert submits_per_id(fake, ids) == {i: 1 if n < 9 else 0 for n, i in enumerate(ids)}


# -- progress ---------------------------------------------------------------------------------


def test_progress_lines_when_not_a_terminal_and_none_when_quiet(tmp_path: Path) -> None:
    write_inputs(tmp_path / "in.jsonl", 30)
    args = ("batch", "in.jsonl", "--simulate", "--simulate-duration", "0.3", "--concurrency", "5")
    done = creative(*args, "--progress-interval", "0.2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if " done (" in line]
    assert len(lines) >= 3
    assert "30/30 done (30 succeeded, 0 failed, 0 uncertain)" in lines[-1]
    assert "jobs/s" in lines[1]
    quiet = creative(*args, "--quiet", "--out", "quiet.jsonl", cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_a_terminal_gets_a_progress_bar(tmp_path: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    write_inputs(tmp_path / "in.jsonl", 10)
    leader, follower = pty.openpty()
    # 100 columns and 0 lines, as some terminals say: the bar must still show.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 0, 100, 0, 0))
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "creative_client", "batch", "in.jsonl", "--simulate",
             "--simulate-duration", "0"],
            cwd=tmp_path, env=environment(), stderr=follower, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the other side closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=TIMEOUT) == 0
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)
    screen = b"".join(chunks).decode(errors="replace")
    assert "10/10" in screen and "job/s" in screen and "|" in screen
    assert "10 succeeded, 0 failed, 0 uncertain" in screen


# -- generate and get -------------------------------------------------------------------------


def test_generate_prints_the_job_and_get_reads_it(tmp_path: Path) -> None:
    with FakeProcess() as fake:
        url = ("--base-url", fake.base_url)
        made = creative("generate", "a red fox", "--input", '{"width": 512}', *url, cwd=tmp_path)
        assert made.returncode == 0, made.stderr
        job = json.loads(made.stdout)
        assert job["status"] == "succeeded" and job["provider"] == "deepixels"
        assert job["outputs"][0]["kind"] == "image"
        assert job["raw"]["input"] == {"prompt": "a red fox", "width": 512}
        read = creative("get", job["id"], *url, cwd=tmp_path)
        assert read.returncode == 0, read.stderr
        assert json.loads(read.stdout)["id"] == job["id"]
        missing = creative("get", "no-such-job", *url, cwd=tmp_path)
        assert missing.returncode == 1 and "NotFoundError" in missing.stderr


def test_generate_downloads_and_a_failed_job_exits_1(tmp_path: Path) -> None:
    sim = ("--simulate", "--simulate-duration", "0")
    made = creative("generate", "a fox", "--download", "out", *sim, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    files = json.loads(made.stdout)["files"]
    assert len(files) == 1 and (tmp_path / files[0]).read_bytes().startswith(b"fake media")
    failed = creative("generate", "no luck [fail]", *sim, cwd=tmp_path)
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["status"] == "failed"
    neocu = creative("generate", "a fox", "--provider", "neocu", *sim, cwd=tmp_path)
    assert neocu.returncode == 0, neocu.stderr
    assert json.loads(neocu.stdout)["provider"] == "neocu"


def test_keys_come_from_the_environment_never_the_command_line(tmp_path: Path) -> None:
    env = environment()
    del env["DEEPIXELS_API_KEY"]
    done = creative("generate", "x", "--base-url", "http://127.0.0.1:9", cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert "DEEPIXELS_API_KEY" in done.stderr
    flag = creative("generate", "x", "--api-key", "k", cwd=tmp_path)
    assert flag.returncode == 2 and "unrecognized arguments: --api-key" in flag.stderr


def test_the_key_is_in_no_output_or_file(tmp_path: Path) -> None:
    write_inputs(tmp_path / "in.jsonl", 5, '{"id": "bad"}')
    with FakeProcess() as fake:
        done = creative(
            "batch", "in.jsonl", "-v", "--download", "media", "--base-url", fake.base_url,
            cwd=tmp_path,
        )  # fmt: skip
    assert done.returncode == 1
    assert KEY not in done.stdout + done.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_help_documents_the_exit_statuses() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "creative_client", "batch", "--help"],
        capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 0
    for text in ("exit status:", "0    every job succeeded", "130", "--resubmit-uncertain"):
        assert text in done.stdout


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "creative"
    assert script.exists()
    done = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0 and "generate" in done.stdout and "batch" in done.stdout


@pytest.mark.parametrize("provider", ["deepixels", "neocu"])
def test_simulate_runs_either_provider_without_a_key(tmp_path: Path, provider: str) -> None:
    write_inputs(tmp_path / "in.jsonl", 10)
    env = environment()
    del env["DEEPIXELS_API_KEY"]
    done = creative(
        "batch", "in.jsonl", "--simulate", "--simulate-duration", "0", "--provider", provider,
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert {line["provider"] for line in read_out(tmp_path / "in.out.jsonl")} == {provider}
