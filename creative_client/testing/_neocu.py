"""A fake Neocu: POST {prefix}/generate, GET {prefix}/task/{id}, GET {prefix}/task?page&limit."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, ClassVar

from aiohttp import web

from ._server import FakeJob, FakeServer, Reply, json_reply

_STATUS = {
    "queued": "generating",
    "running": "generating",
    "completed": "completed",
    "failed": "failed",
}
_KINDS = (
    ("video", "video", "mp4"),
    ("sound", "audio", "mp3"),
    ("voice", "audio", "mp3"),
    ("3d", "3d", "glb"),
)


class FakeNeocu(FakeServer):
    """Speaks the Neocu contract. ``balance`` is how many submits are paid for (then 402)."""

    name: ClassVar[str] = "neocu"
    auth_header: ClassVar[str] = "api-key"

    def __init__(self, *, balance: int | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.balance = balance

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(f"{self.prefix}/generate", self._generate)
        app.router.add_get(f"{self.prefix}/task/{{id}}", self._task)
        app.router.add_get(f"{self.prefix}/task", self._list)

    def error_reply(self, status: int, message: str, detail: str | None = None) -> Reply:
        doc = {"error": message} if detail is None else {"error": message, "message": detail}
        return json_reply(status, doc)

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        admitted = await self.admit("submit", request)
        if isinstance(admitted, web.StreamResponse):
            return admitted
        raw, fault = admitted
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("query"), str)
            or not body["query"]
        ):
            return await self.send(request, self.error_reply(400, "query is required"))
        files = body.get("files")
        if files is not None and not (
            isinstance(files, list) and all(isinstance(f, str) for f in files)
        ):
            bad = self.error_reply(400, "files must be an array of strings")
            return await self.send(request, bad)
        if self.balance is not None:
            if self.balance <= 0:
                return await self.send(
                    request, self.error_reply(402, "Payment Required", "low compute balance")
                )
            self.balance -= 1
        job = self.new_job(body, body["query"], ambiguous=fault is not None)
        await self.hold()
        if fault is not None:
            return await self.send(request, fault)
        return await self.send(request, json_reply(200, {"task_id": job.id, "message": "success"}))

    async def _task(self, request: web.Request) -> web.StreamResponse:
        admitted = await self.admit("get", request)
        if isinstance(admitted, web.StreamResponse):
            return admitted
        job = self.find(request.match_info["id"])
        if job is None:
            return await self.send(request, self.error_reply(404, "Task not found"))
        return await self.send(request, json_reply(200, {"isSuccess": True, **self.document(job)}))

    async def _list(self, request: web.Request) -> web.StreamResponse:
        admitted = await self.admit("list", request)
        if isinstance(admitted, web.StreamResponse):
            return admitted
        try:
            page = max(1, int(request.query.get("page", "1")))
            limit = max(1, int(request.query.get("limit", "15")))
        except ValueError:
            return await self.send(request, self.error_reply(400, "page and limit must be numbers"))
        self.refresh()
        jobs = list(self.jobs.values())
        chunk = jobs[(page - 1) * limit : page * limit]
        return await self.send(
            request,
            json_reply(
                200,
                {
                    "isSuccess": True,
                    "taskList": [self.document(j) for j in chunk],
                    "totalPages": max(1, -(-len(jobs) // limit)),
                    "currentPage": page,
                    "totalTasks": len(jobs),
                },
            ),
        )

    def document(self, job: FakeJob) -> dict[str, Any]:
        """A task with its assets, as GET /task/{id} shows it."""
        phase = self.phase(job)
        query = job.body["query"].lower()
        kind, ext = next(((k, e) for word, k, e in _KINDS if word in query), ("image", "png"))
        assets = []
        if phase == "completed":
            url = self.file_url(job, 0, ext)
            assets.append(
                {
                    "url": url,
                    "thumbnail": url,
                    "embed": url,
                    "name": f"{job.id}.{ext}",
                    "type": kind,
                    "status": "completed",
                    "_id": f"asset-{job.id}",
                }
            )
        messages = ["generation failed"] if phase == "failed" else ["ok"]
        return {
            "task": {
                "status": self.status_text(_STATUS[phase]),
                "message": messages,
                "date": datetime.fromtimestamp(job.wall_created, UTC).isoformat(),
            },
            "asset": assets,
        }
