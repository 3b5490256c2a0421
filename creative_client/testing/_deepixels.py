"""A fake Deepixels: POST {prefix}/generate and GET {prefix}/get?jobId=, as providers.md says."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from aiohttp import web

from ._contract import Phase, Shape
from ._replies import Reply, json_reply
from ._server import FakeJob, FakeServer

_STATUS: Mapping[Phase, str] = {
    "queued": "pending",
    "running": "processing",
    "completed": "completed",
    "failed": "failed",
}
#: An absolute URI as RFC 3986 has it (``format: uri`` in the OpenAPI document).
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[A-Za-z0-9\-._~%!$&'()*+,;=:@/?#\[\]]*")
_SHAPES: Mapping[Literal["submit", "read", "error"], Shape] = {
    "submit": {"jobId": "id", "job_id": "id", "status": "status"},
    "read": {
        "jobId": "id",
        "model": "text",
        "status": "status",
        "input": "any",
        "webhook": "url",
        "date": "time",
        "output": {"imageUrl": ["url"], "videoUrl": "url"},
        "error": "any",
        "message": "any",
    },
    "error": {"status": "text", "message": "text"},
}


class FakeDeepixels(FakeServer):
    """Speaks the Deepixels contract. A model whose name contains ``video`` makes a video.

    A submit body is refused (400) exactly where tests/data/deepixels.openapi.json
    refuses it: ``model`` a string (even empty), ``input`` an object, ``webhook``, when
    given, a URI (not null). A job with a webhook on loopback is called back (see
    ``FakeServer``).
    """

    name: ClassVar[str] = "deepixels"
    auth_header: ClassVar[str] = "x-api-key"
    sample_model: ClassVar[str | None] = "flux-schnell"
    not_json_message: ClassVar[str | None] = "Invalid JSON"
    not_found_message: ClassVar[str] = "Job not found"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(f"{self.prefix}/generate", self.handle_submit)
        app.router.add_get(f"{self.prefix}/get", self.handle_read)

    def error_reply(self, status: int, message: str) -> Reply:
        return json_reply(status, {"status": "error", "message": message})

    def status_for(self, phase: Phase) -> str:
        return _STATUS[phase]

    def submit_answer(self, job_id: str) -> dict[str, Any]:
        return {"jobId": job_id, "status": "created"}

    def read_answer(
        self, job_id: str, status: str, *, outputs: int = 0, minimal: bool = False
    ) -> dict[str, Any]:
        urls = [f"https://cdn.example.com/{job_id}-{n}.png" for n in range(outputs)]
        output = {"imageUrl": urls, "videoUrl": None} if outputs else None
        if minimal:
            return {"status": status, **({"output": {"imageUrl": urls}} if outputs else {})}
        return {
            "jobId": job_id,
            "model": "flux-schnell",
            "status": status,
            "input": {"prompt": "x"},
            "webhook": None,
            "date": 1700000000000,
            "output": output,
        }

    def submit_problem(self, body: object) -> str | None:
        if not isinstance(body, dict):
            return "body must be a JSON object"
        if not isinstance(body.get("model"), str):
            return "model is required"
        if not isinstance(body.get("input"), dict):
            return "input is required"
        if "webhook" in body:
            webhook = body["webhook"]
            if not (isinstance(webhook, str) and _URI.fullmatch(webhook)):
                return "webhook must be a URI"
        return None

    def document_shapes(self) -> Mapping[Literal["submit", "read", "error"], Shape]:
        return _SHAPES

    def prompt_of(self, body: Mapping[str, Any]) -> str:
        return str(body["input"].get("prompt", ""))

    def job_id_of(self, request: web.Request) -> str | Reply:
        job_id = request.query.get("jobId")
        return job_id or self.error_reply(400, "jobId is required")

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
