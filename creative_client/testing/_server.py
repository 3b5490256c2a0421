"""The machinery shared by the fake providers: lifecycle, records, jobs, auth, webhooks.

The provider-specific half (routes, documents, refusals) is ``FakeContract``, in
``_contract.py``; jobs and their phases are in ``_jobs.py``; replies and faults in
``_replies.py``; webhook calls in ``_webhook_sender.py``; the ``/files`` and
``/_fake/*`` endpoints in ``_control.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections import Counter, defaultdict, deque
from typing import Literal, Self

import attrs
from aiohttp import web

from ._control import Controls, bound_socket
from ._jobs import FakeJob, FakeJobs, RecordedRequest
from ._replies import FaultDraws, Faults, Reply, json_reply, label, send
from ._state import JobStore
from ._timing import Durations
from ._webhook_sender import WebhookSender

__all__ = ["FakeJob", "FakeServer"]

Endpoint = Literal["submit", "get", "list", "file"]


class FakeServer(FakeJobs):
    """An aiohttp app on 127.0.0.1 (a free port) speaking one provider's wire contract.

    >>> async with FakeDeepixels(job_duration=0.2) as fake:
    ...     client = CreativeClient("deepixels", "test-key", base_url=fake.base_url)

    ``job_duration`` is how long a job runs (times a factor drawn from 1 ± ``job_spread``,
    seeded, when that is set). ``durations`` (a ``Durations`` or its spec, such as
    ``"lognormal:6:0.5"`` or ``"flux-schnell=fixed:5,video-gen=lognormal:60:0.3"``;
    see ``_timing.py``) draws each job's duration by its model instead, from the
    same seeded RNG; a submit for a model it gives no duration is refused (400).
    ``timings()`` (GET ``/_fake/timings``) says per job when it ended, when a read
    first answered it ended, and how many reads it had. A job fails when its prompt
    contains ``[fail]`` or by ``failure_rate``; ``api_key`` (when set) is the only key
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

    A job whose submit names a webhook on loopback (``webhook_of``) is POSTed there
    (its ``document``) when it ends, ``webhook_copies`` times; ``webhook_loss`` of
    them (a fraction, seeded) are never sent. ``webhooks_sent`` and ``webhooks_lost``
    count them, and ``callback_times`` holds when each job's first callback went out
    (GET ``/_fake/callbacks``). A webhook anywhere else is never called.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        prefix: str = "/v1",
        job_duration: float = 0.0,
        job_spread: float = 0.0,
        durations: Durations | str | None = None,
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
        webhook_loss: float = 0.0,
        webhook_copies: int = 1,
    ) -> None:
        self.api_key = api_key
        self.prefix = prefix.rstrip("/")
        self.job_duration = job_duration
        self.job_spread = job_spread
        self.durations = Durations.parse(durations) if isinstance(durations, str) else durations
        self.failure_rate = failure_rate
        self.read_faults = read_faults or Faults()
        self.submit_faults = submit_faults or Faults()
        self.odd_case = odd_case
        self.record = record
        self.requests: list[RecordedRequest] = []
        self.counts: Counter[str] = Counter()
        #: Random faults sent, by "endpoint:kind" ("get:503", "get:html", "submit:cut", ...).
        self.faults_sent: Counter[str] = Counter()
        self._draws = FaultDraws(seed)
        self.jobs: dict[str, FakeJob] = {}
        self.prompts: Counter[str] = Counter()
        self.hold_submits_after = hold_submits_after
        self._released = asyncio.Event()
        self.active = 0
        self.peak_active = 0
        self._rng = random.Random(seed)
        self._script: dict[str, deque[Reply]] = defaultdict(deque)
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self._next_id = 0
        self._id_prefix = self.name[:2]
        self._store = JobStore(state, self.name) if state is not None else None
        self.loaded = 0
        self.base_url = ""
        self.webhooks = WebhookSender(self._rng, loss=webhook_loss, copies=webhook_copies)

    def build_app(self) -> web.Application:
        """The aiohttp application, to mount in a server of your own if you like."""
        app = web.Application()
        self.add_routes(app)
        Controls(self).add_routes(app)
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
            "webhooks_sent": self.webhooks.sent,
            "webhooks_lost": self.webhooks.lost,
        }

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
        sock = bound_socket(self._host, self._port)
        self._runner = web.AppRunner(
            self.build_app(), handler_cancellation=True, shutdown_timeout=0.5, access_log=None
        )
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        self.root_url = f"http://{self._host}:{sock.getsockname()[1]}"
        self.base_url = self.root_url + self.prefix
        return self.base_url

    async def close(self) -> None:
        await self.webhooks.close()
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

    async def admit(
        self, endpoint: Endpoint, request: web.Request
    ) -> web.StreamResponse | tuple[bytes, Reply | None]:
        """Record the request, check its key, and answer the faults that come first.

        Returns the answer already sent (401, or a fault that happens before any work),
        or the body with the fault still to come after the job was created (a submit's
        5xx, drop or hang: the ambiguous cases).
        """
        body, fault = await self.intake(endpoint, request)
        if not self.authorized(request):
            return await self.send(request, self.error_reply(401, "Unauthorized"))
        if fault is not None and (endpoint != "submit" or not fault.creates_job()):
            return await self.send(request, fault)
        return body, fault

    async def intake(self, endpoint: Endpoint, request: web.Request) -> tuple[bytes, Reply | None]:
        """Read and record the request; the scripted reply or random fault it gets, if any."""
        body = await request.read()
        self.counts[endpoint] += 1
        if self.record:
            self.requests.append(RecordedRequest.of(endpoint, request, body))
        script = self._script.get(endpoint)
        if script:
            return body, script.popleft()
        faults = self.submit_faults if endpoint == "submit" else self.read_faults
        fault = self._draws.draw(faults, endpoint, request.path_qs, body)
        if fault is None:
            return body, None
        self.faults_sent[f"{endpoint}:{label(fault)}"] += 1
        if isinstance(fault.json, dict):  # a JSON error body: in this provider's own shape
            message = str(fault.json.get("message") or fault.json.get("error") or "error")
            fault = attrs.evolve(fault, json=self.error_reply(fault.status, message).json)
        return body, fault

    def authorized(self, request: web.Request) -> bool:
        key = request.headers.get(self.auth_header)
        return bool(key) and (self.api_key is None or key == self.api_key)

    def file_url(self, job: FakeJob, n: int, ext: str) -> str:
        return f"{self.root_url}/files/{job.id}-{n}.{ext}"

    async def send(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        """Answer as ``reply`` says, including the broken ways."""
        return await send(request, reply)

    async def handle_submit(self, request: web.Request) -> web.StreamResponse:
        """The submit endpoint: admit, parse, refuse (``submit_problem``,
        ``duration_refusal``, ``before_create``) or make the job and answer
        ``submit_status`` with ``submit_document``; a fault that creates the job (a 5xx,
        cut or hang) is answered instead, once it is made."""
        admitted = await self.admit("submit", request)
        if isinstance(admitted, web.StreamResponse):
            return admitted
        raw, fault = admitted
        try:
            body = json.loads(raw)
        except ValueError:
            if self.not_json_message is not None:
                return await self.send(request, self.error_reply(400, self.not_json_message))
            body = None
        problem = self.submit_problem(body)
        if problem:
            return await self.send(request, self.error_reply(self.refusal_status, problem))
        problem = self.duration_refusal(body)  # before before_create, which may spend
        if problem:
            return await self.send(request, self.error_reply(400, problem))
        refusal = self.before_create(body)
        if refusal is not None:
            return await self.send(request, refusal)
        job = self.new_job(body, self.prompt_of(body), ambiguous=fault is not None)
        await self.hold()
        if fault is not None:
            return await self.send(request, fault)
        return await self.send(request, json_reply(self.submit_status, self.submit_document(job)))

    async def handle_read(self, request: web.Request) -> web.StreamResponse:
        """The read endpoint: admit, then ``read_document`` of the job ``job_id_of`` names,
        or a 404 with ``not_found_message``."""
        admitted = await self.admit("get", request)
        if isinstance(admitted, web.StreamResponse):
            return admitted
        job_id = self.job_id_of(request)
        if isinstance(job_id, Reply):
            return await self.send(request, job_id)
        job = self.find(job_id)
        if job is None:
            return await self.send(request, self.error_reply(404, self.not_found_message))
        document = self.read_document(job)
        self.answered(job)
        return await self.send(request, json_reply(200, document))
