"""Neocu: api-key, POST /generate {query, files}, GET /task/{id}, GET /compute."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

import attrs

from .._models import Asset, AssetKind, GenerationRequest, Job, JobStatus
from ..errors import ProviderResponseError
from ._base import HttpCall, Provider
from .wire import (
    as_mapping,
    iso_to_datetime,
    lookup_status,
    make_converter,
    register_object,
    structure,
)

_STATUS: Mapping[str, JobStatus] = {
    "queued": JobStatus.QUEUED,
    "pending": JobStatus.QUEUED,
    "generating": JobStatus.RUNNING,
    "processing": JobStatus.RUNNING,
    "completed": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
}

_KIND: Mapping[str, AssetKind] = {
    "image": AssetKind.IMAGE,
    "video": AssetKind.VIDEO,
    "audio": AssetKind.AUDIO,
    "sound": AssetKind.AUDIO,
    "voice": AssetKind.AUDIO,
    "music": AssetKind.AUDIO,
    "3d": AssetKind.THREE_D,
}


@attrs.define
class _Submitted:
    task_id: str
    message: str | None = None


@attrs.define
class _Asset:
    url: str | None = None
    thumbnail: str | None = None
    name: str | None = None
    type: str | None = None
    id: str | None = None


@attrs.define
class _Task:
    status: str
    message: tuple[str, ...] = ()
    date: datetime | None = None


@attrs.define
class _TaskDoc:
    task: _Task
    asset: tuple[_Asset, ...] | None = None
    is_success: bool | None = None
    error: str | None = None


@attrs.define
class _Compute:
    compute: float | None = None
    is_success: bool | None = None
    error: str | None = None


def _finite(value: Any, _: Any) -> float | None:
    if value is None:
        return None
    number: float = _conv.structure(value, float)
    if not math.isfinite(number):  # Python's json reads NaN and Infinity
        raise ValueError(f"expected a finite number, got {number}")
    return number


def _messages(value: Any, _: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return _conv.structure(value, tuple[str, ...])


_conv = make_converter()
_submitted = register_object(_conv, _Submitted)
register_object(_conv, _Asset, id="_id")
register_object(_conv, _Task, message=_messages, date=iso_to_datetime)
_document = register_object(_conv, _TaskDoc, is_success="isSuccess")
_compute = register_object(_conv, _Compute, compute=_finite, is_success="isSuccess")


def map_status(raw: str) -> JobStatus:
    """Neocu's status string in the unified model; an unknown one is still running."""
    return lookup_status(_STATUS, raw)


def map_kind(raw: str | None) -> AssetKind:
    """Neocu's ``asset[].type`` as an asset kind."""
    if not raw:
        return AssetKind.OTHER
    return _KIND.get(raw.strip().lower(), AssetKind.OTHER)


class Neocu(Provider):
    """The Neocu adapter. Takes ``files``; not ``model``, ``input`` or ``webhook``."""

    name: ClassVar[str] = "neocu"
    default_base_url: ClassVar[str] = "https://api.neocu.com/v1"
    api_key_env: ClassVar[str] = "NEOCU_API_KEY"
    fake: ClassVar[str | None] = "creative_client.testing._neocu:FakeNeocu"
    takes_files = True

    def __init__(self, base_url: str | None = None) -> None:
        super().__init__(base_url)
        self._generate_url = f"{self.base_url}/generate"
        self._task_url = f"{self.base_url}/task/"
        self._compute_call = HttpCall(
            "GET", f"{self.base_url}/compute", "/compute", template="/compute"
        )

    def auth_headers(self, api_key: str) -> Mapping[str, str]:
        return {"api-key": api_key}

    def submit_call(self, request: GenerationRequest, model: str | None) -> HttpCall:
        body: dict[str, Any] = {"query": request.prompt}
        if request.files:
            body["files"] = list(request.files)
        return HttpCall(
            "POST", self._generate_url, "/generate", json=body, submit=True, template="/generate"
        )

    def parse_submit(self, body: object) -> Job:
        sub = structure(_submitted, body, _Submitted, self.name, "submit answer")
        return Job(
            id=sub.task_id, provider=self.name, status=JobStatus.QUEUED, raw=as_mapping(body)
        )

    def status_call(self, job_id: str) -> HttpCall:
        quoted = quote(job_id, safe="")
        return HttpCall("GET", self._task_url + quoted, "/task/" + quoted, template="/task/{id}")

    def parse_job(self, job_id: str, body: object) -> Job:
        doc = structure(_document, body, _TaskDoc, self.name, "task")
        if doc.is_success is False:
            raise ProviderResponseError(
                f"{self.name} answered isSuccess=false for task {job_id}",
                provider=self.name,
                provider_message=doc.error,
                body=repr(body),
            )
        status = map_status(doc.task.status)
        outputs = tuple(
            Asset(
                url=a.url,
                kind=map_kind(a.type),
                thumbnail=a.thumbnail or None,
                name=a.name,
                id=a.id,
            )
            for a in doc.asset or ()
            if a.url
        )
        error = None
        if status is JobStatus.FAILED:
            error = (
                "; ".join(doc.task.message) or doc.error or "the provider reported the task failed"
            )
        return Job(
            id=job_id,
            provider=self.name,
            status=status,
            raw_status=doc.task.status,
            created_at=doc.task.date,
            outputs=outputs,
            error=error,
            raw=as_mapping(body),
        )

    def balance_call(self) -> HttpCall:
        return self._compute_call

    def parse_balance(self, body: object) -> float:
        """The organisation's remaining compute (``GET /compute``)."""
        doc = structure(_compute, body, _Compute, self.name, "compute answer")
        if doc.is_success is False or doc.compute is None:
            said = "isSuccess=false" if doc.is_success is False else "no 'compute' number"
            raise ProviderResponseError(
                f"{self.name} answered GET /compute with {said}",
                provider=self.name,
                provider_message=doc.error,
                body=repr(body),
            )
        return doc.compute

    def error_message(self, body: object) -> str | None:
        if not isinstance(body, Mapping):
            return None
        parts = [v for k in ("error", "message") if isinstance(v := body.get(k), str) and v]
        return ": ".join(parts) or None
