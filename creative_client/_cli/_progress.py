"""A batch's progress on stderr: a tqdm bar on a terminal, plain lines otherwise, or none.

The jobs only bump counters; a task of its own redraws a few times a second, so the
display costs nothing per job however fast they finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from typing import Any, TextIO

import attrs
from tqdm import tqdm

from .._models import Progress


@attrs.define(kw_only=True)
class Counts(Progress):
    """A batch's ``Progress`` with what the display adds: its total, when this run
    started, and how many were finished before it (resumed from the journal; not part
    of the rate)."""

    total: int = 0
    started_at: float = attrs.field(factory=time.monotonic)
    earlier: int = 0

    def describe(self) -> str:
        return f"{self.succeeded} succeeded, {self.failed} failed, {self.uncertain} uncertain"


class Display:
    """Shows ``counts`` on ``stream`` while running, in ``mode`` "bar", "lines" or "none"."""

    def __init__(self, counts: Counts, stream: TextIO, mode: str, *, every: float) -> None:
        self.counts = counts
        self._stream = stream
        self._mode = mode
        self._every = every
        self._bar: tqdm[Any] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._mode == "bar":
            columns, lines = _screen(self._stream)
            self._bar = bar = tqdm(
                total=self.counts.total,
                initial=self.counts.done,
                file=self._stream,
                unit="job",
                ncols=columns,
                nrows=lines,  # tqdm hides a bar on a terminal that says it has 0 lines
                mininterval=0.1,
                smoothing=0.1,
            )
            bar.set_postfix_str(self.counts.describe(), refresh=True)
        if self._mode != "none":
            self._task = asyncio.create_task(self._tick())

    def say(self, message: str) -> None:
        """A line for the user that does not break the bar."""
        if self._mode == "none":
            return
        if self._bar is not None:
            self._bar.write(message, file=self._stream)
        else:
            print(message, file=self._stream, flush=True)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._draw()
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    async def _tick(self) -> None:
        period = 0.2 if self._bar is not None else self._every
        if self._bar is None:
            self._draw()
        while True:
            await asyncio.sleep(period)
            self._draw()

    def _draw(self) -> None:
        counts = self.counts
        if self._bar is not None:
            self._bar.update(counts.done - self._bar.n)
            self._bar.set_postfix_str(counts.describe(), refresh=True)
        elif self._mode == "lines":
            elapsed = time.monotonic() - counts.started_at
            this_run = counts.done - counts.earlier
            rate = this_run / elapsed if elapsed > 0 else 0.0
            left = counts.total - counts.done
            eta = f", ETA {left / rate:.0f}s" if rate > 0 and left else ""
            print(
                f"creative: {counts.done}/{counts.total} done ({counts.describe()}), "
                f"{rate:.1f} jobs/s{eta}",
                file=self._stream,
                flush=True,
            )


def _screen(stream: TextIO) -> tuple[int, int]:
    """The terminal's columns and lines, with 80 x 24 for what it does not say."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, ValueError, OSError):
        return 80, 24
    return size.columns or 80, size.lines or 24


def mode_for(quiet: bool, stream: TextIO) -> str:
    """How to show progress on ``stream``: "none" when quiet, a "bar" on a terminal,
    "lines" otherwise."""
    if quiet:
        return "none"
    return "bar" if stream.isatty() else "lines"


class Speaking:
    """How a run talks to its user, over its progress display when it has one
    (``Batch`` in ``_batch.py``, ``FleetBatch`` in ``_fleet.py``)."""

    _display: Display | None
    _stderr: TextIO
    _progress: str  # "bar", "lines" or "none"

    def _say(self, message: str) -> None:
        """Progress and the summary: not with --quiet."""
        if self._progress != "none":
            self._warn(message)

    def _warn(self, message: str) -> None:
        """What the user must know: bad lines, uncertain jobs, how to resume (even --quiet)."""
        if self._display is not None and self._progress != "none":
            self._display.say(message)
        else:
            print(message, file=self._stderr, flush=True)
