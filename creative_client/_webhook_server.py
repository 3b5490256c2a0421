"""A client's side of webhooks: where its receiver listens, the server it runs for it,
and the callbacks its jobs expect. The receiver itself is ``creative_client/_webhooks.py``;
the waits are ``creative_client/_waiting.py``."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from aiohttp import web

from ._models import GenerationRequest, Job
from ._webhooks import Expected, Reader, WebhookReceiver
from .errors import ConfigurationError

if TYPE_CHECKING:
    from ._options import ClientOptions
    from ._waiting import Waiting

logger = logging.getLogger("creative_client")


def listen_address(
    listen: str | None, public_url: str | None, receiver: WebhookReceiver | None
) -> tuple[str, int] | None:
    """``webhook_listen`` as (host, port), once the webhook options are checked together."""
    if receiver is not None and not isinstance(receiver, WebhookReceiver):
        raise ConfigurationError("webhook_receiver must be a WebhookReceiver")
    if receiver is not None and (listen is not None or public_url is not None):
        raise ConfigurationError(
            "webhook_receiver is served by you: leave webhook_listen and webhook_public_url out"
        )
    if listen is None:
        if public_url is not None:
            raise ConfigurationError("webhook_public_url needs webhook_listen")
        return None
    host, sep, port = listen.rpartition(":") if isinstance(listen, str) else ("", "", "")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigurationError(
            f"webhook_listen must be HOST:PORT (port 0 picks a free one), got {listen!r}"
        )
    if host in ("0.0.0.0", "::") and public_url is None:
        raise ConfigurationError(
            f"listening on every interface ({listen}): give webhook_public_url, "
            "the URL the provider reaches this machine at"
        )
    return host, int(port)


def url_of(host: str, port: int) -> str:
    """The http URL of ``host:port`` (an IPv6 host in brackets)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve(
    listen: tuple[str, int],
    public_url: str | None,
    reader: Reader,
    check_open: Callable[[], object],
) -> tuple[web.AppRunner, WebhookReceiver]:
    """A receiver for ``reader``'s jobs, served at ``listen``, and the runner serving it.

    ``check_open`` is called once it listens: a client closed meanwhile raises there,
    and nothing is left listening.
    """
    host, port = listen
    loop = asyncio.get_running_loop()
    try:
        family, kind, proto, _, address = (
            await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigurationError(f"cannot listen for webhooks on {host}: {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        bound = sock.getsockname()[1]
        receiver = WebhookReceiver(public_url or url_of(host, bound))
        receiver.attach(reader)
        runner = web.AppRunner(
            receiver.app, handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        await runner.setup()
    except BaseException as exc:
        sock.close()
        if isinstance(exc, OSError):
            raise ConfigurationError(
                f"cannot listen for webhooks on {host}:{port}: {exc.strerror}"
            ) from None
        raise
    try:
        await web.SockSite(runner, sock).start()
        check_open()
    except BaseException:
        await runner.cleanup()
        sock.close()
        raise
    logger.debug("listening for webhooks on %s:%d", host, bound)
    return runner, receiver


class FanIn(Protocol):
    """A share's part in callbacks (``creative_client/_pg/_fanin.py``)."""

    def attach(self, receiver: WebhookReceiver) -> None: ...

    async def close(self) -> None: ...


class Callbacks:
    """How one client waits by callback: its receiver (given, or served at ``listen``
    from the first need on) and the callbacks its submitted jobs expect.

    ``expecting`` holds jobs from ``submit()`` whose callback a later ``wait()`` may
    claim. ``closed`` is set by the client as it starts closing.
    """

    def __init__(
        self, options: ClientOptions, *, reader: Reader, check_open: Callable[[], object]
    ) -> None:
        self._provider = options.provider.name
        self._listen = options.listen
        self._public_url = options.webhook_public_url
        self._reader = reader
        self._check_open = check_open
        self._starting = asyncio.Lock()
        self._lost = 0
        self.receiver = receiver = options.webhook_receiver
        self.runner: web.AppRunner | None = None
        self.expecting: dict[str, Expected] = {}
        self.closed = False
        self.fan_in: FanIn | None = None
        if receiver is not None:
            receiver.attach(reader)

    @property
    def address(self) -> tuple[str, int] | None:
        """``(host, port)`` the server this client runs listens on, once it runs."""
        if self.runner is None:
            return None
        host, port = self.runner.addresses[0][:2]
        return host, port

    async def start(self) -> WebhookReceiver:
        """The receiver, serving at ``listen`` from the first call on."""
        async with self._starting:
            if self.receiver is not None:
                return self.receiver
            self._check_open()
            assert self._listen is not None
            self.runner, self.receiver = await serve(
                self._listen, self._public_url, self._reader, self._check_open
            )
            if self.fan_in is not None:
                self.fan_in.attach(self.receiver)
            return self.receiver

    def share(self, fan_in: FanIn) -> None:
        """Take part in a share's callbacks: any replica may take this client's."""
        self.fan_in = fan_in
        if self.receiver is not None:
            fan_in.attach(self.receiver)

    async def close(self) -> None:
        """Forget every callback, stop the confirming reads, stop the server if ours."""
        self.closed = True
        self.expecting.clear()
        if self.fan_in is not None:
            await self.fan_in.close()
        if self.receiver is not None:
            await self.receiver.detach()  # its reads use the session closed after this
        runner, self.runner = self.runner, None
        if runner is not None:
            await runner.cleanup()

    async def expect(self, request: GenerationRequest) -> Expected | None:
        """A callback URL for this job, unless it brings a webhook of its own."""
        if request.webhook is not None:
            return None
        receiver = self.receiver
        if receiver is None:
            receiver = await self.start()
        return receiver.expect()

    async def submitted(
        self,
        submit: Callable[[GenerationRequest, Expected], Awaitable[Job]],
        request: GenerationRequest,
        expected: Expected,
    ) -> Job:
        """``submit`` with ``expected``'s callback URL; forgets it if the submit fails."""
        try:
            job = await submit(request, expected)
        except BaseException:
            self.forget(expected)
            raise
        assert self.receiver is not None
        self.receiver.bind(expected, job.id)
        return job

    def keep(self, job_id: str, expected: Expected) -> None:
        """Hold the callback of a job from ``submit()`` for a later ``wait()``."""
        self.expecting[job_id] = expected
        expected.unclaimed = lambda: self._unclaimed(job_id, expected)

    def _unclaimed(self, job_id: str, expected: Expected) -> None:
        """A callback no wait() was listening for: drop it; a wait() will read the job."""
        if self.expecting.get(job_id) is expected:
            del self.expecting[job_id]
            self.forget(expected)

    def forget(self, expected: Expected) -> None:
        """The job is reported or given up: its callback URL answers 404 from now on."""
        assert self.receiver is not None
        self.receiver.forget(expected)

    async def wait(
        self,
        waiting: Waiting,
        job_id: str,
        last: Job | None,
        limit: float,
        expected: Expected,
        *,
        claimed: bool = False,
    ) -> Job:
        """Wait for the job by its callback, then forget the callback; one ``claimed``
        from ``expecting`` that has not come stays there for a later ``wait()``."""
        try:
            done = await waiting.called_back(job_id, last, limit, expected, self._callback_lost)
        except BaseException:
            if claimed and not self.closed and expected.job is None:
                self.expecting[job_id] = expected  # a later wait() still hears it
            else:
                self.forget(expected)
            raise
        self.forget(expected)
        return done

    def _callback_lost(self, job_id: str) -> None:
        self._lost += 1
        assert self.receiver is not None
        logger.log(
            logging.WARNING if self._lost == 1 else logging.DEBUG,
            "job %s ended without a callback reaching %s; a fallback poll found it "
            "(is that URL reachable by %s?)",
            job_id,
            self.receiver.shown_url,
            self._provider,
        )
