"""The machinery shared by the fake providers: lifecycle, scripted replies, faults, records."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import mimetypes
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, ClassVar, Literal, Self

import attrs
from aiohttp import web

from ._state import JobStore, run_tag

Endpoint = Literal["submit", "get", "list", "file"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

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


@attrs.frozen
class RecordedRequest:
    """A request the fake received, as it arrived (headers included: never log these)."""

    endpoint: str
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)
    at: float = 0.0  # time.monotonic() on arrival

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@attrs.define
class FakeJob:
    id: str
    created: float
    wall_created: float
    duration: float
    fails: bool
    body: Mapping[str, Any]
    reported: bool = False
    prompt: str = ""
    #: Created by a submit that was then answered with a fault (5xx, cut, hang).
    ambiguous: bool = False
    #: Read from the state file (made by an earlier or another process): its clock is
    #: ``wall_created``, as ``created`` (monotonic) means nothing outside its process.
    loaded: bool = False


class FakeServer:
    """An aiohttp app on 127.0.0.1 (a free port) speaking one provider's wire contract.

    >>> async with FakeDeepixels(job_duration=0.2) as fake:
    ...     client = CreativeClient("deepixels", "test-key", base_url=fake.base_url)

    ``job_duration`` is how long a job runs (times a factor drawn from 1 ± ``job_spread``,
    seeded, when that is set); a job fails when its prompt contains ``[fail]`` or by
    ``failure_rate``; ``api_key`` (when set) is the only key
    accepted; ``prefix`` is the path the API lives under. ``inject`` queues exact
    answers; ``read_faults`` / ``submit_faults`` add random ones. ``requests``
    records what arrived (``record=False`` keeps only the counts); ``prompts`` counts
    the jobs made per prompt. ``hold_submits_after=K`` creates the jobs of submits
    after the K-th but holds their answers until ``release()`` (a client killed then
    has every one of them in flight).

    ``state=PATH`` keeps the jobs in that file (JSON lines, created if missing), so
    they outlive the process: the jobs already there are loaded at ``start()``, each
    new job is appended as it is made, and a job id missing from memory is looked
    for again in the file (another process may have made it since). Ids then carry
    a random tag per fake (``de-k3x9q2-000001``), so processes sharing a file, one
    after another or at once, never make the same id. Loaded jobs run out their
    duration by the wall clock, and never call a webhook.
    """

    name: ClassVar[str]
    auth_header: ClassVar[str]

    def __init__(
        self,
        *,
        api_key: str | None = None,
        prefix: str = "/v1",
        job_duration: float = 0.0,
        job_spread: float = 0.0,
        failure_rate: float = 0.0,
        read_faults: Faults | None = None,
        submit_faults: Faults | None = None,
        odd_case: bool = False,
        seed: int = 0,
        record: bool = True,
        hold_submits_after: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        state: str | os.PathLike[str] | None = None,
    ) -> None:
        self.api_key = api_key
        self.prefix = prefix.rstrip("/")
        self.job_duration = job_duration
        self.job_spread = job_spread
        self.failure_rate = failure_rate
        self.read_faults = read_faults or Faults()
        self.submit_faults = submit_faults or Faults()
        self.odd_case = odd_case
        self.record = record
        self.requests: list[RecordedRequest] = []
        self.counts: collections.Counter[str] = collections.Counter()
        #: Random faults sent, by "endpoint:kind" ("get:503", "get:html", "submit:cut", ...).
        self.faults_sent: collections.Counter[str] = collections.Counter()
        self._seed = seed
        self._seen: collections.Counter[tuple[str, str, bytes]] = collections.Counter()
        self.jobs: dict[str, FakeJob] = {}
        self.prompts: collections.Counter[str] = collections.Counter()
        self.hold_submits_after = hold_submits_after
        self._released = asyncio.Event()
        self.active = 0
        self.peak_active = 0
        self._rng = random.Random(seed)
        self._script: dict[str, collections.deque[Reply]] = collections.defaultdict(
            collections.deque
        )
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self._next_id = 0
        self._id_prefix = self.name[:2]
        self._store = JobStore(state, self.name) if state is not None else None
        self.loaded = 0
        self.base_url = ""

    def build_app(self) -> web.Application:
        """The aiohttp application, to mount in a server of your own if you like."""
        app = web.Application()
        self.add_routes(app)
        app.router.add_get("/files/{name}", self._file)
        app.router.add_get("/_fake/stats", self._stats)
        app.router.add_get("/_fake/prompts", self._prompts)
        app.router.add_post("/_fake/release", self._release)
        return app

    @property
    def open_connections(self) -> int:
        """Client connections open on the server now (idle keep-alive ones included)."""
        server = self._runner.server if self._runner is not None else None
        return len(server.connections) if server is not None else 0

    def stats(self) -> dict[str, int]:
        """Counters for a benchmark or a test in another process (GET /_fake/stats)."""
        return {
            "submit": self.counts["submit"],
            "get": self.counts["get"],
            "jobs": self._next_id,
            "loaded": self.loaded,
            "active": self.active,
            "peak_active": self.peak_active,
        }

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> str:
        """Load the state file if any, listen on a free loopback port; the API's base URL.

        Raises ``OSError`` naming the state file when it cannot be read or written.
        """
        if self._store is not None:
            self._adopt(self._store.open())
            self._pick_id_prefix()
        try:
            return await self._listen()
        except BaseException:
            if self._store is not None:
                self._store.close()
            raise

    async def _listen(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self._runner = web.AppRunner(
            self.build_app(), handler_cancellation=True, shutdown_timeout=0.5, access_log=None
        )
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        port = sock.getsockname()[1]
        self.root_url = f"http://{self._host}:{port}"
        self.base_url = self.root_url + self.prefix
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        if self._store is not None:
            self._store.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def inject(self, endpoint: Endpoint | str, *replies: Reply) -> None:
        """Answer the next requests to ``endpoint`` with ``replies``, in order."""
        self._script[endpoint].extend(replies)

    def count(self, endpoint: str) -> int:
        """How many requests reached ``endpoint`` (``"submit"``, ``"get"``, ``"list"``,
        ``"file"``)."""
        return self.counts[endpoint]

    # -- helpers for the provider subclasses -------------------------------------------

    def error_reply(self, status: int, message: str) -> Reply:
        """An error answer in the provider's own shape."""
        raise NotImplementedError

    async def admit(
        self, endpoint: Endpoint, request: web.Request
    ) -> web.StreamResponse | tuple[bytes, Reply | None]:
        """Record the request, check its key, and answer the faults that come first.

        Returns the answer already sent (401, or a fault that happens before any work),
        or the body with the fault still to come after the job was created (a submit's
        5xx, drop or hang: the ambiguous cases).
        """
        body, fault = await self._intake(endpoint, request)
        if not self.authorized(request):
            return await self.send(request, self.error_reply(401, "Unauthorized"))
        if fault is not None and (endpoint != "submit" or not fault.creates_job()):
            return await self.send(request, fault)
        return body, fault

    async def _intake(self, endpoint: Endpoint, request: web.Request) -> tuple[bytes, Reply | None]:
        body = await request.read()
        self.counts[endpoint] += 1
        if self.record:
            self.requests.append(
                RecordedRequest(
                    endpoint,
                    request.method,
                    request.path,
                    dict(request.query),
                    dict(request.headers),
                    body,
                    time.monotonic(),
                )
            )
        script = self._script.get(endpoint)
        if script:
            return body, script.popleft()
        faults = self.submit_faults if endpoint == "submit" else self.read_faults
        if not faults.any:
            return body, None
        key = (endpoint, request.path_qs, body)
        self._seen[key] += 1
        draw = random.Random(
            f"{self._seed}|{endpoint}|{request.path_qs}|{body!r}|{self._seen[key]}"
        )
        fault = faults.pick(draw)
        if fault is not None:
            self.faults_sent[f"{endpoint}:{_label(fault)}"] += 1
        return body, fault

    def authorized(self, request: web.Request) -> bool:
        key = request.headers.get(self.auth_header)
        return bool(key) and (self.api_key is None or key == self.api_key)

    def new_job(self, body: Mapping[str, Any], prompt: str, *, ambiguous: bool = False) -> FakeJob:
        self._next_id += 1
        fails = "[fail]" in prompt or self._rng.random() < self.failure_rate
        job = FakeJob(
            id=f"{self._id_prefix}-{self._next_id:06d}",
            created=time.monotonic(),
            wall_created=time.time(),
            duration=self._duration(),
            fails=fails,
            body=body,
            prompt=prompt,
            ambiguous=ambiguous,
        )
        self.jobs[job.id] = job
        self.prompts[prompt] += 1
        self.active += 1
        self.peak_active = max(self.peak_active, self.active)
        if self._store is not None:
            self._store.append(job)
        return job

    def find(self, job_id: str) -> FakeJob | None:
        """The job of that id, read again from the state file if not known yet."""
        job = self.jobs.get(job_id)
        if job is None and self._store is not None:
            self.refresh()
            job = self.jobs.get(job_id)
        return job

    def refresh(self) -> None:
        """Take in the jobs other processes appended to the state file since it was read."""
        if self._store is not None:
            # A file gone or unreadable mid-run means nothing new: a get must not turn 500.
            with contextlib.suppress(OSError):
                self._adopt(self._store.read_new())

    def _adopt(self, records: Iterable[Mapping[str, Any]]) -> None:
        for record in records:
            if record["id"] in self.jobs:  # ours, or a duplicate line: the first one stands
                continue
            self.jobs[record["id"]] = FakeJob(
                id=record["id"],
                created=0.0,
                wall_created=float(record["wall_created"]),
                duration=float(record["duration"]),
                fails=record["fails"],
                body=record["body"],
                reported=True,  # never counted in ``active``: not in flight here
                prompt=record["prompt"],
                loaded=True,
            )
            self.loaded += 1

    def _pick_id_prefix(self) -> None:
        """A prefix with a fresh run tag, unless this fake already made ids with one."""
        if self._next_id:
            return
        for _ in range(100):  # a tag already in the file is a 1-in-2e9 chance per run
            prefix = f"{self.name[:2]}-{run_tag()}"
            if not any(job_id.startswith(prefix + "-") for job_id in self.jobs):
                break
        self._id_prefix = prefix

    def _duration(self) -> float:
        spread = self.job_spread
        if not spread:
            return self.job_duration
        return self.job_duration * self._rng.uniform(1 - spread, 1 + spread)

    async def hold(self) -> None:
        """Hold a submit's answer, if ``hold_submits_after`` says so, until ``release()``."""
        if self.hold_submits_after is not None and self._next_id > self.hold_submits_after:
            await self._released.wait()

    def release(self) -> None:
        """Answer the held submits, and hold no more."""
        self.hold_submits_after = None
        self._released.set()

    def phase(self, job: FakeJob) -> Literal["queued", "running", "completed", "failed"]:
        # A loaded job's monotonic start belongs to another process: use the wall clock.
        elapsed = time.time() - job.wall_created if job.loaded else time.monotonic() - job.created
        if elapsed >= job.duration:
            if not job.reported:
                job.reported = True
                self.active -= 1
            return "failed" if job.fails else "completed"
        return "queued" if elapsed < job.duration * 0.2 else "running"

    def status_text(self, text: str) -> str:
        if not self.odd_case:
            return text
        return text.upper() if self._rng.random() < 0.5 else text.capitalize()

    def file_url(self, job: FakeJob, n: int, ext: str) -> str:
        return f"{self.root_url}/files/{job.id}-{n}.{ext}"

    async def send(self, request: web.Request, reply: Reply) -> web.StreamResponse:
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
        return web.Response(
            status=reply.status,
            body=payload,
            content_type=reply.content_type,
            headers=reply.headers,
        )

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _prompts(self, request: web.Request) -> web.Response:
        return web.json_response(dict(self.prompts))

    async def _release(self, request: web.Request) -> web.Response:
        self.release()
        return web.json_response({"released": True})

    async def _file(self, request: web.Request) -> web.StreamResponse:
        """An output file: no key needed (like a CDN); scripted replies and read faults apply."""
        _, fault = await self._intake("file", request)
        if fault is not None:
            return await self.send(request, fault)
        name = request.match_info["name"]
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return web.Response(body=f"fake media {name}\n".encode(), content_type=kind)


def json_reply(status: int, document: Any) -> Reply:
    return Reply(status=status, json=document)


def _payload(reply: Reply) -> bytes:
    if reply.body is not None:
        return reply.body.encode() if isinstance(reply.body, str) else reply.body
    if reply.json is not None:
        return json.dumps(reply.json).encode()
    return b'{"jobId": "cut-short", "status": "created"}' if reply.kind == "cut" else b""


def _label(reply: Reply) -> str:
    if reply.kind != "reply":
        return reply.kind
    if reply.content_type == "text/html":
        return "html"
    return str(reply.status) if reply.status != 200 else "malformed"


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()
