"""Receiving job callbacks: one unguessable path per job, answered at once, confirmed by a read.

No provider documents a signature on its callbacks, so a callback's body is only a
hint that the job may have ended: the receiver answers it, then reads the job with
the client and resolves the job's waiter only if the read says it has ended.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from urllib.parse import SplitResult, urlsplit

from aiohttp import web

from ._models import Job
from .errors import ConfigurationError, CreativeError

#: The largest callback body taken (a job document is a few KiB); larger gets 413.
DEFAULT_MAX_BODY = 256 * 1024
#: Where callbacks arrive, under the receiver's public URL.
CALLBACK_PATH = "/creative-client/callback/"

Reader = Callable[[str], Awaitable[Job]]
#: Hands on a callback this receiver did not mint but its share signed: (token, body).
Relay = Callable[[str, bytes], object]


class Signer:
    """Callback tokens any replica of a share can tell from forgeries: a random part, an
    expiry (``ttl`` seconds on) and their HMAC under the share's secret
    (``creative_client/_pg/_fanin.py``)."""

    def __init__(self, secret: bytes, ttl: float = 86400.0) -> None:
        self._secret = secret
        self.ttl = ttl

    def _mac(self, signed: str) -> str:
        digest = hmac.new(self._secret, signed.encode(), hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def mint(self) -> str:
        signed = f"{secrets.token_urlsafe(18)}.{int(time.time() + self.ttl):x}"
        return f"{signed}.{self._mac(signed)}"

    def signed(self, token: str) -> bool:
        """Whether the fleet minted ``token``, and it has not expired."""
        signed, dot, mac = token.rpartition(".")
        if not dot or not token.isascii() or not hmac.compare_digest(mac, self._mac(signed)):
            return False
        expiry = signed.rpartition(".")[2]
        try:
            return int(expiry, 16) >= time.time()
        except ValueError:
            return False


def check_public_url(url: str) -> SplitResult:
    """``url``'s parts, if it can be a receiver's public URL; else ``ConfigurationError``."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ConfigurationError(
            f"the webhook public URL must be an http(s) URL without a query, got {url!r}"
        )
    return parts


class Expected:
    """One job's callback, expected at ``url``.

    ``job`` is set once a callback arrived and a read confirmed that the job has
    ended; then ``wake`` (the waiter's future, while one waits) is resolved, or
    ``unclaimed`` called when nobody waits. ``gone`` says the receiver forgot it.
    """

    __slots__ = (
        "again", "called", "gone", "job", "job_id", "read", "token", "unclaimed", "url", "wake",
    )  # fmt: skip

    def __init__(self, token: str, url: str) -> None:
        self.token = token
        self.url = url
        self.job_id: str | None = None
        self.called = False
        self.read: asyncio.Task[None] | None = None
        self.again = False  # a callback came during the read: read once more if need be
        self.job: Job | None = None
        self.gone = False
        self.wake: asyncio.Future[None] | None = None
        self.unclaimed: Callable[[], object] | None = None

    def _resolve(self, job: Job | None) -> None:
        """The job ended (``job``), or the receiver let go of it (``None``)."""
        if job is None:
            self.gone = True
        else:
            self.job = job
        wake = self.wake
        if wake is not None:
            if not wake.done():
                wake.set_result(None)
        elif job is not None and self.unclaimed is not None:
            self.unclaimed()


class WebhookReceiver:
    """Receives the callbacks of one client's jobs at ``public_url``.

    ``app`` is an aiohttp application. ``CreativeClient(webhook_listen="HOST:PORT")``
    makes a receiver and serves it while the client is open; to serve it from an
    aiohttp server of your own, make one, mount its app and hand it to the client::

        receiver = WebhookReceiver("https://hooks.example.com/creative")
        my_app.add_subapp("/creative", receiver.app)
        async with CreativeClient("deepixels", webhook_receiver=receiver) as client:
            ...

    ``public_url`` is where the provider reaches ``app`` (here, the sub-app's prefix).
    Each job gets its own unguessable path below it. A POST there is answered ``202``
    at once; the receiver then reads the job through the client and, if it has ended,
    hands it to the job's waiter. An unknown path gets 404 (a job already reported or
    never sent), a body over ``max_body`` bytes 413, another method 405.

    ``callbacks`` and ``confirmations`` count the callbacks taken and the reads they
    caused.
    """

    def __init__(self, public_url: str, *, max_body: int = DEFAULT_MAX_BODY) -> None:
        parts = check_public_url(public_url)
        if not isinstance(max_body, int) or isinstance(max_body, bool) or max_body <= 0:
            raise ConfigurationError("max_body must be a whole number > 0")
        self.public_url = public_url.rstrip("/")
        # For messages: a password in the URL (a proxy's basic auth) is not shown.
        self.shown_url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        self.max_body = max_body
        self._prefix = self.public_url + CALLBACK_PATH
        self._expected: dict[str, Expected] = {}
        self._reader: Reader | None = None
        self.app = web.Application(client_max_size=max_body)
        self.app.router.add_route("*", CALLBACK_PATH + "{token}", self._callback)
        self.callbacks = 0
        self.confirmations = 0
        #: With a share: tokens signed for the fleet, and where a replica's go.
        self.signer: Signer | None = None
        self.relay: Relay | None = None
        self.relayed = 0

    def __repr__(self) -> str:
        return f"WebhookReceiver({self.shown_url!r}, expecting={len(self._expected)})"

    # The client's side. One client at a time reads the jobs its callbacks announce.

    def attach(self, reader: Reader) -> None:
        """Confirm callbacks with ``reader`` (the client's job read) from now on."""
        if self._reader is not None and self._reader != reader:
            raise ConfigurationError("this WebhookReceiver already serves another client")
        self._reader = reader

    async def detach(self) -> None:
        """The client closes: forget every job, and stop the reads in flight."""
        self._reader = None
        expected, self._expected = list(self._expected.values()), {}
        reads = [e.read for e in expected if e.read is not None]
        for each in expected:
            self.forget(each)
        await asyncio.gather(*reads, return_exceptions=True)

    def expect(self) -> Expected:
        """A new callback URL, not yet tied to a job."""
        token = self.signer.mint() if self.signer is not None else secrets.token_urlsafe(24)
        expected = Expected(token, self._prefix + token)
        self._expected[token] = expected
        return expected

    def bind(self, expected: Expected, job_id: str) -> None:
        """The submit answered ``job_id``; confirm at once if its callback came first."""
        expected.job_id = job_id
        if expected.called:
            self._confirm_soon(expected)

    def forget(self, expected: Expected) -> None:
        """The job is reported (or given up): later callbacks get 404."""
        self._expected.pop(expected.token, None)
        if expected.read is not None:
            expected.read.cancel()
        if not expected.gone:
            expected._resolve(None)

    # The provider's side.

    async def _callback(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            return web.json_response({"error": "method not allowed"}, status=405)
        token = request.match_info["token"]
        expected = self._expected.get(token)
        if expected is None and not self._relayed(token):
            return web.json_response({"error": "unknown callback"}, status=404)
        length = request.content_length
        if length is not None and length > self.max_body:
            return web.json_response({"error": "body too large"}, status=413)
        try:
            body = await request.read()  # the body is only a hint; drain it within the cap
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": "body too large"}, status=413)
        if expected is None:
            assert self.relay is not None
            self.relayed += 1
            self.relay(token, body)  # another replica's job: confirmed here, handed there
            return web.json_response({"ok": True}, status=202)
        self.callbacks += 1
        expected.called = True
        if expected.job_id is not None:
            self._confirm_soon(expected)
        return web.json_response({"ok": True}, status=202)

    def _relayed(self, token: str) -> bool:
        """Whether a token this receiver does not know is the fleet's, to hand on."""
        return self.relay is not None and self.signer is not None and self.signer.signed(token)

    def delivered(self, token: str, job: Job | None) -> None:
        """Another replica took this job's callback: ``job`` as its read found it ended,
        or ``None`` when it could not confirm (then this receiver reads the job)."""
        expected = self._expected.get(token)
        if expected is None or expected.job is not None or expected.gone:
            return
        if job is not None and job.id == expected.job_id and job.status.is_terminal:
            if expected.read is not None:
                expected.read.cancel()
            expected._resolve(job)
            return
        expected.called = True
        if expected.job_id is not None:
            self._confirm_soon(expected)

    def _confirm_soon(self, expected: Expected) -> None:
        """Read the job, unless it is known or a read is on its way."""
        if expected.job is not None or expected.gone or self._reader is None:
            return
        if expected.read is not None:
            expected.again = True  # a duplicate, or the real callback after a forged one
            return
        expected.read = asyncio.create_task(self._confirm(expected, self._reader))

    async def _confirm(self, expected: Expected, reader: Reader) -> None:
        assert expected.job_id is not None
        try:
            while True:
                expected.again = False
                self.confirmations += 1
                with contextlib.suppress(CreativeError):  # the waiter's slow polls carry on
                    job = await reader(expected.job_id)
                    if job.status.is_terminal:
                        expected._resolve(job)
                        return
                if not expected.again:
                    return
        finally:
            expected.read = None
