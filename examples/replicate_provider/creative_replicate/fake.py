"""A fake Replicate on loopback: POST {prefix}/predictions, GET {prefix}/predictions/{id}.

For tests, ``creative --simulate --provider replicate`` and
``python -m creative_client.testing replicate``; found through ``Replicate.fake``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from aiohttp import web

from creative_client.testing import FakeJob, FakeServer, Phase, Reply, Shape, json_reply

_STATUS: Mapping[Phase, str] = {
    "queued": "starting",
    "running": "processing",
    "completed": "succeeded",
    "failed": "failed",
}
_EVENTS = frozenset({"start", "output", "logs", "completed"})
_TITLES: Mapping[int, str] = {
    400: "Bad Request",
    401: "Unauthenticated",
    402: "Payment Required",
    404: "Not found",
    422: "Input validation failed",
    429: "Too Many Requests",
}
_SHAPES: Mapping[Literal["submit", "read", "error"], Shape] = {
    "submit": {
        "id": "id", "version": "text", "input": "any", "status": "status",
        "output": ["url"], "error": "any", "created_at": "time", "logs": "text",
        "urls": {"get": "url", "cancel": "url"},
    },
    "read": {
        "id": "id", "version": "text", "input": "any", "status": "status",
        "output": ["url"], "error": "any", "created_at": "time", "started_at": "time",
        "completed_at": "time", "logs": "text", "urls": {"get": "url", "cancel": "url"},
        "metrics": {"predict_time": "number"},
    },
    "error": {"title": "text", "detail": "text", "status": "number"},
}  # fmt: skip


class FakeReplicate(FakeServer):
    """Speaks Replicate's prediction protocol. A ``version`` containing ``video`` makes
    one video (``output`` a single URL); any other makes ``input["num_outputs"]``
    images (1 to 4; ``output`` a list). Submits answer 201; a body the API would refuse
    answers 422 (``{"title", "detail", "status"}``), as Replicate does.
    """

    name: ClassVar[str] = "replicate"
    auth_header: ClassVar[str] = "Authorization"
    sample_model: ClassVar[str | None] = "fake-sdxl-version"
    submit_status: ClassVar[int] = 201
    refusal_status: ClassVar[int] = 422
    not_json_message: ClassVar[str | None] = "the body is not valid JSON"
    not_found_message: ClassVar[str] = "Not found."

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(f"{self.prefix}/predictions", self.handle_submit)
        app.router.add_get(f"{self.prefix}/predictions/{{id}}", self.handle_read)

    def authorized(self, request: web.Request) -> bool:
        scheme, _, key = request.headers.get(self.auth_header, "").partition(" ")
        # "Token" is the scheme Replicate's older docs and clients use; it still works.
        if scheme not in ("Bearer", "Token") or not key:
            return False
        return self.api_key is None or key == self.api_key

    def error_reply(self, status: int, message: str) -> Reply:
        title = _TITLES.get(status, "Error")
        return json_reply(status, {"title": title, "detail": message, "status": status})

    def status_for(self, phase: Phase) -> str:
        return _STATUS[phase]

    def submit_answer(self, job_id: str) -> dict[str, Any]:
        return self._prediction(job_id, "starting", version="v", inputs={"prompt": "x"})

    def read_answer(
        self, job_id: str, status: str, *, outputs: int = 0, minimal: bool = False
    ) -> dict[str, Any]:
        urls = [f"https://replicate.delivery/{job_id}/out-{n}.png" for n in range(outputs)]
        if minimal:
            return {"status": status, **({"output": urls} if outputs else {})}
        return self._prediction(
            job_id, status, version="v", inputs={"prompt": "x"}, output=urls or None
        )

    def submit_problem(self, body: object) -> str | None:
        if not isinstance(body, dict):
            return "the request body must be a JSON object"
        if not isinstance(body.get("version"), str) or not body["version"]:
            return "version is required"
        if not isinstance(body.get("input"), dict):
            return "input is required and must be an object"
        if "webhook" in body:
            webhook = body["webhook"]
            if not (isinstance(webhook, str) and webhook.startswith(("http://", "https://"))):
                return "webhook must be an HTTP(S) URL"
        events = body.get("webhook_events_filter", [])
        if not (isinstance(events, list) and all(e in _EVENTS for e in events)):
            return f"webhook_events_filter must be a list of {', '.join(sorted(_EVENTS))}"
        return None

    def document_shapes(self) -> Mapping[Literal["submit", "read", "error"], Shape]:
        return _SHAPES

    def document(self, job: FakeJob) -> dict[str, Any]:
        """The prediction GET /predictions/{id} answers with (and a webhook carries)."""
        phase = self.phase(job)
        output: str | list[str] | None = None
        if phase == "completed":
            if "video" in job.body["version"]:
                output = self.file_url(job, 0, "mp4")
            else:
                count = job.body["input"].get("num_outputs", 1)
                count = count if isinstance(count, int) and 0 < count <= 4 else 1
                output = [self.file_url(job, n, "png") for n in range(count)]
        return self._prediction(
            job.id,
            self.status_text(_STATUS[phase]),
            version=job.body["version"],
            inputs=job.body["input"],
            output=output,
            error="the fake prediction failed" if phase == "failed" else None,
            created=job.wall_created,
        )

    def _prediction(
        self,
        job_id: str,
        status: str,
        *,
        version: str,
        inputs: Mapping[str, Any],
        output: str | list[str] | None = None,
        error: str | None = None,
        created: float = 1_700_000_000.0,
    ) -> dict[str, Any]:
        url = f"{self.base_url or 'https://api.replicate.com/v1'}/predictions/{job_id}"
        return {
            "id": job_id,
            "model": "fake/model",
            "version": version,
            "input": dict(inputs),
            "logs": "",
            "output": output,
            "error": error,
            "status": status,
            "created_at": datetime.fromtimestamp(created, UTC).isoformat().replace("+00:00", "Z"),
            "urls": {"get": url, "cancel": f"{url}/cancel"},
        }

    def submit_document(self, job: FakeJob) -> dict[str, Any]:
        """The prediction as just created: Replicate answers before it starts, however quick."""
        return self._prediction(
            job.id,
            self.status_text(_STATUS["queued"]),
            version=job.body["version"],
            inputs=job.body["input"],
            created=job.wall_created,
        )
