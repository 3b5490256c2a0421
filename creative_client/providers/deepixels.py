"""Deepixels ("Creative API"): POST /generate {model, input, webhook}, GET /get?jobId=."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import attrs

from .._models import Asset, AssetKind, GenerationRequest, Job, JobStatus
from ._base import HttpCall, Provider
from .wire import (
    as_mapping,
    lookup_status,
    make_converter,
    millis_to_datetime,
    register_object,
    structure,
)

_STATUS: Mapping[str, JobStatus] = {
    "created": JobStatus.QUEUED,
    "pending": JobStatus.QUEUED,
    "processing": JobStatus.RUNNING,
    "completed": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
}


@attrs.define
class _Submitted:
    job_id: str
    status: str | None = None


@attrs.define
class _Output:
    image_url: tuple[str, ...] | None = None
    video_url: str | None = None


@attrs.define
class _Job:
    status: str
    job_id: str | None = None
    date: datetime | None = None
    output: _Output | None = None
    # Not in the contract; read when present so a failed job can say why.
    error: str | None = None
    message: str | None = None


_conv = make_converter()
_submitted_as_documented = register_object(_conv, _Submitted, job_id="jobId")


def _submitted(value: Any, cls: Any) -> _Submitted:
    """The submit answer; its id as ``jobId`` (documented) or ``job_id`` (which a public
    client for this API also reads)."""
    if isinstance(value, dict) and "jobId" not in value and "job_id" in value:
        value = {**value, "jobId": value["job_id"]}
    result: _Submitted = _submitted_as_documented(value, cls)
    return result


register_object(_conv, _Output, image_url="imageUrl", video_url="videoUrl")
_document = register_object(_conv, _Job, job_id="jobId", date=millis_to_datetime)


def map_status(raw: str) -> JobStatus:
    """Deepixels' status string in the unified model; an unknown one is still running."""
    return lookup_status(_STATUS, raw)


class Deepixels(Provider):
    """The Deepixels adapter. Takes ``model``, ``input`` and ``webhook``; not ``files``."""

    name: ClassVar[str] = "deepixels"
    default_base_url: ClassVar[str] = "https://api.deepixels.co/v1"
    api_key_env: ClassVar[str] = "DEEPIXELS_API_KEY"
    fake: ClassVar[str | None] = "creative_client.testing._deepixels:FakeDeepixels"
    takes_model = True
    takes_webhook = True
    takes_input = True
    prompt_in_input = True

    def __init__(self, base_url: str | None = None) -> None:
        super().__init__(base_url)
        self._generate_url = f"{self.base_url}/generate"
        self._get_url = f"{self.base_url}/get"

    def auth_headers(self, api_key: str) -> Mapping[str, str]:
        return {"x-api-key": api_key}

    def submit_call(self, request: GenerationRequest, model: str | None) -> HttpCall:
        body: dict[str, Any] = {
            "model": model,
            "input": self.wire_input(request),
        }
        if request.webhook is not None:
            body["webhook"] = request.webhook
        return HttpCall(
            "POST", self._generate_url, "/generate", json=body, submit=True, template="/generate"
        )

    def parse_submit(self, body: object) -> Job:
        sub = structure(_submitted, body, _Submitted, self.name, "submit answer")
        status = map_status(sub.status) if sub.status is not None else JobStatus.QUEUED
        return Job(
            id=sub.job_id,
            provider=self.name,
            status=status,
            raw_status=sub.status,
            raw=as_mapping(body),
        )

    def status_call(self, job_id: str) -> HttpCall:
        return HttpCall("GET", self._get_url, "/get", params={"jobId": job_id}, template="/get")

    def parse_job(self, job_id: str, body: object) -> Job:
        doc = structure(_document, body, _Job, self.name, "job")
        status = map_status(doc.status)
        outputs: list[Asset] = []
        if doc.output is not None:
            outputs.extend(Asset(url=u, kind=AssetKind.IMAGE) for u in doc.output.image_url or ())
            if doc.output.video_url:
                outputs.append(Asset(url=doc.output.video_url, kind=AssetKind.VIDEO))
        error = None
        if status is JobStatus.FAILED:
            error = doc.error or doc.message or "the provider reported the job failed"
        return Job(
            id=doc.job_id or job_id,
            provider=self.name,
            status=status,
            raw_status=doc.status,
            created_at=doc.date,
            outputs=tuple(outputs),
            error=error,
            raw=as_mapping(body),
        )

    def error_message(self, body: object) -> str | None:
        if isinstance(body, Mapping):
            for key in ("message", "status", "error"):
                value = body.get(key)
                if isinstance(value, str) and value:
                    return value
        return None
