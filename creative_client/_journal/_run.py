"""A journaled batch for an app: ``CreativeClient.journaled`` (``creative_client/_batches.py``).

The journal is a SQLite file (one process) or a PostgreSQL database (``postgresql://``:
many processes, on any machines, share one batch). The same call after a crash resumes:
rows finished before are yielded from the journal, submitted jobs are read again, and a
submit that was in flight is "uncertain", never sent again unless asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING, Any

from .._fanout import bounded_map
from .._models import GenerationRequest, Job, as_request
from ..errors import InvalidRequestError, SubmissionUncertainError
from ._durations import keep, recall
from ._model import FINISHED, JournalError, Row
from ._sqlite import SqliteJournal
from ._steps import claimed, document_of, heartbeat, submit_row, wait_row

if TYPE_CHECKING:
    from .._client import CreativeClient

Requests = Mapping[str, GenerationRequest | str] | Mapping[int, GenerationRequest | str]
_LOST = "the run stopped while this submit was in flight; it may or may not have created a job"


def _entries(
    client: CreativeClient, requests: Requests
) -> dict[str, tuple[int, GenerationRequest]]:
    """Each id as the journal's key (its JSON), with a line number and its request, all
    checked before anything is sent."""
    entries: dict[str, tuple[int, GenerationRequest]] = {}
    for line, (ident, item) in enumerate(requests.items(), start=1):
        if isinstance(ident, bool) or not isinstance(ident, str | int) or ident == "":
            raise InvalidRequestError(f"a journaled batch's ids are strings or integers: {ident!r}")
        request = as_request(item)
        try:
            client.validate(request)
        except InvalidRequestError as exc:
            raise InvalidRequestError(
                f"id {ident!r}: {exc.message}", provider=exc.provider
            ) from None
        entries[json.dumps(ident)] = (line, request)
    return entries


def open_journal(
    journal: str | os.PathLike[str], batch: str, lease: float, patience: float = 30.0
) -> Any:
    """The backend ``journal`` names: a PostgreSQL URL (a lost database waited out for
    ``patience`` seconds a call), else a SQLite file."""
    spec = os.fspath(journal)
    if spec.startswith(("postgresql://", "postgres://")):
        from .._options import check_share_url

        check_share_url(spec)  # parses, the [postgres] extra is there; never shown
        from .._pg._journal import PgJournal

        return PgJournal(spec, batch, lease=lease, patience=patience)
    return SqliteJournal(spec)


def _set_up(backend: Any, entries: dict[str, tuple[int, GenerationRequest]], provider: str,
            resubmit_uncertain: bool) -> dict[str, Row]:  # fmt: skip
    """The rows for ``entries`` in the journal (keys already there keep their state)."""
    made_for = backend.meta().get("provider")
    if made_for is not None and made_for != provider:
        raise JournalError(f"this journal's batch runs on {made_for}, not {provider}")
    backend.set_meta(provider=provider)
    if isinstance(backend, SqliteJournal):
        backend.add((key, line) for key, (line, _) in entries.items())
        name = SubmissionUncertainError.__name__
        backend.move("submitting", "uncertain", error_type=name, error=_LOST)
    else:
        loaded = ((key, line, document_of(r)) for key, (line, r) in entries.items())
        backend.add_requests(loaded)
    if resubmit_uncertain:
        backend.move("uncertain", "pending", error_type=None, error=None)
    rows: dict[str, Row] = backend.load()
    return rows


async def run_journaled(
    client: CreativeClient,
    requests: Requests,
    journal: str | os.PathLike[str],
    *,
    batch: str | None,
    concurrency: int,
    resubmit_uncertain: bool,
    lease: float,
    live: set[asyncio.Task[Any]],
) -> AsyncGenerator[Row, None]:
    entries = _entries(client, requests)
    if batch is None:
        digest = hashlib.sha256(json.dumps(sorted(entries)).encode()).hexdigest()
        batch = digest[:16]
    backend = await asyncio.to_thread(open_journal, journal, batch, lease)
    try:
        rows = await asyncio.to_thread(
            _set_up, backend, entries, client.provider, resubmit_uncertain
        )
        await recall(backend, client)
        for row in rows.values():
            if row.state in FINISHED and row.key in entries:
                yield row  # finished by an earlier run (or another worker)
        backend.start()
        async for row in _run(client, backend, entries, rows, concurrency, live):
            yield row
    finally:
        with contextlib.suppress(JournalError):
            await backend.stop()
        await keep(backend, client)
        if not isinstance(backend, SqliteJournal):
            await asyncio.to_thread(backend.release)
        backend.close()


async def _run(
    client: CreativeClient,
    backend: Any,
    entries: dict[str, tuple[int, GenerationRequest]],
    rows: dict[str, Row],
    concurrency: int,
    live: set[asyncio.Task[Any]],
) -> AsyncGenerator[Row, None]:
    async def one(_index: int, item: tuple[Row, GenerationRequest]) -> Row | None:
        row, request = item
        job: Job | str | None = row.job_id
        if row.state == "pending":
            result = await submit_row(client, backend, row, request)
            if result is None or isinstance(result, Row):
                return result
            row, job = result
        assert job is not None
        row, _ = await wait_row(client, row, job)
        backend.write(row)
        return row

    if isinstance(backend, SqliteJournal):
        work: Any = [
            (row, entries[row.key][1])
            for row in sorted(rows.values(), key=lambda r: r.line)
            if row.state not in FINISHED and row.key in entries
        ]
        beat = None
    else:
        work = _claims(backend, entries, concurrency)
        beat = asyncio.create_task(heartbeat(backend))
    try:
        stream = bounded_map(work, one, concurrency, live)
        async with contextlib.aclosing(stream):
            async for row in stream:
                if row is not None:
                    yield row
    finally:
        if beat is not None:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat


async def _claims(
    backend: Any, entries: dict[str, tuple[int, GenerationRequest]], concurrency: int
) -> AsyncGenerator[tuple[Row, GenerationRequest], None]:
    """Rows claimed from a shared journal, with their requests (this caller's when it
    has the id, else as the journal keeps it)."""
    async for row, document in claimed(backend, max(1, min(32, concurrency)), _never, _quiet):
        known = entries.get(row.key)
        request = known[1] if known is not None else GenerationRequest(**document)
        yield row, request


def _never() -> bool:
    return False


def _quiet(message: str) -> None:
    pass
