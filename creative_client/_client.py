"""The facade: one client, many jobs. It checks the caller's arguments and hands them to
the parts that do the work, all in ``creative_client/``: options (``_options.py``), a
job's way through submit and wait (``_runner.py``: the transport ``_transport.py``,
waiting ``_waiting.py``, webhooks ``_webhook_server.py``), batches (``_batches.py``,
``_fanout.py``, ``_progress.py``), downloads (``_download.py``) and the event loop a
client belongs to (``_loops.py``)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp

from . import _download
from ._batches import BatchMethods
from ._budget import make_budget
from ._config import Configurable
from ._download import DEFAULT_MAX_DOWNLOAD
from ._fanout import cancel_all
from ._loops import Affinity
from ._models import GenerationRequest, Job, as_request, coerce
from ._options import ClientOptions, positive
from ._retry import RetryPolicy
from ._runner import Runner
from ._telemetry import Telemetry
from ._webhooks import Expected, WebhookReceiver
from .errors import ConfigurationError, InvalidRequestError, NotSupportedError
from .providers import Provider


class CreativeClient(BatchMethods, Configurable):
    """An async client for one provider. Use it as ``async with``; it owns its session.

    >>> async with CreativeClient("deepixels", model="flux-schnell") as client:
    ...     job = await client.generate(prompt="a red fox")
    ...     print(job.outputs[0].url)

    ``api_key`` defaults to the provider's variable (``DEEPIXELS_API_KEY`` or
    ``NEOCU_API_KEY``). ``model`` is the default model, used by providers that
    take one and ignored by the others. ``concurrency`` bounds the ``generate``
    calls in flight at once, is the default bound of a batch, and sizes the
    connection pool (so it also bounds HTTP requests in flight).
    ``timeout`` is how long ``wait`` waits for a job by default (seconds).

    Polling learns how long jobs take (``poll="learned"``, the default): from the
    jobs it has seen of each model, running ones included, the client reads each job
    when that best trades a request against the delay in seeing it end (a job's
    first read near the time the first of its kind tend to end, the next ones closer
    together). Until a model has 20 ended jobs, and with ``poll="backoff"``, reads
    start ``poll_initial`` apart and grow, with jitter, to ``poll_max``. Either way
    two reads of a job are never less than ``poll_initial`` nor more than
    ``poll_max`` apart, give or take 10% of jitter (a learned first read may come
    later: its time is learned), and a provider's ``Retry-After`` comes first.
    ``export_durations()`` and ``load_durations()`` carry what was learned to another
    client.
    ``connect_timeout`` and ``request_timeout`` bound each HTTP request;
    ``retry`` says how hard each is retried. ``rate`` caps the client's HTTP
    requests per second, all calls together (waiting for a turn holds no
    connection); ``max_jobs`` caps the jobs in flight at the provider (submitted, not
    yet seen finished). A ``session`` you pass is used and left open; otherwise the
    client makes one and closes it on exit.

    Many processes, one budget: with ``share="postgresql://user@host/db"`` (the
    ``[postgres]`` extra), ``rate`` and ``max_jobs`` hold for every client given the
    same database and the same provider account, across processes and machines. A
    process that dies gives its slots back within ``share_lease`` seconds.

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

    OpenTelemetry (the ``[otel]`` extra): with ``telemetry=True``, or a ``Telemetry``
    naming the tracer and meter providers, each ``generate``, ``submit`` and ``wait``
    is a span whose HTTP requests are its children, and the client records metrics
    (requests, retries, jobs by outcome, job durations, jobs in flight, uncertain
    submits). Off by default: then nothing of OpenTelemetry is imported.
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
        poll: str = "learned",
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
        max_jobs: int | None = None,
        share: str | None = None,
        share_lease: float = 30.0,
        telemetry: bool | Telemetry = False,
    ) -> None:
        # Every parameter, named as ClientOptions.check names it: checked there, once.
        options = ClientOptions.check(**{k: v for k, v in locals().items() if k != "self"})
        self._provider = provider = options.provider
        self._model = options.model
        self.concurrency = options.concurrency
        self.poll_initial = options.poll_initial
        self.poll_max = options.poll_max
        self.webhook_poll = options.webhook_poll
        self._semaphore = asyncio.Semaphore(options.concurrency)
        self._downloads = asyncio.Semaphore(options.concurrency)
        self._live: set[asyncio.Task[Any]] = set()
        self._affinity = Affinity()
        self._check_open = self._affinity.check_open
        self._budget = make_budget(options)
        self._runner = runner = Runner.build(options, self._check_open, self._budget)
        self._transport = runner.transport
        # None unless jobs are awaited by callback: polling pays nothing for webhooks.
        self._callbacks = runner.callbacks

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

    def export_durations(self) -> dict[str, Any]:
        """What this client learned of its jobs' durations (``poll="learned"``), per model:
        JSON-able data for ``load_durations`` in another client, process or run."""
        learning = self._runner.waiting.learning
        if learning is None:
            return {"version": 1, "provider": self.provider, "models": []}
        return learning.export()

    def load_durations(self, state: Mapping[str, Any]) -> int:
        """Start from durations another client learned (``export_durations()``'s data):
        the number of ended jobs taken in (0 for another provider's)."""
        learning = self._runner.waiting.learning
        if learning is None:
            raise ConfigurationError(
                'poll="backoff" learns no durations: load them into a poll="learned" client'
            )
        try:
            return learning.load(state)
        except ValueError as exc:
            raise ConfigurationError(f"cannot load these durations: {exc}") from None

    @property
    def timeout(self) -> float:
        """How long ``wait`` waits for a job by default (seconds); settable."""
        return self._runner.timeout

    @timeout.setter
    def timeout(self, value: float) -> None:
        positive("timeout", value)
        self._runner.timeout = value

    @property
    def closed(self) -> bool:
        """True once ``aclose()`` was called."""
        return self._affinity.closed

    @property
    def webhook_receiver(self) -> WebhookReceiver | None:
        """The receiver this client's callbacks arrive at, if it waits by webhook
        (with ``webhook_listen``, once the client is open)."""
        return self._callbacks.receiver if self._callbacks is not None else None

    @property
    def webhook_address(self) -> tuple[str, int] | None:
        """``(host, port)`` the client's own receiver listens on, once it is open."""
        return self._callbacks.address if self._callbacks is not None else None

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
        try:
            await self._budget.open()
            if self._callbacks is not None:
                fan_in = self._budget.fan_in(self._provider, self._runner.waiting.read)
                if fan_in is not None:
                    self._callbacks.share(fan_in)
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
        self._affinity.check_close()
        if self._callbacks is not None:
            self._callbacks.closed = True  # a wait cancelled below lets go of its callback
        await cancel_all(self._live)
        self._runner.close()
        if self._callbacks is not None:
            await self._callbacks.close()
        await self._budget.close()
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
        return await self._runner.submit(coerce(request, prompt, model, input, files, webhook))

    async def get(self, job_id: str) -> Job:
        """The job's current state."""
        self._check_open()
        return await self._runner.read(self._job_id(job_id))

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
        return await self._runner.wait(job_id, last, limit)

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
            return await self._runner.generate(request, timeout, None)

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
        limit = self._downloads
        return await _download.download(self._transport, job, dest_dir, name, max_size, limit)

    def _job_id(self, job_id: object) -> str:
        if not isinstance(job_id, str) or not job_id:
            raise InvalidRequestError("job_id must be a non-empty string", provider=self.provider)
        return job_id

    def validate(self, request: GenerationRequest | str) -> None:
        """Check a request as ``submit`` would, without sending anything: raises
        ``InvalidRequestError`` naming the field this client's provider cannot take."""
        self._provider.validate(as_request(request), self._model)

    async def balance(self) -> float:
        """The account's remaining balance, in the provider's own unit (Neocu: its
        organisation's compute, ``GET /compute``).

        >>> left = await client.balance()

        Read as any read is (retried on connection errors, 429 and 5xx); never a submit.
        A provider that documents no balance (Deepixels) raises ``NotSupportedError``
        before anything is sent.
        """
        self._check_open()
        call = self._provider.balance_call()
        if call is None:
            raise NotSupportedError(
                f"{self.provider} documents no account balance, so there is none to read",
                provider=self.provider,
            )
        return self._provider.parse_balance(await self._transport.request(call))
