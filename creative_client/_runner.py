"""One job's way through the client: validate, submit (with a callback URL when the
client waits by webhook), wait, outcome. The facade (``creative_client/_client.py``)
checks the caller's arguments and hands them here; the waits themselves are
``creative_client/_waiting.py``, the callbacks ``creative_client/_webhook_server.py``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import attrs

from ._budget import Budget
from ._models import GenerationRequest, Job, JobStatus, as_sent
from ._options import ClientOptions
from ._progress import Tracker
from ._transport import Transport
from ._waiting import Waiting
from ._webhook_server import Callbacks
from ._webhooks import Expected
from .errors import (
    JobFailedError,
    JobTimeoutError,
    ProviderResponseError,
    SubmissionUncertainError,
)
from .providers import Provider

if TYPE_CHECKING:
    from ._traced import Traced

Generate = Callable[[GenerationRequest, float | None, Tracker | None], Awaitable[Job]]
Submit = Callable[[GenerationRequest], Awaitable[Job]]
Wait = Callable[[str, Job | None, float], Awaitable[Job]]


class Runner:
    """Runs a client's jobs on its provider. ``timeout`` is the default wait (seconds)."""

    __slots__ = (
        "_held", "_model", "_provider", "_telemetry", "budget", "callbacks", "generate",
        "submit", "timeout", "transport", "wait", "waiting",
    )  # fmt: skip

    def __init__(
        self,
        provider: Provider,
        model: str | None,
        transport: Transport,
        waiting: Waiting,
        callbacks: Callbacks | None,
        timeout: float,
        budget: Budget | None = None,
        telemetry: Traced | None = None,
    ) -> None:
        self._provider = provider
        self._model = model
        self.transport = transport
        self.callbacks = callbacks
        self.waiting = waiting
        self.timeout = timeout
        #: Job slots taken, ``None`` when ``max_jobs`` is not bounded.
        self.budget = budget if budget is not None and budget.slots else None
        #: Slots of jobs from ``submit()``: given back when a read sees the job end, or
        #: when the timer runs out (a job nobody waits for).
        self._held: dict[object, asyncio.TimerHandle] = {}
        #: Submit and wait; a failed job raises ``JobFailedError``. With a slot per job
        #: only when ``max_jobs`` is bounded: no extra frame on the hot path otherwise.
        self.generate: Generate = self._generate if self.budget is None else self._in_slot
        #: The job, at once (``_submit_one``), and until it ends (``_wait_one``).
        self.submit: Submit = self._submit_one
        self.wait: Wait = self._wait_one
        #: With telemetry, the three in its spans; without, not a frame more.
        self._telemetry = telemetry
        if telemetry is not None:
            self.generate = telemetry.generating(self.generate)
            self.submit = telemetry.submitting(self.submit)
            self.wait = telemetry.waiting(self.wait)

    @classmethod
    def build(
        cls, options: ClientOptions, check_open: Callable[[], object], budget: Budget
    ) -> Runner:
        """The parts a client with these options runs its jobs with."""
        provider = options.provider
        telemetry = options.telemetry
        traced = telemetry.start(provider, options.model) if telemetry is not None else None
        make: Callable[..., Transport] = Transport if traced is None else traced.transport
        transport = make(
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
            gate=budget.gate,
        )
        waiting = Waiting(transport, options)
        callbacks = (
            Callbacks(options, reader=waiting.read, check_open=check_open)
            if options.webhooks
            else None
        )
        timeout = options.timeout
        return cls(provider, options.model, transport, waiting, callbacks, timeout, budget, traced)

    async def _submit_one(self, request: GenerationRequest) -> Job:
        """The job, at once; when waiting by webhook, its callback is kept for ``wait``."""
        budget = self.budget
        if budget is None:
            return await self._submit(request)
        await budget.take_slot()
        try:
            job = await self._submit(request)
        except SubmissionUncertainError:
            self._give_later(None)
            raise
        except BaseException:
            budget.give_slot()
            raise
        self._give_later(job.id)
        return job

    async def _submit(self, request: GenerationRequest) -> Job:
        callbacks = self.callbacks
        expected = await callbacks.expect(request) if callbacks is not None else None
        if callbacks is None or expected is None:
            return await self.send(request)
        job = await callbacks.submitted(self.send, request, expected)
        callbacks.keep(job.id, expected)
        return job

    def _give_later(self, job_id: str | None, hold: float | None = None) -> None:
        """Hold a job's slot until a read sees the job end or ``hold`` (``timeout``) passes."""
        assert self.budget is not None
        key = job_id if job_id is not None else object()  # uncertain: it may run, unseen
        self._held[key] = asyncio.get_running_loop().call_later(
            hold or self.timeout, lambda: self._seen(key)
        )

    def _seen(self, job: Job | object) -> None:
        """The job ended (or its time ran out): its slot goes back, once."""
        if isinstance(job, Job):
            if not job.status.is_terminal:
                return
            job = job.id
        timer = self._held.pop(job, None)
        if timer is not None and self.budget is not None:
            timer.cancel()
            self.budget.give_slot()

    async def send(self, request: GenerationRequest, expected: Expected | None = None) -> Job:
        """One ``POST``, never resent; an answer naming no job is an uncertain submit."""
        sent = request if expected is None else attrs.evolve(request, webhook=expected.url)
        model = self._provider.validate(sent, self._model)
        try:
            body = await self.transport.request(self._provider.submit_call(sent, model))
            job = self._provider.parse_submit(body)
            if not job.id.strip():
                raise ProviderResponseError(
                    "the job id is empty", provider=self._provider.name, body=repr(body)
                )
            self.waiting.started(job.id, model)
            if self._telemetry is not None:
                self._telemetry.submitted(job.id)
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

    def close(self) -> None:
        """The client closes: slots still held go back with the budget's close."""
        for timer in self._held.values():
            timer.cancel()
        self._held.clear()

    async def read(self, job_id: str) -> Job:
        job = await self.waiting.read(job_id)
        if self._held:
            self._seen(job)
        return job

    async def _wait_one(self, job_id: str, last: Job | None, limit: float) -> Job:
        """Until the job ends: by its callback if ``submit`` kept one, else by polling."""
        if self._held and job_id in self._held:  # a submit()'s job: held through the wait
            self._held.pop(job_id).cancel()  # (and ``timeout`` beyond, as ``_in_slot``)
            self._give_later(job_id, limit + self.timeout)
        callbacks = self.callbacks
        expected = callbacks.expecting.pop(job_id, None) if callbacks is not None else None
        if callbacks is None or expected is None:
            job = await self.waiting.poll(job_id, last, limit)
        else:
            job = await callbacks.wait(self.waiting, job_id, last, limit, expected, claimed=True)
        if self._held:
            self._seen(job)
        return job

    async def _in_slot(
        self, request: GenerationRequest, timeout: float | None, tracker: Tracker | None = None
    ) -> Job:
        """``_generate`` holding a job slot (``max_jobs``) from submit to outcome."""
        budget = self.budget
        assert budget is not None
        await budget.take_slot()
        sent: list[str] = []
        try:
            return await self._generate(request, timeout, tracker, sent)
        except SubmissionUncertainError:
            self._give_later(None)
            budget = None
            raise
        except (JobTimeoutError, asyncio.CancelledError):
            if sent:  # the job runs on, unseen: its slot is held as a submit()'s is
                self._give_later(sent[0])
                budget = None
            raise
        finally:
            if budget is not None:
                budget.give_slot()

    async def _generate(
        self,
        request: GenerationRequest,
        timeout: float | None,
        tracker: Tracker | None = None,
        sent: list[str] | None = None,
    ) -> Job:
        """Submit and wait; a failed job raises ``JobFailedError``. ``sent`` is given the
        job's id once the provider has the job."""
        callbacks = self.callbacks
        expected = await callbacks.expect(request) if callbacks is not None else None
        if expected is None:
            job = await self.send(request)
        else:
            assert callbacks is not None
            job = await callbacks.submitted(self.send, request, expected)
        if sent is not None:
            sent.append(job.id)
        limit = self.timeout if timeout is None else timeout
        if tracker is not None:
            tracker.started()
        try:
            if expected is None:
                job = await self.waiting.poll(job.id, job, limit)  # no hop: a hot path
            else:
                assert callbacks is not None
                job = await callbacks.wait(self.waiting, job.id, job, limit, expected)
        finally:
            if tracker is not None:
                tracker.stopped()
        if job.status is JobStatus.FAILED:
            raise JobFailedError(job)
        return job
