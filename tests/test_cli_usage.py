"""``creative`` as its users expect: version, stdin, help, messages, exit statuses, status."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_cli import by_id, creative, environment, read_out, write_inputs

from creative_client import __version__
from creative_client.testing import FakeProcess


def test_version(tmp_path: Path) -> None:
    done = creative("--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == f"creative {__version__}"


def test_batch_reads_stdin(tmp_path: Path) -> None:
    lines = "".join(json.dumps({"id": i, "prompt": f"p{i}"}) + "\n" for i in range(3))
    sim = ("--simulate", "--simulate-duration", "0")
    done = creative("batch", "-", "--out", "out.jsonl", *sim, cwd=tmp_path, stdin=lines)
    assert done.returncode == 0, done.stderr
    assert list(by_id(read_out(tmp_path / "out.jsonl"))) == [0, 1, 2]
    # The same input again: resumed (nothing left to do); another one: refused.
    again = creative("batch", "-", "--out", "out.jsonl", *sim, cwd=tmp_path, stdin=lines)
    assert again.returncode == 0, again.stderr
    other = creative("batch", "-", "--out", "out.jsonl", *sim, cwd=tmp_path, stdin=lines * 2)
    assert other.returncode == 2 and "has changed since the journal" in other.stderr
    no_out = creative("batch", "-", *sim, cwd=tmp_path, stdin=lines)
    assert no_out.returncode == 2 and "needs --out" in no_out.stderr


def help_of(command: str, tmp_path: Path) -> str:
    done = creative(command, "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return str(done.stdout)


def test_each_command_shows_its_own_options_with_their_defaults(tmp_path: Path) -> None:
    get = help_of("get", tmp_path)
    for option in ("--concurrency", "--timeout", "--download", "--out", "--input"):
        assert option not in get
    assert "--simulate-duration" in get and "--provider" in get
    generate = help_of("generate", tmp_path)
    for option in ("--concurrency", "--journal", "--resubmit-uncertain", "--quiet"):
        assert option not in generate
    assert "--timeout" in generate and "--download" in generate
    batch = help_of("batch", tmp_path)
    flat = " ".join(batch.split())
    for default in ("jobs at once (default: 32)", "(default: 512M)", "(default: 10.0)"):
        assert default in flat
    assert "--retry-failed" in batch and "(default: None)" not in batch
    assert "(default: False)" not in batch
    assert "status" in help_of("status", tmp_path)


def test_no_provider_names_the_flag(tmp_path: Path) -> None:
    env = environment()
    del env["CREATIVE_PROVIDER"]
    done = creative("generate", "x", "--base-url", "http://127.0.0.1:9", cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert "--provider" in done.stderr and "CREATIVE_PROVIDER" in done.stderr


# -- generate: refused before sending is 2, refused by the provider is 1 ---------------------


def test_generate_refused_before_sending_exits_2(tmp_path: Path) -> None:
    with FakeProcess() as fake:
        url = ("--base-url", fake.base_url)
        empty = creative("generate", "", *url, cwd=tmp_path)
        assert empty.returncode == 2, empty.stderr
        assert "InvalidRequestError" in empty.stderr
        files = creative("generate", "a fox", "--file", "f1", *url, cwd=tmp_path)
        assert files.returncode == 2, files.stderr
        assert fake.stats()["submit"] == 0


class _Refuses(BaseHTTPRequestHandler):
    """A provider that answers every request 400."""

    def do_POST(self) -> None:
        body = b'{"status": "error", "message": "no such model here"}'
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing_provider() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refuses)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_generate_refused_by_the_provider_exits_1(tmp_path: Path, refusing_provider: str) -> None:
    done = creative("generate", "a fox", "--base-url", refusing_provider, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "InvalidRequestError" in done.stderr and "no such model here" in done.stderr


# -- status -----------------------------------------------------------------------------------


def test_status_counts_a_batch_and_says_what_to_do(tmp_path: Path) -> None:
    write_inputs(tmp_path / "in.jsonl", 3, '{"id": "x", "prompt": "no [fail]"}', "{oops")
    done = creative("batch", "in.jsonl", "--simulate", "--simulate-duration", "0", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    for path in ("in.out.jsonl", "in.out.jsonl.journal"):
        status = creative("status", path, cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        text = status.stdout
        assert re.search(r"succeeded\s+3\n", text) and re.search(r"failed\s+1\n", text), text
        assert "--retry-failed" in text
        assert "--resubmit-uncertain" not in text
    out_status = creative("status", "in.out.jsonl", cwd=tmp_path).stdout
    assert re.search(r"invalid\s+1\n", out_status) and "input line(s) are invalid" in out_status
    missing = creative("status", "nothing.jsonl", cwd=tmp_path)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    (tmp_path / "junk.txt").write_text("hello\n")
    junk = creative("status", "junk.txt", cwd=tmp_path)
    assert junk.returncode == 2 and "neither" in junk.stderr
