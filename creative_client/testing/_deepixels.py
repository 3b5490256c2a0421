"""A fake Deepixels: POST {prefix}/generate and GET {prefix}/get?jobId=, as providers.md says."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from aiohttp import web

from ._server import FakeJob, FakeServer, Reply, json_reply

_STATUS = {
    "queued": "pending",
    "running": "processing",
    "completed": "completed",
    "failed": "failed",
}


class FakeDeepixels(FakeServer):
    """Speaks the Deepixels contract. A model whose name contains ``video`` makes a video."""

    name: ClassVar[str] = "deepixels"
    auth_header: ClassVar[str] = "x-api-key"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(f"{self.prefix}/generate", self._generate)
        app.router.add_get(f"{self.prefix}/get", self._get)

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
        job = self.jobs.get(job_id)
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
