"""Replicate: Bearer key, POST /predictions {version, input, webhook}, GET /predictions/{id}."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

import attrs

from creative_client import Asset, AssetKind, GenerationRequest, Job, JobStatus
from creative_client.providers import HttpCall, Provider
from creative_client.providers.wire import (
    as_mapping,
    iso_to_datetime,
    lookup_status,
    make_converter,
    register_object,
    structure,
)

_STATUS: Mapping[str, JobStatus] = {
    "starting": JobStatus.QUEUED,
    "processing": JobStatus.RUNNING,
    "succeeded": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
    "canceled": JobStatus.FAILED,
    "aborted": JobStatus.FAILED,  # newer docs: stopped before it started
}

_KIND_BY_EXTENSION: Mapping[str, AssetKind] = {
    **dict.fromkeys((".png", ".jpg", ".jpeg", ".webp", ".gif", ".avif"), AssetKind.IMAGE),
    **dict.fromkeys((".mp4", ".webm", ".mov"), AssetKind.VIDEO),
    **dict.fromkeys((".mp3", ".wav", ".flac", ".ogg", ".m4a"), AssetKind.AUDIO),
    **dict.fromkeys((".glb", ".gltf", ".obj", ".ply"), AssetKind.THREE_D),
}
_KIND_BY_MEDIA_TYPE: Mapping[str, AssetKind] = {
    "image": AssetKind.IMAGE,
    "video": AssetKind.VIDEO,
    "audio": AssetKind.AUDIO,
    "model": AssetKind.THREE_D,
}


def _kind(url: str) -> AssetKind:
    """A URL's media kind, from its file extension (a data: URL, from its media type)."""
    if url[:5].lower() == "data:":
        return _KIND_BY_MEDIA_TYPE.get(url[5:].split("/", 1)[0].lower(), AssetKind.OTHER)
    path = url.split("#", 1)[0].split("?", 1)[0]
    return _KIND_BY_EXTENSION.get(posixpath.splitext(path)[1].lower(), AssetKind.OTHER)


def _outputs(value: Any, _: Any) -> tuple[Asset, ...]:
    """``output``: nothing yet, one URL, or a list of URLs (a model's choice)."""
    if value is None:
        return ()
    urls = [value] if isinstance(value, str) else value
    if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
        raise TypeError(f"expected a URL or a list of URLs, got {type(value).__name__}")
    return tuple(Asset(url=url, kind=_kind(url)) for url in urls if url)


def _created_at(value: Any, _: Any) -> datetime | None:
    """``created_at``, ISO 8601; one that does not parse costs the time, not the job."""
    try:
        return iso_to_datetime(value)
    except ValueError:
        return None


@attrs.define
class _Created:
    """The 201 answer to a submit: the new prediction."""

    id: str
    status: str | None = None
    output: tuple[Asset, ...] = ()
    error: str | None = None
    created_at: datetime | None = None


@attrs.define
class _Prediction:
    """A prediction as GET /predictions/{id} (and a webhook) sends it."""

    status: str
    id: str | None = None
    output: tuple[Asset, ...] = ()
    error: str | None = None
    created_at: datetime | None = None


_conv = make_converter()
_created = register_object(_conv, _Created, output=_outputs, created_at=_created_at)
_prediction = register_object(_conv, _Prediction, output=_outputs, created_at=_created_at)


def map_status(raw: str) -> JobStatus:
    """Replicate's status string in the unified model; an unknown one is still running."""
    return lookup_status(_STATUS, raw)


class Replicate(Provider):
    """The Replicate adapter. ``model`` is the prediction's ``version`` (required);
    takes ``input`` and ``webhook`` (called once, when the prediction ends); not ``files``.

    >>> CreativeClient("replicate", model="5c7d5dc6dd8bf75c1acaa8565735e7986bc5b662...")
    """

    name: ClassVar[str] = "replicate"
    default_base_url: ClassVar[str] = "https://api.replicate.com/v1"
    api_key_env: ClassVar[str] = "REPLICATE_API_KEY"
    fake: ClassVar[str | None] = "creative_replicate.fake:FakeReplicate"
    takes_model = True
    takes_input = True
    takes_webhook = True
    prompt_in_input = True

    def __init__(self, base_url: str | None = None) -> None:
        super().__init__(base_url)
        self._predictions_url = f"{self.base_url}/predictions"

    def auth_headers(self, api_key: str) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    def submit_call(self, request: GenerationRequest, model: str | None) -> HttpCall:
        body: dict[str, Any] = {
            "version": model,
            "input": self.wire_input(request),
        }
        if request.webhook is not None:
            body["webhook"] = request.webhook
            # Replicate calls at start, on output and logs too by default: one call will do.
            body["webhook_events_filter"] = ["completed"]
        return HttpCall(
            "POST",
            self._predictions_url,
            "/predictions",
            json=body,
            submit=True,
            template="/predictions",
        )

    def parse_submit(self, body: object) -> Job:
        doc = structure(_created, body, _Created, self.name, "submit answer")
        status = map_status(doc.status) if doc.status is not None else JobStatus.QUEUED
        return self._job(doc.id, status, doc.status, doc, body)

    def status_call(self, job_id: str) -> HttpCall:
        quoted = quote(job_id, safe="")
        return HttpCall(
            "GET",
            f"{self._predictions_url}/{quoted}",
            f"/predictions/{quoted}",
            template="/predictions/{id}",
        )

    def parse_job(self, job_id: str, body: object) -> Job:
        doc = structure(_prediction, body, _Prediction, self.name, "prediction")
        return self._job(doc.id or job_id, map_status(doc.status), doc.status, doc, body)

    def _job(
        self,
        job_id: str,
        status: JobStatus,
        raw_status: str | None,
        doc: _Created | _Prediction,
        body: object,
    ) -> Job:
        error = None
        if status is JobStatus.FAILED:
            error = doc.error or f"the prediction ended {raw_status or 'failed'}"
        return Job(
            id=job_id,
            provider=self.name,
            status=status,
            raw_status=raw_status,
            created_at=doc.created_at,
            outputs=doc.output,
            error=error,
            raw=as_mapping(body),
        )

    def error_message(self, body: object) -> str | None:
        if isinstance(body, Mapping):
            for key in ("detail", "title", "error"):
                value = body.get(key)
                if isinstance(value, str) and value:
                    return value
        return None
