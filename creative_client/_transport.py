"""The transport: one aiohttp session, timeouts, retries, and HTTP answers as typed errors.

It knows HTTP and nothing of providers: the client hands it the provider's name, base
URL, auth headers and a way to read the provider's message out of an error body.
What each answer stands for, and the submit rule, are in ``creative_client/_http.py``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, cast

import aiohttp

from ._budget import Gate, Turns
from ._http import RETRYABLE, Errors, HttpCall, may_resend_submit, may_retry_read
from ._retry import RetryPolicy, retrying
from .errors import CreativeError, ProviderResponseError, SubmissionUncertainError

logger = logging.getLogger("creative_client")

T = TypeVar("T")

DEFAULT_MAX_BODY = 8 * 1024 * 1024


class Transport:
    """Sends an adapter's ``HttpCall`` and returns the decoded JSON body of a 2xx answer.

    Reads are retried on connection errors, timeouts, 429 and 500/502/503/504.
    A submit is retried only as ``may_resend_submit`` allows: when it never left (no
    connection) or on 429; after it left, any failure raises
    ``SubmissionUncertainError``. ``errors`` turns answers and failures into errors.
    """

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        auth_headers: Mapping[str, str],
        secret: str,
        error_message: Callable[[object], str | None],
        session: aiohttp.ClientSession | None = None,
        retry: RetryPolicy,
        connect_timeout: float,
        request_timeout: float,
        pool_size: int,
        gate: Gate | None = None,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        #: The provider's name, for messages and logs.
        self.name = name
        self.base_url = base_url
        self.errors = Errors(
            name=name,
            base_url=base_url,
            error_message=error_message,
            secret=secret,
            connect_timeout=connect_timeout,
            request_timeout=request_timeout,
        )
        headers = {**auth_headers, "Accept": "application/json"}
        # Our own session carries the headers, so no request has to merge them in;
        # a caller's session gets them on each request instead.
        self._session_headers = headers
        self._headers = headers if session is not None else None
        # sock_connect bounds making a new connection; unlike connect it arms no timer
        # for a request that reuses a pooled one.
        self._timeout = aiohttp.ClientTimeout(total=request_timeout, sock_connect=connect_timeout)
        # A download may take long in all; what must not stall is each read.
        self.download_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=request_timeout
        )
        self._bare: aiohttp.ClientSession | None = None  # ours, without the key: downloads
        self._session = session
        self._owns_session = session is None
        self._pool_size = pool_size
        self._max_body = max_body
        self._closed = False
        #: Turns by priority when the rate is bounded (reads likely to find a job ended first).
        self._limiter = Turns(gate) if gate is not None else None
        #: The longest one call can take, every attempt timing out and every pause at its
        #: cap (infinite with a rate limit, whose queue has no bound).
        self.longest_call = retry.longest_call(request_timeout) if gate is None else float("inf")
        retried = self._retried
        self._retry_read = retrying(retry, RETRYABLE, _no_read_retry, self._again, name, retried)
        self._retry_submit = retrying(retry, RETRYABLE, _no_resend, self._again, name, retried)

    def __repr__(self) -> str:
        return f"Transport(provider={self.name!r}, base_url={self.base_url!r})"

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
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
        if self._limiter is not None:
            await self._limiter.close()
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()
        bare, self._bare = self._bare, None
        if bare is not None:
            await bare.close()

    @property
    def ranked(self) -> bool:
        """Whether requests wait for turns, so a ``priority`` matters."""
        return self._limiter is not None

    async def request(
        self, call: HttpCall, *, priority: float = Turns.NEUTRAL, _retrying: bool = False
    ) -> object:
        """Send ``call`` with the retry rule that fits it; the decoded JSON body of a 2xx.
        ``priority`` ranks it among calls waiting for a turn (the rate), highest first."""
        # backoff costs a few microseconds a call even when nothing fails, so the first
        # attempt runs here, outside it, and only a failure enters the retry loop (which
        # calls back in with _retrying set). One coroutine, not two, on the common path.
        try:
            if self._limiter is not None:
                # Before the request, so a call waiting for its turn holds no connection.
                await self._limiter.acquire(priority)
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
                raise self.errors.lost(call, exc) from exc
            return self._answer(call, status, data, complete, retry_after)
        except RETRYABLE as exc:
            if _retrying:
                raise
            return await self._retry(call, exc)

    async def _retry(self, call: HttpCall, exc: Exception) -> object:
        """After ``call``'s first attempt failed with ``exc``: its retries, if its rule
        allows any (a submit's is ``may_resend_submit``), else ``exc``."""
        if call.submit:
            if not may_resend_submit(exc):
                raise exc
            return await self._retry_submit(call, [exc])
        if not may_retry_read(exc):
            raise exc
        return await self._retry_read(call, [exc])

    def _retried(self, details: Any) -> None:
        """Told of each retry, before its pause (backoff's ``details``): nothing to do here;
        a traced transport (``creative_client/_traced.py``) records it."""

    async def retried_read(self, call: HttpCall, send: Callable[[HttpCall], Awaitable[T]]) -> T:
        """``send(call)``, retried as a read is (the hook downloads use, from
        ``creative_client/_download.py``): the first attempt outside backoff."""
        try:
            return await send(call)
        except RETRYABLE as exc:
            if not may_retry_read(exc):
                raise
            return cast(T, await self._retry_read(call, [exc], send))

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

    async def bare_session(self) -> aiohttp.ClientSession:
        """A session that sends no API key (outputs live on other hosts: CDNs, buckets),
        once the rate limiter gives a turn. A caller's session is used as it is: the key
        rides on each of our requests, not on it."""
        if self._limiter is not None:
            await self._limiter.acquire()
        if self._closed:
            raise RuntimeError("this client is closed; create a new one")
        if not self._owns_session:
            assert self._session is not None
            return self._session
        if self._bare is None:
            connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=0)
            self._bare = aiohttp.ClientSession(connector=connector)
        return self._bare

    def _answer(
        self, call: HttpCall, status: int, data: bytes, complete: bool, retry_after: str | None
    ) -> object:
        """The decoded body of a usable answer, or the error it stands for."""
        logger.debug("%s %s %s -> %d", self.name, call.method, call.path, status)
        if 200 <= status < 300 and complete:
            try:
                return json.loads(data)
            except ValueError:
                pass
            error: CreativeError = ProviderResponseError(
                f"{self.name} answered {status} with a body that is not JSON",
                provider=self.name,
                status=status,
                body=self.errors.text(data),
            )
        elif 200 <= status < 300:
            error = ProviderResponseError(
                f"{self.name} answered {status} with a body over {self._max_body} bytes",
                provider=self.name,
                status=status,
                body=self.errors.text(data),
            )
        else:
            error = self.errors.for_status(status, data, retry_after)
        # A 4xx is a refusal: no job (a 429 is resent, by may_resend_submit). Any other
        # answer the submit cannot use may stand for a job: never resend it, say so.
        if call.submit and not 400 <= status < 500:
            raise SubmissionUncertainError(
                f"the submit got an unusable answer ({error.message}); "
                "a job may exist and was not submitted again",
                provider=self.name,
                status=status,
                provider_message=error.provider_message,
                body=error.body,
            )
        raise error

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> tuple[bytes, bool]:
        """A body of unknown or excessive length, read until ``max_body``."""
        buf = bytearray()
        async for chunk in resp.content.iter_chunked(65536):
            buf += chunk
            if len(buf) > self._max_body:
                return bytes(buf[:1024]), False
        return bytes(buf), True


def _no_read_retry(exc: Exception) -> bool:
    """backoff's giveup predicate for reads."""
    return not may_retry_read(exc)


def _no_resend(exc: Exception) -> bool:
    """backoff's giveup predicate for submits."""
    return not may_resend_submit(exc)
