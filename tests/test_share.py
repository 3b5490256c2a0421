"""One provider budget shared by many processes through PostgreSQL (``share=``).

Every test runs against the real PostgreSQL server the suite starts (``postgres`` in
conftest.py) and real client processes where processes matter; the fake provider
counts what the fleet did (jobs in flight, requests per window).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from creative_client import (
    ConfigurationError,
    CreativeClient,
    JobTimeoutError,
    ShareUnavailableError,
)
from creative_client.testing import FakeDeepixels, PostgresServer

KEY = "sk-share-test-7d1e0c9a55"
WORKER = Path(__file__).with_name("_share_worker.py")
#: The stated bound on requests in any one-second window (``_pg/_budget.py``).
OVERSHOOT = 1.1


def _options(fake: FakeDeepixels, share: str, **more: Any) -> dict[str, Any]:
    return {
        "api_key": KEY, "base_url": fake.base_url, "model": "m", "share": share,
        "poll_initial": 0.05, "poll_max": 0.1, "concurrency": 64, **more,
    }  # fmt: skip


async def _worker(tag: str, n: int, options: dict[str, Any]) -> asyncio.subprocess.Process:
    settings = json.dumps({"tag": tag, "n": n, "options": options})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(WORKER), settings,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    async with asyncio.timeout(30):
        line = await proc.stdout.readline()
    assert line == b"ready\n", (line, await proc.stderr.read() if proc.stderr else b"")
    return proc


async def _result(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    async with asyncio.timeout(50):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def _busiest_second(times: Sequence[float]) -> int:
    """The most requests in any one-second window."""
    ordered, most, start = sorted(times), 0, 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


async def test_processes_share_max_jobs(share: str) -> None:
    async with FakeDeepixels(job_duration=0.2, api_key=KEY) as fake:
        options = _options(fake, share, max_jobs=6)
        procs = [await _worker(tag, 20, options) for tag in "abc"]
        results = [await _result(p) for p in procs]
        assert [r["ok"] for r in results] == [20, 20, 20], results
        assert fake.count("submit") == 60
        assert fake.peak_active <= 6  # never more in flight at the provider, fleet-wide
        assert fake.peak_active >= 4  # and the budget was used


async def test_processes_share_the_rate(share: str) -> None:
    rate = 40
    async with FakeDeepixels(job_duration=0.0, api_key=KEY) as fake:
        options = _options(fake, share, rate=rate)
        procs = [await _worker(tag, 25, options) for tag in "abc"]
        results = [await _result(p) for p in procs]
        assert [r["ok"] for r in results] == [25, 25, 25], results
        times = [r.at for r in fake.requests]
        assert len(times) >= 150
        assert _busiest_second(times) <= rate * OVERSHOOT + 1


async def test_without_share_each_process_has_its_own_budget(share: str) -> None:
    """The problem ``share`` solves, as a check that the test above can fail."""
    rate = 40
    async with FakeDeepixels(job_duration=0.0, api_key=KEY) as fake:
        options = _options(fake, share, rate=rate)
        del options["share"]
        procs = [await _worker(tag, 25, options) for tag in "abc"]
        await asyncio.gather(*(_result(p) for p in procs))
        assert _busiest_second([r.at for r in fake.requests]) > rate * OVERSHOOT + 1


async def test_a_killed_process_gives_its_slots_back_within_the_lease(share: str) -> None:
    async with FakeDeepixels(job_duration=3600.0, api_key=KEY) as fake:
        options = _options(fake, share, max_jobs=4, share_lease=1.0)
        doomed = await _worker("doomed", 4, options)
        for _ in range(1000):  # at most 20 s
            if fake.count("submit") == 4:
                break
            await asyncio.sleep(0.02)
        doomed.send_signal(signal.SIGKILL)
        await doomed.wait()
        fake.job_duration = 0.05
        async with asyncio.timeout(20), CreativeClient("deepixels", **options) as client:
            outcomes = await client.generate_many([f"after-{i}" for i in range(8)])
        assert all(o.ok for o in outcomes)
        assert fake.count("submit") == 12


async def test_clients_in_one_process_share_too(share: str) -> None:
    async with FakeDeepixels(job_duration=0.1, api_key=KEY) as fake:
        options = _options(fake, share, max_jobs=3)
        async with (
            CreativeClient("deepixels", **options) as one,
            CreativeClient("deepixels", **options) as two,
        ):
            batches = await asyncio.gather(
                one.generate_many([f"one-{i}" for i in range(12)]),
                two.generate_many([f"two-{i}" for i in range(12)]),
            )
        assert all(o.ok for batch in batches for o in batch)
        assert fake.peak_active <= 3


async def test_submit_holds_a_slot_until_the_job_is_seen_finished(share: str) -> None:
    async with FakeDeepixels(job_duration=0.2, api_key=KEY) as fake:
        options = _options(fake, share, max_jobs=2)
        async with CreativeClient("deepixels", **options) as client:
            jobs = [await client.submit(f"p{i}") for i in range(2)]
            third = asyncio.ensure_future(client.submit("third"))
            await asyncio.sleep(0.4)  # both ended at the provider, unseen: no slot free
            assert not third.done()
            await client.wait(jobs[0])
            job = await asyncio.wait_for(third, 10)
            await client.wait(job)
            await client.wait(jobs[1])
        assert fake.count("submit") == 3


async def test_different_keys_are_different_accounts(share: str) -> None:
    async with FakeDeepixels(job_duration=0.3) as fake:
        first = _options(fake, share, max_jobs=1)
        second = {**first, "api_key": KEY + "-other"}
        async with (
            CreativeClient("deepixels", **first) as one,
            CreativeClient("deepixels", **second) as two,
        ):
            await asyncio.gather(one.generate("a"), two.generate("b"))
        assert fake.peak_active == 2  # each account had its own slot


async def test_nothing_secret_is_stored(share: str) -> None:
    async with FakeDeepixels(job_duration=0.0, api_key=KEY) as fake:
        options = _options(fake, share, max_jobs=2, rate=50)
        async with CreativeClient("deepixels", **options) as client:
            await client.generate("a")
    async with await psycopg.AsyncConnection.connect(share) as conn:
        dump = ""
        for table in ("creative_meta", "creative_accounts", "creative_holders"):
            rows = await (await conn.execute(f"select * from {table}")).fetchall()
            dump += repr(rows)
    assert KEY not in dump and KEY[-10:] not in dump


async def test_an_unreachable_database_is_a_clear_error_at_start() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    url = f"postgresql://creative:hunter2-secret@127.0.0.1:{port}/creative"
    async with FakeDeepixels(api_key=KEY) as fake:
        client = CreativeClient("deepixels", **_options(fake, url, max_jobs=2))
        with pytest.raises(ShareUnavailableError) as caught:
            async with asyncio.timeout(20):
                await client.__aenter__()
        assert client.closed
        assert "hunter2" not in str(caught.value) and "127.0.0.1" in str(caught.value)
        assert fake.count("submit") == 0


async def test_a_restarted_database_pauses_nothing_and_loses_nothing(
    postgres: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeDeepixels(job_duration=0.15, api_key=KEY) as fake:
        options = _options(fake, postgres.url, max_jobs=4, rate=200)
        async with CreativeClient("deepixels", **options) as client:
            batch = asyncio.ensure_future(
                client.generate_many([f"p{i}" for i in range(60)], concurrency=20)
            )
            await asyncio.sleep(0.3)
            await asyncio.to_thread(postgres.restart)
            async with asyncio.timeout(40):
                outcomes = await batch
        assert all(o.ok for o in outcomes)
        assert fake.count("submit") == 60  # none sent twice
        assert max(fake.prompts.values()) == 1
        assert fake.peak_active <= 4
    assert "lost the share's database" in caplog.text


async def test_a_newer_schema_is_refused(postgres: PostgresServer) -> None:
    async with await psycopg.AsyncConnection.connect(postgres.url, autocommit=True) as conn:
        await conn.execute("drop database if exists newer")
        await conn.execute("create database newer")
    url = postgres.url.rsplit("/", 1)[0] + "/newer"
    async with FakeDeepixels(api_key=KEY) as fake:
        async with CreativeClient("deepixels", **_options(fake, url, max_jobs=1)):
            pass  # creates the schema, version 1
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute("update creative_meta set version = 99")
        with pytest.raises(ShareUnavailableError, match="version 99"):
            async with CreativeClient("deepixels", **_options(fake, url, max_jobs=1)):
                pass


def test_share_must_be_a_postgresql_url() -> None:
    with pytest.raises(ConfigurationError, match="PostgreSQL URL"):
        CreativeClient("deepixels", KEY, model="m", share="sqlite:///x.db")
    with pytest.raises(ConfigurationError, match="max_jobs"):
        CreativeClient("deepixels", KEY, model="m", max_jobs=0)


def test_a_missing_extra_names_it() -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from creative_client import CreativeClient, ConfigurationError\n"
        "try:\n"
        "    CreativeClient('deepixels', 'k-12345678', model='m', share='postgresql://h/db')\n"
        "except ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "creative_client[postgres]" in out.stdout


def test_from_env_and_from_config_take_share(share: str, tmp_path: Path) -> None:
    env = {"CREATIVE_PROVIDER": "deepixels", "DEEPIXELS_API_KEY": KEY, "CREATIVE_SHARE": share}
    assert CreativeClient.from_env(env)._budget.slots is False  # share alone: no bounds
    config = tmp_path / "creative.toml"
    config.write_text(
        f'provider = "deepixels"\nshare = "{share}"\nmax_jobs = 8\nrate = 20\n'
        '[deepixels]\nmodel = "m"\n'
    )
    client = CreativeClient.from_config(config, {"DEEPIXELS_API_KEY": KEY})
    assert client._budget.slots is True and client._budget.gate is not None
    assert os.fspath(config)


async def test_a_callback_reaching_another_replica_is_handed_over(share: str) -> None:
    """The load balancer sends every callback to replica B; replica A awaits the jobs.
    A's fallback poll is 30 s away, so only the hand-over can end A's waits in time."""
    async with FakeDeepixels(job_duration=0.2, api_key=KEY) as fake:
        options = _options(fake, share, webhook_poll=30.0, webhook_listen="127.0.0.1:0")
        async with CreativeClient("deepixels", **options) as b:
            address = b.webhook_address
            assert address is not None
            a_options = {**options, "webhook_public_url": f"http://127.0.0.1:{address[1]}"}
            async with CreativeClient("deepixels", **a_options) as a:
                async with asyncio.timeout(15):
                    outcomes = await a.generate_many([f"p{i}" for i in range(20)])
                assert all(o.ok for o in outcomes)
                receiver_a, receiver_b = a.webhook_receiver, b.webhook_receiver
                assert receiver_a is not None and receiver_b is not None
                assert receiver_b.relayed == 20 and receiver_a.callbacks == 0
                reads = fake.count("get")
                assert reads <= 20 * 1.2  # one confirming read per job, on B
                # Replayed callback URLs (a finished job's, seen in a log, say) cause
                # no more reads.
                hooks = [r.json()["webhook"] for r in fake.requests if r.endpoint == "submit"]
                async with aiohttp.ClientSession() as session:
                    for url in hooks[:5] * 2:
                        body = {"jobId": "x", "status": "completed"}
                        async with session.post(url, json=body) as resp:
                            assert resp.status == 202
                await asyncio.sleep(0.2)
                assert fake.count("get") == reads
        assert fake.count("submit") == 20


async def test_a_forged_callback_is_not_relayed(share: str) -> None:
    async with FakeDeepixels(api_key=KEY) as fake:
        options = _options(fake, share, webhook_listen="127.0.0.1:0")
        async with CreativeClient("deepixels", **options) as client:
            address = client.webhook_address
            assert address is not None
            base = f"http://127.0.0.1:{address[1]}/creative-client/callback/"
            async with aiohttp.ClientSession() as session:
                for token in ("made-up", "abc.def", "x" * 24 + ".AAAAAAAAAAAAAAAAAAAAAA", "é.x"):
                    async with session.post(base + token, json={"job_id": "j"}) as resp:
                        assert resp.status == 404
            receiver = client.webhook_receiver
            assert receiver is not None and receiver.relayed == 0
        assert fake.count("get") == 0


async def test_max_jobs_without_share_bounds_one_process() -> None:
    async with FakeDeepixels(job_duration=0.1, api_key=KEY) as fake:
        options = _options(fake, "", max_jobs=3)
        del options["share"]
        async with CreativeClient("deepixels", **options) as client:
            outcomes = await client.generate_many([f"p{i}" for i in range(15)], concurrency=10)
            jobs = [await client.submit(f"s{i}") for i in range(3)]
            blocked = asyncio.ensure_future(client.submit("fourth"))
            await asyncio.sleep(0.3)
            assert not blocked.done()  # three submitted, none seen finished
            for job in jobs:
                await client.wait(job)
            await client.wait(await asyncio.wait_for(blocked, 10))
        assert all(o.ok for o in outcomes)
        assert fake.peak_active == 3


def test_two_cli_batches_share_one_budget(share: str, tmp_path: Path) -> None:
    from creative_client.testing import FakeProcess

    env = {k: v for k, v in os.environ.items() if not k.startswith("CREATIVE_")}
    env.update(CREATIVE_PROVIDER="deepixels", CREATIVE_MODEL="m", DEEPIXELS_API_KEY=KEY)
    for name in "ab":
        lines = [json.dumps({"id": f"{name}{i}", "prompt": f"{name} {i}"}) for i in range(12)]
        (tmp_path / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    with FakeProcess("deepixels", job_duration=0.2) as fake:
        budget = ["--base-url", fake.base_url, "--share", share, "--max-jobs", "3", "--quiet"]
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "creative_client", "batch", f"{name}.jsonl", *budget],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in "ab"
        ]
        for run in runs:
            _, err = run.communicate(timeout=60)
            assert run.returncode == 0, err
        stats = fake.stats()
    assert stats["submit"] == 24
    assert stats["peak_active"] <= 3


async def test_a_slot_given_back_is_not_also_taken_here(share: str) -> None:
    """A job starting while spare slots go back must not take one of them: the database
    already counts them free. Many short jobs of mixed lengths make that race common."""
    async with FakeDeepixels(job_duration=0.03, job_spread=0.9, api_key=KEY) as fake:
        options = _options(fake, share, max_jobs=4, poll_initial=0.01, poll_max=0.02)
        async with (
            CreativeClient("deepixels", **options) as one,
            CreativeClient("deepixels", **options) as two,
        ):

            async def trickle(client: CreativeClient, tag: str) -> list[bool]:
                results = []
                for i in range(40):  # jobs start one by one, as slots go back
                    batch = await client.generate_many([f"{tag}{i}-{k}" for k in range(3)])
                    results += [o.ok for o in batch]
                return results

            async with asyncio.timeout(50):
                done = await asyncio.gather(trickle(one, "a"), trickle(two, "b"))
        assert all(done[0]) and all(done[1])
        assert fake.peak_active <= 4


async def test_a_process_holding_every_slot_makes_room_for_one_that_waits(share: str) -> None:
    """A holds all 8 slots with 80 jobs queued; B comes with 4. B is served as A's jobs
    end (A is over its fair share and B wants), not when A's batch is done."""
    async with FakeDeepixels(job_duration=0.2, api_key=KEY) as fake:
        options = _options(fake, share, max_jobs=8)
        async with (
            CreativeClient("deepixels", **options) as a,
            CreativeClient("deepixels", **options) as b,
        ):
            # concurrency 8: A never has a job waiting for a slot, so it never asks the
            # database for more; only B's word that it waits makes A give slots back.
            first = asyncio.ensure_future(
                a.generate_many([f"a{i}" for i in range(80)], concurrency=8)
            )
            for _ in range(500):  # at most 10 s
                if fake.count("submit") >= 8:
                    break
                await asyncio.sleep(0.02)
            async with asyncio.timeout(30):
                second = await b.generate_many([f"b{i}" for i in range(4)])
                assert not first.done()  # B did not wait for A's whole batch
                assert all(o.ok for o in await first)
        assert all(o.ok for o in second)
        assert fake.peak_active <= 8


async def test_a_wait_given_up_keeps_the_slot_while_the_job_runs() -> None:
    async with FakeDeepixels(job_duration=0.6, api_key=KEY) as fake:
        options = _options(fake, "", max_jobs=1)
        del options["share"]
        async with CreativeClient("deepixels", **options) as client:
            with pytest.raises(JobTimeoutError) as caught:
                await client.generate("long", timeout=0.1)
            waiting = asyncio.ensure_future(client.generate("next"))
            await asyncio.sleep(0.2)
            assert not waiting.done()  # the first job still runs at the provider
            await client.wait(caught.value.job_id)  # seen finished: its slot comes back
            assert (await asyncio.wait_for(waiting, 10)).status.is_terminal
        assert fake.peak_active == 1


def test_a_password_is_never_shown(tmp_path: Path) -> None:
    for url in (
        "postgresql://app:Se/cret-pw@db.internal:5432/creative",
        "postgresql://app:S3cr%zzet-pw@db.internal/creative",
        "postgresql://app:p#cret-pw?x@db.internal/creative",
    ):
        with pytest.raises(ConfigurationError) as caught:
            CreativeClient("deepixels", KEY, model="m", share=url)
        assert "cret-pw" not in str(caught.value)


async def _database(postgres: PostgresServer, name: str) -> str:
    """A fresh database on the suite's server; its URL."""
    async with await psycopg.AsyncConnection.connect(postgres.url, autocommit=True) as conn:
        await conn.execute(f"drop database if exists {name}")
        await conn.execute(f"create database {name}")
    return postgres.url.rsplit("/", 1)[0] + "/" + name


async def test_a_database_error_is_waited_out_not_fatal(postgres: PostgresServer) -> None:
    """Not a lost connection but an error (a function gone, as after a bad failover):
    the budget keeps trying, and the jobs go on once the database is right again."""
    url = await _database(postgres, "broken")
    async with FakeDeepixels(job_duration=0.05, api_key=KEY) as fake:
        async with CreativeClient("deepixels", **_options(fake, url, max_jobs=2)) as client:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                args = "text, uuid, integer, integer, integer, double precision, integer, text"
                alter = "alter function {}(" + args + ") rename to {}"
                await conn.execute(alter.format("creative_take_slots", "creative_gone"))
                batch = asyncio.ensure_future(client.generate_many(["a", "b", "c", "d"]))
                await asyncio.sleep(0.5)
                assert fake.count("submit") == 0
                await conn.execute(alter.format("creative_gone", "creative_take_slots"))
            async with asyncio.timeout(30):
                outcomes = await batch
        assert all(o.ok for o in outcomes)


async def test_a_version_1_schema_is_upgraded(postgres: PostgresServer) -> None:
    from creative_client._pg._schema import MIGRATIONS, VERSION

    url = await _database(postgres, "older")
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(MIGRATIONS[1])
        await conn.execute(
            "insert into creative_meta (version, salt, secret) values (1, 'salt', 'secret')"
        )
    async with FakeDeepixels(job_duration=0.05, api_key=KEY) as fake:
        async with CreativeClient("deepixels", **_options(fake, url, max_jobs=2)) as client:
            outcomes = await client.generate_many(["a", "b", "c"])
        assert all(o.ok for o in outcomes)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        row = await (await conn.execute("select version, salt from creative_meta")).fetchone()
    assert row is not None and row[0] == VERSION and bytes(row[1]) == b"salt"


async def test_closing_wakes_calls_waiting_for_a_turn(share: str) -> None:
    async with FakeDeepixels(api_key=KEY) as fake:
        client = CreativeClient("deepixels", **_options(fake, share, rate=2))
        await client.__aenter__()
        job = await client.submit("a")
        reads = [asyncio.ensure_future(client.get(job.id)) for _ in range(6)]
        await asyncio.sleep(0.3)  # two turns a second: most wait
        await client.aclose()
        async with asyncio.timeout(10):
            results = await asyncio.gather(*reads, return_exceptions=True)
        assert any(isinstance(r, RuntimeError) for r in results)


async def test_a_client_used_without_async_with_opens_the_share_once(
    postgres: PostgresServer,
) -> None:
    """Its first slots and turns, asked for at once, wait for one opening: none is taken
    before the account is known."""
    url = await _database(postgres, "lazy")
    async with FakeDeepixels(job_duration=0.05, api_key=KEY) as fake:
        client = CreativeClient("deepixels", **_options(fake, url, max_jobs=2, rate=200))
        try:
            outcomes = await client.generate_many([f"p{i}" for i in range(12)])
        finally:
            await client.aclose()
        assert all(o.ok for o in outcomes)
        assert fake.peak_active <= 2
    async with await psycopg.AsyncConnection.connect(url) as conn:
        found = await (await conn.execute("select account from creative_accounts")).fetchall()
    assert len(found) == 1 and found[0][0] != ""
