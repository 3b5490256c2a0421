"""A fake Neocu: POST {prefix}/generate, GET {prefix}/task/{id}, GET {prefix}/task?page&limit,
GET {prefix}/compute."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, cast

from aiohttp import web

from ._contract import Phase, Shape
from ._replies import Reply, json_reply
from ._server import Endpoint, FakeJob, FakeServer

_STATUS: Mapping[Phase, str] = {
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
_SHAPES: Mapping[Literal["submit", "read", "error"], Shape] = {
    "submit": {"task_id": "id", "message": "text"},
    "read": {
        "isSuccess": "bool",
        "task": {"status": "status", "message": ["text"], "date": "time"},
        "asset": [
            {"url": "url", "thumbnail": "url", "embed": "url", "name": "text", "type": "text",
             "status": "text", "_id": "id"}
        ],
    },
    "error": {"error": "text", "message": "text"},
}  # fmt: skip


# The base's endpoints name its own routes; GET /compute is Neocu's alone, counted (and
# given scripted replies and read faults) under its own name.
_COMPUTE = cast(Endpoint, "compute")


class FakeNeocu(FakeServer):
    """Speaks the Neocu contract, its compute balance included.

    ``compute`` is the organisation's compute (``None``, the default: unlimited, and
    ``GET /compute`` shows ``unlimited_compute``); each job made spends ``job_cost``
    of it, and a submit it cannot pay for is answered 402 and makes no job.
    ``balance=N`` is the older spelling of ``compute=N``.
    """

    name: ClassVar[str] = "neocu"
    auth_header: ClassVar[str] = "api-key"
    not_found_message: ClassVar[str] = "Task not found"
    #: What ``GET /compute`` shows while the compute is unlimited (``compute=None``).
    unlimited_compute: ClassVar[int] = 1_000_000

    def __init__(
        self,
        *,
        compute: float | None = None,
        job_cost: float = 1,
        balance: int | None = None,
        **options: Any,
    ) -> None:
        if job_cost < 0:
            raise ValueError(f"job_cost must be 0 or more, got {job_cost}")
        super().__init__(**options)
        self.compute = compute if compute is not None else balance
        self.job_cost = job_cost

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(f"{self.prefix}/generate", self.handle_submit)
        app.router.add_get(f"{self.prefix}/task/{{id}}", self.handle_read)
        app.router.add_get(f"{self.prefix}/task", self._list)
        app.router.add_get(f"{self.prefix}/compute", self._compute)

    def error_reply(self, status: int, message: str, detail: str | None = None) -> Reply:
        doc = {"error": message} if detail is None else {"error": message, "message": detail}
        return json_reply(status, doc)

    def status_for(self, phase: Phase) -> str:
        return _STATUS[phase]

    def submit_answer(self, job_id: str) -> dict[str, Any]:
        return {"task_id": job_id, "message": "success"}

    def read_answer(
        self, job_id: str, status: str, *, outputs: int = 0, minimal: bool = False
    ) -> dict[str, Any]:
        urls = [f"https://cdn.example.com/{job_id}-{n}.png" for n in range(outputs)]
        if minimal:
            assets: list[dict[str, Any]] = [{"url": url} for url in urls]
            return {"task": {"status": status}, **({"asset": assets} if outputs else {})}
        assets = [
            {"url": url, "thumbnail": url, "embed": url, "name": f"{job_id}-{n}.png",
             "type": "image", "status": "completed", "_id": f"asset-{job_id}-{n}"}
            for n, url in enumerate(urls)
        ]  # fmt: skip
        task = {"status": status, "message": ["ok"], "date": "2026-01-01T00:00:00+00:00"}
        return {"isSuccess": True, "task": task, "asset": assets}

    def submit_problem(self, body: object) -> str | None:
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("query"), str)
            or not body["query"]
        ):
            return "query is required"
        files = body.get("files")
        if files is not None and not (
            isinstance(files, list) and all(isinstance(f, str) for f in files)
        ):
            return "files must be an array of strings"
        return None

    def document_shapes(self) -> Mapping[Literal["submit", "read", "error"], Shape]:
        return _SHAPES

    def webhook_of(self, body: Mapping[str, Any]) -> str | None:
        return None  # Neocu documents no webhook

    def prompt_of(self, body: Mapping[str, Any]) -> str:
        return str(body["query"])

    def before_create(self, body: Mapping[str, Any]) -> Reply | None:
        """A 402 when ``compute`` (unless None) cannot pay ``job_cost``; else it pays."""
        if self.compute is None:
            return None
        if self.compute < self.job_cost:
            return self.error_reply(402, "Payment Required", "low compute balance")
        self.compute -= self.job_cost
        return None

    async def _compute(self, request: web.Request) -> web.StreamResponse:
        admitted = await self.admit(_COMPUTE, request)
        if isinstance(admitted, web.StreamResponse):
            return admitted
        left = self.unlimited_compute if self.compute is None else self.compute
        return await self.send(request, json_reply(200, {"isSuccess": True, "compute": left}))

    def read_document(self, job: FakeJob) -> dict[str, Any]:
        return {"isSuccess": True, **self.document(job)}

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
