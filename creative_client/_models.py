"""The unified model: one request, one job, whichever provider runs it."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any

import attrs

from .errors import CreativeError, InvalidRequestError

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class JobStatus(enum.StrEnum):
    """Where a job is in its life. Providers' own strings map onto these four.

    A ``StrEnum``: ``job.status == "succeeded"`` holds, and it prints as ``succeeded``.
    """

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    #: True once the job will not change any more (a plain attribute: read on every poll).
    is_terminal: bool

    def __init__(self, value: str) -> None:
        self.is_terminal = value in ("succeeded", "failed")


class AssetKind(enum.StrEnum):
    """The media kind of one output."""

    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    THREE_D = "3d"
    OTHER = "other"


def _freeze_mapping(value: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    if not value:
        return _EMPTY
    return MappingProxyType(dict(value))


def _freeze_strings(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        # A lone string would otherwise become a tuple of characters.
        raise TypeError(f"expected a sequence of strings, not a string: {value!r}")
    return tuple(value)


@attrs.frozen(kw_only=True)
class GenerationRequest:
    """What to generate; the same request runs on either provider where the meaning matches.

    >>> GenerationRequest(prompt="a red fox", model="flux-schnell", input={"width": 512})

    ``model`` falls back to the client's default model, for providers that take one.
    ``input`` holds provider-specific extras (Deepixels' model parameters),
    ``files`` holds ids of files the provider already has (Neocu), and
    ``webhook`` is a URL the provider calls when the job ends (Deepixels).
    A field the chosen provider cannot honour raises ``InvalidRequestError``
    before any request is sent.
    """

    prompt: str
    model: str | None = None
    input: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze_mapping)
    files: tuple[str, ...] = attrs.field(default=(), converter=_freeze_strings)
    webhook: str | None = None


@attrs.frozen(kw_only=True)
class Asset:
    """One output of a finished job."""

    url: str
    kind: AssetKind = AssetKind.OTHER
    thumbnail: str | None = None
    name: str | None = None
    id: str | None = None


@attrs.frozen(kw_only=True)
class Job:
    """A provider's job, in the unified model.

    ``status`` is the mapped state; ``raw_status`` the provider's own string, kept
    as it came (an unknown one maps to ``RUNNING``). ``raw`` is the provider's whole
    document, for anything the model does not cover.
    """

    id: str
    provider: str
    status: JobStatus
    raw_status: str | None = None
    created_at: datetime | None = None
    outputs: tuple[Asset, ...] = ()
    error: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)


@attrs.frozen(kw_only=True)
class Outcome:
    """The result of one request in a batch: a finished job, or the error that stopped it.

    A job that ran and failed is an outcome with both ``job`` (the failed job) and
    ``error`` (a ``JobFailedError``); ``ok`` is true only for a job that succeeded.
    """

    request: GenerationRequest
    job: Job | None = None
    error: CreativeError | None = None

    @property
    def ok(self) -> bool:
        """True when the job succeeded."""
        return self.error is None and self.job is not None

    @property
    def provider(self) -> str | None:
        """The provider that ran the job; for a request that ended without a job, the
        provider whose error ended it (with ``FallbackClient``, the last that refused)."""
        if self.job is not None:
            return self.job.provider
        return self.error.provider if self.error is not None else None


@attrs.define(kw_only=True)
class Progress:
    """Counts for a batch, updated in place as its jobs move.

    ``submitted``: submits the provider accepted; ``running``: of those, the ones
    not finished yet; ``succeeded``, ``failed`` (the job failed, or any other
    error) and ``uncertain`` (a submit whose outcome is unknown) count outcomes.

    >>> progress = Progress()
    >>> async for outcome in client.as_completed(requests, progress=progress): ...
    >>> progress.done == progress.succeeded + progress.failed + progress.uncertain
    """

    submitted: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    uncertain: int = 0

    @property
    def done(self) -> int:
        """Outcomes so far, of every kind."""
        return self.succeeded + self.failed + self.uncertain


def coerce(
    request: GenerationRequest | str | None,
    prompt: str | None,
    model: str | None,
    input: Mapping[str, Any] | None,
    files: Sequence[str] | None,
    webhook: str | None,
) -> GenerationRequest:
    """The request a call describes: a ``GenerationRequest``, a prompt, or fields."""
    if isinstance(request, GenerationRequest):
        if (prompt, model, input, files, webhook) != (None, None, None, None, None):
            raise InvalidRequestError(
                "pass either a GenerationRequest or the request's fields, not both"
            )
        return request
    if request is not None:
        if prompt is not None:
            raise InvalidRequestError("the prompt was given twice (positionally and prompt=)")
        prompt = request
    if prompt is None:
        raise InvalidRequestError("a prompt is required: generate('a red fox')")
    try:
        return GenerationRequest(
            prompt=prompt, model=model, input=input or {}, files=files or (), webhook=webhook
        )
    except TypeError as exc:  # files as a lone string, a mapping that is not one, ...
        raise InvalidRequestError(f"bad request fields: {exc}") from None


def as_request(item: GenerationRequest | str) -> GenerationRequest:
    """A batch's item as a request: a prompt alone becomes ``GenerationRequest(prompt=...)``."""
    if isinstance(item, str):
        return GenerationRequest(prompt=item)
    return item


def as_sent(request: GenerationRequest, model: str | None) -> GenerationRequest:
    """The request with the model it was sent with (the client's default, if it had none)."""
    return request if request.model == model else attrs.evolve(request, model=model)
