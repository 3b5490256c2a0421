"""The facade: one client, many jobs, bounded concurrency, polling under a monotonic deadline."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
import attrs
from aiohttp import web

from . import _config, _download
from ._download import DEFAULT_MAX_DOWNLOAD
from ._fanout import ProgressHook, Tracker, bounded_map, cancel_all
from ._models import GenerationRequest, Job, JobStatus, Outcome
from ._retry import RetryPolicy
from ._transport import Transport
from ._waiting import Waiting
from ._webhooks import Expected, WebhookReceiver, check_public_url
from .errors import (
    ConfigurationError,
    CreativeError,
    InvalidRequestError,
    JobFailedError,
    JobTimeoutError,
    ProviderResponseError,
    SubmissionUncertainError,
)
from .providers import Provider, get_provider

logger = logging.getLogger("creative_client")

Requests = Iterable[GenerationRequest | str] | AsyncIterable[GenerationRequest | str]


class CreativeClient:
    """An async client for one provider. Use it as ``async with``; it owns its session.

    >>> async with CreativeClient("deepixels", model="flux-schnell") as client:
    ...     job = await client.generate(prompt="a red fox")
    ...     print(job.outputs[0].url)

    ``api_key`` defaults to the provider's variable (``DEEPIXELS_API_KEY`` or
    ``NEOCU_API_KEY``). ``model`` is the default model, used by providers that
    take one and ignored by the others. ``concurrency`` bounds the ``generate``
    calls in flight at once, is the default bound of a batch, and sizes the
    connection pool (so it also bounds HTTP requests in flight).
    ``timeout`` is how long ``wait`` waits for a job by default (seconds); polls
    start ``poll_initial`` apart and grow, with jitter, to ``poll_max``.
    ``connect_timeout`` and ``request_timeout`` bound each HTTP request;
    ``retry`` says how hard each is retried. ``rate`` caps the client's HTTP
    requests per second, all calls together (waiting for a turn holds no
    connection). A ``session`` you pass is used and
    left open; otherwise the client makes one and closes it on exit.

    Webhooks (providers that take them: Deepixels): with ``webhook_listen="HOST:PORT"``
    the client serves a ``WebhookReceiver`` there while it is open (port 0 picks a
    free port; ``webhook_address`` says which) and waits for its jobs by callback:
    each job gets its own unguessable callback URL under ``webhook_public_url``
    (default: the listen address; give it behind a proxy or tunnel). A callback is
    confirmed by reading the job, so a forged one changes nothing; a job is also
    polled every ``webhook_poll`` seconds in case its callback is lost. To serve the
    receiver from an aiohttp server of your own, pass ``webhook_receiver=`` instead.
    A request with a ``webhook`` of its own, and a provider without webhooks
    (Neocu), are polled as usual.
    """

    def __init__(
        self,
        provider: str | Provider,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        model: str | None = None,
        concurrency: int = 32,
        timeout: float = 600.0,
        poll_initial: float = 0.5,
        poll_max: float = 5.0,
        connect_timeout: float = 10.0,
        request_timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        rate: float | None = None,
        session: aiohttp.ClientSession | None = None,
        webhook_listen: str | None = None,
        webhook_public_url: str | None = None,
        webhook_receiver: WebhookReceiver | None = None,
        webhook_poll: float = 30.0,
        not_found_grace: float = 10.0,
    ) -> None:
        if isinstance(provider, Provider):
            if base_url is not None:
                raise ConfigurationError("pass base_url to the Provider, not beside it")
            self._provider = provider
        else:
            self._provider = get_provider(provider)(base_url)
        name = self._provider.name
        if api_key is None:
            api_key = os.environ.get(self._provider.api_key_env, "").strip() or None
        if not isinstance(api_key, str) or not api_key:
            raise ConfigurationError(
                f"no API key for {name}: pass api_key= or set {self._provider.api_key_env}"
            )
        if not api_key.isprintable():
            # Said here, without the key, rather than by aiohttp at the first request.
            raise ConfigurationError(
                f"the API key for {name} holds a control character (a stray newline?)"
            )
        _positive("concurrency", concurrency, integer=True)
        _positive("timeout", timeout)
        _positive("poll_initial", poll_initial, zero_ok=True)
        _positive("poll_max", poll_max, zero_ok=True)
        _positive("connect_timeout", connect_timeout)
        _positive("request_timeout", request_timeout)
        if rate is not None:
            _positive("rate", rate)
        _positive("webhook_poll", webhook_poll)
        _positive("not_found_grace", not_found_grace, zero_ok=True)
        self._listen = _listen_address(webhook_listen, webhook_public_url, webhook_receiver)
        if webhook_public_url is not None:
            check_public_url(webhook_public_url)  # now, not when the receiver starts
        if model is not None and not self._provider.takes_model:
            logger.debug("%s takes no model; the default model %r is not used", name, model)
            model = None
        self._model = model
        self.concurrency = concurrency
        self.timeout = float(timeout)
        self.poll_initial = float(poll_initial)
        self.poll_max = max(float(poll_max), float(poll_initial))
        self._semaphore = asyncio.Semaphore(concurrency)
        self._downloads = asyncio.Semaphore(concurrency)
        self._live: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.webhook_poll = float(webhook_poll)
        # Waiting by callback: the receiver (given, or made when the server starts),
        # the server the client runs for it, and jobs from submit() a wait() may claim.
        self._webhooks = self._provider.takes_webhook and (
            self._listen is not None or webhook_receiver is not None
        )
        self._public_url = webhook_public_url
        self._receiver = webhook_receiver
        self._runner: web.AppRunner | None = None
        self._starting = asyncio.Lock()
        self._expecting: dict[str, Expected] = {}
        self._lost_callbacks = 0
        if webhook_receiver is not None and self._webhooks:
            webhook_receiver.attach(self._get)
        retry = retry or RetryPolicy()
        self._transport = Transport(
            self._provider,
            api_key,
            session=session,
            retry=retry,
            connect_timeout=connect_timeout,
            request_timeout=request_timeout,
            pool_size=concurrency,
            rate=rate,
        )
        self._waiting = Waiting(
            self._transport,
            self._provider,
            poll_initial=self.poll_initial,
            poll_max=self.poll_max,
            retry=retry,
            webhook_poll=self.webhook_poll,
            not_found_grace=float(not_found_grace),
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: Any) -> Self:
        """A client configured by ``CREATIVE_PROVIDER``, ``CREATIVE_BASE_URL``,
        ``CREATIVE_MODEL`` and the provider's key variable. ``options`` override."""
        return cls(**{**_config.from_env(environ), **options})

    @classmethod
    def from_config(
        cls,
        source: str | os.PathLike[str] | Mapping[str, Any],
        environ: Mapping[str, str] | None = None,
        **options: Any,
    ) -> Self:
        """A client configured by a TOML file or a mapping of the same shape::

            provider = "deepixels"      # the table below that is used
            concurrency = 64            # optional: any of the client's numeric options

            [deepixels]
            api_key_env = "DEEPIXELS_API_KEY"   # or api_key = "..."
            model = "flux-schnell"
            base_url = "https://api.deepixels.co/v1"

            [neocu]
            api_key_env = "NEOCU_API_KEY"

        ``options`` override; ``provider=`` there switches the table used.
        """
        settings = _config.from_config(source, environ, options.get("provider"))
        return cls(**{**settings, **options})

    @property
    def provider(self) -> str:
        """The provider's name."""
        return self._provider.name

    @property
    def base_url(self) -> str:
        return self._provider.base_url

    @property
    def model(self) -> str | None:
        """The default model, for providers that take one."""
        return self._model

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def webhook_receiver(self) -> WebhookReceiver | None:
        """The receiver this client's callbacks arrive at, if it waits by webhook
        (with ``webhook_listen``, once the client is open)."""
        return self._receiver if self._webhooks else None

    @property
    def webhook_address(self) -> tuple[str, int] | None:
        """``(host, port)`` the client's own receiver listens on, once it is open."""
        if self._runner is None:
            return None
        host, port = self._runner.addresses[0][:2]
        return host, port

    def __repr__(self) -> str:
        return (
            f"CreativeClient(provider={self.provider!r}, base_url={self.base_url!r}, "
            f"model={self._model!r}, concurrency={self.concurrency})"
        )

    async def __aenter__(self) -> Self:
        self._check_open()
        await self._transport.open()
        if self._webhooks:
            try:
                await self._serve_webhooks()
            except BaseException:
                await self.aclose()
                raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel work still in flight, stop the webhook server the client runs, and close
        the session the client made. Idempotent. Call it in the loop the client was used
        in (its connections live there)."""
        if self._loop is not None and self._loop is not asyncio.get_running_loop():
            if self._loop.is_closed():
                self._closed = True
                raise RuntimeError(
                    "this client's event loop is closed, with its connections still open "
                    "in it: close a client (async with) in the loop that used it"
                )
            raise RuntimeError(_OTHER_LOOP)
        self._closed = True
        await cancel_all(self._live)
        self._expecting.clear()
        if self._receiver is not None and self._webhooks:
            await self._receiver.detach()  # its reads use the session closed below
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        await self._transport.close()

    async def _serve_webhooks(self) -> WebhookReceiver:
        """The receiver, serving at ``webhook_listen`` from the first call on."""
        async with self._starting:
            if self._receiver is not None:
                return self._receiver
            self._check_open()
            assert self._listen is not None
            host, port = self._listen
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
                receiver = WebhookReceiver(self._public_url or _url_of(host, bound))
                receiver.attach(self._get)
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
                self._check_open()  # closed while this started: leave nothing listening
            except BaseException:
                await runner.cleanup()
                sock.close()
                raise
            self._runner, self._receiver = runner, receiver
            logger.debug("listening for webhooks on %s:%d", host, bound)
            return receiver

    async def _expect(self, request: GenerationRequest) -> Expected | None:
        """A callback URL for this job, unless it brings a webhook of its own. Called
        only when the client waits by webhook (``_webhooks``): polling pays nothing."""
        if request.webhook is not None:
            return None
        receiver = self._receiver
        if receiver is None:
            receiver = await self._serve_webhooks()
        return receiver.expect()

    async def submit(
        self,
        request: GenerationRequest | str | None = None,
        /,
        *,
        prompt: str | None = None,
        model: str | None = None,
        input: Mapping[str, Any] | None = None,
        files: Sequence[str] | None = None,
        webhook: str | None = None,
    ) -> Job:
        """Create a job and return it at once (usually ``QUEUED``).

        >>> job = await client.submit("a red fox", input={"width": 1024})

        Takes a prompt, a ``GenerationRequest``, or the request's fields as keywords.
        A submit whose answer was lost raises ``SubmissionUncertainError`` and is never
        resent. When the client waits by webhook, a later ``wait()`` on the job hears
        its callback.
        """
        self._check_open()
        request = _coerce(request, prompt, model, input, files, webhook)
        expected = await self._expect(request) if self._webhooks else None
        if expected is None:
            return await self._submit(request)
        job = await self._submitted(request, expected)
        self._expecting[job.id] = expected
        expected.unclaimed = lambda: self._unclaimed(job.id, expected)
        return job

    def _unclaimed(self, job_id: str, expected: Expected) -> None:
        """A callback no wait() was listening for: drop it; a wait() will read the job."""
        if self._expecting.get(job_id) is expected:
            del self._expecting[job_id]
            self._forget(expected)

    async def _submitted(self, request: GenerationRequest, expected: Expected) -> Job:
        """``_submit`` with ``expected``'s callback URL; forgets it if the submit fails."""
        try:
            job = await self._submit(request, expected)
        except BaseException:
            self._forget(expected)
            raise
        assert self._receiver is not None
        self._receiver.bind(expected, job.id)
        return job

    def _forget(self, expected: Expected) -> None:
        assert self._receiver is not None
        self._receiver.forget(expected)

    async def _submit(self, request: GenerationRequest, expected: Expected | None = None) -> Job:
        sent = request if expected is None else attrs.evolve(request, webhook=expected.url)
        model = self._provider.validate(sent, self._model)
        try:
            body = await self._transport.request(self._provider.submit_call(sent, model))
            job = self._provider.parse_submit(body)
            if not job.id.strip():
                raise ProviderResponseError(
                    "the job id is empty", provider=self.provider, body=repr(body)
                )
            return job
        except SubmissionUncertainError as exc:
            exc.request = _as_sent(request, model)  # the caller's request: no callback URL
            raise
        except ProviderResponseError as exc:
            raise SubmissionUncertainError(
                f"the submit was answered but the answer names no usable job: {exc.message}",
                provider=exc.provider,
                status=exc.status,
                body=exc.body,
                request=_as_sent(request, model),
            ) from exc

    async def get(self, job_id: str) -> Job:
        """The job's current state."""
        self._check_open()
        return await self._get(self._job_id(job_id))

    async def _get(self, job_id: str) -> Job:
        return await self._waiting.read(job_id)

    async def wait(self, job: str | Job, *, timeout: float | None = None) -> Job:
        """Poll until the job is SUCCEEDED or FAILED and return it (a failed job is returned,
        not raised). Given a job id, reads at once; given a ``Job`` still running, sleeps
        ``poll_initial`` first. Raises ``JobTimeoutError`` after ``timeout`` seconds
        (default: the client's ``timeout``), measured on the loop's monotonic clock.
        A job this client submitted while waiting by webhook is awaited by callback."""
        self._check_open()
        limit = self.timeout if timeout is None else timeout
        _positive("timeout", limit)
        if isinstance(job, Job):
            if job.status.is_terminal:
                return job  # it will not change: no read (which could only fail)
            job_id, last = job.id, job
        else:
            job_id, last = self._job_id(job), None
        expected = self._expecting.pop(job_id, None)
        if expected is None:
            return await self._waiting.poll(job_id, last, limit)
        try:
            done = await self._waiting.called_back(
                job_id, last, limit, expected, self._callback_lost
            )
        except BaseException:
            if not self._closed and expected.job is None:
                self._expecting[job_id] = expected  # a later wait() still hears it
            else:
                self._forget(expected)
            raise
        self._forget(expected)
        return done

    def _callback_lost(self, job_id: str) -> None:
        self._lost_callbacks += 1
        assert self._receiver is not None
        logger.log(
            logging.WARNING if self._lost_callbacks == 1 else logging.DEBUG,
            "job %s ended without a callback reaching %s; a fallback poll found it "
            "(is that URL reachable by %s?)",
            job_id,
            self._receiver.shown_url,
            self.provider,
        )

    async def generate(
        self,
        request: GenerationRequest | str | None = None,
        /,
        *,
        prompt: str | None = None,
        model: str | None = None,
        input: Mapping[str, Any] | None = None,
        files: Sequence[str] | None = None,
        webhook: str | None = None,
        timeout: float | None = None,
    ) -> Job:
        """Submit and wait; the finished job. A failed job raises ``JobFailedError``.

        >>> job = await client.generate("a red fox")
        >>> job = await client.generate(GenerationRequest(prompt="a red fox", model="m"))

        Takes what ``submit`` takes. ``timeout`` bounds the wait after the submit was
        accepted.
        """
        self._check_open()
        request = _coerce(request, prompt, model, input, files, webhook)
        if timeout is not None:
            _positive("timeout", timeout)
        async with self._semaphore:
            return await self._generate(request, timeout)

    async def _generate(
        self, request: GenerationRequest, timeout: float | None, tracker: Tracker | None = None
    ) -> Job:
        expected = await self._expect(request) if self._webhooks else None
        if expected is None:
            job = await self._submit(request)
        else:
            job = await self._submitted(request, expected)
        limit = self.timeout if timeout is None else timeout
        if tracker is not None:
            tracker.started()
        try:
            if expected is None:
                job = await self._waiting.poll(job.id, job, limit)  # no hop: a hot path
            else:
                job = await self._waiting.called_back(
                    job.id, job, limit, expected, self._callback_lost
                )
        finally:
            if expected is not None:
                self._forget(expected)
            if tracker is not None:
                tracker.stopped()
        if job.status is JobStatus.FAILED:
            raise JobFailedError(job)
        return job

    def as_completed(
        self,
        requests: Requests,
        *,
        concurrency: int | None = None,
        progress: ProgressHook | None = None,
    ) -> AsyncGenerator[Outcome, None]:
        """Run many requests; yield an ``Outcome`` for each as it finishes.

        >>> async for outcome in client.as_completed(["a red fox", "a blue whale"]):
        ...     print(outcome.request.prompt, outcome.ok)

        Each item is a ``GenerationRequest`` or a prompt (``Outcome.request`` is then
        ``GenerationRequest(prompt=...)``).

        Pulls lazily from any iterable or async iterable: at most ``concurrency``
        (default: the client's) requests are in flight or finished and not yet
        taken, and no more are read ahead. A batch with more jobs in flight than
        the client's ``concurrency`` is fine for long jobs, which mostly wait
        between polls; their HTTP requests still share the client's connection
        pool. A failure is an outcome, not an exception that ends the batch.
        Breaking out of the loop (best under ``contextlib.aclosing``) or
        cancelling the task that runs it cancels what is still in flight.

        ``progress`` is a ``Progress`` to keep up to date, or a callable that is
        handed the batch's ``Progress`` each time a count changes.
        """
        limit, tracker = self._batch(requests, concurrency, progress)
        # Checked again as it runs: it may have been made outside any loop.
        check = self._check_open
        if tracker is None:
            return bounded_map(requests, self._outcome, limit, self._live, start=check)

        async def tracked(index: int, request: GenerationRequest | str) -> Outcome:
            return await self._outcome(index, request, tracker)

        return bounded_map(requests, tracked, limit, self._live, start=check)

    async def generate_many(
        self,
        requests: Requests,
        *,
        concurrency: int | None = None,
        progress: ProgressHook | None = None,
    ) -> list[Outcome]:
        """Like ``as_completed``, but all outcomes at once, in input order."""
        limit, tracker = self._batch(requests, concurrency, progress)

        async def indexed(index: int, request: GenerationRequest | str) -> tuple[int, Outcome]:
            return index, await self._outcome(index, request, tracker)

        results: dict[int, Outcome] = {}
        batch = bounded_map(requests, indexed, limit, self._live)
        async with contextlib.aclosing(batch) as stream:
            async for index, outcome in stream:
                results[index] = outcome
        return [results[i] for i in range(len(results))]

    def _batch(
        self, requests: object, concurrency: int | None, progress: ProgressHook | None
    ) -> tuple[int, Tracker | None]:
        """Check a batch's options; its bound, and its tracker if it reports progress."""
        self._check_open()
        if isinstance(requests, str | GenerationRequest):
            # A str is an Iterable[str] to mypy: it would run a job per character.
            raise TypeError(
                "a batch takes an iterable of prompts or requests, not one "
                f"{type(requests).__name__}: wrap it in a list"
            )
        if concurrency is None:
            concurrency = self.concurrency
        _positive("concurrency", concurrency, integer=True)
        return concurrency, None if progress is None else Tracker(progress)

    async def _outcome(
        self, _index: int, item: GenerationRequest | str, tracker: Tracker | None = None
    ) -> Outcome:
        request = as_request(item)
        try:
            job = await self._generate(request, None, tracker)
            outcome = Outcome(request=request, job=job)
        except (JobFailedError, JobTimeoutError) as exc:
            outcome = Outcome(request=request, job=exc.job, error=exc)
        except CreativeError as exc:
            outcome = Outcome(request=request, error=exc)
        if tracker is not None:
            tracker.finished(outcome)
        return outcome

    async def download(
        self,
        job: Job,
        dest_dir: str | os.PathLike[str],
        *,
        name: str | None = None,
        max_size: int = DEFAULT_MAX_DOWNLOAD,
    ) -> list[Path]:
        """Save the job's outputs in ``dest_dir`` as ``{name}-{n}.{ext}``; their paths.

        ``name`` defaults to the job id (made safe for a file name; never taken from
        the URL), the extension follows the answer's Content-Type. Each body is streamed
        to a temporary file and renamed into place, so a file that exists is whole.
        Only http(s) URLs; reads are retried like the client's others, without the API
        key; ``max_size`` caps each file (``ProviderResponseError`` beyond it).
        """
        self._check_open()
        if not isinstance(job, Job):
            raise InvalidRequestError("download() takes a Job", provider=self.provider)
        if job.status is not JobStatus.SUCCEEDED:
            raise InvalidRequestError(
                f"job {job.id} is {job.status}, not succeeded: nothing to download"
                + ("" if job.status.is_terminal else " yet (wait() for it first)"),
                provider=self.provider,
            )
        _positive("max_size", max_size, integer=True)
        return await _download.download(
            self._transport,
            job,
            dest_dir,
            name=name,
            max_size=max_size,
            limit=self._downloads,
        )

    def _job_id(self, job_id: object) -> str:
        if not isinstance(job_id, str) or not job_id:
            raise InvalidRequestError("job_id must be a non-empty string", provider=self.provider)
        return job_id

    def validate(self, request: GenerationRequest | str) -> None:
        """Check a request as ``submit`` would, without sending anything: raises
        ``InvalidRequestError`` naming the field this client's provider cannot take."""
        self._provider.validate(as_request(request), self._model)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this CreativeClient is closed; create a new one")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # as_completed() called outside a loop: checked when it runs
        if self._loop is not loop:
            if self._loop is not None:
                raise RuntimeError(_OTHER_LOOP)
            self._loop = loop  # its session, semaphores and server belong to this loop


_OTHER_LOOP = (
    "this client belongs to another event loop (the one it was first used in): its "
    "connections live there. Create a client inside each loop (asyncio.run call), "
    "or use SyncCreativeClient from code that is not async"
)


def _listen_address(
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


def _url_of(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _coerce(
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


def _as_sent(request: GenerationRequest, model: str | None) -> GenerationRequest:
    """The request with the model it was sent with (the client's default, if it had none)."""
    return request if request.model == model else attrs.evolve(request, model=model)


def _positive(name: str, value: object, *, integer: bool = False, zero_ok: bool = False) -> None:
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    ok = isinstance(value, kinds) and not isinstance(value, bool)
    if ok and not (value >= 0 if zero_ok else value > 0):  # type: ignore[operator]
        ok = False
    if not ok:
        bound = ">= 0" if zero_ok else "> 0"
        raise ConfigurationError(f"{name} must be a {'whole ' if integer else ''}number {bound}")
