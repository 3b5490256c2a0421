"""A client belongs to one event loop: the first it is used in holds its session,
semaphores and server. ``Affinity`` keeps that rule for the facade
(``creative_client/_client.py``)."""

from __future__ import annotations

import asyncio

OTHER_LOOP = (
    "this client belongs to another event loop (the one it was first used in): its "
    "connections live there. Create a client inside each loop (asyncio.run call), "
    "or use SyncCreativeClient from code that is not async"
)


class Affinity:
    """Whether a client is open, and the loop it belongs to once first used."""

    __slots__ = ("closed", "loop", "name")

    def __init__(self, name: str = "CreativeClient") -> None:
        self.closed = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.name = name  # the client's class, for the errors

    def check_open(self) -> None:
        """Raise if the client is closed or belongs to another loop than the running one."""
        if self.closed:
            raise RuntimeError(f"this {self.name} is closed; create a new one")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # as_completed() called outside a loop: checked when it runs
        if self.loop is not loop:
            if self.loop is not None:
                raise RuntimeError(OTHER_LOOP)
            self.loop = loop  # its session, semaphores and server belong to this loop

    def check_close(self) -> None:
        """Mark the client closed; raise if it must be closed in the loop it belongs to."""
        if self.loop is not None and self.loop is not asyncio.get_running_loop():
            if self.loop.is_closed():
                self.closed = True
                raise RuntimeError(
                    "this client's event loop is closed, with its connections still open "
                    "in it: close a client (async with) in the loop that used it"
                )
            raise RuntimeError(OTHER_LOOP)
        self.closed = True
