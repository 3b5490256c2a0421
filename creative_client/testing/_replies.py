"""What a fake answers: scripted replies, random faults, and sending either (broken ways too)."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs
from aiohttp import web

HTML_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>502 Bad Gateway</h1><hr><p>nginx</p></body></html>"
)


@attrs.frozen(kw_only=True)
class Reply:
    """One scripted answer, queued with ``FakeServer.inject``.

    ``kind``: ``"reply"`` answers ``status`` with ``json`` (or raw ``body``);
    ``"drop"`` closes the connection before answering; ``"cut"`` sends the headers
    and part of the body, then closes; ``"hang"`` never answers (until the client
    gives up or the server stops); ``"trickle"`` sends the answer one byte every
    ``delay`` seconds; ``"endless"`` streams a body that never ends, without a
    length; ``"garbage"`` answers with a status line that is not HTTP. ``create`` says
    whether a scripted submit still creates the job first (default: yes for 5xx and
    every kind but "reply": the ambiguous cases).
    """

    status: int = 200
    json: Any = None
    body: bytes | str | None = None
    content_type: str = "application/json"
    headers: Mapping[str, str] = attrs.field(factory=dict)
    kind: Literal["reply", "drop", "cut", "hang", "trickle", "endless", "garbage"] = "reply"
    delay: float = 0.0
    create: bool | None = None

    def creates_job(self) -> bool:
        if self.create is not None:
            return self.create
        return self.kind != "reply" or self.status >= 500

    @classmethod
    def html(cls, status: int = 502) -> Reply:
        """An HTML error page, as a proxy in front of the provider would send."""
        return cls(status=status, body=HTML_PAGE, content_type="text/html")


@attrs.frozen(kw_only=True)
class Faults:
    """Random faults for one endpoint, as fractions of its requests (seeded, reproducible).

    ``server_error`` answers 5xx (``html`` of them as HTML pages), ``rate_limit``
    answers 429 with ``Retry-After: retry_after``, ``drop`` cuts the connection
    mid-answer, ``hang`` never answers, ``malformed`` answers 200 with a body that
    is not JSON. On a submit, 5xx, drops and hangs happen after the job was
    created, like a real outage.

    Each request's draw depends only on the server's ``seed``, the request (its
    path, query and body) and how many times that same request came before, not
    on the order concurrent requests arrive in: a run is the same every time.
    """

    server_error: float = 0.0
    html: float = 0.5
    rate_limit: float = 0.0
    retry_after: str | None = "0"
    drop: float = 0.0
    hang: float = 0.0
    malformed: float = 0.0

    @property
    def any(self) -> bool:
        return any(share for share, _ in self._kinds())

    def pick(self, rng: random.Random) -> Reply | None:
        roll = rng.random()
        for share, make in self._kinds():
            if roll < share:
                return make(rng)
            roll -= share
        return None

    def _kinds(self) -> tuple[tuple[float, Callable[[random.Random], Reply]], ...]:
        """Each kind of fault: its share of requests, and how to make one."""
        return (
            (self.server_error, self._server_error),
            (self.rate_limit, self._rate_limit),
            (self.drop, lambda _: Reply(kind="cut")),
            (self.hang, lambda _: Reply(kind="hang")),
            (self.malformed, lambda _: Reply(body=b'{"truncated": ', content_type="text/plain")),
        )

    def _server_error(self, rng: random.Random) -> Reply:
        status = rng.choice((500, 502, 503, 504))
        if rng.random() < self.html:
            return Reply.html(status)
        return Reply(status=status, json={"status": "error", "message": "internal error"})

    def _rate_limit(self, _: random.Random) -> Reply:
        headers = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
        return Reply(status=429, json={"error": "Too Many Requests"}, headers=headers)


class FaultDraws:
    """Which random fault each request gets: a draw seeded by the fake's ``seed``, the
    request and how many times that same request came before (see ``Faults``)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.seen: Counter[tuple[str, str, bytes]] = Counter()

    def draw(self, faults: Faults, endpoint: str, path_qs: str, body: bytes) -> Reply | None:
        if not faults.any:
            return None
        key = (endpoint, path_qs, body)
        self.seen[key] += 1
        draw = random.Random(f"{self.seed}|{endpoint}|{path_qs}|{body!r}|{self.seen[key]}")
        return faults.pick(draw)


def json_reply(status: int, document: Any) -> Reply:
    return Reply(status=status, json=document)


async def send(request: web.Request, reply: Reply) -> web.StreamResponse:
    """Answer as ``reply`` says, including the broken ways."""
    if reply.delay and reply.kind == "reply":
        await asyncio.sleep(reply.delay)
    if reply.kind == "hang":
        await asyncio.sleep(reply.delay or 3600)
    payload = _payload(reply)
    if reply.kind == "drop":
        _abort(request)
        return web.Response()
    if reply.kind == "garbage":  # not HTTP at all: a broken proxy or middlebox
        if request.transport is not None:
            request.transport.write(b"HTTP/1.1 abc Garbage\r\n\r\n")
        _abort(request)
        return web.Response()
    if reply.kind in ("cut", "trickle", "endless"):
        return await _stream(request, reply, payload)
    return web.Response(
        status=reply.status,
        body=payload,
        content_type=reply.content_type,
        headers=reply.headers,
    )


async def _stream(request: web.Request, reply: Reply, payload: bytes) -> web.StreamResponse:
    resp = web.StreamResponse(status=reply.status, headers=reply.headers)
    resp.content_type = reply.content_type
    if reply.kind != "endless":
        resp.content_length = max(len(payload), 16)
    await resp.prepare(request)
    if reply.kind == "endless":
        chunk = b"x" * 65536
        while True:  # until the client hangs up, which ends this handler
            await resp.write(chunk)
    if reply.kind == "cut":
        await resp.write(payload[: len(payload) // 2])
        _abort(request)
        return resp
    for i in range(len(payload)):
        await resp.write(payload[i : i + 1])
        await asyncio.sleep(reply.delay or 1.0)
    return resp


def label(reply: Reply) -> str:
    """How ``faults_sent`` counts a fault: its kind, "html", or its status."""
    if reply.kind != "reply":
        return reply.kind
    if reply.content_type == "text/html":
        return "html"
    return str(reply.status) if reply.status != 200 else "malformed"


def _payload(reply: Reply) -> bytes:
    if reply.body is not None:
        return reply.body.encode() if isinstance(reply.body, str) else reply.body
    if reply.json is not None:
        return json.dumps(reply.json).encode()
    return b'{"jobId": "cut-short", "status": "created"}' if reply.kind == "cut" else b""


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()
