"""The batch journal on PostgreSQL (``PgJournal``): many workers on one batch.

Every test runs against the real PostgreSQL server the suite starts (``postgres`` in
conftest.py), each on a batch of its own (or a database of its own, for the schema);
leases are short (a fraction of a second) and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest

from creative_client._journal._model import JournalBackend, JournalError, Row, RowTakenError
from creative_client._pg._journal import PgJournal
from creative_client._pg._schema import MIGRATIONS, VERSION
from creative_client.testing import PostgresServer

#: A lease that runs out within a test.
SHORT = 0.5
WORKERS = "select key, worker from creative_rows where batch = %s"


def _name() -> str:
    return f"batch-{uuid.uuid4().hex[:12]}"


def _entries(n: int) -> list[tuple[str, int, dict[str, Any]]]:
    return [(f"k{i:04d}", i + 1, {"prompt": f"prompt {i}"}) for i in range(n)]


@asynccontextmanager
async def _journal(url: str, batch: str, **options: Any) -> AsyncIterator[PgJournal]:
    journal = PgJournal(url, batch, **options)
    try:
        yield journal
    finally:
        try:
            await journal.stop()
        finally:
            journal.close()


async def _until(check: Callable[[], Any], *, within: float = 10.0) -> Any:
    """``await check()`` until it is truthy (at most ``within`` seconds); its value."""
    for _ in range(round(within / 0.05)):
        if value := await check():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"not so within {within} s")


async def _database(postgres: PostgresServer, name: str) -> str:
    async with await psycopg.AsyncConnection.connect(postgres.url, autocommit=True) as conn:
        await conn.execute(f"drop database if exists {name}")
        await conn.execute(f"create database {name}")
    return postgres.url.rsplit("/", 1)[0] + "/" + name


async def _column(url: str, sql: str, *params: object) -> dict[str, Any]:
    """key -> the value of ``sql``'s second column."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        rows = await (await conn.execute(sql, params)).fetchall()
    return {row[0]: row[1] for row in rows}


def test_it_is_a_journal_backend() -> None:
    journal: JournalBackend = PgJournal("postgresql://nowhere/db", "b", worker="w")
    assert str(journal.path) == "b" and journal.current == {}
    journal.close()
    journal.close()  # idempotent


async def test_two_workers_never_claim_the_same_row(share: str) -> None:
    batch = _name()
    async with (
        _journal(share, batch) as one,
        _journal(share, batch) as two,
        _journal(share, batch) as three,
    ):
        one.add_requests(_entries(300))

        async def drain(journal: PgJournal) -> list[str]:
            keys: list[str] = []
            while claimed := await journal.claim(7):
                lines = [row.line for row, _ in claimed]
                assert lines == sorted(lines)
                for row, request in claimed:
                    assert row.state == "pending"
                    assert request == {"prompt": f"prompt {row.line - 1}"}
                keys += [row.key for row, _ in claimed]
            return keys

        async with asyncio.timeout(30):
            got = await asyncio.gather(drain(one), drain(two), drain(three))
    everything = [key for keys in got for key in keys]
    assert len(everything) == len(set(everything)) == 300  # disjoint, and complete
    assert all(got), [len(keys) for keys in got]  # all three took a share


async def test_a_lost_workers_submits_are_uncertain_and_its_jobs_are_read_again(
    share: str,
) -> None:
    batch = _name()
    async with (
        _journal(share, batch, lease=SHORT) as lost,
        _journal(share, batch, lease=30.0) as survivor,
    ):
        lost.add_requests(_entries(4))
        assert await survivor.held_elsewhere() == 0  # (connected before the clock runs)
        rows = [row for row, _ in await lost.claim(4)]
        lost.start()
        for row in rows[:2]:
            await lost.write_durably(row.moved("submitting"))
        for row in rows[2:]:
            await lost.write_durably(row.moved("submitted", job_id=f"job-{row.key}"))
        await lost.stop()  # and lost renews nothing from here on: it is gone
        assert await survivor.claim(10) == []  # its lease still runs: nothing is taken
        assert await survivor.held_elsewhere() == 4
        await asyncio.sleep(SHORT + 0.2)
        claimed = await survivor.claim(10)
        assert [(row.key, row.state, row.job_id) for row, _ in claimed] == [
            ("k0002", "submitted", "job-k0002"),
            ("k0003", "submitted", "job-k0003"),
        ]
        assert claimed[0][1] == {"prompt": "prompt 2"}
        loaded = survivor.load()
        for key in ("k0000", "k0001"):
            error = loaded[key].error
            assert loaded[key].state == "uncertain"
            assert loaded[key].error_type == "SubmissionUncertainError"
            assert error is not None and lost.worker in error and "lost" in error
        assert await survivor.held_elsewhere() == 0
        assert await survivor.claim(10) == []  # uncertain rows are never sent again
        workers = await _column(share, WORKERS, batch)
        assert workers["k0002"] == workers["k0003"] == survivor.worker


async def test_a_claim_takes_jobs_to_read_again_then_pending_rows(share: str) -> None:
    batch = _name()
    async with _journal(share, batch, lease=0.2) as lost, _journal(share, batch) as other:
        lost.add_requests(_entries(8))
        lost.start()
        for row, _ in await lost.claim(4):
            if row.line % 2:  # k0000 and k0002: sent, their jobs running
                await lost.write_durably(row.moved("submitted", job_id=f"job-{row.key}"))
        await asyncio.sleep(0.4)
        claimed = await other.claim(3)
        assert [(row.key, row.state) for row, _ in claimed] == [
            ("k0000", "submitted"),
            ("k0001", "pending"),  # claimed by the lost worker, never sent: anyone's again
            ("k0002", "submitted"),
        ]
        assert [row.key for row, _ in await other.claim(100)] == [
            "k0003", "k0004", "k0005", "k0006", "k0007",
        ]  # fmt: skip


async def test_held_elsewhere_counts_live_rows_until_their_lease_runs_out(share: str) -> None:
    batch = _name()
    async with (
        _journal(share, batch, lease=1.0) as holder,
        _journal(share, batch) as waiter,
    ):
        holder.add_requests(_entries(5))
        assert len(await holder.claim(3)) == 3
        assert await waiter.held_elsewhere() == 3
        assert await holder.held_elsewhere() == 0  # its own rows are not "elsewhere"
        for _ in range(5):  # 1.5 s of heartbeats: longer than the lease
            await asyncio.sleep(0.3)
            assert await holder.renew() == 3
        assert await waiter.held_elsewhere() == 3
        await _until(lambda: _zero(waiter.held_elsewhere()), within=5.0)
        assert {row.key for row, _ in await waiter.claim(10)} == {f"k{i:04d}" for i in range(5)}


async def _zero(count: Any) -> bool:
    return bool(await count == 0)


async def test_move_leaves_live_workers_rows_alone(share: str) -> None:
    batch = _name()
    async with (
        _journal(share, batch, lease=30.0) as live,
        _journal(share, batch, lease=0.2) as dead,
        _journal(share, batch) as setup,
    ):
        setup.add_requests(_entries(4))
        live.start()
        dead.start()
        for row, _ in await live.claim(2):
            await live.write_durably(row.moved("submitting"))
        for row, _ in await dead.claim(2):
            await dead.write_durably(row.moved("submitting"))
        await asyncio.sleep(0.4)
        lost = setup.move("submitting", "uncertain", error_type="X", error="lost")
        assert lost == 2
        states = {key: row.state for key, row in setup.load().items()}
        assert states == {
            "k0000": "submitting",  # in flight at a live worker right now
            "k0001": "submitting",
            "k0002": "uncertain",
            "k0003": "uncertain",
        }
        # The live worker's outcome lands; --resubmit-uncertain frees the others.
        await live.write_durably(setup.current["k0000"].moved("submitted", job_id="j0"))
        assert setup.move("uncertain", "pending", error_type=None, error=None) == 2
        assert {row.key for row, _ in await live.claim(10)} == {"k0002", "k0003"}
        assert setup.load()["k0000"].job_id == "j0"


async def test_writes_persist_and_finished_rows_let_go(share: str) -> None:
    batch = _name()
    async with _journal(share, batch) as journal:
        journal.add_requests(_entries(5))
        rows = {row.key: row for row, _ in await journal.claim(5)}
        journal.start()
        await journal.write_durably(rows["k0000"].moved("submitting"))
        journal.write(rows["k0000"].moved("submitted", job_id="j0"))
        journal.write(rows["k0001"].moved("submitted", job_id="j1"))
        journal.write(journal.current["k0001"].moved("succeeded", outputs=("https://x/1.png",)))
        journal.write(rows["k0002"].moved("failed", error=("JobFailedError", "nsfw")))
        journal.write(rows["k0003"].moved("pending"))  # put back: nothing was sent
        await journal.write_durably(rows["k0004"].moved("submitting"))
        journal.write(rows["k0004"].moved("succeeded", files=("a.png",)))
        await journal.stop()
        await journal.stop()  # twice is fine
    async with _journal(share, batch) as reopened:
        loaded = reopened.load()
        assert loaded["k0000"] == rows["k0000"].moved("submitted", job_id="j0")
        assert loaded["k0001"].state == "succeeded" and loaded["k0001"].job_id == "j1"
        assert loaded["k0001"].outputs == ("https://x/1.png",)
        assert loaded["k0002"].error == "nsfw" and loaded["k0002"].state == "failed"
        assert loaded["k0003"].state == "pending" and loaded["k0004"].files == ("a.png",)
        assert reopened.current is loaded
    leases = await _column(share, "select key, lease from creative_rows where batch = %s", batch)
    workers = await _column(share, WORKERS, batch)
    assert leases["k0000"] is not None  # submitted: held
    assert leases["k0001"] is None and leases["k0002"] is None and leases["k0003"] is None
    assert workers["k0003"] is None  # put back: anyone's
    assert workers["k0001"] == journal.worker  # finished: whose it was, for status


async def test_a_row_another_worker_took_is_not_written(share: str) -> None:
    batch = _name()
    async with (
        _journal(share, batch, lease=0.2) as slow,
        _journal(share, batch) as other,
    ):
        slow.add_requests(_entries(2))
        [(row, _)] = await slow.claim(1)
        await asyncio.sleep(0.4)  # slow's lease runs out before it sends
        assert [r.key for r, _ in await other.claim(1)] == [row.key]
        slow.start()
        with pytest.raises(RowTakenError):
            await slow.write_durably(row.moved("submitting"))
        assert slow.current[row.key] == row  # not so: it must not send
        other.start()
        await other.write_durably(row.moved("submitting"))
        # A row nobody claimed is claimed by the write itself (as the SQLite run does).
        await slow.write_durably(Row(key="k0001", line=2).moved("submitting"))
        assert await other.held_elsewhere() == 1


async def test_add_requests_is_idempotent(share: str) -> None:
    batch = _name()
    with_new = [*_entries(3), ("k0003", 4, {"prompt": "new"})]
    async with _journal(share, batch) as journal:
        journal.add_requests(_entries(3))
        [(row, _)] = await journal.claim(1)
        journal.start()
        journal.write(row.moved("failed", error=("JobFailedError", "no")))
        await journal.stop()
        changed = [(key, line + 10, {"prompt": "changed"}) for key, line, _ in with_new]
        journal.add_requests(changed[:3] + with_new[3:])
        journal.add_requests(with_new)
        loaded = journal.load()
        assert len(loaded) == 4 and loaded["k0000"].state == "failed"
        assert {key: row.line for key, row in loaded.items()} == {
            "k0000": 1, "k0001": 2, "k0002": 3, "k0003": 4,
        }  # fmt: skip
        assert journal.requests() == {key: (line, req) for key, line, req in with_new}
        assert journal.retry_failed("JobFailedError") == 1
        assert journal.load()["k0000"] == Row(key="k0000", line=1)


async def test_meta_is_merged(share: str) -> None:
    batch = _name()
    async with _journal(share, batch) as journal:
        assert journal.meta() == {}
        journal.set_meta(provider="deepixels", input_path="/in.jsonl")
        journal.set_meta(input_sha256="abc", input_path="/other.jsonl")
        assert journal.meta() == {
            "provider": "deepixels", "input_sha256": "abc", "input_path": "/other.jsonl",
        }  # fmt: skip
    async with _journal(share, _name()) as unrelated:
        assert unrelated.meta() == {}


async def test_counts_and_finished(share: str) -> None:
    batch = _name()
    async with _journal(share, batch) as one, _journal(share, batch) as two:
        one.add_requests(_entries(4))
        assert not await one.finished()
        one.start()
        two.start()
        [(a, _)] = await one.claim(1)
        [(b, _)] = await two.claim(1)
        await one.write_durably(a.moved("succeeded"))
        await two.write_durably(b.moved("submitted", job_id="j"))
        counts = await one.counts()
        assert counts["*"] == {"pending": 2, "succeeded": 1, "submitted": 1}
        assert counts[one.worker] == {"succeeded": 1}
        assert counts[two.worker] == {"submitted": 1}
        for row, _ in await one.claim(5):
            await one.write_durably(row.moved("uncertain"))
        assert not await one.finished()
        await two.write_durably(two.current[b.key].moved("failed", error=("E", "x")))
        assert await one.finished() and await two.finished()


async def test_a_version_2_schema_is_upgraded_to_3(postgres: PostgresServer) -> None:
    url = await _database(postgres, "journal_v2")
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(MIGRATIONS[1])
        await conn.execute(MIGRATIONS[2])
        await conn.execute(
            "insert into creative_meta (version, salt, secret) values (2, 'salt', 'secret')"
        )
    async with _journal(url, "b") as journal:
        journal.add_requests(_entries(2))  # the sync connection upgrades
        assert len(await journal.claim(5)) == 2
    async with await psycopg.AsyncConnection.connect(url) as conn:
        row = await (await conn.execute("select version, salt from creative_meta")).fetchone()
    assert row is not None and row[0] == VERSION == 3 and bytes(row[1]) == b"salt"
    fresh = await _database(postgres, "journal_fresh")
    async with _journal(fresh, "b") as journal:
        assert await journal.claim(5) == []  # the async connection makes the schema too
        assert journal.load() == {}


async def test_an_unreachable_database_is_a_journal_error_in_time() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    url = f"postgresql://creative:hunter2@127.0.0.1:{port}/db"
    async with asyncio.timeout(15):
        async with _journal(url, "b", patience=1.0, connect_timeout=1.0) as journal:
            with pytest.raises(JournalError) as caught:
                await asyncio.to_thread(journal.load)
            assert "hunter2" not in str(caught.value)
            with pytest.raises(JournalError, match="unreachable"):
                await journal.claim(1)
            journal.start()
            with pytest.raises(JournalError):
                await journal.write_durably(Row(key="k", line=1).moved("submitting"))
            journal.write(Row(key="k", line=1).moved("submitted", job_id="j"))
            with pytest.raises(JournalError, match="not written"):
                await journal.stop()


async def test_a_restarted_database_pauses_the_writes_and_loses_none(
    postgres: PostgresServer,
) -> None:
    batch = _name()
    async with _journal(postgres.url, batch) as journal:
        journal.add_requests(_entries(20))
        rows = [row for row, _ in await journal.claim(20)]
        journal.start()
        for row in rows[:10]:
            await journal.write_durably(row.moved("submitting"))
        await asyncio.to_thread(postgres.restart)
        async with asyncio.timeout(30):
            for row in rows[:10]:
                journal.write(row.moved("submitted", job_id=f"j-{row.key}"))
            for row in rows[10:]:
                await journal.write_durably(row.moved("submitting"))
            assert await journal.renew() == 20
            await journal.stop()
        states = {row.state for row in journal.load().values()}
        assert states == {"submitting", "submitted"}
        assert sum(row.job_id is not None for row in journal.current.values()) == 10
