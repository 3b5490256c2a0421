"""Bounded, lazy fan-out: at most ``limit`` live tasks, whatever the size of the input.

Generic: it knows tasks and items, not jobs or their errors (a batch's outcomes and
progress are ``creative_client/_progress.py``'s)."""

from __future__ import annotations

import asyncio
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
)
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


async def bounded_map(
    items: Iterable[T] | AsyncIterable[T],
    worker: Callable[[int, T], Coroutine[Any, Any, R]],
    limit: int,
    live: set[asyncio.Task[Any]],
    *,
    start: Callable[[], object] | None = None,
) -> AsyncGenerator[R, None]:
    """Run ``worker(index, item)`` for each item, yielding results in completion order.

    ``start`` is called as the iteration starts, in the loop that runs it.

    At most ``limit`` items are between the input and the consumer (running, or
    finished and not yet taken), and the next item is pulled only when a slot is
    free, so a generator input is never drained ahead of the work. Every task is
    also kept in ``live`` (the client's set) so that closing the client can cancel
    it. Leaving the loop early cancels what is still running and waits for it.
    """
    if start is not None:
        start()
    fan: _Fan[T, R] = _Fan(items, worker, limit, live)
    try:
        while True:
            if not fan.exhausted and fan.index - fan.yielded < limit:
                await fan.fill()
            if fan.index == fan.yielded:
                return
            done = await fan.finished.get()
            fan.yielded += 1
            if isinstance(done, tuple):
                yield done[0]
                continue
            if done.cancelled():
                raise RuntimeError(
                    "a job of this batch was cancelled from outside it (was the client closed?)"
                )
            done.result()  # raises the worker's exception
    finally:
        await cancel_all(fan.mine)
        _retrieve(fan.finished)


class _Fan(Generic[T, R]):
    """One ``bounded_map``'s state: its input, its tasks, and what they handed over.

    A result is handed over by its own task, as its last step: the consumer wakes on the
    next turn of the loop, not one turn later through a done-callback (a turn is slow
    when thousands of jobs finish at once). A task that fails or is cancelled is handed
    over by its done-callback instead.
    """

    __slots__ = (
        "exhausted", "finished", "index", "limit", "live", "mine", "source", "sync_source",
        "worker", "yielded",
    )  # fmt: skip

    def __init__(
        self,
        items: Iterable[T] | AsyncIterable[T],
        worker: Callable[[int, T], Coroutine[Any, Any, R]],
        limit: int,
        live: set[asyncio.Task[Any]],
    ) -> None:
        self.source, self.sync_source = _sources(items)
        self.worker = worker
        self.limit = limit
        self.live = live
        self.finished: asyncio.Queue[tuple[R] | asyncio.Task[None]] = asyncio.Queue()
        self.mine: set[asyncio.Task[None]] = set()
        self.index = self.yielded = 0
        self.exhausted = False

    async def fill(self) -> None:
        """Start tasks until ``limit`` are out; a finished result not yet taken still holds
        its slot, so a slow consumer holds the input back instead of buffering results."""
        source, sync_source = self.source, self.sync_source
        while self.index - self.yielded < self.limit:
            try:
                item = await anext(source) if source is not None else next(sync_source)
            except (StopIteration, StopAsyncIteration):
                self.exhausted = True
                return
            task = asyncio.create_task(self._run(self.index, item))
            self.index += 1
            self.mine.add(task)
            self.live.add(task)
            task.add_done_callback(self._on_done)

    async def _run(self, index: int, item: T) -> None:
        self.finished.put_nowait((await self.worker(index, item),))

    def _on_done(self, task: asyncio.Task[None]) -> None:
        self.mine.discard(task)
        self.live.discard(task)
        if task.cancelled() or task.exception() is not None:
            self.finished.put_nowait(task)


def _sources(items: Iterable[T] | AsyncIterable[T]) -> tuple[AsyncIterator[T] | None, Iterator[T]]:
    """The input as an async iterator, or else as a plain one (the first is ``None``)."""
    if isinstance(items, AsyncIterable):
        return aiter(items), iter(())
    return None, iter(items)


def _retrieve(finished: asyncio.Queue[Any]) -> None:
    """Take the errors of tasks no consumer took, so asyncio does not log them as lost."""
    while not finished.empty():
        left = finished.get_nowait()
        if isinstance(left, asyncio.Task) and not left.cancelled():
            left.exception()


async def cancel_all(tasks: set[asyncio.Task[Any]]) -> None:
    """Cancel the tasks and wait until every one has ended."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
