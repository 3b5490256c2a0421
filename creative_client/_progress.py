"""A batch's bookkeeping: each request run into an ``Outcome``, and the batch's
``Progress`` kept as its jobs move. The fan-out itself is ``creative_client/_fanout.py``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ._models import GenerationRequest, Job, Outcome, Progress, as_request
from .errors import CreativeError, JobFailedError, JobTimeoutError, SubmissionUncertainError

ProgressHook = Progress | Callable[[Progress], object]


class Tracker:
    """Keeps a batch's ``Progress`` and tells the hook when it changes."""

    __slots__ = ("notify", "progress")

    def __init__(self, hook: ProgressHook) -> None:
        if isinstance(hook, Progress):
            self.progress, self.notify = hook, None
        else:
            self.progress, self.notify = Progress(), hook

    def started(self) -> None:
        """A submit was accepted: the job runs."""
        self.progress.submitted += 1
        self.progress.running += 1
        if self.notify is not None:
            self.notify(self.progress)

    def stopped(self) -> None:
        """The job stopped running (its outcome follows)."""
        self.progress.running -= 1

    def finished(self, outcome: Outcome) -> None:
        error = outcome.error
        if error is None:
            self.progress.succeeded += 1
        elif isinstance(error, SubmissionUncertainError):
            self.progress.uncertain += 1
        else:
            self.progress.failed += 1
        if self.notify is not None:
            self.notify(self.progress)


#: The client's submit-and-wait: ``(request, timeout, tracker) -> finished job``.
Generate = Callable[[GenerationRequest, float | None, Tracker | None], Awaitable[Job]]


class Outcomes:
    """Runs a batch's requests into outcomes: a failure is an outcome, not an exception
    that ends the batch."""

    __slots__ = ("_generate", "tracker")

    def __init__(self, generate: Generate, progress: ProgressHook | None) -> None:
        self._generate = generate
        self.tracker = None if progress is None else Tracker(progress)

    async def run(self, _index: int, item: GenerationRequest | str) -> Outcome:
        """The outcome of one item (a request, or a prompt alone)."""
        request = as_request(item)
        tracker = self.tracker
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
