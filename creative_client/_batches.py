"""The facade's batch methods: ``as_completed`` and ``generate_many``, a mixin of
``CreativeClient`` (``creative_client/_client.py``). The fan-out itself is
``creative_client/_fanout.py``; outcomes and progress ``creative_client/_progress.py``."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterable
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from ._client import CreativeClient

from ._fanout import bounded_map
from ._journal._model import Row as JournalRow
from ._journal._run import Requests as JournalRequests
from ._journal._run import run_journaled
from ._models import GenerationRequest, Outcome
from ._options import positive
from ._progress import Outcomes, ProgressHook
from ._runner import Runner

Requests = Iterable[GenerationRequest | str] | AsyncIterable[GenerationRequest | str]


class BatchMethods:
    """Many requests at once, each a job run by the client's ``Runner``."""

    # Set by CreativeClient.__init__.
    concurrency: int
    _runner: Runner
    _live: set[asyncio.Task[Any]]
    _check_open: Callable[[], None]

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
        return await in_order(requests, outcomes, limit, self._live)

    def journaled(
        self,
        requests: JournalRequests,
        journal: str | os.PathLike[str],
        *,
        batch: str | None = None,
        concurrency: int | None = None,
        resubmit_uncertain: bool = False,
        lease: float = 30.0,
    ) -> AsyncGenerator[JournalRow, None]:
        """Run ``requests`` (a mapping of id to prompt or request) as a batch that survives
        a crash: yield a ``JournalRow`` per id as it finishes.

        >>> async for row in client.journaled({"fox": "a red fox"}, "batch.journal"):
        ...     print(row.id, row.state, row.outputs)

        ``journal`` is a SQLite file, or a ``postgresql://`` URL (the ``[postgres]``
        extra), where many processes, on any machines, may run one ``batch`` (its name;
        by default a hash of the ids) together. The same call again after a crash
        resumes: rows finished before are yielded first, from the journal; submitted
        jobs are read again; a submit that was in flight is ``"uncertain"`` and never
        sent again unless ``resubmit_uncertain``. Each submit's state is committed
        before the POST leaves. With PostgreSQL, a lost process's rows are taken over
        once its ``lease`` (seconds) runs out. Every request is checked before anything
        is sent.
        """
        self._check_open()
        limit = self.concurrency if concurrency is None else concurrency
        positive("concurrency", limit, integer=True)
        positive("lease", lease)
        return run_journaled(
            cast("CreativeClient", self),
            requests,
            journal,
            batch=batch,
            concurrency=limit,
            resubmit_uncertain=resubmit_uncertain,
            lease=lease,
            live=self._live,
        )

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
        return concurrency, Outcomes(self._runner.generate, progress)


async def in_order(
    requests: Requests, outcomes: Outcomes, limit: int, live: set[asyncio.Task[Any]]
) -> list[Outcome]:
    """Every request's outcome, ``limit`` at a time, in input order (``generate_many``,
    of a ``CreativeClient`` or a ``FallbackClient``)."""

    async def indexed(index: int, request: GenerationRequest | str) -> tuple[int, Outcome]:
        return index, await outcomes.run(index, request)

    results: dict[int, Outcome] = {}
    async with contextlib.aclosing(bounded_map(requests, indexed, limit, live)) as stream:
        async for index, outcome in stream:
            results[index] = outcome
    return [results[i] for i in range(len(results))]
