"""Provider fallback that never pays twice: ``FallbackClient`` sends a request to the
next provider only when the one before refused it in a way that proves it made no job.

Each provider is a ``CreativeClient`` (``creative_client/_client.py``) that does all the
work. Which one a submit goes to, and when the next may be asked, is ``Rotation`` in
``_rotation.py``; every later call on a job goes to the provider that holds it. Batches
reuse the client's fan-out (``_fanout.py``) and outcomes (``_progress.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from ._batches import Requests, in_order
from ._client import CreativeClient
from ._config import fallback_config
from ._download import DEFAULT_MAX_DOWNLOAD
from ._fanout import bounded_map, cancel_all
from ._loops import Affinity
from ._models import GenerationRequest, Job, JobStatus, Outcome, coerce
from ._options import positive
from ._progress import Outcomes, ProgressHook, Tracker
from ._rotation import DEFAULT_COOLDOWN, MayGoOn, OnTry, Rotation
from .errors import ConfigurationError, JobFailedError


class FallbackClient:
    """Runs each request on the first of its providers that takes it, never paying twice.

    >>> async with FallbackClient([CreativeClient("neocu"), CreativeClient("deepixels",
    ...                            model="flux-schnell")]) as client:
    ...     job = await client.generate("a red fox")
    ...     print(job.provider)

    The clients are of different providers (one per provider name). A submit goes to
    the next provider only when the one before refused it in a way that proves no job
    exists: 402, 401/403, 429 after retries, a connection never made, or a request it
    cannot take (``InvalidRequestError`` from its ``validate``, before sending). Any
    other answer (400, 404, 422, ...) is raised: a 400 may come after the job ran. Never
    after ``SubmissionUncertainError``, and never once a provider accepted the job: a
    job that fails is not run elsewhere. When every provider refused, the last refusal
    is raised, with each one in its ``refusals``.

    A provider that answered 402 or 401/403 is tried last, after the others, for
    ``cooldown`` seconds (on ``clock``, ``time.monotonic`` by default), so a batch does
    not ask it per request; a submit it accepts ends its cool-down.

    ``get``, ``wait`` and ``download`` go to the provider that holds the job
    (``Job.provider``, or ``provider=`` with a job id). The clients are this client's:
    it opens them with itself (``async with``) and closes them with itself.
    """

    def __init__(
        self,
        clients: Sequence[CreativeClient],
        *,
        cooldown: float = DEFAULT_COOLDOWN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        clients = tuple(clients)
        if not clients or not all(isinstance(c, CreativeClient) for c in clients):
            raise ConfigurationError("FallbackClient takes one CreativeClient or more")
        names = [client.provider for client in clients]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"one client per provider, not {', '.join(names)}")
        positive("cooldown", cooldown, zero_ok=True)
        self._clients = clients
        self._rotation = Rotation(clients, float(cooldown), clock)
        self.concurrency = clients[0].concurrency
        self._semaphore = asyncio.Semaphore(self.concurrency)
        self._live: set[asyncio.Task[Any]] = set()
        self._affinity = Affinity("FallbackClient")
        self._check_open = self._affinity.check_open

    @classmethod
    def from_config(
        cls,
        source: str | os.PathLike[str] | Mapping[str, Any],
        environ: Mapping[str, str] | None = None,
        *,
        cooldown: float | None = None,
        **options: Any,
    ) -> FallbackClient:
        """A client for ``provider`` then each provider of ``fallback``, from a TOML file
        or a mapping of the same shape (``CreativeClient.from_config``'s), each with its
        own table::

            provider = "neocu"
            fallback = ["deepixels"]
            fallback_cooldown = 60      # optional: seconds (``cooldown=`` overrides)

        ``options`` override the client options of every provider; ``provider=``
        switches the first, and ``api_key``, ``base_url`` and ``model`` apply to it alone.
        """
        settings, configured = fallback_config(source, environ, options.pop("provider", None))
        own: dict[str, Any] = {
            k: options.pop(k) for k in ("api_key", "base_url", "model") if k in options
        }
        clients = [CreativeClient(**{**settings[0], **options, **own})]
        clients += [CreativeClient(**{**each, **options}) for each in settings[1:]]
        if cooldown is None:
            cooldown = DEFAULT_COOLDOWN if configured is None else configured
        return cls(clients, cooldown=cooldown)

    @property
    def clients(self) -> tuple[CreativeClient, ...]:
        """Each provider's client, in the order they are tried."""
        return self._clients

    @property
    def providers(self) -> tuple[str, ...]:
        """The providers' names, in the order they are tried."""
        return tuple(client.provider for client in self._clients)

    @property
    def provider(self) -> str:
        """The first provider's name."""
        return self._clients[0].provider

    @property
    def cooldown(self) -> float:
        """Seconds a provider that answered 402 or 401/403 is tried last."""
        return self._rotation.cooldown

    @property
    def cooling(self) -> dict[str, float]:
        """The providers in cool-down (tried last), with the seconds each has left."""
        return self._rotation.cooling()

    @property
    def closed(self) -> bool:
        """True once ``aclose()`` was called."""
        return self._affinity.closed

    def client(self, provider: str) -> CreativeClient:
        """The client of ``provider``, one of ``providers`` (``ValueError`` otherwise)."""
        for client in self._clients:
            if client.provider == provider:
                return client
        raise ValueError(f"this client runs on {', '.join(self.providers)}, not {provider!r}")

    def __repr__(self) -> str:
        return f"FallbackClient(providers={self.providers!r}, cooldown={self.cooldown:g})"

    async def __aenter__(self) -> Self:
        self._check_open()
        try:
            for client in self._clients:
                await client.__aenter__()
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
        """Cancel work in flight and close every provider's client. Idempotent."""
        self._affinity.check_close()
        await cancel_all(self._live)
        async with contextlib.AsyncExitStack() as stack:
            for client in reversed(self._clients):
                stack.push_async_callback(client.aclose)

    def validate(self, request: GenerationRequest | str) -> None:
        """Check a request as ``submit`` would, without sending anything: raises
        ``InvalidRequestError`` when no provider can take it."""
        self._rotation.validate(request)

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
        """``CreativeClient.submit`` on the first provider that takes the request;
        ``Job.provider`` says which. Takes what ``CreativeClient.submit`` takes."""
        self._check_open()
        return await self._rotation.submit(coerce(request, prompt, model, input, files, webhook))

    async def _submit(self, request: GenerationRequest, may_go_on: MayGoOn, on_try: OnTry) -> Job:
        """``submit`` for a journaled row (``submit_row`` in ``_journal/_steps.py``): the
        next provider is asked only while ``may_go_on()`` says so, and ``on_try(name)``
        is awaited before each provider's submit is sent (the row names it first)."""
        self._check_open()
        return await self._rotation.submit(request, may_go_on, on_try)

    def _next_provider(self) -> str:
        """The provider a submit would be sent to first, now (cool-down included)."""
        return self._rotation.order()[0].provider

    async def get(self, job: str | Job, *, provider: str | None = None) -> Job:
        """The job's current state, read from the provider that holds it (a job id
        alone needs ``provider=`` when there are several: ``ValueError`` without)."""
        self._check_open()
        holder, job_id = self._holder(job, provider)
        return await holder.get(job_id)

    async def wait(
        self, job: str | Job, *, timeout: float | None = None, provider: str | None = None
    ) -> Job:
        """``CreativeClient.wait`` on the provider that holds the job."""
        self._check_open()
        holder, _ = self._holder(job, provider)
        return await holder.wait(job, timeout=timeout)

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
        """Submit (with fallback) and wait on the provider that took it; the finished
        job. A failed job raises ``JobFailedError`` and is not run elsewhere."""
        self._check_open()
        request = coerce(request, prompt, model, input, files, webhook)
        if timeout is not None:
            positive("timeout", timeout)
        async with self._semaphore:
            return await self._generate(request, timeout, None)

    def as_completed(
        self,
        requests: Requests,
        *,
        concurrency: int | None = None,
        progress: ProgressHook | None = None,
    ) -> AsyncGenerator[Outcome, None]:
        """``CreativeClient.as_completed`` with fallback: an ``Outcome`` per request as it
        finishes (``Outcome.provider`` says which provider ran it)."""
        limit, outcomes = self._batch(requests, concurrency, progress)
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
        return await in_order(requests, outcomes, limit, self._live)

    async def download(
        self,
        job: Job,
        dest_dir: str | os.PathLike[str],
        *,
        name: str | None = None,
        max_size: int = DEFAULT_MAX_DOWNLOAD,
    ) -> list[Path]:
        """``CreativeClient.download`` by the client of the provider that ran the job."""
        self._check_open()
        holder = self.client(job.provider) if isinstance(job, Job) else self._clients[0]
        return await holder.download(job, dest_dir, name=name, max_size=max_size)

    async def _generate(
        self, request: GenerationRequest, timeout: float | None, tracker: Tracker | None
    ) -> Job:
        job = await self._rotation.submit(request)
        if tracker is not None:
            tracker.started()
        try:
            job = await self.client(job.provider).wait(job, timeout=timeout)
        finally:
            if tracker is not None:
                tracker.stopped()
        if job.status is JobStatus.FAILED:
            raise JobFailedError(job)
        return job

    def _holder(self, job: str | Job, provider: str | None) -> tuple[CreativeClient, str]:
        """The client that holds ``job``, and its id."""
        if isinstance(job, Job):
            if provider is not None and provider != job.provider:
                raise ValueError(f"the job is {job.provider}'s, not {provider}'s")
            return self.client(job.provider), job.id
        if provider is None:
            if len(self._clients) > 1:
                raise ValueError(
                    "a job id alone does not say which provider holds it: pass the Job, "
                    f"or provider= (one of {', '.join(self.providers)})"
                )
            provider = self.provider
        return self.client(provider), job

    def _batch(
        self, requests: object, concurrency: int | None, progress: ProgressHook | None
    ) -> tuple[int, Outcomes]:
        self._check_open()
        if isinstance(requests, str | GenerationRequest):
            raise TypeError(
                "a batch takes an iterable of prompts or requests, not one "
                f"{type(requests).__name__}: wrap it in a list"
            )
        limit = self.concurrency if concurrency is None else concurrency
        positive("concurrency", limit, integer=True)
        return limit, Outcomes(self._generate, progress)
