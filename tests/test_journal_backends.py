"""The journal's backends keep the same promise: one interface (``JournalBackend``),
the same tests against the SQLite file and the PostgreSQL database."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from creative_client._journal._model import FINISHED, Row
from creative_client._journal._sqlite import SqliteJournal
from creative_client.testing import PostgresServer


def _pg_url(postgres: PostgresServer, name: str) -> str:
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name}")
        conn.execute(f"create database {name}")
    return postgres.url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", "postgresql"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A way to open the test's journal, again and again (as runs one after another)."""
    opened: list[Any] = []
    if request.param == "sqlite":

        def make() -> Any:
            opened.append(SqliteJournal(tmp_path / "batch.journal"))
            return opened[-1]
    else:
        from creative_client._pg._journal import PgJournal

        postgres: PostgresServer = request.getfixturevalue("postgres")
        url = _pg_url(postgres, f"backends_{abs(hash(request.node.name)) % 10**8}")

        def make() -> Any:
            opened.append(PgJournal(url, "batch", lease=30.0))
            return opened[-1]

    yield make
    for journal in opened:
        journal.close()


def _keys(n: int) -> list[tuple[str, int]]:
    return [(f'"id-{i}"', i + 1) for i in range(n)]


def test_rows_start_pending_and_adding_again_keeps_their_state(opener: Any) -> None:
    journal = opener()
    journal.set_meta(provider="deepixels")
    journal.add(_keys(3))
    rows = journal.load()
    assert sorted(rows) == ['"id-0"', '"id-1"', '"id-2"']
    assert {row.state for row in rows.values()} == {"pending"}
    assert journal.meta()["provider"] == "deepixels"


async def test_states_written_survive_a_new_run(opener: Any) -> None:
    journal = opener()
    journal.add(_keys(3))
    rows = journal.load()
    journal.start()
    first = rows['"id-0"']
    await journal.write_durably(first.moved("submitting"))
    journal.write(first.moved("submitted", job_id="job-0"))
    journal.write(rows['"id-1"'].moved("succeeded", job_id="job-1", outputs=("http://x/1",)))
    journal.write(rows['"id-2"'].moved("failed", job_id="job-2", error=("JobFailedError", "no")))
    await journal.stop()
    journal.close()
    again = opener()
    again.add(_keys(3))  # the same input, the next run: states kept
    later = again.load()
    assert later['"id-0"'].state == "submitted" and later['"id-0"'].job_id == "job-0"
    assert later['"id-1"'].outputs == ("http://x/1",)
    assert later['"id-2"'].error_type == "JobFailedError"


async def test_a_submit_in_flight_at_a_crash_becomes_uncertain(opener: Any) -> None:
    journal = opener()
    journal.add(_keys(2))
    rows = journal.load()
    journal.start()
    await journal.write_durably(rows['"id-0"'].moved("submitting"))
    await journal.stop()
    journal.close()
    again = opener()
    if isinstance(again, SqliteJournal):  # one process: the next run says so at start
        moved = again.move("submitting", "uncertain", error_type="X", error="lost")
    else:  # many: once the worker's lease runs out, the next claim says so
        moved = -1
    states = {key: row.state for key, row in again.load().items()}
    if moved == -1:
        assert states['"id-0"'] == "submitting"  # its worker's lease still runs
    else:
        assert moved == 1 and states['"id-0"'] == "uncertain"
    assert states['"id-1"'] == "pending"


def test_failed_jobs_go_back_to_pending_only_when_asked(opener: Any) -> None:
    journal = opener()
    journal.add(_keys(2))
    rows = journal.load()

    async def fail_one() -> None:
        journal.start()
        journal.write(rows['"id-0"'].moved("failed", job_id="j", error=("JobFailedError", "x")))
        await journal.stop()

    asyncio.run(fail_one())
    journal.close()
    journal = opener()  # the next run
    assert journal.load()['"id-0"'].state == "failed"
    assert journal.retry_failed("JobFailedError") == 1
    row: Row = journal.load()['"id-0"']
    assert row.state == "pending" and row.job_id is None
    assert row.state not in FINISHED
