"""A blocking client: one ``CreativeClient`` on a private event loop in a thread of its own
(the loop and its thread are ``creative_client/_loop_thread.py``)."""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Mapping,
    Sequence,
)
from pathlib import Path
from typing import Any, Self, TypeVar

from ._client import CreativeClient
from ._config import Configurable
from ._download import DEFAULT_MAX_DOWNLOAD
from ._journal._model import Row as JournalRow
from ._journal._run import Requests as JournalRequests
from ._loop_thread import CLOSED as _CLOSED
from ._loop_thread import LoopThread
from ._models import GenerationRequest, Job, Outcome
from ._progress import ProgressHook
from ._retry import RetryPolicy
from ._telemetry import Telemetry
from .providers import Provider

T = TypeVar("T")

#: How long a client nobody closed may take to close at exit (or when collected).
_EXIT_WAIT = 5.0


class SyncCreativeClient(Configurable):
    """A blocking ``CreativeClient``, for scripts and notebooks. Use it as ``with``.

    >>> with SyncCreativeClient("deepixels", model="flux-schnell") as client:
    ...     job = client.generate("a red fox")
    ...     print(job.outputs[0].url)

    It takes the options ``CreativeClient`` takes (but ``session`` and
    ``webhook_receiver``, which belong to a loop of yours) and runs one on an event
    loop of its own, in a thread of its own, so it works in a plain script and also
    where a loop is already running (Jupyter, a framework's sync handler). Each call
    blocks until its result; it may be shared between threads. Ctrl-C while a call
    waits cancels that call's work, then raises ``KeyboardInterrupt``. ``close()``
    (or leaving ``with``) closes the client and stops its thread; a client never
    closed is closed when it is garbage-collected or at interpreter exit. With
    ``telemetry``, its calls' spans start traces of their own (its loop runs in its
    own thread, out of reach of the caller's current span).
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
        webhook_listen: str | None = None,
        webhook_public_url: str | None = None,
        webhook_poll: float = 30.0,
        not_found_grace: float = 10.0,
        max_jobs: int | None = None,
        share: str | None = None,
        share_lease: float = 30.0,
        telemetry: bool | Telemetry = False,
    ) -> None:
        options = dict(locals())  # every parameter, named as CreativeClient names it
        del options["self"]
        self._closed = False
        self._runner = runner = LoopThread()
        self._finalizer = weakref.finalize(self, runner.shutdown, _EXIT_WAIT)

        async def start() -> CreativeClient:
            # Made on the loop it runs on: its session and semaphores belong there.
            client = CreativeClient(**options)
            runner.client = await client.__aenter__()
            return client

        try:
            self._client = runner.call(start)
        except BaseException:
            self.close()
            raise

    @property
    def provider(self) -> str:
        """The provider's name."""
        return self._client.provider

    @property
    def base_url(self) -> str:
        """The provider's versioned base URL."""
        return self._client.base_url

    @property
    def model(self) -> str | None:
        """The default model, for providers that take one."""
        return self._client.model

    def export_durations(self) -> dict[str, Any]:
        """``CreativeClient.export_durations``: what was learned of the jobs' durations."""
        return self._call(_exported)

    def load_durations(self, state: Mapping[str, Any]) -> int:
        """``CreativeClient.load_durations``: start from durations learned elsewhere."""
        return self._call(lambda c: _loaded(c, state))

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._closed

    def __repr__(self) -> str:
        return f"Sync{self._client!r}"

    def __enter__(self) -> Self:
        if self._closed:
            raise RuntimeError(_CLOSED)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Cancel work in flight, close the client on its loop, stop the loop and join its
        thread. Idempotent."""
        self._closed = True
        if self._finalizer.detach() is not None:
            self._runner.shutdown()

    def submit(
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
        """``CreativeClient.submit``: create a job and return it at once."""
        return self._call(
            lambda c: c.submit(
                request, prompt=prompt, model=model, input=input, files=files, webhook=webhook
            )
        )

    def validate(self, request: GenerationRequest | str) -> None:
        """``CreativeClient.validate``: the checks a submit makes, without sending."""
        if self._closed:
            raise RuntimeError(_CLOSED)
        self._client.validate(request)

    def get(self, job_id: str) -> Job:
        """``CreativeClient.get``: the job's current state."""
        return self._call(lambda c: c.get(job_id))

    def wait(self, job: str | Job, *, timeout: float | None = None) -> Job:
        """``CreativeClient.wait``: poll until the job is SUCCEEDED or FAILED."""
        return self._call(lambda c: c.wait(job, timeout=timeout))

    def generate(
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
        """``CreativeClient.generate``: submit and wait; a failed job raises
        ``JobFailedError``."""
        return self._call(
            lambda c: c.generate(
                request,
                prompt=prompt,
                model=model,
                input=input,
                files=files,
                webhook=webhook,
                timeout=timeout,
            )
        )

    def generate_many(
        self,
        requests: Iterable[GenerationRequest | str],
        *,
        concurrency: int | None = None,
        progress: ProgressHook | None = None,
    ) -> list[Outcome]:
        """``CreativeClient.generate_many``: every outcome, in input order."""
        _plain(requests)
        return self._call(
            lambda c: c.generate_many(requests, concurrency=concurrency, progress=progress)
        )

    def as_completed(
        self,
        requests: Iterable[GenerationRequest | str],
        *,
        concurrency: int | None = None,
        progress: ProgressHook | None = None,
    ) -> Generator[Outcome, None, None]:
        """``CreativeClient.as_completed`` as a plain iterator: an ``Outcome`` per request,
        in completion order, pulling lazily from ``requests``.

        Leaving the loop early (``break``, or ``close()`` on the iterator) cancels the
        jobs still in flight. ``requests`` is read, and a ``progress`` callable called,
        on the client's thread; neither may call the client.
        """
        _plain(requests)

        async def start(client: CreativeClient) -> AsyncGenerator[Outcome, None]:
            return client.as_completed(requests, concurrency=concurrency, progress=progress)

        return self._drain(self._call(start))  # made now: bad options raise now

    def journaled(
        self,
        requests: JournalRequests,
        journal: str | os.PathLike[str],
        *,
        batch: str | None = None,
        concurrency: int | None = None,
        resubmit_uncertain: bool = False,
        lease: float = 30.0,
    ) -> Generator[JournalRow, None, None]:
        """``CreativeClient.journaled`` as a plain iterator: a ``JournalRow`` per id as it
        finishes, in a batch that survives a crash (a SQLite file or a PostgreSQL URL)."""

        async def start(client: CreativeClient) -> AsyncGenerator[JournalRow, None]:
            return client.journaled(
                requests,
                journal,
                batch=batch,
                concurrency=concurrency,
                resubmit_uncertain=resubmit_uncertain,
                lease=lease,
            )

        return self._drain(self._call(start))

    def _drain(self, stream: AsyncGenerator[T, None]) -> Generator[T, None, None]:
        try:
            while (outcome := self._call(lambda _: anext(stream, None))) is not None:
                yield outcome
        finally:
            # Else closing the client finalised the stream, or (collected on the loop's
            # thread) asyncio's async-generator hook does.
            if not self._closed and threading.current_thread() is not self._runner.thread:
                with contextlib.suppress(RuntimeError):  # closed meanwhile: it was finalised
                    self._runner.call(stream.aclose)

    def download(
        self,
        job: Job,
        dest_dir: str | os.PathLike[str],
        *,
        name: str | None = None,
        max_size: int = DEFAULT_MAX_DOWNLOAD,
    ) -> list[Path]:
        """``CreativeClient.download``: save the job's outputs in ``dest_dir``; their paths."""
        return self._call(lambda c: c.download(job, dest_dir, name=name, max_size=max_size))

    def _call(self, use: Callable[[CreativeClient], Awaitable[T]]) -> T:
        if self._closed:
            raise RuntimeError(_CLOSED)
        client = self._client
        return self._runner.call(lambda: use(client))

    def balance(self) -> float:
        """``CreativeClient.balance``: the account's remaining balance
        (``NotSupportedError`` for a provider that documents none)."""
        return self._call(lambda c: c.balance())


async def _exported(client: CreativeClient) -> dict[str, Any]:
    return client.export_durations()  # in the client's loop: its waits add to it there


async def _loaded(client: CreativeClient, state: Mapping[str, Any]) -> int:
    return client.load_durations(state)  # in the client's loop, beside its waits


def _plain(requests: object) -> None:
    if isinstance(requests, AsyncIterable):
        raise TypeError(
            "SyncCreativeClient takes a plain iterable of requests; an async iterable "
            "belongs to your event loop (use CreativeClient there)"
        )
