"""The package's types reach its users: mypy finds them from outside the repository, after
``pip install -e .`` (this test environment) and from a wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

USER_CODE = """\
import asyncio
from creative_client import CreativeClient, JobStatus

async def main() -> None:
    async with CreativeClient("deepixels", "key", model="m") as client:
        job = await client.generate("a red fox")
        status: JobStatus = job.status
        print(status, job.outputs[0].url)
        await client.generate(prompt=123)

asyncio.run(main())
"""


def _mypy(folder: Path, *options: str) -> str:
    (folder / "use.py").write_text(USER_CODE)
    done = subprocess.run(
        [str(BIN / "mypy"), "--strict", "--no-incremental", *options, "use.py"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.stdout + done.stderr


def _one_error_on_the_bad_line(report: str) -> None:
    assert "Cannot find implementation" not in report, report
    assert 'use.py:9: error: Argument "prompt" to "generate"' in report, report
    assert "Found 1 error in 1 file" in report, report


def test_mypy_finds_the_types_of_an_editable_install(tmp_path: Path) -> None:
    _one_error_on_the_bad_line(_mypy(tmp_path))


@pytest.mark.timeout(600)
def test_mypy_finds_the_types_in_the_wheel(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=540,
    )
    (wheel,) = wheels.glob("creative_client-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert "creative_client/py.typed" in archive.namelist()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    target = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(target), "install", "--quiet", "--no-deps",
         str(wheel)],
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    user = tmp_path / "user"
    user.mkdir()
    _one_error_on_the_bad_line(_mypy(user, "--python-executable", str(target)))
