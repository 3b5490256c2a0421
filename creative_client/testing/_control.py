"""A fake's endpoints beside its provider's API, and its listening socket.

``/files/{name}`` serves the output files (no key needed, like a CDN); ``/_fake/*``
lets a test or benchmark in another process read the counters and the jobs' timings,
and release held submits.
"""

from __future__ import annotations

import mimetypes
import socket
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ._server import FakeServer


class Controls:
    """The handlers of ``/files/{name}`` and ``/_fake/*`` for one fake."""

    def __init__(self, fake: FakeServer) -> None:
        self.fake = fake

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/files/{name}", self.file)
        app.router.add_get("/_fake/stats", self.stats)
        app.router.add_get("/_fake/prompts", self.prompts)
        app.router.add_post("/_fake/release", self.release)
        app.router.add_get("/_fake/callbacks", self.callback_times)
        app.router.add_get("/_fake/timings", self.timings)

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.fake.stats())

    async def timings(self, request: web.Request) -> web.Response:
        return web.json_response(self.fake.timings())

    async def callback_times(self, request: web.Request) -> web.Response:
        return web.json_response(self.fake.callback_times)

    async def prompts(self, request: web.Request) -> web.Response:
        return web.json_response(dict(self.fake.prompts))

    async def release(self, request: web.Request) -> web.Response:
        self.fake.release()
        return web.json_response({"released": True})

    async def file(self, request: web.Request) -> web.StreamResponse:
        """An output file: no key needed (like a CDN); scripted replies and read faults apply."""
        _, fault = await self.fake.intake("file", request)
        if fault is not None:
            return await self.fake.send(request, fault)
        name = request.match_info["name"]
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return web.Response(body=f"fake media {name}\n".encode(), content_type=kind)


def bound_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (0: a free port), for the fake to listen on."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock
