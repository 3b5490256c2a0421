"""A fake Deepixels: POST {prefix}/generate and GET {prefix}/get?jobId=, as providers.md says."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from ._server import FakeJob, FakeServer, Reply, json_reply

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_STATUS = {
    "queued": "pending",
    "running": "processing",
    "completed": "completed",
    "failed": "failed",
}


class FakeDeepixels(FakeServer):
    """Speaks the Deepixels contract. A model whose name contains ``video`` makes a video.

    A job submitted with a ``webhook`` on loopback is POSTed there (its job document)
    when it ends, ``webhook_copies`` times; ``webhook_loss`` of them (a fraction,
    seeded) are never sent. ``webhooks_sent`` and ``webhooks_lost`` count them, and
    ``callback_times`` holds when each job's first callback went out (``time.monotonic()``
    as its headers were sent; GET ``/_fake/callbacks``). A webhook anywhere else is
    never called: a fake reaches nothing beyond this machine.
    """

    name: ClassVar[str] = "deepixels"
    auth_header: ClassVar[str] = "x-api-key"

    def __init__(
        self, *, webhook_loss: float = 0.0, webhook_copies: int = 1, **options: Any
    ) -> None:
        super().__init__(**options)
        self.webhook_loss = webhook_loss
        self.webhook_copies = webhook_copies
        self.webhooks_sent = 0
        self.webhooks_lost = 0
        self.callback_times: dict[str, float] = {}
        self._callbacks: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        for task in self._callbacks:
            task.cancel()
        await asyncio.gather(*self._callbacks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        await super().close()

    def _call_back_later(self, job: FakeJob) -> None:
        def fire() -> None:
            self._timers.discard(timer)
            task = asyncio.create_task(self._call_back(job))
            self._callbacks.add(task)
            task.add_done_callback(self._callbacks.discard)

        timer = asyncio.get_running_loop().call_later(job.duration, fire)
        self._timers.add(timer)

    async def _call_back(self, job: FakeJob) -> None:
        if self._rng.random() < self.webhook_loss:
            self.webhooks_lost += 1
            return
        if self._session is None:
            sent = aiohttp.TraceConfig()
            sent.on_request_headers_sent.append(self._sent)
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=10),
                connector=aiohttp.TCPConnector(limit=0),  # as if from many servers
                trace_configs=[sent],
            )
        for _ in range(self.webhook_copies):
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self._session.post(
                    job.body["webhook"], json=self.document(job), trace_request_ctx=job.id
                ):
                    self.webhooks_sent += 1

    async def _sent(self, _session: aiohttp.ClientSession, context: Any, _params: object) -> None:
        job_id = context.trace_request_ctx
        self.callback_times.setdefault(job_id, time.monotonic())

    def stats(self) -> dict[str, int]:
        return {
            **super().stats(),
            "webhooks_sent": self.webhooks_sent,
            "webhooks_lost": self.webhooks_lost,
        }

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(f"{self.prefix}/generate", self._generate)
        app.router.add_get(f"{self.prefix}/get", self._get)
        app.router.add_get("/_fake/callbacks", self._callback_times)

    async def _callback_times(self, request: web.Request) -> web.Response:
        return web.json_response(self.callback_times)

    def error_reply(self, status: int, message: str) -> Reply:
        return json_reply(status, {"status": "error", "message": message})

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        admitted = await self.admit("submit", request)
        if isinstance(admitted, web.StreamResponse):
            return admitted
        raw, fault = admitted
        try:
            body = json.loads(raw)
        except ValueError:
            return await self.send(request, self.error_reply(400, "Invalid JSON"))
        problem = _check(body)
        if problem:
            return await self.send(request, self.error_reply(400, problem))
        job = self.new_job(body, str(body["input"].get("prompt", "")), ambiguous=fault is not None)
        webhook = body.get("webhook")
        if isinstance(webhook, str) and urlsplit(webhook).hostname in _LOOPBACK:
            self._call_back_later(job)
        await self.hold()
        if fault is not None:
            return await self.send(request, fault)
        return await self.send(request, json_reply(200, {"jobId": job.id, "status": "created"}))

    async def _get(self, request: web.Request) -> web.StreamResponse:
        admitted = await self.admit("get", request)
        if isinstance(admitted, web.StreamResponse):
            return admitted
        job_id = request.query.get("jobId")
        if not job_id:
            return await self.send(request, self.error_reply(400, "jobId is required"))
        job = self.find(job_id)
        if job is None:
            return await self.send(request, self.error_reply(404, "Job not found"))
        return await self.send(request, json_reply(200, self.document(job)))

    def document(self, job: FakeJob) -> dict[str, Any]:
        """The job document GET /get answers with."""
        phase = self.phase(job)
        output: dict[str, Any] | None = None
        if phase == "completed":
            if "video" in job.body["model"]:
                output = {"imageUrl": None, "videoUrl": self.file_url(job, 0, "mp4")}
            else:
                count = job.body["input"].get("num_outputs", 1)
                count = count if isinstance(count, int) and 0 < count <= 8 else 1
                urls = [self.file_url(job, n, "png") for n in range(count)]
                output = {"imageUrl": urls, "videoUrl": None}
        return {
            "jobId": job.id,
            "model": job.body["model"],
            "status": self.status_text(_STATUS[phase]),
            "input": job.body["input"],
            "webhook": job.body.get("webhook"),
            "date": int(job.wall_created * 1000),
            "output": output,
        }


def _check(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "body must be a JSON object"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model is required"
    if not isinstance(body.get("input"), dict):
        return "input is required"
    webhook = body.get("webhook")
    if webhook is not None and not (isinstance(webhook, str) and webhook.startswith("http")):
        return "webhook must be a URI"
    return None
