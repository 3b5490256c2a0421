"""A journaled row's steps, the same for ``creative batch`` (``RowRun`` in
``creative_client/_cli/_batch_row.py``, ``FleetBatch`` in ``_cli/_fleet.py``) and for an
app (``CreativeClient.journaled``, ``_run.py`` here): the submit, its ``submitting``
state committed first so that a crash never sends it twice; the wait, which never gives
up on a job that exists; claiming rows from a journal many workers share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from .._models import GenerationRequest, Job, JobStatus
from ..errors import CreativeError, SubmissionUncertainError
from ._model import JournalBackend, JournalError, Row, RowTakenError, State

if TYPE_CHECKING:
    from .._client import CreativeClient
    from .._fallback import FallbackClient

#: A submit cut short (a second Ctrl-C, a cancelled task) while it was in flight.
INTERRUPTED = (
    SubmissionUncertainError.__name__,
    "interrupted while the submit was in flight; it may or may not have created a job",
)


def document_of(request: GenerationRequest) -> dict[str, Any]:
    """A request as a shared journal keeps it: an input line's fields but the id
    (``GenerationRequest(**document)`` makes it again)."""
    document: dict[str, Any] = {"prompt": request.prompt}
    if request.model is not None:
        document["model"] = request.model
    if request.input:
        document["input"] = dict(request.input)
    if request.files:
        document["files"] = list(request.files)
    return document


def failed(row: Row, exc: CreativeError, *, state: State = "failed") -> Row:
    return row.moved(state, error=(type(exc).__name__, exc.message))


def ended(row: Row, exc: CreativeError, state: State) -> Row:
    """A submit's end without a job id: the row names the provider the error came from
    (that may hold the job, or refused it last)."""
    return row.moved(state, error=(type(exc).__name__, exc.message), provider=exc.provider)


async def submit_row(
    client: CreativeClient | FallbackClient,
    journal: JournalBackend,
    row: Row,
    request: GenerationRequest,
    stopping: Callable[[], bool] = lambda: False,
) -> tuple[Row, Job] | Row | None:
    """Send a pending row's request: ``(row, job)`` once submitted; the row, written,
    when it ended there (refused, uncertain); ``None`` when it was not sent (another
    worker has it, or ``stopping`` came before the POST: the row put back as it was).

    The ``submitting`` state names the provider the POST goes to before it is sent
    (with fallback providers, rewritten before each next one), so that a submit cut
    short says which provider may hold its job; and once ``stopping`` says so, no
    next provider is asked (the row, refused so far, is put back as it was)."""
    from .._fallback import FallbackClient  # here: it imports the client, which imports this

    rotating = client if isinstance(client, FallbackClient) else None
    first = client.provider if rotating is None else rotating._next_provider()
    sending = row.moved("submitting", provider=first)
    try:
        await journal.write_durably(sending)
    except RowTakenError:
        return None  # another worker has it now: it sends it, not this one
    except asyncio.CancelledError:
        journal.write(row)  # nothing was sent
        raise
    if stopping():
        journal.write(row)
        return None

    async def trying(provider: str) -> None:
        nonlocal sending
        if provider != sending.provider:  # a fallback provider: named before it is sent
            sending = row.moved("submitting", provider=provider)
            await journal.write_durably(sending)

    try:
        if rotating is None:
            job = await client.submit(request)
        else:
            job = await rotating._submit(request, lambda: not stopping(), trying)
    except asyncio.CancelledError:
        journal.write(sending.moved("uncertain", error=INTERRUPTED))
        raise
    except SubmissionUncertainError as exc:
        return _written(journal, ended(row, exc, "uncertain"))
    except CreativeError as exc:
        if rotating is not None and 0 < len(exc.refusals) < len(rotating.providers):
            journal.write(row)  # refused so far, then stopped: no job, the rest not asked
            return None
        return _written(journal, ended(row, exc, "failed"))
    row = row.moved("submitted", job_id=job.id, provider=job.provider)
    journal.write(row)
    return row, job


def _written(journal: JournalBackend, row: Row) -> Row:
    journal.write(row)
    return row


async def wait_row(client: CreativeClient, row: Row, job: Job | str) -> tuple[Row, Job | str]:
    """The submitted row once its job ended, or still submitted (with why) when the
    wait gave up: the job exists (and is paid for), so it is read again later, never
    sent again."""
    try:
        done = await client.wait(job)
    except CreativeError as exc:
        return failed(row, exc, state="submitted"), job
    if done.status is JobStatus.SUCCEEDED:
        outputs = tuple(asset.url for asset in done.outputs)
        return row.moved("succeeded", outputs=outputs), done
    error = ("JobFailedError", done.error or "the job failed")
    return row.moved("failed", error=error), done


async def claimed(
    journal: Any, chunk: int, stopping: Callable[[], bool], warn: Callable[[str], None]
) -> AsyncIterator[tuple[Row, dict[str, Any]]]:
    """Rows of a journal many workers share (``PgJournal``) that this worker takes on,
    ``chunk`` at a time, until none is left anywhere: while rows are held by live
    workers it waits (they come back if their worker is lost). A lost database is
    waited out, claiming nothing meanwhile."""
    while not stopping():
        try:
            got = await journal.claim(chunk)
        except JournalError as exc:
            warn(f"creative: cannot claim rows ({exc}); trying again")
            await asyncio.sleep(1.0)
            continue
        for item in got:
            yield item
        if got:
            continue
        if await journal.held_elsewhere() == 0:
            return
        await asyncio.sleep(min(1.0, journal.lease / 4))


async def heartbeat(journal: Any) -> None:
    """Renew the leases of the rows this worker holds, every third of the lease."""
    while True:
        await asyncio.sleep(journal.lease / 3)
        with contextlib.suppress(JournalError):
            await journal.renew()
