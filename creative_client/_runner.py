"""One job's way through the client: validate, submit (with a callback URL when the
client waits by webhook), wait, outcome. The facade (``creative_client/_client.py``)
checks the caller's arguments and hands them here; the waits themselves are
``creative_client/_waiting.py``, the callbacks ``creative_client/_webhook_server.py``."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ._models import GenerationRequest, Job, JobStatus, as_sent
from ._options import ClientOptions
from ._progress import Tracker
from ._transport import Transport
from ._waiting import Waiting
from ._webhook_server import Callbacks
from ._webhooks import Expected
from .errors import JobFailedError, ProviderResponseError, SubmissionUncertainError
from .providers import Provider


class Runner:
    """Runs a client's jobs on its provider. ``timeout`` is the default wait (seconds)."""

    __slots__ = ("_model", "_provider", "callbacks", "timeout", "transport", "waiting")

    def __init__(
        self,
        provider: Provider,
        model: str | None,
        transport: Transport,
        waiting: Waiting,
        callbacks: Callbacks | None,
        timeout: float,
    ) -> None:
        self._provider = provider
        self._model = model
        self.transport = transport
        self.callbacks = callbacks
        self.waiting = waiting
        self.timeout = timeout

    @classmethod
    def build(cls, options: ClientOptions, check_open: Callable[[], object]) -> Runner:
        """The parts a client with these options runs its jobs with."""
        provider = options.provider
        transport = Transport(
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
        waiting = Waiting(transport, options)
        callbacks = (
            Callbacks(options, reader=waiting.read, check_open=check_open)
            if options.webhooks
            else None
        )
        return cls(provider, options.model, transport, waiting, callbacks, options.timeout)

    async def submit(self, request: GenerationRequest) -> Job:
        """The job, at once; when waiting by webhook, its callback is kept for ``wait``."""
        callbacks = self.callbacks
        expected = await callbacks.expect(request) if callbacks is not None else None
        if callbacks is None or expected is None:
            return await self.send(request)
        job = await callbacks.submitted(self.send, request, expected)
        callbacks.keep(job.id, expected)
        return job

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

    async def read(self, job_id: str) -> Job:
        return await self.waiting.read(job_id)

    async def wait(self, job_id: str, last: Job | None, limit: float) -> Job:
        """Until the job ends: by its callback if ``submit`` kept one, else by polling."""
        callbacks = self.callbacks
        expected = callbacks.expecting.pop(job_id, None) if callbacks is not None else None
        if callbacks is None or expected is None:
            return await self.waiting.poll(job_id, last, limit)
        return await callbacks.wait(self.waiting, job_id, last, limit, expected, claimed=True)

    async def generate(
        self, request: GenerationRequest, timeout: float | None, tracker: Tracker | None = None
    ) -> Job:
        """Submit and wait; a failed job raises ``JobFailedError``."""
        callbacks = self.callbacks
        expected = await callbacks.expect(request) if callbacks is not None else None
        if expected is None:
            job = await self.send(request)
        else:
            assert callbacks is not None
            job = await callbacks.submitted(self.send, request, expected)
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
