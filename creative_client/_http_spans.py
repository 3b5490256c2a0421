"""Each HTTP attempt of a client with telemetry on (``_traced.py``) as an OpenTelemetry
CLIENT span, by the HTTP client semantic conventions: named ``{method} {url.template}``,
with ``http.request.method``, ``server.address``, ``server.port``, ``url.full``,
``url.template``, ``http.response.status_code``, ``error.type``, and on a resend
``http.request.resend_count`` with ``creative.retry.delay`` (the pause before it). Each
attempt is recorded in ``http.client.request.duration`` and each retry counted in
``creative.client.retries``. Headers (the API key) are never recorded.

``TracedTransport`` is the transport with these spans: the plain one
(``_transport.py``) stays as it is, so a client without telemetry pays nothing.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlencode, urlsplit

import attrs
from opentelemetry.metrics import Meter
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from ._budget import Turns
from ._http import RETRYABLE, HttpCall
from ._transport import Transport

#: The instrumentation scope, and the semantic conventions' version followed.
SCOPE = "creative_client"
SCHEMA = "https://opentelemetry.io/schemas/1.26.0"
#: The conventions' advised buckets for ``http.client.request.duration`` (seconds).
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

Attributes = dict[str, AttributeValue]


@attrs.define
class _Attempt:
    """One HTTP attempt under way: when it started (the clock's and the span's), the
    status answered, the wait for a turn (``rate``)."""

    started: float = attrs.field(factory=time.perf_counter)
    start_time: int = attrs.field(factory=time.time_ns)
    status: int | None = None
    queued: float = 0.0


@attrs.define
class _Resends:
    """A call being retried: how many times it was sent again, and the last pause."""

    count: int = 0
    delay: float = 0.0


#: The attempt, and the retried call, the running task is in: the transport's steps
#: (``_answer``, a turn, backoff's handler) run in the task that sends.
_ATTEMPT: ContextVar[_Attempt | None] = ContextVar("creative_client_attempt", default=None)
_RESENDS: ContextVar[_Resends | None] = ContextVar("creative_client_resends", default=None)


class HttpSpans:
    """A client's HTTP instruments; ``transport`` makes its traced transport."""

    def __init__(self, tracer: Tracer, meter: Meter, provider: str, base_url: str) -> None:
        self.tracer = tracer
        self.provider = provider
        parts = urlsplit(base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self._server: Attributes = {"server.address": parts.hostname or "", "server.port": port}
        self._scheme = parts.scheme
        self._base_url = base_url
        #: user:password in the base URL, shown as the conventions say: REDACTED:REDACTED.
        self._userinfo = parts.netloc.rpartition("@")[0]
        self._requests = meter.create_histogram(
            "http.client.request.duration",
            "s",
            "Duration of HTTP client requests (without the wait for a turn under rate).",
            explicit_bucket_boundaries_advisory=HTTP_BUCKETS,
        )
        self._retries = meter.create_counter(
            "creative.client.retries", "{retry}", "HTTP requests sent again after a failure"
        )

    def transport(self, **settings: Any) -> Transport:
        """The transport ``Transport(**settings)`` would be, with spans."""
        return TracedTransport(self, **settings)

    def attempt(
        self,
        call: HttpCall,
        url: str,
        resends: _Resends | None,
        attempt: _Attempt,
        error: BaseException | None,
    ) -> None:
        """An attempt that ended: its span, made now with all it knows (it has no
        children, so it never needs to be current) and started when the attempt was,
        and its duration recorded."""
        elapsed = time.perf_counter() - attempt.started
        method, template, status = call.method, call.template, attempt.status
        attributes: Attributes = {
            "http.request.method": method,
            **self._server,
            "url.full": url,
            "creative.provider": self.provider,
        }
        measured: Attributes = {
            "creative.provider": self.provider,
            "http.request.method": method,
            **self._server,
            "url.scheme": self._scheme,
        }
        if template is not None:
            attributes["url.template"] = measured["url.template"] = template
        if resends is not None:
            attributes["http.request.resend_count"] = resends.count
            attributes["creative.retry.delay"] = resends.delay
        if status is not None:
            attributes["http.response.status_code"] = measured["http.response.status_code"] = status
        if error is not None:
            attributes["error.type"] = measured["error.type"] = http_error_type(status, error)
        if attempt.queued:
            attributes["creative.rate.wait"] = attempt.queued
        span = self.tracer.start_span(
            method if template is None else f"{method} {template}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=attempt.start_time,
            record_exception=False,  # error messages may quote a provider's body
            set_status_on_exception=False,
        )
        if error is not None:
            span.set_status(Status(StatusCode.ERROR))
        span.end()
        self._requests.record(max(elapsed - attempt.queued, 0.0), measured)

    def retried(self, details: Any) -> None:
        """backoff's handler, before the pause of a retry: counted, and its pause and
        number given to the retry's span."""
        resends = _RESENDS.get()
        if resends is not None:
            resends.count += 1
            resends.delay = round(float(details.get("wait") or 0.0), 6)
        call: HttpCall = details["args"][0]
        attributes: Attributes = {
            "creative.provider": self.provider,
            "http.request.method": call.method,
        }
        if call.url.startswith(self._base_url):  # not a download, from a host of its own
            attributes.update(self._server)
        if call.template is not None:
            attributes["url.template"] = call.template
        exc = details.get("exception")
        if isinstance(exc, BaseException):
            attributes["error.type"] = http_error_type(getattr(exc, "status", None), exc)
        self._retries.add(1, attributes)

    def full_url(self, call: HttpCall) -> str:
        """``url.full``: with the query, and any user:password in it redacted."""
        url = call.url
        if call.params:
            url = f"{url}?{urlencode(call.params)}"
        if self._userinfo:
            url = url.replace(f"{self._userinfo}@", "REDACTED:REDACTED@", 1)
        return url


class TracedTransport(Transport):
    """The transport, each attempt in its own CLIENT span (a child of the job's span)."""

    def __init__(self, spans: HttpSpans, **settings: Any) -> None:
        super().__init__(**settings)
        self._spans = spans
        if self._limiter is not None:
            self._limiter = _TimedTurns(settings["gate"])

    async def request(
        self, call: HttpCall, *, priority: float = Turns.NEUTRAL, _retrying: bool = False
    ) -> object:
        try:
            return await self._attempt(call, priority, _RESENDS.get() if _retrying else None)
        except RETRYABLE as exc:
            if _retrying:
                raise
            token = _RESENDS.set(_Resends())
            try:
                return await self._retry(call, exc)
            finally:
                _RESENDS.reset(token)

    async def _attempt(self, call: HttpCall, priority: float, resends: _Resends | None) -> object:
        attempt = _Attempt()
        token = _ATTEMPT.set(attempt)
        error: BaseException | None = None
        try:
            return await Transport.request(self, call, priority=priority, _retrying=True)
        except BaseException as exc:
            error = exc
            raise
        finally:
            _ATTEMPT.reset(token)
            spans = self._spans
            url = self.errors.clean(spans.full_url(call))  # the key, should it ever show
            spans.attempt(call, url, resends, attempt, error)

    def _answer(
        self, call: HttpCall, status: int, data: bytes, complete: bool, retry_after: str | None
    ) -> object:
        attempt = _ATTEMPT.get()
        if attempt is not None:
            attempt.status = status
        return super()._answer(call, status, data, complete, retry_after)

    def _retried(self, details: Any) -> None:
        self._spans.retried(details)


class _TimedTurns(Turns):
    """Turns (``rate``) that tell the attempt waiting for one how long it waited."""

    async def acquire(self, priority: float = Turns.NEUTRAL) -> None:
        start = time.perf_counter()
        await super().acquire(priority)
        attempt = _ATTEMPT.get()
        if attempt is not None:
            attempt.queued = time.perf_counter() - start


def type_name(kind: type) -> str:
    """A type's fully qualified name (a builtin's bare), as ``error.type`` takes it."""
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def error_type(exc: BaseException) -> str:
    """``error.type`` of a job call's failure: the exception's type."""
    return type_name(type(exc))


def http_error_type(status: int | None, exc: BaseException) -> str:
    """``error.type`` of a failed HTTP attempt, as the conventions say: the status of an
    error answer; else the type of what failed (the connection's error, for one lost)."""
    if status is not None and status >= 400:
        return str(status)
    cause = exc.__cause__
    return error_type(cause if cause is not None and status is None else exc)
