"""Stopping a ``creative batch`` run: SIGINT and SIGTERM while it runs.

A first signal stops new submits and cuts short the waits and downloads (their rows
stay as they are, for the next run), but lets the submits in flight finish so that
their job ids are journaled; a second abandons those too (they become uncertain).
``Batch`` (``_batch.py``) listens while it runs; ``RowRun`` (``_batch_row.py``) asks
``stopping`` and makes its waits and downloads ``interruptible``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

from .._fanout import bounded_map

T = TypeVar("T")


class Stop:
    """One run's stopping; ``warn`` tells the user what a signal does."""

    def __init__(self, warn: Callable[[str], None]) -> None:
        self._warn = warn
        #: A first signal came: no new submits.
        self.stopping = False
        #: The first signal's number, if one came.
        self.signal: int | None = None
        #: The batch's own tasks (the client's are its business): a second Ctrl-C and
        #: the "jobs open" count use these.
        self.live: set[asyncio.Task[Any]] = set()
        self._interruptible: set[asyncio.Task[Any]] = set()
        self._main: asyncio.Task[Any] | None = None
        self._handled: list[int] = []

    def listen(self) -> None:
        """Handle SIGINT and SIGTERM (where the loop can) for the current task."""
        loop = asyncio.get_running_loop()
        self._main = asyncio.current_task()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._on_signal, sig)
                self._handled.append(sig)

    def unlisten(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._handled:
            loop.remove_signal_handler(sig)
        self._handled = []

    def _on_signal(self, sig: int) -> None:
        if self.signal is None:
            self.signal = sig
            self.stopping = True
            in_flight = len(self.live)
            self._warn(
                f"\ncreative: stopping ({signal.Signals(sig).name}): no new submits; "
                f"finishing the submits in flight ({in_flight} jobs open) so their ids are "
                "journaled. Press Ctrl-C again to abandon them (they would be uncertain)."
            )
            for task in list(self._interruptible):
                task.cancel()
        elif self._main is not None:
            self._warn("creative: abandoning the submits in flight")
            self._main.cancel()

    async def interruptible(self, call: Callable[..., Any], *args: Any) -> Any:
        """``await call(*args)``; None if a first Ctrl-C stopped it (the row stays as it is)."""
        task = asyncio.current_task()
        assert task is not None
        self._interruptible.add(task)
        try:
            if self.stopping:
                return None
            return await call(*args)
        except asyncio.CancelledError:
            if self.stopping and self.signal is not None and not self._main_cancelled():
                task.uncancel()
                return None
            raise
        finally:
            self._interruptible.discard(task)

    def _main_cancelled(self) -> bool:
        return self._main is not None and self._main.cancelling() > 0


async def drive(
    feed: Iterable[T] | AsyncIterable[T],
    one: Callable[[int, T], Coroutine[Any, Any, None]],
    concurrency: int,
    stop: Stop,
) -> bool:
    """Run ``one`` on every item of ``feed`` (``concurrency`` at once) while listening
    for signals; True when a signal stopped it."""
    stop.listen()
    try:
        batch = bounded_map(feed, one, concurrency, stop.live)
        async with contextlib.aclosing(batch) as stream:
            async for _ in stream:
                pass
    except asyncio.CancelledError:
        if stop.signal is None:
            raise
        current = asyncio.current_task()
        assert current is not None
        current.uncancel()
    finally:
        stop.unlisten()
    return stop.signal is not None
