"""A fake provider in a process of its own, for tests and benchmarks that need the
client and the server apart (a client to kill, or CPU to measure on one side only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections import Counter
from types import TracebackType
from typing import Any, Self


class FakeProcess:
    """``python -m creative_client.testing PROVIDER`` on a free loopback port.

    ``provider`` is any name of ``fake_names()`` (a plugin's too); by default the
    first of them, the first built-in.

    >>> with FakeProcess("deepixels", job_duration=0.2) as fake:
    ...     run_something_against(fake.base_url)
    ...     assert fake.stats()["submit"] == 10

    It stops when the context ends, and by itself if this process dies (it watches
    its stdin). ``job_spread``, ``hold_submits_after``, ``webhook_loss`` (fakes that
    send webhooks) and ``state`` (a file keeping the jobs, so the next process on it
    has them) are the fake's options of those names. ``kill()`` ends it at once, as a
    crash would.
    """

    def __init__(
        self,
        provider: str | None = None,
        *,
        job_duration: float = 0.0,
        job_spread: float = 0.0,
        failure_rate: float = 0.0,
        hold_submits_after: int | None = None,
        webhook_loss: float = 0.0,
        state: str | os.PathLike[str] | None = None,
    ) -> None:
        from . import fake_class, fake_names  # the package imports this module first

        # Checked here, so that a name without a fake is a ConfigurationError, not a
        # process that prints ERROR.
        provider = fake_class(provider if provider is not None else fake_names()[0]).name
        self.provider = provider
        self._args = [
            sys.executable, "-m", "creative_client.testing", provider, "--watch-stdin",
            "--job-duration", str(job_duration), "--job-spread", str(job_spread),
            "--failure-rate", str(failure_rate),
        ]  # fmt: skip
        if hold_submits_after is not None:
            self._args += ["--hold-submits-after", str(hold_submits_after)]
        if webhook_loss:
            self._args += ["--webhook-loss", str(webhook_loss)]
        if state is not None:
            self._args += ["--state", os.fspath(state)]
        self._proc: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.root_url = ""

    def start(self) -> str:
        """Start the process; the API's base URL once it listens."""
        proc = self._proc = subprocess.Popen(
            self._args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("READY "):
            self.close()
            raise RuntimeError(f"the fake {self.provider} did not start: {line!r}")
        self.base_url = line.split(" ", 1)[1]
        self.root_url = self.base_url.rsplit("/", 1)[0]
        return self.base_url

    def stats(self) -> dict[str, int]:
        """The fake's counters: submits, reads, jobs, ..."""
        stats: dict[str, int] = self._call("GET", "stats")
        return stats

    def callbacks(self) -> dict[str, float]:
        """When each job's first callback went out, by job id (``time.monotonic()``)."""
        times: dict[str, float] = self._call("GET", "callbacks")
        return times

    def prompts(self) -> Counter[str]:
        """How many jobs were made per prompt."""
        return Counter(self._call("GET", "prompts"))

    def release(self) -> None:
        """Answer the held submits, and hold no more."""
        self._call("POST", "release")

    def kill(self) -> None:
        """SIGKILL the fake (no clean-up, as a crash), then reap it."""
        if self._proc is not None:
            self._proc.kill()
            self.close()

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()  # the fake stops when its stdin ends
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()

    def _call(self, method: str, name: str) -> Any:
        request = urllib.request.Request(f"{self.root_url}/_fake/{name}", method=method)
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.load(resp)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
