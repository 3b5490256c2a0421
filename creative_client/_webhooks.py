"""Receiving job callbacks: one unguessable path per job, answered at once, confirmed by a read.

No provider documents a signature on its callbacks, so a callback's body is only a
hint that the job may have ended: the receiver answers it, then reads the job with
the client and resolves the job's waiter only if the read says it has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Protocol

from aiohttp import web

from ._models import Job
from .errors import CreativeError

#: The largest callback body taken (a job document is a few KiB); larger gets 413.
DEFAULT_MAX_BODY = 256 * 1024
_ROUTE = "/creative-client/callback/{token}"


class _Reader(Protocol):
    async def get(self, job_id: str) -> Job: ...


class Expected:
    """One job's callback, expected at ``url``. ``job`` resolves with the job once a
    callback arrived and a read confirmed that the job has ended."""

    __slots__ = ("called", "job", "job_id", "reading", "token", "url")

    def __init__(self, token: str, url: str) -> None:
        self.token = token
        self.url = url
        self.job_id: str | None = None
        self.called = False
        self.reading = False
        self.job: asyncio.Future[Job] = asyncio.get_running_loop().create_future()


class WebhookReceiver:
    """Receives provider callbacks for the jobs of one client.

    ``expect()`` makes a new unguessable callback URL under ``public_url`` (send it as
    the request's ``webhook``); ``bind()`` tells it the job id the submit answered.
    A POST to that URL is answered ``202`` at once; the receiver then reads the job
    with ``client.get`` and, if it has ended, resolves ``Expected.job``. Unknown
    tokens get 404, bodies over ``max_body`` 413, other methods 405.

    ``app`` is the aiohttp application: ``CreativeClient(webhook_listen=...)`` runs
    it, or mount it in a server of your own (``parent.add_subapp(prefix, app)``, with
    ``public_url`` ending in that prefix).
    """

    def __init__(
        self, client: _Reader, public_url: str, *, max_body: int = DEFAULT_MAX_BODY
    ) -> None:
        self._client = client
        self.public_url = public_url.rstrip("/")
        self.max_body = max_body
        self._expected: dict[str, Expected] = {}
        self._reads: set[asyncio.Task[None]] = set()
        self.app = web.Application(client_max_size=max_body)
        self.app.router.add_route("*", _ROUTE, self._callback)
        #: Callbacks received, and reads made to confirm them (for tests and figures).
        self.callbacks = 0
        self.confirmations = 0

    def expect(self) -> Expected:
        """A new callback URL, not yet tied to a job."""
        token = secrets.token_urlsafe(24)
        expected = Expected(token, self.public_url + _ROUTE.format(token=token))
        self._expected[token] = expected
        return expected

    def bind(self, expected: Expected, job_id: str) -> None:
        """The submit answered ``job_id``; confirm at once if its callback came first."""
        expected.job_id = job_id
        if expected.called:
            self._confirm_soon(expected)

    def forget(self, expected: Expected) -> None:
        """The waiter is done with it: later callbacks get 404."""
        self._expected.pop(expected.token, None)
        if not expected.job.done():
            expected.job.cancel()

    async def close(self) -> None:
        """Stop the confirming reads in flight."""
        reads = list(self._reads)
        for task in reads:
            task.cancel()
        await asyncio.gather(*reads, return_exceptions=True)

    async def _callback(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            return web.json_response({"error": "method not allowed"}, status=405)
        expected = self._expected.get(request.match_info["token"])
        if expected is None:
            return web.json_response({"error": "unknown callback"}, status=404)
        length = request.content_length
        if length is not None and length > self.max_body:
            return web.json_response({"error": "body too large"}, status=413)
        try:
            await request.read()  # the body is only a hint; drain it within the cap
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": "body too large"}, status=413)
        self.callbacks += 1
        if not expected.called:
            expected.called = True
            if expected.job_id is not None:
                self._confirm_soon(expected)
        elif expected.job_id is not None and not expected.job.done() and not expected.reading:
            self._confirm_soon(expected)  # an earlier callback came while the job still ran
        return web.json_response({"ok": True}, status=202)

    def _confirm_soon(self, expected: Expected) -> None:
        task = asyncio.create_task(self._confirm(expected))
        self._reads.add(task)
        task.add_done_callback(self._reads.discard)

    async def _confirm(self, expected: Expected) -> None:
        assert expected.job_id is not None
        self.confirmations += 1
        expected.reading = True
        try:
            with contextlib.suppress(CreativeError):  # the waiter's slow polls carry on
                job = await self._client.get(expected.job_id)
                if job.status.is_terminal and not expected.job.done():
                    expected.job.set_result(job)
        finally:
            expected.reading = False
