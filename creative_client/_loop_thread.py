"""The private event loop of a ``SyncCreativeClient`` (``creative_client/_sync.py``), in
a thread of its own, and the way a blocking call runs a coroutine there."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from ._fanout import cancel_all

if TYPE_CHECKING:
    from ._client import CreativeClient

T = TypeVar("T")

CLOSED = "this SyncCreativeClient is closed; create a new one"
#: How often a waiting caller wakes: on Windows a wait without a timeout ignores Ctrl-C.
_TICK = 0.2
#: How long an interrupted call may take to wind down before the interrupt goes on.
_SETTLE = 10.0


class LoopThread:
    """The private loop and its thread. It holds no reference to the sync client, so a
    client nobody closed can still be finalised (when collected, or at exit)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.client: CreativeClient | None = None
        self._stop = asyncio.Event()
        self._calls: dict[object, asyncio.Task[Any]] = {}  # touched on the loop only
        # A daemon: a non-daemon thread is joined before atexit handlers run, so a client
        # nobody closed would hang the interpreter at exit; the finaliser closes it instead.
        self.thread = threading.Thread(target=self._serve, name="SyncCreativeClient", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        # Runner's close is asyncio.run's clean-up: it cancels any task left, finalises
        # async generators, shuts the default executor down and closes the loop.
        with asyncio.Runner(loop_factory=lambda: self.loop) as runner:
            runner.run(self._main())

    async def _main(self) -> None:
        await self._stop.wait()
        # Calls still running (from other threads) end first, so the client closes its
        # session with nothing left using it.
        await cancel_all(set(self._calls.values()))
        if self.client is not None:
            await self.client.aclose()

    def call(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run ``make()`` on the loop and wait for it; an interrupt cancels it there."""
        if threading.current_thread() is self.thread:
            raise RuntimeError(
                "a SyncCreativeClient cannot be called from its own thread "
                "(from a progress callback or a batch's input, say)"
            )
        token = object()
        future = self._submit(self._guarded(token, make))
        try:
            while not future.done():
                concurrent.futures.wait((future,), timeout=_TICK)
            return future.result()
        except concurrent.futures.CancelledError:
            raise RuntimeError(CLOSED) from None  # only closing cancels a call's task
        except BaseException:
            # Interrupted while it ran (Ctrl-C): cancel it on the loop and let it wind
            # down before the interrupt goes on, so none of it runs on unseen.
            if future.cancel():
                self._settle(token)
            raise

    async def _guarded(self, token: object, make: Callable[[], Awaitable[T]]) -> T:
        task = asyncio.current_task()
        assert task is not None
        self._calls[token] = task  # first thing: _ended() relies on it
        try:
            return await make()
        finally:
            del self._calls[token]

    def _settle(self, token: object) -> None:
        # Closed meanwhile (nothing runs any more), or slow to end: the interrupt goes on.
        with contextlib.suppress(RuntimeError, TimeoutError, concurrent.futures.CancelledError):
            self._submit(self._ended(token)).result(timeout=_SETTLE)

    async def _ended(self, token: object) -> None:
        # The cancel was queued before this coroutine: a call not registered by now never
        # starts at all.
        task = self._calls.get(token)
        if task is not None:
            await asyncio.wait((task,))

    def _submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        try:
            return asyncio.run_coroutine_threadsafe(coro, self.loop)
        except RuntimeError:  # the loop is closed: closed from another thread
            coro.close()
            raise RuntimeError(CLOSED) from None

    def shutdown(self, timeout: float | None = None) -> None:
        """Close the client on its loop, stop the loop and join the thread."""
        with contextlib.suppress(RuntimeError):  # the loop is closed already
            self.loop.call_soon_threadsafe(self._stop.set)
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout)
