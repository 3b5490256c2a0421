"""``CreativeClient.journaled``: a batch that survives a crash, for an app, on either
journal backend (a SQLite file, or PostgreSQL for many processes). Each test runs
against both, the same way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from creative_client import (
    CreativeClient,
    InvalidRequestError,
    JournalRow,
    SyncCreativeClient,
)
from creative_client.testing import FakeDeepixels, FakeProcess, PostgresServer, Reply

KEY = "journaled-test-key-3c8e"


@pytest.fixture(params=["sqlite", "postgresql"])
async def journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Where a test's journal lives: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "batch.journal")
        return
    postgres: PostgresServer = request.getfixturevalue("postgres")
    name = f"journaled_{abs(hash(request.node.name)) % 10**8}"
    async with await psycopg.AsyncConnection.connect(postgres.url, autocommit=True) as conn:
        await conn.execute(f"drop database if exists {name}")
        await conn.execute(f"create database {name}")
    yield postgres.url.rsplit("/", 1)[0] + "/" + name


def _client(fake: FakeDeepixels, **options: Any) -> CreativeClient:
    return CreativeClient(
        "deepixels", KEY, base_url=fake.base_url, model="m", poll_initial=0.02,
        poll_max=0.05, **options,
    )  # fmt: skip


async def test_a_batch_runs_and_a_second_run_sends_nothing(journal: str) -> None:
    requests = {f"id-{i}": f"prompt {i}" for i in range(12)}
    async with FakeDeepixels(job_duration=0.05, api_key=KEY) as fake:
        async with _client(fake) as client:
            rows = [row async for row in client.journaled(requests, journal)]
        assert sorted(str(row.id) for row in rows) == sorted(requests)
        assert all(row.state == "succeeded" and row.outputs for row in rows)
        async with _client(fake) as client:
            again = [row async for row in client.journaled(requests, journal)]
        assert {row.id: row.job_id for row in again} == {row.id: row.job_id for row in rows}
        assert fake.count("submit") == 12  # the second run read the journal only


async def test_a_crash_mid_batch_resumes_without_sending_twice(journal: str) -> None:
    requests = {i: f"prompt {i}" for i in range(30)}
    async with FakeDeepixels(job_duration=0.3, api_key=KEY) as fake:
        async with _client(fake, concurrency=8) as client:
            seen: list[JournalRow] = []

            async def crash_after_some() -> None:
                async for row in client.journaled(requests, journal):
                    seen.append(row)

            task = asyncio.ensure_future(crash_after_some())
            for _ in range(300):  # at most 6 s: some finished, others in flight
                if len(seen) >= 5:
                    break
                await asyncio.sleep(0.02)
            task.cancel()  # as a crash would, mid-flight
            with pytest.raises(asyncio.CancelledError):
                await task
        async with _client(fake, concurrency=8) as client:
            rows = [row async for row in client.journaled(requests, journal)]
    assert sorted(row.id for row in rows) == list(range(30))
    assert max(fake.prompts.values()) == 1  # no prompt reached the provider twice
    states = [row.state for row in rows]
    assert states.count("succeeded") + states.count("uncertain") == 30
    assert states.count("uncertain") <= 8  # only submits cut short in flight


async def test_uncertain_rows_are_sent_again_only_when_asked(journal: str) -> None:
    requests = {"a": "prompt a", "b": "prompt b"}
    async with FakeDeepixels(job_duration=0.05, api_key=KEY) as fake:
        fake.inject("submit", Reply(kind="drop"))  # the answer to the first submit is lost
        async with _client(fake) as client:
            rows = {row.id: row for row in await _all(client, requests, journal)}
        uncertain = [key for key, row in rows.items() if row.state == "uncertain"]
        assert len(uncertain) == 1
        async with _client(fake) as client:
            again = await _all(client, requests, journal)
        assert [r.state for r in again if r.id == uncertain[0]] == ["uncertain"]
        submits = fake.count("submit")
        async with _client(fake) as client:
            last = await _all(client, requests, journal, resubmit_uncertain=True)
        assert all(row.state == "succeeded" for row in last)
        assert fake.count("submit") == submits + 1


async def _all(
    client: CreativeClient,
    requests: dict[str, str],
    journal: str,
    resubmit_uncertain: bool = False,
) -> list[JournalRow]:
    stream = client.journaled(requests, journal, resubmit_uncertain=resubmit_uncertain)
    return [row async for row in stream]


async def test_a_bad_request_is_refused_before_anything_is_sent(journal: str) -> None:
    async with FakeDeepixels(api_key=KEY) as fake:
        async with _client(fake) as client:
            with pytest.raises(InvalidRequestError, match="'b'"):
                await _all(client, {"a": "fine", "b": ""}, journal)
        assert fake.count("submit") == 0


def test_the_blocking_client_runs_a_journaled_batch(tmp_path: Path) -> None:
    journal = tmp_path / "batch.journal"
    with FakeProcess("deepixels", job_duration=0.05) as fake:
        options: dict[str, Any] = {"model": "m", "base_url": fake.base_url, "poll_initial": 0.02}
        with SyncCreativeClient("deepixels", KEY, **options) as client:
            rows = list(client.journaled({"a": "prompt a", "b": "prompt b"}, journal))
            again = list(client.journaled({"a": "prompt a", "b": "prompt b"}, journal))
        assert fake.stats()["submit"] == 2
    assert sorted(row.id for row in rows) == ["a", "b"]
    assert {row.id: row.job_id for row in again} == {row.id: row.job_id for row in rows}
