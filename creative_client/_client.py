"""The facade: one client, many jobs. It composes the parts that do the work: options
(``_options.py``), the transport (``_transport.py``), waiting (``_waiting.py``),
webhooks (``_webhook_server.py``), fan-out (``_fanout.py``, ``_progress.py``) and
downloads (``_download.py``), all in ``creative_client/``."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
import attrs

from . import _config, _download
from ._download import DEFAULT_MAX_DOWNLOAD
from ._fanout import bounded_map, cancel_all
from ._models import GenerationRequest, Job, JobStatus, Outcome, as_request, as_sent, coerce
from ._options import ClientOptions, positive
from ._progress import Outcomes, ProgressHook, Tracker
from ._retry import RetryPolicy
from ._transport import Transport
from ._waiting import Waiting
from ._webhook_server import Callbacks
from ._webhooks import Expected, WebhookReceiver
from .errors import (
    InvalidRequestError,
    JobFailedError,
    ProviderResponseError,
    SubmissionUncertainError,
)
from .providers import Provider

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
        # Every parameter, named as ClientOptions.check names it: checked there, once.
        options = ClientOptions.check(**{k: v for k, v in locals().items() if k != "self"})
        self._provider = provider = options.provider
        self._model = options.model
        self.concurrency = options.concurrency
        self.timeout = options.timeout
        self.poll_initial = options.poll_initial
        self.poll_max = options.poll_max
        self.webhook_poll = options.webhook_poll
        self._semaphore = asyncio.Semaphore(options.concurrency)
        self._downloads = asyncio.Semaphore(options.concurrency)
        self._live: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transport = Transport(
            name=provider.name,
            base_url=provider.base_url,
            auth_headers=provider.auth_headers(options.api_key),
            secret=options.api_key,
            error_message=provider.error_message,
            session=options.session,
            retry=options.retry,
            connect_timeout=options.connect_timeout,
            request_timeout=options.request_timeout,
            pool_size=options.concurrency,
            rate=options.rate,
        )
        self._waiting = Waiting(self._transport, options)
        # None unless jobs are awaited by callback: polling pays nothing for webhooks.
        self._callbacks = (
            Callbacks(options, reader=self._get, check_open=self._check_open)
            if options.webhooks
            else None
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
        """The provider's versioned base URL."""
        return self._provider.base_url

    @property
    def model(self) -> str | None:
        """The default model, for providers that take one."""
        return self._model

    @property
    def closed(self) -> bool:
        """True once ``aclose()`` was called."""
        return self._closed

    @property
    def webhook_receiver(self) -> WebhookReceiver | None:
        """The receiver this client's callbacks arrive at, if it waits by webhook
        (with ``webhook_listen``, once the client is open)."""
        return self._callbacks.receiver if self._callbacks is not None else None

    @property
    def webhook_address(self) -> tuple[str, int] | None:
        """``(host, port)`` the client's own receiver listens on, once it is open."""
        runner = self._callbacks.runner if self._callbacks is not None else None
        if runner is None:
            return None
        host, port = runner.addresses[0][:2]
        return host, port

    @property
    def _expecting(self) -> dict[str, Expected]:
        """Jobs from ``submit()`` whose callback a later ``wait()`` may claim."""
        return self._callbacks.expecting if self._callbacks is not None else {}

    def __repr__(self) -> str:
        return (
            f"CreativeClient(provider={self.provider!r}, base_url={self.base_url!r}, "
            f"model={self._model!r}, concurrency={self.concurrency})"
        )

    async def __aenter__(self) -> Self:
        self._check_open()
        await self._transport.open()
        if self._callbacks is not None:
            try:
                await self._callbacks.start()
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
        if self._callbacks is not None:
            self._callbacks.closed = True  # a wait cancelled below lets go of its callback
        await cancel_all(self._live)
        if self._callbacks is not None:
            await self._callbacks.close()
        await self._transport.close()

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
        request = coerce(request, prompt, model, input, files, webhook)
        callbacks = self._callbacks
        expected = await callbacks.expect(request) if callbacks is not None else None
        if callbacks is None or expected is None:
            return await self._submit(request)
        job = await callbacks.submitted(self._submit, request, expected)
        callbacks.keep(job.id, expected)
        return job

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
            exc.request = as_sent(request, model)  # the caller's request: no callback URL
            raise
        except ProviderResponseError as exc:
            raise SubmissionUncertainError(
                f"the submit was answered but the answer names no usable job: {exc.message}",
                provider=exc.provider,
                status=exc.status,
                body=exc.body,
                request=as_sent(request, model),
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
        positive("timeout", limit)
        if isinstance(job, Job):
            if job.status.is_terminal:
                return job  # it will not change: no read (which could only fail)
            job_id, last = job.id, job
        else:
            job_id, last = self._job_id(job), None
        callbacks = self._callbacks
        expected = callbacks.expecting.pop(job_id, None) if callbacks is not None else None
        if callbacks is None or expected is None:
            return await self._waiting.poll(job_id, last, limit)
        return await callbacks.wait(self._waiting, job_id, last, limit, expected, claimed=True)

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
        request = coerce(request, prompt, model, input, files, webhook)
        if timeout is not None:
            positive("timeout", timeout)
        async with self._semaphore:
            return await self._generate(request, timeout)

    async def _generate(
        self, request: GenerationRequest, timeout: float | None, tracker: Tracker | None = None
    ) -> Job:
        callbacks = self._callbacks
        expected = await callbacks.expect(request) if callbacks is not None else None
        if expected is None:
            job = await self._submit(request)
        else:
            assert callbacks is not None
            job = await callbacks.submitted(self._submit, request, expected)
        limit = self.timeout if timeout is None else timeout
        if tracker is not None:
            tracker.started()
        try:
            if expected is None:
                job = await self._waiting.poll(job.id, job, limit)  # no hop: a hot path
            else:
                assert callbacks is not None
                job = await callbacks.wait(self._waiting, job.id, job, limit, expected)
        finally:
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
        limit, outcomes = self._batch(requests, concurrency, progress)
        # Checked again as it runs: it may have been made outside any loop.
        return bounded_map(requests, outcomes.run, limit, self._live, start=self._check_open)

    async def generate_many(
        self,
        requests: Requests,
        *,
        concurrency: int | None = None,
        progress: ProgressHook | None = None,
    ) -> list[Outcome]:
        """Like ``as_completed``, but all outcomes at once, in input order."""
        limit, outcomes = self._batch(requests, concurrency, progress)

        async def indexed(index: int, request: GenerationRequest | str) -> tuple[int, Outcome]:
            return index, await outcomes.run(index, request)

        results: dict[int, Outcome] = {}
        batch = bounded_map(requests, indexed, limit, self._live)
        async with contextlib.aclosing(batch) as stream:
            async for index, outcome in stream:
                results[index] = outcome
        return [results[i] for i in range(len(results))]

    def _batch(
        self, requests: object, concurrency: int | None, progress: ProgressHook | None
    ) -> tuple[int, Outcomes]:
        """Check a batch's options; its bound, and what runs its requests into outcomes."""
        self._check_open()
        if isinstance(requests, str | GenerationRequest):
            # A str is an Iterable[str] to mypy: it would run a job per character.
            raise TypeError(
                "a batch takes an iterable of prompts or requests, not one "
                f"{type(requests).__name__}: wrap it in a list"
            )
        if concurrency is None:
            concurrency = self.concurrency
        positive("concurrency", concurrency, integer=True)
        return concurrency, Outcomes(self._generate, progress)

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
