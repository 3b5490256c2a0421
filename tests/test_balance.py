"""The account's balance: ``client.balance()`` (Neocu's ``GET /compute``), the fake's
compute spent per job (402 once it is gone), ``creative balance``, and ``creative batch``
reading it before it sends anything. Real adapters over real HTTP against the fakes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from _helpers import API_KEY, client_for

from creative_client import (
    AuthenticationError,
    CreativeError,
    InsufficientBalanceError,
    NotSupportedError,
    ProviderResponseError,
    SyncCreativeClient,
)
from creative_client.testing import FakeDeepixels, FakeNeocu, PostgresServer, Reply

TIMEOUT = 60


def submitted_queries(fake: FakeNeocu) -> list[str]:
    """The prompt of every submit that reached the fake, refused ones included."""
    return [json.loads(r.body)["query"] for r in fake.requests if r.endpoint == "submit"]


# -- the library ------------------------------------------------------------------------


async def test_neocu_balance_is_the_fakes_compute_and_goes_down_per_job() -> None:
    async with FakeNeocu(api_key=API_KEY, compute=5) as fake, client_for(fake) as client:
        assert await client.balance() == 5.0
        await client.generate("a red fox")
        await client.generate("a blue whale")
        left = await client.balance()
        assert left == 3.0 and isinstance(left, float)
    reads = [r for r in fake.requests if r.endpoint == "compute"]
    assert len(reads) == 2
    assert all(r.method == "GET" and r.path == "/v1/compute" for r in reads)
    assert all(r.headers["api-key"] == API_KEY for r in reads)


async def test_a_job_costs_job_cost_and_a_submit_it_cannot_pay_for_is_a_402() -> None:
    async with FakeNeocu(api_key=API_KEY, compute=5, job_cost=2.5) as fake:
        async with client_for(fake) as client:
            await client.generate("one")
            assert await client.balance() == 2.5
            await client.generate("two")
            assert await client.balance() == 0.0
            with pytest.raises(InsufficientBalanceError) as caught:
                await client.submit("three")
        assert caught.value.status == 402
        assert caught.value.provider_message == "Payment Required: low compute balance"
        assert len(fake.jobs) == 2 and fake.count("submit") == 3  # refused: no job, no retry
        assert fake.compute == 0.0


async def test_unlimited_compute_is_the_default_and_never_runs_out() -> None:
    async with FakeNeocu(api_key=API_KEY) as fake, client_for(fake) as client:
        outcomes = await client.generate_many([f"prompt {i}" for i in range(20)])
        assert all(o.ok for o in outcomes)
        assert await client.balance() == float(FakeNeocu.unlimited_compute)


async def test_a_provider_without_a_balance_says_so_before_sending(
    deepixels: FakeDeepixels,
) -> None:
    async with client_for(deepixels) as client:
        with pytest.raises(NotSupportedError) as caught:
            await client.balance()
    assert isinstance(caught.value, CreativeError)
    assert caught.value.provider == "deepixels" and caught.value.status is None
    assert "deepixels documents no account balance" in str(caught.value)
    assert deepixels.requests == [] and sum(deepixels.counts.values()) == 0


async def test_a_closed_client_reads_no_balance(neocu: FakeNeocu) -> None:
    client = client_for(neocu)
    async with client:
        pass
    with pytest.raises(RuntimeError):
        await client.balance()
    assert neocu.count("compute") == 0


@pytest.mark.parametrize(
    ("reply", "said"),
    [
        (Reply.html(200), "not JSON"),
        (Reply(json={"isSuccess": True}), "no 'compute' number"),
        (Reply(json={"isSuccess": True, "compute": None}), "no 'compute' number"),
        (Reply(json={"isSuccess": False, "error": "System Error"}), "isSuccess=false"),
        (Reply(json={"isSuccess": True, "compute": "12"}), "breaks its contract"),
        (Reply(json={"isSuccess": True, "compute": True}), "breaks its contract"),
        (Reply(json={"isSuccess": "yes", "compute": 3}), "breaks its contract"),
        (Reply(body='{"isSuccess": true, "compute": NaN}'), "breaks its contract"),
        (Reply(json=[{"compute": 3}]), "not a JSON object"),
    ],
    ids=["html", "missing", "null", "unsuccessful", "string", "bool", "odd-flag", "nan", "list"],
)
async def test_an_odd_compute_answer_is_a_provider_response_error(
    neocu: FakeNeocu, reply: Reply, said: str
) -> None:
    neocu.inject("compute", reply)
    async with client_for(neocu) as client:
        with pytest.raises(ProviderResponseError) as caught:
            await client.balance()
    assert said in str(caught.value)
    assert neocu.count("compute") == 1  # a broken answer is not asked again


async def test_what_the_contract_leaves_open_is_tolerated(neocu: FakeNeocu) -> None:
    neocu.inject("compute", Reply(json={"compute": 7, "unit": "credits"}))  # no isSuccess
    neocu.inject("compute", Reply(json={"isSuccess": True, "compute": -1.5}))  # overdrawn
    async with client_for(neocu) as client:
        assert await client.balance() == 7.0
        assert await client.balance() == -1.5


async def test_the_balance_is_read_as_a_read_retried_on_503_and_429(neocu: FakeNeocu) -> None:
    neocu.inject("compute", Reply(status=503), Reply(status=429), Reply.html(502))
    async with client_for(neocu) as client:
        assert await client.balance() == float(FakeNeocu.unlimited_compute)
    assert neocu.count("compute") == 4


async def test_a_wrong_key_is_an_authentication_error() -> None:
    async with (
        FakeNeocu(api_key="another-key-entirely", compute=3) as fake,
        client_for(fake) as client,
    ):
        with pytest.raises(AuthenticationError):
            await client.balance()


async def test_the_sync_client_reads_the_balance() -> None:
    async with FakeNeocu(api_key=API_KEY, compute=4) as fake:
        # The fake answers on this loop: the blocking calls run in a thread.
        client = SyncCreativeClient("neocu", API_KEY, base_url=fake.base_url, poll_initial=0.01)
        try:
            assert await asyncio.to_thread(client.balance) == 4.0
            await asyncio.to_thread(client.generate, "a red fox")
            assert await asyncio.to_thread(client.balance) == 3.0
        finally:
            await asyncio.to_thread(client.close)


def test_the_sync_client_on_a_provider_without_a_balance() -> None:
    # Nothing is sent, so nothing needs to listen there.
    client = SyncCreativeClient("deepixels", "k", base_url="http://127.0.0.1:9/v1")
    with client, pytest.raises(NotSupportedError, match="deepixels"):
        client.balance()


# -- the command --------------------------------------------------------------------------


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CREATIVE_") and not k.endswith("_API_KEY")
    }
    env.update(
        CREATIVE_PROVIDER="neocu",
        NEOCU_API_KEY=API_KEY,
        DEEPIXELS_API_KEY=API_KEY,
        CREATIVE_MODEL="flux-schnell",
        CREATIVE_SIMULATE_STATE=str(tmp_path / ".simulated"),
    )
    env.update(extra)
    return env


async def creative(*args: str | Path, cwd: Path, **env: str) -> tuple[int, str, str]:
    """The command as a process of its own (the fakes answer on this loop meanwhile):
    its exit status, stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "creative_client", *map(str, args),
        cwd=cwd, env=environment(cwd, **env), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def write_inputs(path: Path, n: int) -> list[str]:
    ids = [f"row-{i}" for i in range(n)]
    path.write_text("".join(json.dumps({"id": i, "prompt": f"prompt {i}"}) + "\n" for i in ids))
    return ids


def read_out(path: Path) -> dict[str, dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return {line["id"]: line for line in lines}


async def test_creative_balance_prints_the_number(tmp_path: Path) -> None:
    async with FakeNeocu(api_key=API_KEY, compute=42) as fake:
        status, out, err = await creative("balance", "--base-url", fake.base_url, cwd=tmp_path)
        assert (status, out) == (0, "42\n"), err
        fake.compute = 12.5
        status, out, err = await creative("balance", "--base-url", fake.base_url, cwd=tmp_path)
        assert (status, out) == (0, "12.5\n"), err
    assert fake.count("compute") == 2 and fake.count("submit") == 0


async def test_creative_balance_exit_statuses(tmp_path: Path) -> None:
    async with FakeDeepixels(api_key=API_KEY) as fake:
        status, out, err = await creative(
            "balance", "--provider", "deepixels", "--base-url", fake.base_url, cwd=tmp_path
        )
        assert status == 2 and out == "", err
        assert "deepixels documents no account balance" in err
        assert sum(fake.counts.values()) == 0
    async with FakeNeocu(api_key="not-the-key-we-send", compute=3) as fake:
        status, out, err = await creative("balance", "--base-url", fake.base_url, cwd=tmp_path)
        assert status == 1 and out == "" and "AuthenticationError" in err, err
        assert API_KEY not in err


async def test_creative_balance_simulated(tmp_path: Path) -> None:
    status, out, err = await creative("balance", "--simulate", "--provider", "neocu", cwd=tmp_path)
    assert (status, out) == (0, f"{FakeNeocu.unlimited_compute}\n"), err


async def test_a_batch_runs_into_an_empty_balance_and_sends_nothing_twice(tmp_path: Path) -> None:
    """Compute for 5 jobs, 8 rows, one at a time: 5 succeed, the 3 after fail with
    InsufficientBalanceError, each prompt reaches the fake once; a rerun sends nothing."""
    ids = write_inputs(tmp_path / "in.jsonl", 8)
    async with FakeNeocu(api_key=API_KEY, compute=5) as fake:
        args = ("batch", "in.jsonl", "--out", "out.jsonl", "--base-url", fake.base_url)
        status, _, err = await creative(*args, "--concurrency", "1", cwd=tmp_path)
        assert status == 1, err
        assert "5 succeeded, 3 failed" in err
        out = read_out(tmp_path / "out.jsonl")
        assert [out[i]["status"] for i in ids] == ["succeeded"] * 5 + ["failed"] * 3
        for i in ids[5:]:
            assert out[i]["error"]["type"] == "InsufficientBalanceError", out[i]
            assert "low compute balance" in out[i]["error"]["message"]
            assert out[i]["job_id"] is None
        assert sorted(submitted_queries(fake)) == sorted(f"prompt {i}" for i in ids)
        assert len(fake.jobs) == 5 and fake.compute == 0
        # Run again: the failed rows are finished, so nothing is sent (nor the balance read).
        status, _, err = await creative(*args, cwd=tmp_path)
        assert status == 1, err
        assert fake.count("submit") == 8 and fake.count("compute") == 1
    assert read_out(tmp_path / "out.jsonl") == out


async def test_a_batch_stops_before_any_submit_when_the_balance_is_zero(tmp_path: Path) -> None:
    ids = write_inputs(tmp_path / "in.jsonl", 4)
    async with FakeNeocu(api_key=API_KEY, compute=0) as fake:
        args = ("batch", "in.jsonl", "--out", "out.jsonl", "--base-url", fake.base_url)
        status, _, err = await creative(*args, cwd=tmp_path)
        assert status == 2, err
        assert "the neocu balance is 0: nothing was sent" in err and "--force" in err
        assert fake.count("compute") == 1 and fake.count("submit") == 0
        assert not (tmp_path / "out.jsonl").exists()
        # --force goes on: every submit is refused (402), none is sent twice.
        status, _, err = await creative(*args, "--force", cwd=tmp_path)
        assert status == 1, err
        assert "going on (--force)" in err
        assert sorted(submitted_queries(fake)) == sorted(f"prompt {i}" for i in ids)
    out = read_out(tmp_path / "out.jsonl")
    assert {line["error"]["type"] for line in out.values()} == {"InsufficientBalanceError"}


async def test_a_negative_balance_stops_a_batch_too(tmp_path: Path) -> None:
    write_inputs(tmp_path / "in.jsonl", 2)
    async with FakeNeocu(api_key=API_KEY, compute=-3) as fake:
        status, _, err = await creative(
            "batch", "in.jsonl", "--base-url", fake.base_url, "--quiet", cwd=tmp_path
        )
        assert status == 2 and "balance is -3" in err, err
        assert fake.count("submit") == 0


async def test_a_batch_with_a_balance_left_runs_after_one_read(tmp_path: Path) -> None:
    write_inputs(tmp_path / "in.jsonl", 6)
    async with FakeNeocu(api_key=API_KEY, compute=100) as fake:
        status, _, err = await creative("batch", "in.jsonl", "--base-url", fake.base_url,
                                        cwd=tmp_path)  # fmt: skip
        assert status == 0, err
        assert fake.count("compute") == 1 and fake.count("submit") == 6
        assert fake.compute == 94
        first = fake.requests[0]
        assert first.endpoint == "compute"  # read before anything was sent
    assert "balance" not in err


async def test_a_balance_that_cannot_be_read_is_warned_about_and_the_batch_goes_on(
    tmp_path: Path,
) -> None:
    write_inputs(tmp_path / "in.jsonl", 3)
    async with FakeNeocu(api_key=API_KEY) as fake:
        fake.inject("compute", Reply.html(200))
        status, _, err = await creative("batch", "in.jsonl", "--base-url", fake.base_url,
                                        cwd=tmp_path)  # fmt: skip
        assert status == 0, err
        assert "warning: cannot read the neocu balance (ProviderResponseError" in err
        assert "going on" in err and fake.count("submit") == 3


async def test_a_provider_without_a_balance_is_not_asked(tmp_path: Path) -> None:
    write_inputs(tmp_path / "in.jsonl", 3)
    async with FakeDeepixels(api_key=API_KEY) as fake:
        status, _, err = await creative(
            "batch", "in.jsonl", "--provider", "deepixels", "--base-url", fake.base_url,
            cwd=tmp_path,
        )  # fmt: skip
        assert status == 0, err
        assert {r.endpoint for r in fake.requests} == {"submit", "get"}
    assert "balance" not in err


async def test_a_rerun_that_only_reads_paid_jobs_is_not_stopped_by_an_empty_balance(
    tmp_path: Path,
) -> None:
    """Jobs submitted by a run whose waits gave up are read again by the next, whatever
    the balance: nothing is left to pay for."""
    ids = write_inputs(tmp_path / "in.jsonl", 3)
    async with FakeNeocu(api_key=API_KEY, compute=3, job_duration=1.5) as fake:
        args = ("batch", "in.jsonl", "--out", "out.jsonl", "--base-url", fake.base_url)
        status, _, err = await creative(*args, "--timeout", "0.2", cwd=tmp_path)
        assert status == 1, err
        assert {line["status"] for line in read_out(tmp_path / "out.jsonl").values()} == {
            "submitted"
        }
        assert fake.compute == 0
        status, _, err = await creative(*args, cwd=tmp_path)
        assert status == 0, err
        assert fake.count("submit") == 3 and fake.count("compute") == 1
    assert [read_out(tmp_path / "out.jsonl")[i]["status"] for i in ids] == ["succeeded"] * 3


def _database(postgres: PostgresServer, name: str) -> str:
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name}")
        conn.execute(f"create database {name}")
    return postgres.url.rsplit("/", 1)[0] + "/" + name


async def test_a_fleet_worker_checks_the_balance_before_it_claims(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = await asyncio.to_thread(_database, postgres, "balance_fleet")
    write_inputs(tmp_path / "in.jsonl", 4)
    async with FakeNeocu(api_key=API_KEY, compute=0) as fake:
        args = ("batch", "in.jsonl", "--journal", url, "--out", "out.jsonl",
                "--base-url", fake.base_url)  # fmt: skip
        status, _, err = await creative(*args, cwd=tmp_path)
        assert status == 2, err
        assert "the neocu balance is 0: nothing was sent" in err
        assert fake.count("submit") == 0 and fake.count("compute") == 1
        fake.compute = 10
        status, _, err = await creative(*args, cwd=tmp_path)
        assert status == 0, err
        assert fake.count("submit") == 4 and fake.compute == 6
