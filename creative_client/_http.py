"""HTTP as the SDK speaks it, below the providers and the transport alike: the call an
adapter asks for, what each answer stands for (one table), and the submit rule.

Adapters (``creative_client/providers/``) build ``HttpCall`` values; the transport
(``creative_client/_transport.py``) and downloads (``creative_client/_download.py``)
send them, and ``Errors`` turns their answers and failures into errors by ``ANSWERS``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from ._retry import parse_retry_after
from .errors import (
    AuthenticationError,
    CreativeError,
    InsufficientBalanceError,
    InvalidRequestError,
    NotFoundError,
    ProviderResponseError,
    RateLimitError,
    ServerError,
    SubmissionUncertainError,
    TransportError,
)


class HttpCall(NamedTuple):
    """One HTTP request an adapter wants sent. ``submit`` marks a POST that spends money.

    ``path`` is the part after the base URL, for logs. ``template`` is the path with its
    variable parts as ``{placeholders}`` (``/task/{id}``), for traces and metrics, whose
    names must not grow with each job; ``None`` when unknown (then a trace names only the
    method). A named tuple: a plain immutable value that costs next to nothing to build,
    twice per job.
    """

    method: Literal["GET", "POST"]
    url: str
    path: str
    params: Mapping[str, str] | None = None
    json: Any = None
    submit: bool = False
    template: str | None = None


class Answer(NamedTuple):
    """What an HTTP status stands for: the error it raises; whether the transport sends a
    read again after it (``retried``); whether it says "not now" rather than "never", so
    that a wait for a job reads on through it (``transient``); and what to tell the user
    when the provider's own words do not say it (``hint``, ``{base_url}`` filled in)."""

    error: type[CreativeError]
    retried: bool = False
    transient: bool = False
    hint: str | None = None


#: Every status the SDK treats specially, then the defaults by class ("4xx", "5xx", and
#: "other" for an answer that is neither a usable 2xx nor an error status).
ANSWERS: Mapping[int | str, Answer] = {
    400: Answer(InvalidRequestError),
    401: Answer(AuthenticationError),
    402: Answer(InsufficientBalanceError),
    403: Answer(AuthenticationError),
    # A page that is not the API's own (no JSON): most often a wrong base URL.
    404: Answer(NotFoundError, hint="not the provider's API: check base_url, now {base_url}"),
    408: Answer(InvalidRequestError, transient=True),  # a proxy's timeout
    413: Answer(InvalidRequestError, hint="the request is too large for the provider"),
    425: Answer(InvalidRequestError, transient=True),
    429: Answer(RateLimitError, retried=True, transient=True),
    500: Answer(ServerError, retried=True, transient=True),
    502: Answer(ServerError, retried=True, transient=True),
    503: Answer(ServerError, retried=True, transient=True),
    504: Answer(ServerError, retried=True, transient=True),
    "4xx": Answer(InvalidRequestError),
    # 501, 505, a proxy's 52x: not worth another try at once, but a wait outlasts them.
    "5xx": Answer(ServerError, transient=True),
    "other": Answer(ProviderResponseError),
}


def answer(status: int) -> Answer:
    """The row of ``ANSWERS`` for ``status``."""
    found = ANSWERS.get(status)
    if found is None:
        found = ANSWERS.get(f"{status // 100}xx") or ANSWERS["other"]
    return found


#: Failures that happen before a request can have reached the server.
NEVER_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


def may_resend_submit(exc: BaseException) -> bool:
    """The submit rule: neither provider documents idempotency keys, so a submit is
    sent again only where the provider cannot have created a job, that is when no
    connection was ever made or it answered 429. ``exc`` is the aiohttp failure, or the
    SDK error it became (a ``TransportError`` keeps it as its cause)."""
    if isinstance(exc, RateLimitError):
        return True
    if isinstance(exc, TransportError):
        return isinstance(exc.__cause__, NEVER_SENT)
    return isinstance(exc, NEVER_SENT)


def may_retry_read(exc: BaseException) -> bool:
    """Whether a read that failed with ``exc`` is sent again (within the retry policy)."""
    if isinstance(exc, TransportError | RateLimitError):
        return True
    return isinstance(exc, ServerError) and exc.status is not None and answer(exc.status).retried


#: The errors the retry loops catch at all; the two rules above pick among them.
RETRYABLE = (TransportError, RateLimitError, ServerError)


def scrub(exc: BaseException) -> None:
    """Take the request's headers (the API key among them) out of an aiohttp error that
    carries them, such as the ``ClientResponseError`` of an answer that is not HTTP:
    its repr and args would show them to whoever reads the cause."""
    info = getattr(exc, "request_info", None)
    if isinstance(exc, aiohttp.ClientResponseError) and info is not None:
        exc.request_info = aiohttp.RequestInfo(
            info.url, info.method, CIMultiDictProxy(CIMultiDict()), info.real_url
        )
        exc.args = (exc.request_info, exc.history)


#: A key this long is a secret wherever it appears; a shorter one ("key", "e") is not
#: redacted, since replacing it would cut ordinary words and host names apart. Our own
#: messages never hold a key: only a provider echoing it could show one.
MIN_SECRET = 8


class Errors:
    """How one provider's HTTP answers and failed requests become the SDK's errors,
    with the words that explain them and never its API key.

    ``error_message`` reads the provider's own message out of an error body (the
    adapter's ``Provider.error_message``); the timeouts are named in messages.
    """

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        error_message: Callable[[object], str | None],
        secret: str,
        connect_timeout: float,
        request_timeout: float,
    ) -> None:
        self.name = name
        self.base_url = base_url
        self._error_message = error_message
        self._secret = secret if len(secret) >= MIN_SECRET else None
        self._connect_timeout = connect_timeout
        self._request_timeout = request_timeout

    def for_status(
        self,
        status: int,
        data: bytes,
        retry_after: str | None,
        *,
        host: str | None = None,
        path: str = "",
    ) -> CreativeError:
        """The error an HTTP answer stands for, by ``ANSWERS``. ``host`` names who
        answered, when not the provider (a download, whose body is not the provider's
        to explain)."""
        try:
            body: object = json.loads(data)
        except ValueError:
            body = None
        said = self._error_message(body) if host is None else None
        provider_message = self.clean(said) if said else None
        meaning = answer(status)
        message = f"{host or self.name} answered HTTP {status}"
        if host is not None:
            message += f" for {path}"
        if provider_message:
            message += f": {provider_message}"
        elif body is None and data and host is None:
            message += " with a body that is not JSON"
        hint = meaning.hint if host is None else None
        if status == 404 and body is not None:
            hint = None  # the provider's own 404 (a job it does not know)
        if hint is not None:
            message += f" ({hint.format(base_url=self.base_url)})"
        fields: dict[str, Any] = dict(
            provider=self.name,
            status=status,
            provider_message=provider_message,
            body=self.text(data),
        )
        if meaning.error is RateLimitError:
            return RateLimitError(message, retry_after=parse_retry_after(retry_after), **fields)
        return meaning.error(message, **fields)

    def lost(self, call: HttpCall, exc: Exception, host: str | None = None) -> CreativeError:
        """A request that never connected, or that left and whose answer never came
        (timeout, reset, cut body). ``host`` names who was asked, when not the provider
        (a download)."""
        scrub(exc)  # kept as the __cause__ (and __context__) of what we raise
        who = host or self.name
        if isinstance(exc, NEVER_SENT):
            why = (
                f"no connection within {self._connect_timeout:g}s (connect_timeout)"
                if isinstance(exc, aiohttp.ConnectionTimeoutError)
                else self.clean(exc)
            )
            return TransportError(f"could not connect to {who}: {why}", provider=self.name)
        if isinstance(exc, aiohttp.ServerTimeoutError):  # a read with no data for too long
            what = f"timed out: no data for {self._request_timeout:g}s (request_timeout)"
        elif isinstance(exc, asyncio.TimeoutError):
            what = f"timed out after {self._request_timeout:g}s (request_timeout)"
        else:
            what = f"failed: {self.clean(exc)}"
        message = f"{call.method} {call.path} {what}"
        if host is not None:
            message = f"downloading from {host}: {message}"
        if call.submit and not may_resend_submit(exc):
            return SubmissionUncertainError(
                f"the submit was sent but its answer was lost ({message}); "
                "a job may exist and was not submitted again",
                provider=self.name,
            )
        return TransportError(message, provider=self.name)

    def text(self, data: bytes) -> str:
        """The first KiB of a body, as text, without the key."""
        return self.clean(data[:1024].decode("utf-8", errors="replace"))

    def clean(self, value: object) -> str:
        """``str(value)`` with the key, if it shows, redacted."""
        text = str(value)
        if self._secret and self._secret in text:
            text = text.replace(self._secret, "[redacted]")
        return text
