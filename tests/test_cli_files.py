"""The ``creative`` command and its own files: checked before anything is paid for, a
later failure said in one line (never a traceback) without losing a job id, and every
file made with the umask's mode."""

from __future__ import annotations

import contextlib
import json
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli import by_id, creative, read_out, start, until, write_inputs

from creative_client.testing import FakeProcess


@contextlib.contextmanager
def immutable(folder: Path) -> Iterator[None]:
    """``folder`` takes no new file, even from root (which ignores file modes)."""
    folder.mkdir(parents=True, exist_ok=True)
    # Never skipped: these machines have e2fsprogs' chattr and an ext4 /tmp; a machine
    # without them fails here, saying so, rather than passing without the check.
    made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, timeout=10)
    if made.returncode != 0:
        pytest.fail(f"chattr +i {folder} did not work here: {made.stderr!r}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True, timeout=10)


@contextlib.contextmanager
def unwritable(tmp_path: Path, how: str) -> Iterator[Path]:
    """A folder nothing can be written in: immutable (chattr), or under a regular file."""
    if how == "immutable":
        with immutable(tmp_path / "ro"):
            yield tmp_path / "ro"
    else:
        tmp_path.mkdir(parents=True, exist_ok=True)
        (tmp_path / "ro").write_text("a file, not a folder\n")
        yield tmp_path / "ro"


HOW = ["immutable", "under-a-file"]


@pytest.mark.parametrize("how", HOW)
def test_batch_refuses_a_download_folder_it_cannot_write_before_sending(
    tmp_path: Path, how: str
) -> None:
    write_inputs(tmp_path / "in.jsonl", 3)
    with FakeProcess() as fake, unwritable(tmp_path, how):
        done = creative(
            "batch", "in.jsonl", "--download", "ro/media", "--base-url", fake.base_url,
            cwd=tmp_path,
        )  # fmt: skip
        assert fake.stats()["submit"] == 0
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "cannot write downloads in 'ro/media'" in done.stderr


@pytest.mark.parametrize("how", HOW)
def test_batch_refuses_an_out_it_cannot_write_before_sending(tmp_path: Path, how: str) -> None:
    write_inputs(tmp_path / "in.jsonl", 3)
    with FakeProcess() as fake, unwritable(tmp_path, how):
        done = creative(
            "batch", "in.jsonl", "--out", "ro/out.jsonl", "--journal", "in.journal",
            "--base-url", fake.base_url, cwd=tmp_path,
        )  # fmt: skip
        assert fake.stats()["submit"] == 0
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "cannot write the output in 'ro'" in done.stderr
    # And a journal there: refused the same way.
    with FakeProcess() as fake, unwritable(tmp_path / "j", how):
        done = creative(
            "batch", "in.jsonl", "--journal", "j/ro/in.journal", "--base-url", fake.base_url,
            cwd=tmp_path,
        )  # fmt: skip
        assert fake.stats()["submit"] == 0
    assert done.returncode == 2 and "cannot write the journal" in done.stderr, done.stderr


@pytest.mark.parametrize("how", HOW)
def test_generate_refuses_a_download_folder_it_cannot_write_before_sending(
    tmp_path: Path, how: str
) -> None:
    with FakeProcess() as fake, unwritable(tmp_path, how):
        done = creative(
            "generate", "fox", "--download", "ro/media", "--base-url", fake.base_url,
            cwd=tmp_path,
        )  # fmt: skip
        assert fake.stats()["submit"] == 0
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "ro/media" in done.stderr


def test_a_download_that_fails_later_is_that_rows_error(tmp_path: Path) -> None:
    """The folder was fine at the start; one file cannot be put in place (a folder holds
    its name): that row says so, the others are saved, and a rerun finishes it."""
    write_inputs(tmp_path / "in.jsonl", 3)
    blocker = tmp_path / "media" / "job-1-0.png"
    blocker.mkdir(parents=True)
    (blocker / "keep").write_text("x")
    args = ("batch", "in.jsonl", "--download", "media")
    with FakeProcess() as fake:
        done = creative(*args, "--base-url", fake.base_url, cwd=tmp_path)
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr
        assert "1 download(s) failed" in done.stderr
        out = by_id(read_out(tmp_path / "in.out.jsonl"))
        assert out["job-1"]["status"] == "succeeded" and out["job-1"]["job_id"]
        assert out["job-1"]["files"] == []
        assert "download failed" in out["job-1"]["error"]["message"]
        assert out["job-0"]["files"] == ["media/job-0-0.png"]
        assert out["job-2"]["files"] == ["media/job-2-0.png"]
        (blocker / "keep").unlink()
        blocker.rmdir()
        again = creative(*args, "--base-url", fake.base_url, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert fake.stats()["submit"] == 3  # nothing generated twice
    assert by_id(read_out(tmp_path / "in.out.jsonl"))["job-1"]["files"] == ["media/job-1-0.png"]


def test_an_out_that_cannot_be_written_at_the_end_keeps_every_job_id(tmp_path: Path) -> None:
    """OUT's folder stops taking files while the jobs run: a clean exit naming OUT, the
    ids are in the journal, and a rerun writes OUT without sending anything."""
    ids = write_inputs(tmp_path / "in.jsonl", 4)
    (tmp_path / "ro").mkdir()
    args = ("batch", "in.jsonl", "--out", "ro/out.jsonl", "--journal", "in.journal")
    with FakeProcess(hold_submits_after=2) as fake:
        proc = start(*args, "--base-url", fake.base_url, cwd=tmp_path)
        try:
            until(lambda: fake.stats()["jobs"] >= 3)  # past the checks: submits are held
            with immutable(tmp_path / "ro"):
                fake.release()
                _, stderr = proc.communicate(timeout=60)
                assert proc.returncode == 1, stderr
                assert "Traceback" not in stderr
                assert "cannot write 'ro/out.jsonl'" in stderr
                assert "in.journal" in stderr and "run the same command again" in stderr
                assert not (tmp_path / "ro" / "out.jsonl").exists()
                status = creative("status", "in.journal", cwd=tmp_path)
                assert status.returncode == 0, status.stderr
                assert re.search(r"succeeded\s+4\n", status.stdout), status.stdout
        finally:
            proc.kill()
            proc.communicate(timeout=60)
        again = creative(*args, "--base-url", fake.base_url, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert fake.stats()["submit"] == 4
    out = by_id(read_out(tmp_path / "ro" / "out.jsonl"))
    assert list(out) == ids and all(line["job_id"] for line in out.values())


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    write_inputs(tmp_path / "in.jsonl", 2)
    done = creative(
        "batch", "in.jsonl", "--simulate", "--simulate-duration", "0", "--download", "media",
        cwd=tmp_path, umask=umask,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    made = [tmp_path / "in.out.jsonl", tmp_path / "in.out.jsonl.journal"]
    made += sorted((tmp_path / "media").iterdir())
    assert len(made) == 4
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in made}
    assert modes == dict.fromkeys(modes, mode)
    generated = creative(
        "generate", "fox", "--simulate", "--simulate-duration", "0", "--download", "one",
        cwd=tmp_path, umask=umask,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stderr
    (saved,) = json.loads(generated.stdout)["files"]
    assert stat.S_IMODE((tmp_path / saved).stat().st_mode) == mode
