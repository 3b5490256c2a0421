"""Every Python block in README.md runs as written, each as a program of its own, against
the built-in fake providers: the environment points ``from_env()`` at a fake Deepixels
in a process of its own and ``CREATIVE_SHARE`` at the suite's PostgreSQL server, and the
README's TOML block is the ``creative.toml`` beside it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from creative_client.testing import FakeProcess, PostgresServer

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks(language: str) -> list[tuple[int, str]]:
    """The README's code blocks in ``language``: (line number, code)."""
    text = README.read_text()
    return [
        (text.count("\n", 0, m.start()) + 1, m[2]) for m in FENCE.finditer(text) if m[1] == language
    ]


PYTHON = blocks("python")
#: The configuration file's block (another TOML block shows a plugin's entry point).
CONFIG = [code for _, code in blocks("toml") if code.startswith("provider =")]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProcess]:
    with FakeProcess("deepixels", job_duration=0.1) as process:
        yield process


def test_the_readme_has_python_blocks_and_one_config_block() -> None:
    assert len(PYTHON) >= 8
    assert len(CONFIG) == 1


@pytest.mark.parametrize(("line", "code"), PYTHON, ids=[f"line-{n}" for n, _ in PYTHON])
def test_a_python_block_runs_as_written(
    line: int, code: str, fake: FakeProcess, postgres: PostgresServer, tmp_path: Path
) -> None:
    (tmp_path / "creative.toml").write_text(CONFIG[0])
    (tmp_path / "prompts.txt").write_text("a red fox\na blue whale\na green parrot\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREATIVE_", "DEEPIXELS_"))}
    env.update(
        CREATIVE_PROVIDER="deepixels",
        CREATIVE_BASE_URL=fake.base_url,
        CREATIVE_MODEL="flux-schnell",
        DEEPIXELS_API_KEY="readme-test-key",
        NEOCU_API_KEY="readme-test-key",
        CREATIVE_SHARE=postgres.url,
        PYTHONWARNINGS="error",
    )
    (tmp_path / "block.py").write_text(code)
    done = subprocess.run(
        [sys.executable, "-X", "dev", "block.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"README.md line {line}:\n{done.stderr}"
    for leak in ("Unclosed", "Task was destroyed", "never awaited"):
        assert leak not in done.stderr, f"README.md line {line}:\n{done.stderr}"


def test_the_python_blocks_pass_mypy_strict(tmp_path: Path) -> None:
    """What users copy type-checks: e.g. ``outcome.job.outputs`` needs ``outcome.job``
    narrowed first."""
    names = []
    for line, code in PYTHON:
        names.append(f"readme_line_{line}.py")
        (tmp_path / names[-1]).write_text(code)
    mypy = Path(sys.executable).parent / "mypy"
    done = subprocess.run(
        [str(mypy), "--strict", "--no-incremental", *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
