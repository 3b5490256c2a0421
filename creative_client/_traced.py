"""A client's OpenTelemetry traces and metrics (``Telemetry``, ``_telemetry.py``). With
``_http_spans.py``, the only modules of the library that import ``opentelemetry``
(``_cli/_otel.py`` sets up its SDK for ``creative batch --otel``), and imported only by
a client with telemetry on.

Spans: one per job call, current while it runs: ``creative.generate`` (submit, wait,
outcome), ``creative.submit``, and ``creative.wait`` (linked to its job's submit span when
this client submitted it). Under them each HTTP attempt is a CLIENT span named and
attributed by OpenTelemetry's HTTP client conventions (``_http_spans.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any

import attrs
from opentelemetry import context, metrics, trace
from opentelemetry.trace import Link, Span, SpanContext, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from . import __version__
from ._http_spans import SCHEMA, SCOPE, HttpSpans, error_type, type_name
from ._models import GenerationRequest, Job, JobStatus
from ._telemetry import Telemetry
from .errors import JobFailedError, JobTimeoutError, SubmissionUncertainError
from .providers import Provider

Attributes = dict[str, AttributeValue]
Generate = Callable[[GenerationRequest, float | None, Any], Awaitable[Job]]
Submit = Callable[[GenerationRequest], Awaitable[Job]]
Wait = Callable[[str, Job | None, float], Awaitable[Job]]

#: Job durations (seconds): from a few seconds to an hour.
JOB_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
#: Submits whose job a later ``wait`` may link to, at most (the oldest forgotten beyond).
_KEPT = 100_000
#: A failed job's ``error.type``, whether ``generate`` raised it or ``wait`` returned it.
_FAILED = type_name(JobFailedError)


@attrs.define
class _Job:
    """One job call under way: its span, and when the provider took the job."""

    span: Span
    model: str | None
    submitted: float | None = None
    job_id: str | None = None


#: The job call the running task is in (``submitted`` finds it there).
_JOB: ContextVar[_Job | None] = ContextVar("creative_client_job", default=None)


class Traced(HttpSpans):
    """One client's instruments: its tracer, its meters, and the job calls' wrappers
    (``Runner`` wraps ``generate``, ``submit`` and ``wait`` with them)."""

    def __init__(self, options: Telemetry, provider: Provider, model: str | None) -> None:
        tracer = trace.get_tracer(SCOPE, __version__, options.tracer_provider, schema_url=SCHEMA)
        meter = metrics.get_meter(SCOPE, __version__, options.meter_provider, schema_url=SCHEMA)
        super().__init__(tracer, meter, provider.name, provider.base_url)
        self.capture_prompts = options.capture_prompts
        self.model = model
        self._base: Attributes = {"creative.provider": provider.name}
        self._jobs = meter.create_counter(
            "creative.client.jobs", "{job}", "Jobs by how they ended, as the client saw it"
        )
        self._durations = meter.create_histogram(
            "creative.client.job.duration",
            "s",
            "From the provider taking a job to the client seeing it end",
            explicit_bucket_boundaries_advisory=JOB_BUCKETS,
        )
        self._active = meter.create_up_down_counter(
            "creative.client.jobs.active", "{job}", "generate() and wait() calls under way"
        )
        self._uncertain = meter.create_counter(
            "creative.client.submits.uncertain",
            "{submit}",
            "Submits whose outcome is unknown (SubmissionUncertainError)",
        )
        #: Jobs from submit(): when the provider took each, its model and its span.
        self._kept: dict[str, tuple[float, str | None, SpanContext]] = {}

    def submitted(self, job_id: str) -> None:
        """The provider took the job of the job call under way (``Runner.send``)."""
        state = _JOB.get()
        if state is not None and state.submitted is None:
            state.submitted = time.monotonic()
            state.job_id = job_id

    def generating(self, generate: Generate) -> Generate:
        """``generate`` in a ``creative.generate`` span."""

        async def traced(request: GenerationRequest, timeout: float | None, tracker: Any) -> Job:
            model = request.model or self.model
            with self._job_span("creative.generate", self._asked(request, model), model) as state:
                self._active.add(1, self._base)
                try:
                    job = await generate(request, timeout, tracker)
                except BaseException as exc:
                    self._ended(state, exc)
                    raise
                finally:
                    self._active.add(-1, self._base)
                self._ended(state, job)
                return job

        return traced

    def submitting(self, submit: Submit) -> Submit:
        """``submit`` in a ``creative.submit`` span; a submit that made no job is counted
        as the job's end (its job, if any, is counted by its ``wait``)."""

        async def traced(request: GenerationRequest) -> Job:
            model = request.model or self.model
            with self._job_span("creative.submit", self._asked(request, model), model) as state:
                try:
                    job = await submit(request)
                except BaseException as exc:
                    self._ended(state, exc)
                    raise
                state.span.set_attributes(
                    {"creative.job.id": job.id, "creative.job.status": job.status.value}
                )
                self._keep(job.id, state)
                return job

        return traced

    def waiting(self, wait: Wait) -> Wait:
        """``wait`` in a ``creative.wait`` span, linked to the job's ``creative.submit``."""

        async def traced(job_id: str, last: Job | None, limit: float) -> Job:
            kept = self._kept.pop(job_id, None)
            links = [Link(kept[2])] if kept is not None else None
            model = kept[1] if kept is not None else None
            attributes = {**self._base, "creative.job.id": job_id}
            with self._job_span("creative.wait", attributes, model, links) as state:
                state.submitted = kept[0] if kept is not None else None
                self._active.add(1, self._base)
                try:
                    job = await wait(job_id, last, limit)
                except BaseException as exc:
                    self._ended(state, exc)
                    if kept is not None and isinstance(exc, JobTimeoutError):
                        self._kept[job_id] = kept  # a later wait still ends it
                    raise
                finally:
                    self._active.add(-1, self._base)
                self._ended(state, job)
                return job

        return traced

    @contextlib.contextmanager
    def _job_span(
        self, name: str, attributes: Attributes, model: str | None, links: list[Link] | None = None
    ) -> Iterator[_Job]:
        """A job call's span, current (its HTTP requests are its children) while it runs."""
        span = self.tracer.start_span(
            name,
            attributes=attributes,
            links=links,
            record_exception=False,  # a message may quote the prompt: _ended says what is safe
            set_status_on_exception=False,
        )
        state = _Job(span, model)
        token = context.attach(trace.set_span_in_context(span))
        job_token = _JOB.set(state)
        try:
            yield state
        finally:
            _JOB.reset(job_token)
            context.detach(token)
            span.end()

    def _asked(self, request: GenerationRequest, model: str | None) -> Attributes:
        """A job call's first attributes: never the prompt, unless ``capture_prompts``."""
        attributes = dict(self._base)
        if model is not None:
            attributes["creative.model"] = model
        if self.capture_prompts:
            attributes["creative.prompt"] = request.prompt
        return attributes

    def _keep(self, job_id: str, state: _Job) -> None:
        kept = self._kept
        if len(kept) >= _KEPT:  # submits nobody waits for: forget the oldest
            del kept[next(iter(kept))]
        submitted = state.submitted if state.submitted is not None else time.monotonic()
        kept[job_id] = (submitted, state.model, state.span.get_span_context())

    def _ended(self, state: _Job, result: Job | BaseException) -> None:
        """A job call's outcome, on its span and in the metrics."""
        span = state.span
        job = result if isinstance(result, Job) else getattr(result, "job", None)
        outcome = _outcome(result)
        ended: Attributes = {"creative.job.outcome": outcome}
        if state.job_id is not None:
            ended["creative.job.id"] = state.job_id
        if isinstance(job, Job):
            ended["creative.job.id"] = job.id
            ended["creative.job.status"] = job.status.value
            if job.error is not None and self.capture_prompts:
                ended["creative.job.error"] = job.error
        if outcome != "succeeded":
            kind = error_type(result) if isinstance(result, BaseException) else _FAILED
            ended["error.type"] = kind
            span.set_status(Status(StatusCode.ERROR, kind.rpartition(".")[2]))
        span.set_attributes(ended)
        attributes = {**self._base, "creative.job.outcome": outcome}
        if state.model is not None:
            attributes["creative.model"] = state.model
        self._jobs.add(1, attributes)
        if outcome in ("succeeded", "failed") and state.submitted is not None:
            self._durations.record(time.monotonic() - state.submitted, attributes)
        if outcome == "uncertain":
            self._uncertain.add(1, self._base)


def _outcome(result: Job | BaseException) -> str:
    """How a job call ended: succeeded, failed, timeout, uncertain, cancelled or error."""
    if isinstance(result, Job):
        return "failed" if result.status is JobStatus.FAILED else "succeeded"
    if isinstance(result, JobFailedError):
        return "failed"
    if isinstance(result, JobTimeoutError):
        return "timeout"
    if isinstance(result, SubmissionUncertainError):
        return "uncertain"
    if isinstance(result, asyncio.CancelledError):
        return "cancelled"
    return "error"
