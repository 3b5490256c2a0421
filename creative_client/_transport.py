"""The transport: one aiohttp session, timeouts, retries, and HTTP answers as typed errors."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import backoff
from aiolimiter import AsyncLimiter
from multidict import CIMultiDict, CIMultiDictProxy

from ._retry import RETRY_STATUSES, RetryPolicy, parse_retry_after
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
from .providers import HttpCall, Provider

logger = logging.getLogger("creative_client")

_BY_STATUS: Mapping[int, type[CreativeError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: InsufficientBalanceError,
    403: AuthenticationError,
    404: NotFoundError,
    429: RateLimitError,
}

#: Failures that happen before a request can have reached the server.
_NEVER_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)

DEFAULT_MAX_BODY = 8 * 1024 * 1024
#: A key this long is a secret wherever it appears; a shorter one ("key", "e") is not
#: redacted, since replacing it would cut ordinary words and host names apart. Our own
#: messages never hold a key: only a provider echoing it could show one.
MIN_SECRET = 8


class Transport:
    """Sends an adapter's ``HttpCall`` and returns the decoded JSON body of a 2xx answer.

    Reads are retried on connection errors, timeouts, 429 and 500/502/503/504.
    A submit is retried only when it never left (no connection) or on 429; after
    it left, any failure raises ``SubmissionUncertainError``.
    """

    def __init__(
        self,
        provider: Provider,
        api_key: str,
        *,
        session: aiohttp.ClientSession | None = None,
        retry: RetryPolicy,
        connect_timeout: float,
        request_timeout: float,
        pool_size: int,
        rate: float | None = None,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        self.provider = provider
        self._name = provider.name
        self._secret = api_key if len(api_key) >= MIN_SECRET else None
        self._request_timeout = request_timeout
        self._connect_timeout = connect_timeout
        headers = {**provider.auth_headers(api_key), "Accept": "application/json"}
        # Our own session carries the headers, so no request has to merge them in;
        # a caller's session gets them on each request instead.
        self._session_headers = headers
        self._headers = headers if session is not None else None
        # sock_connect bounds making a new connection; unlike connect it arms no timer
        # for a request that reuses a pooled one.
        self._timeout = aiohttp.ClientTimeout(total=request_timeout, sock_connect=connect_timeout)
        # A download may take long in all; what must not stall is each read.
        self._fetch_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=request_timeout
        )
        self._bare: aiohttp.ClientSession | None = None  # ours, without the key: downloads
        self._session = session
        self._owns_session = session is None
        self._pool_size = pool_size
        self._max_body = max_body
        self._closed = False
        # A leaky bucket holding a tenth of a second's worth: about `rate` requests in any
        # second, without a whole second's burst at the start.
        burst = max(1.0, rate / 10) if rate else 0.0
        self._limiter = AsyncLimiter(burst, burst / rate) if rate else None
        #: The longest one call can take, every attempt timing out and every pause at its
        #: cap (infinite with a rate limit, whose queue has no bound).
        self.longest_call = (
            retry.max_attempts * request_timeout
            + (retry.max_attempts - 1) * max(retry.max_delay, retry.max_retry_after)
            if rate is None
            else float("inf")
        )
        # backoff's stubs type a wait generator as send-less; ours is sent each exception.
        wait_gen: Any = retry.wait_gen
        common: dict[str, Any] = dict(
            max_tries=retry.max_attempts,
            max_time=retry.max_time,
            jitter=None,
            on_backoff=self._log_retry,
            logger=None,
        )
        self._retry_read = backoff.on_exception(wait_gen, _RETRY_READ, giveup=_final, **common)(
            self._again
        )
        self._retry_submit = backoff.on_exception(wait_gen, _RETRY_SUBMIT, **common)(self._again)

    def __repr__(self) -> str:
        return f"Transport(provider={self._name!r}, base_url={self.provider.base_url!r})"

    @property
    def closed(self) -> bool:
        return self._closed

    async def open(self) -> None:
        """Create the session, inside the running loop, unless the caller gave one."""
        if self._closed:
            raise RuntimeError("this client is closed; create a new one")
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=0)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, headers=self._session_headers
            )

    async def close(self) -> None:
        """Close the session if this transport created it; a caller's session stays open."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()
        bare, self._bare = self._bare, None
        if bare is not None:
            await bare.close()

    async def request(self, call: HttpCall, *, _retrying: bool = False) -> object:
        """Send ``call`` with the retry rule that fits it; the decoded JSON body of a 2xx."""
        # backoff costs a few microseconds a call even when nothing fails, so the first
        # attempt runs here, outside it, and only a failure enters the retry loop (which
        # calls back in with _retrying set). One coroutine, not two, on the common path.
        try:
            if self._limiter is not None:
                # Before the request, so a call waiting for its turn holds no connection.
                await self._limiter.acquire()
            session = self._session
            if session is None:
                await self.open()  # raises once the transport is closed
                session = self._session
                assert session is not None
            try:
                async with session.request(
                    call.method,
                    call.url,
                    params=call.params,
                    json=call.json,
                    headers=self._headers,
                    allow_redirects=False,
                    timeout=self._timeout,
                ) as resp:
                    status = resp.status
                    length = resp.content_length
                    if length is not None and length <= self._max_body:
                        data, complete = await resp.read(), True
                    else:
                        data, complete = await self._read_capped(resp)
                    retry_after = resp.headers.get("Retry-After") if status == 429 else None
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise self._lost(call, exc) from exc
            return self._answer(call, status, data, complete, retry_after)
        except _RETRY_READ as exc:
            if _retrying:
                raise
            if call.submit:
                if not isinstance(exc, _RETRY_SUBMIT):
                    raise
                return await self._retry_submit(call, [exc])
            if _final(exc):
                raise
            return await self._retry_read(call, [exc])

    async def _again(
        self,
        call: HttpCall,
        first: list[Exception],
        send: Callable[[HttpCall], Awaitable[object]] | None = None,
    ) -> object:
        """The target backoff retries: it replays the first failure (try 1), then sends,
        with ``send`` if given (a download), else as ``request``."""
        if first:
            raise first.pop()
        if send is not None:
            return await send(call)
        return await self.request(call, _retrying=True)

    def _lost(self, call: HttpCall, exc: Exception, host: str | None = None) -> CreativeError:
        """A request that never connected, or that left and whose answer never came
        (timeout, reset, cut body). ``host`` names who was asked, when not the provider
        (a download)."""
        _scrub(exc)  # kept as the __cause__ (and __context__) of what we raise
        who = host or self._name
        if isinstance(exc, _NEVER_SENT):
            why = (
                f"no connection within {self._connect_timeout:g}s (connect_timeout)"
                if isinstance(exc, aiohttp.ConnectionTimeoutError)
                else self._clean(exc)
            )
            return TransportError(f"could not connect to {who}: {why}", provider=self._name)
        if isinstance(exc, aiohttp.ServerTimeoutError):  # a read with no data for too long
            what = f"timed out: no data for {self._request_timeout:g}s (request_timeout)"
        elif isinstance(exc, asyncio.TimeoutError):
            what = f"timed out after {self._request_timeout:g}s (request_timeout)"
        else:
            what = f"failed: {self._clean(exc)}"
        message = f"{call.method} {call.path} {what}"
        if host is not None:
            message = f"downloading from {host}: {message}"
        if call.submit:
            return SubmissionUncertainError(
                f"the submit was sent but its answer was lost ({message}); "
                "a job may exist and was not submitted again",
                provider=self._name,
            )
        return TransportError(message, provider=self._name)

    def _answer(
        self, call: HttpCall, status: int, data: bytes, complete: bool, retry_after: str | None
    ) -> object:
        """The decoded body of a usable answer, or the error it stands for."""
        logger.debug("%s %s %s -> %d", self._name, call.method, call.path, status)
        if 200 <= status < 300 and complete:
            try:
                return json.loads(data)
            except ValueError:
                pass
            error: CreativeError = ProviderResponseError(
                f"{self._name} answered {status} with a body that is not JSON",
                provider=self._name,
                status=status,
                body=self._text(data),
            )
        elif 200 <= status < 300:
            error = ProviderResponseError(
                f"{self._name} answered {status} with a body over {self._max_body} bytes",
                provider=self._name,
                status=status,
                body=self._text(data),
            )
        else:
            error = self._error_for(status, data, retry_after)
        if call.submit and (status < 400 or status >= 500):
            # The provider may have created the job: never resend, say so.
            raise SubmissionUncertainError(
                f"the submit got an unusable answer ({error.message}); "
                "a job may exist and was not submitted again",
                provider=self._name,
                status=status,
                provider_message=error.provider_message,
                body=error.body,
            )
        raise error

    async def fetch(self, call: HttpCall, dest: Path, max_size: int) -> str | None:
        """Stream a GET's body into ``dest`` and return its Content-Type; retried like a
        read. Sent without the API key: outputs live on other hosts (CDNs, buckets)."""
        send = functools.partial(self._fetch, dest=dest, max_size=max_size)
        try:
            return await send(call)
        except _RETRY_READ as exc:
            if _final(exc):
                raise
            content_type = await self._retry_read(call, [exc], send)
            assert content_type is None or isinstance(content_type, str)
            return content_type

    async def _fetch(self, call: HttpCall, dest: Path, max_size: int) -> str | None:
        if self._limiter is not None:
            await self._limiter.acquire()
        if self._closed:
            raise RuntimeError("this client is closed; create a new one")
        if not self._owns_session:
            session = self._session
        else:
            if self._bare is None:
                connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=0)
                self._bare = aiohttp.ClientSession(connector=connector)
            session = self._bare
        assert session is not None
        host = urlsplit(call.url).hostname or "?"
        try:
            async with session.get(call.url, timeout=self._fetch_timeout) as resp:
                if not 200 <= resp.status < 300:
                    data = await resp.content.read(1024)
                    retry_after = resp.headers.get("Retry-After") if resp.status == 429 else None
                    raise self._error_for(resp.status, data, retry_after, host=host, path=call.path)
                length = resp.content_length
                size = 0
                if length is None or length <= max_size:
                    size = await _stream_to(resp, dest, max_size)
                if size > max_size or (length is not None and length > max_size):
                    raise ProviderResponseError(
                        f"{host}{call.path} is over the download cap of {max_size} bytes",
                        provider=self._name,
                        status=resp.status,
                    )
                return resp.headers.get("Content-Type")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._lost(call, exc, host) from exc

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> tuple[bytes, bool]:
        """A body of unknown or excessive length, read until ``max_body``."""
        buf = bytearray()
        async for chunk in resp.content.iter_chunked(65536):
            buf += chunk
            if len(buf) > self._max_body:
                return bytes(buf[:1024]), False
        return bytes(buf), True

    def _error_for(
        self,
        status: int,
        data: bytes,
        retry_after: str | None,
        *,
        host: str | None = None,
        path: str = "",
    ) -> CreativeError:
        """The error an HTTP answer stands for. ``host`` names who answered, when not the
        provider (a download, whose body is not the provider's to explain)."""
        try:
            body: object = json.loads(data)
        except ValueError:
            body = None
        said = self.provider.error_message(body) if host is None else None
        provider_message = self._clean(said) if said else None
        kind = _BY_STATUS.get(status)
        if kind is None:
            if status >= 500:
                kind = ServerError
            elif status >= 400:
                kind = InvalidRequestError
            else:
                kind = ProviderResponseError
        message = f"{host or self._name} answered HTTP {status}"
        if host is not None:
            message += f" for {path}"
        if provider_message:
            message += f": {provider_message}"
        elif body is None and data and host is None:
            message += " with a body that is not JSON"
        hint = _HINTS.get(status) if host is None else None
        if status == 404 and body is not None:
            hint = None  # the provider's own 404 (a job it does not know)
        if hint is not None:
            message += f" ({hint.format(base_url=self.provider.base_url)})"
        fields: dict[str, Any] = dict(
            provider=self._name,
            status=status,
            provider_message=provider_message,
            body=self._text(data),
        )
        if kind is RateLimitError:
            return RateLimitError(message, retry_after=parse_retry_after(retry_after), **fields)
        return kind(message, **fields)

    def _text(self, data: bytes) -> str:
        return self._clean(data[:1024].decode("utf-8", errors="replace"))

    def _clean(self, value: object) -> str:
        text = str(value)
        if self._secret and self._secret in text:
            text = text.replace(self._secret, "[redacted]")
        return text

    def _log_retry(self, details: Any) -> None:
        """One INFO line per retry; the fields also ride on the record for structured logs."""
        exc = details.get("exception")
        call: HttpCall = details["args"][0]
        fields = {
            "provider": self._name,
            "method": call.method,
            "path": call.path,
            "error": type(exc).__name__,
            "status": getattr(exc, "status", None),
            "delay": round(float(details.get("wait") or 0.0), 3),
            "attempt": int(details.get("tries", 0)),
        }
        logger.info(
            "retrying %(provider)s %(method)s %(path)s after %(error)s (status=%(status)s) "
            "in %(delay).2fs (attempt %(attempt)d)",
            fields,
            extra=fields,
        )


#: What an answer of no use says, when the provider's own words do not say it.
_HINTS: Mapping[int, str] = {
    # A page that is not the API's own (no JSON): most often a wrong base URL.
    404: "not the provider's API: check base_url, now {base_url}",
    413: "the request is too large for the provider",
}

_RETRY_READ = (TransportError, RateLimitError, ServerError)
_RETRY_SUBMIT = (TransportError, RateLimitError)


async def _stream_to(resp: aiohttp.ClientResponse, dest: Path, max_size: int) -> int:
    """Write the body to ``dest`` in a worker thread, a MiB at a time, stopping once past
    ``max_size``; the bytes seen."""
    out = await asyncio.to_thread(dest.open, "wb")
    try:
        size = 0
        buf = bytearray()
        async for chunk in resp.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > max_size:
                break
            buf += chunk
            if len(buf) >= 1 << 20:
                await asyncio.to_thread(out.write, bytes(buf))
                buf.clear()
        if buf and size <= max_size:
            await asyncio.to_thread(out.write, bytes(buf))
        return size
    finally:
        await asyncio.to_thread(out.close)


def _scrub(exc: BaseException) -> None:
    """Take the request's headers (the API key among them) out of an aiohttp error that
    carries them, such as the ``ClientResponseError`` of an answer that is not HTTP:
    its repr and args would show them to whoever reads the cause."""
    info = getattr(exc, "request_info", None)
    if isinstance(exc, aiohttp.ClientResponseError) and info is not None:
        exc.request_info = aiohttp.RequestInfo(
            info.url, info.method, CIMultiDictProxy(CIMultiDict()), info.real_url
        )
        exc.args = (exc.request_info, exc.history)


def _final(exc: Exception) -> bool:
    """backoff's giveup predicate: a 5xx outside RETRY_STATUSES is not retried."""
    return isinstance(exc, ServerError) and exc.status not in RETRY_STATUSES
