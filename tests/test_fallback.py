"""Provider fallback that never pays twice (issue 17): ``FallbackClient`` sends a request
to the next provider only after a refusal that proves no job exists (402, 401/403, 429
after retries, a connection never made, a request the provider cannot take), never after
an uncertain submit nor once a job was accepted; a cool-down keeps a provider that
answered 402 out of the way; ``from_config`` with ``fallback = [...]``; the journal and
``creative batch`` know which provider holds each row's job. Real adapters over real HTTP
against the fakes on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sqlite3
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from _helpers import API_KEY, FAST_RETRY, client_for

from creative_client import (
    AuthenticationError,
    ConfigurationError,
    CreativeClient,
    CreativeError,
    FallbackClient,
    GenerationRequest,
    InsufficientBalanceError,
    InvalidRequestError,
    JobFailedError,
    RateLimitError,
    SubmissionUncertainError,
    TransportError,
)
from creative_client._cli._inputs import Entry
from creative_client._cli._out import out_text
from creative_client._journal._durations import recall
from creative_client._journal._model import JournalError, Row
from creative_client._journal._sqlite import SqliteJournal
from creative_client._journal._steps import submit_row
from creative_client.testing import FakeDeepixels, FakeNeocu, FakeServer, Reply

TIMEOUT = 60


class Clock:
    """A clock the test moves by hand: the cool-down is seconds on it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fallback(*fakes: FakeServer, **options: Any) -> FallbackClient:
    return FallbackClient([client_for(fake) for fake in fakes], **options)


def made(fake: FakeServer) -> dict[str, int]:
    """Jobs the fake made, per prompt."""
    return dict(fake.prompts)


async def until(condition: Callable[[], bool], seconds: float = TIMEOUT) -> None:
    """Wait (a bounded loop) for ``condition``, say a request reaching a fake."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- the library ------------------------------------------------------------------------


async def test_a_batch_into_an_empty_balance_runs_the_rest_on_the_fallback() -> None:
    prompts = [f"prompt {i}" for i in range(8)]
    async with (
        FakeNeocu(api_key=API_KEY, compute=3) as neocu,
        FakeDeepixels(api_key=API_KEY) as deepixels,
    ):
        async with fallback(neocu, deepixels) as client:
            outcomes = await client.generate_many(prompts, concurrency=1)
            assert client.cooling.keys() == {"neocu"}
        assert all(o.ok for o in outcomes), [o.error for o in outcomes]
        assert [o.provider for o in outcomes] == ["neocu"] * 3 + ["deepixels"] * 5
        assert [o.job.provider for o in outcomes if o.job] == [o.provider for o in outcomes]
        assert made(neocu) == {p: 1 for p in prompts[:3]}
        assert made(deepixels) == {p: 1 for p in prompts[3:]}
        # One 402 (no job), then the cool-down kept the empty account out of the way.
        assert neocu.count("submit") == 4 and deepixels.count("submit") == 5
        assert neocu.compute == 0


async def test_many_at_once_into_an_empty_balance_never_pay_twice() -> None:
    prompts = [f"prompt {i}" for i in range(40)]
    async with (
        FakeNeocu(api_key=API_KEY, compute=10, job_duration=0.05) as neocu,
        FakeDeepixels(api_key=API_KEY, job_duration=0.05) as deepixels,
    ):
        async with fallback(neocu, deepixels) as client:
            outcomes = [o async for o in client.as_completed(prompts, concurrency=8)]
        assert len(outcomes) == 40 and all(o.ok for o in outcomes)
        assert set(made(neocu)).isdisjoint(made(deepixels))
        assert {**made(neocu), **made(deepixels)} == {p: 1 for p in prompts}
        assert len(neocu.jobs) == 10 and len(deepixels.jobs) == 30
        ran = {o.request.prompt: o.provider for o in outcomes}
        assert {p for p, name in ran.items() if name == "neocu"} == set(made(neocu))
        # The 402s: at most the submits in flight when the balance ran out.
        assert neocu.count("submit") <= 10 + 8


async def test_the_cool_down_keeps_a_402_provider_out_until_it_passes() -> None:
    clock = Clock()
    async with (
        FakeNeocu(api_key=API_KEY, compute=0) as neocu,
        FakeDeepixels(api_key=API_KEY) as deepixels,
    ):
        async with fallback(neocu, deepixels, cooldown=30, clock=clock) as client:
            assert (await client.generate("a")).provider == "deepixels"
            assert neocu.count("submit") == 1 and client.cooling == {"neocu": 30.0}
            for prompt in ("b", "c", "d"):
                assert (await client.generate(prompt)).provider == "deepixels"
            clock.now += 29.5
            assert (await client.generate("e")).provider == "deepixels"
            assert neocu.count("submit") == 1  # not asked while it cools down
            clock.now += 0.5
            assert client.cooling == {}
            assert (await client.generate("f")).provider == "deepixels"
            assert neocu.count("submit") == 2  # asked again: 402 again, cooled again
            assert client.cooling == {"neocu": 30.0}
            neocu.compute = 5  # topped up
            clock.now += 30
            assert (await client.generate("g")).provider == "neocu"
            assert (await client.generate("h")).provider == "neocu"
            assert client.cooling == {}
        assert neocu.count("submit") == 4 and made(neocu) == {"g": 1, "h": 1}
        assert deepixels.count("submit") == 6


async def test_a_cooling_provider_is_still_tried_last() -> None:
    """Cooled down is "tried after the others", not "never": when the others refuse too,
    it is asked (and a topped-up account takes the job)."""
    clock = Clock()
    async with (
        FakeNeocu(api_key=API_KEY, compute=0) as neocu,
        FakeDeepixels(api_key=API_KEY) as deepixels,
    ):
        async with fallback(neocu, deepixels, clock=clock) as client:
            await client.generate("a")
            neocu.compute = 1
            deepixels.inject("submit", *[Reply(status=429)] * FAST_RETRY.max_attempts)
            job = await client.generate("b")
        assert job.provider == "neocu" and made(neocu) == {"b": 1}
        assert neocu.count("submit") == 2


async def test_a_wrong_key_falls_back_and_cools_down() -> None:
    async with (
        FakeNeocu(api_key="another-key-entirely") as neocu,
        FakeDeepixels(api_key=API_KEY) as deepixels,
    ):
        async with fallback(neocu, deepixels) as client:
            job = await client.generate("a red fox")
            assert job.provider == "deepixels"
            assert list(client.cooling) == ["neocu"]
            await client.generate("a blue whale")
        assert neocu.count("submit") == 1 and len(neocu.jobs) == 0
        assert made(deepixels) == {"a red fox": 1, "a blue whale": 1}


async def test_429_after_the_retries_falls_back_without_a_cool_down() -> None:
    async with (
        FakeNeocu(api_key=API_KEY) as neocu,
        FakeDeepixels(api_key=API_KEY) as deepixels,
    ):
        busy = Reply(status=429, json={"error": "Too Many Requests"}, headers={"Retry-After": "0"})
        neocu.inject("submit", *[busy] * FAST_RETRY.max_attempts)
        async with fallback(neocu, deepixels) as client:
            assert (await client.generate("a")).provider == "deepixels"
            assert client.cooling == {}  # busy passes by itself
            assert (await client.generate("b")).provider == "neocu"
            for fake in (neocu, deepixels):
                fake.inject("submit", *[busy] * FAST_RETRY.max_attempts)
            with pytest.raises(RateLimitError) as caught:
                await client.generate("c")
        assert [e.provider for e in caught.value.refusals] == ["neocu", "deepixels"]
        assert neocu.count("submit") == 2 * FAST_RETRY.max_attempts + 1
        assert made(neocu) == {"b": 1} and made(deepixels) == {"a": 1}


async def test_a_connection_never_made_falls_back() -> None:
    async with FakeDeepixels(api_key=API_KEY) as deepixels:
        down = CreativeClient(
            "neocu", API_KEY, base_url=f"http://127.0.0.1:{closed_port()}/v1", retry=FAST_RETRY
        )
        async with FallbackClient([down, client_for(deepixels)]) as client:
            outcomes = await client.generate_many(["a", "b"])
            assert client.cooling == {}
        assert [o.provider for o in outcomes] == ["deepixels", "deepixels"]
        assert all(o.ok for o in outcomes)
        assert made(deepixels) == {"a": 1, "b": 1}
    alone = CreativeClient("neocu", API_KEY, base_url=down.base_url, retry=FAST_RETRY)
    async with FallbackClient([alone]) as client:
        with pytest.raises(TransportError, match="could not connect") as caught:
            await client.submit("c")
    assert caught.value.refusals == (caught.value,)


async def test_a_request_the_first_cannot_take_runs_on_the_next() -> None:
    async with (
        FakeNeocu(api_key=API_KEY) as neocu,
        FakeDeepixels(api_key=API_KEY) as deepixels,
    ):
        async with fallback(neocu, deepixels) as client:
            job = await client.generate(GenerationRequest(prompt="a", input={"width": 512}))
            assert job.provider == "deepixels"
            client.validate(GenerationRequest(prompt="a", input={"width": 512}))
            job = await client.generate(GenerationRequest(prompt="b", files=["file-1"]))
            assert job.provider == "neocu"
            assert client.cooling == {}
        assert neocu.count("submit") == 1 and deepixels.count("submit") == 1
        assert json.loads(deepixels.requests[0].body)["input"] == {"prompt": "a", "width": 512}


async def test_a_request_no_provider_can_take_is_refused_before_sending() -> None:
    async with (
        FakeNeocu(api_key=API_KEY) as neocu,
        FakeDeepixels(api_key=API_KEY) as deepixels,
    ):
        request = GenerationRequest(prompt="a", input={"width": 512}, files=["file-1"])
        async with fallback(neocu, deepixels) as client:
            with pytest.raises(InvalidRequestError) as checked:
                client.validate(request)
            with pytest.raises(InvalidRequestError) as caught:
                await client.submit(request)
        assert sum(neocu.counts.values()) == sum(deepixels.counts.values()) == 0
    for error in (checked.value, caught.value):
        assert error.provider == "deepixels" and "files" in error.message
        assert [e.provider for e in error.refusals] == ["neocu", "deepixels"]
        assert "input" in error.refusals[0].message


@pytest.mark.parametrize(
    "fault",
    [
        Reply(status=500),
        Reply(status=502, body="<html>bad gateway</html>", content_type="text/html"),
        Reply(kind="cut"),
        Reply(kind="drop"),
        Reply(body="not json", create=True),
    ],
    ids=["500", "502-html", "cut", "drop", "not-json"],
)
async def test_an_uncertain_submit_is_never_run_elsewhere(fault: Reply) -> None:
    async with (
        FakeNeocu(api_key=API_KEY) as neocu,
        FakeDeepixels(api_key=API_KEY) as deepixels,
    ):
        neocu.inject("submit", fault)
        async with fallback(neocu, deepixels) as client:
            with pytest.raises(SubmissionUncertainError) as caught:
                await client.generate("a red fox")
            neocu.inject("submit", fault)
            [outcome] = await client.generate_many(["a blue whale"])
        assert caught.value.provider == "neocu" and caught.value.refusals == ()
        assert isinstance(outcome.error, SubmissionUncertainError)
        assert outcome.provider == "neocu" and outcome.job is None
        assert neocu.count("submit") == 2 and made(neocu) == {"a red fox": 1, "a blue whale": 1}
        assert sum(deepixels.counts.values()) == 0  # never sent elsewhere


async def test_a_failed_job_is_not_run_elsewhere() -> None:
    async with (
        FakeNeocu(api_key=API_KEY) as neocu,
        FakeDeepixels(api_key=API_KEY) as deepixels,
    ):
        async with fallback(neocu, deepixels) as client:
            with pytest.raises(JobFailedError) as caught:
                await client.generate("[fail] a red fox")
            [outcome] = await client.generate_many(["[fail] a blue whale"])
        assert caught.value.job.provider == "neocu"
        assert isinstance(outcome.error, JobFailedError) and outcome.provider == "neocu"
        assert outcome.job is not None and outcome.job.status == "failed"
        assert neocu.count("submit") == 2 and sum(deepixels.counts.values()) == 0


async def test_when_every_provider_refuses_the_last_refusal_is_raised_with_each() -> None:
    async with (
        FakeNeocu(api_key=API_KEY, compute=0) as neocu,
        FakeDeepixels(api_key="another-key-entirely") as deepixels,
    ):
        async with fallback(neocu, deepixels) as client:
            with pytest.raises(AuthenticationError) as caught:
                await client.generate("a")
            [outcome] = await client.generate_many(["b"])
        error = caught.value
        assert error.provider == "deepixels" and error.status == 401
        assert [type(e) for e in error.refusals] == [InsufficientBalanceError, AuthenticationError]
        assert error.refusals[-1] is error
        said = "neocu refused it before: InsufficientBalanceError"
        assert any(said in note for note in error.__notes__)
        assert isinstance(outcome.error, AuthenticationError) and outcome.provider == "deepixels"
        assert len(neocu.jobs) == len(deepixels.jobs) == 0


async def test_reads_go_to_the_provider_that_holds_the_job() -> None:
    async with (
        FakeNeocu(api_key=API_KEY, compute=0) as neocu,
        FakeDeepixels(api_key=API_KEY, job_duration=0.05) as deepixels,
    ):
        async with fallback(neocu, deepixels) as client:
            job = await client.submit("a red fox")
            assert job.provider == "deepixels"
            assert (await client.get(job)).id == job.id
            assert (await client.get(job.id, provider="deepixels")).id == job.id
            # Usage errors, not a provider's refusal: ValueError.
            with pytest.raises(ValueError, match="provider=") as ambiguous:
                await client.get(job.id)
            with pytest.raises(ValueError, match="not 'replicate'") as unknown:
                await client.wait(job.id, provider="replicate")
            with pytest.raises(ValueError, match="not neocu's"):
                await client.get(job, provider="neocu")
            assert not isinstance(ambiguous.value, CreativeError)
            assert not isinstance(unknown.value, CreativeError)
            done = await client.wait(job)
            assert done.status == "succeeded" and done.provider == "deepixels"
        assert neocu.count("get") == 0 and deepixels.count("get") >= 3


async def test_a_single_provider_behaves_as_its_client() -> None:
    async with FakeNeocu(api_key=API_KEY, compute=1) as neocu:
        async with fallback(neocu) as client:
            outcomes = await client.generate_many(["a", "b", "c"], concurrency=1)
            assert client.cooling == {}
            job = outcomes[0].job
            assert job is not None and (await client.get(job.id)).id == job.id
        assert [o.ok for o in outcomes] == [True, False, False]
        assert isinstance(outcomes[2].error, InsufficientBalanceError)
        assert outcomes[2].error.refusals == (outcomes[2].error,)
        assert neocu.count("submit") == 3  # as a CreativeClient: no cool-down, no skipping


async def test_an_outcome_says_which_provider_ran_it() -> None:
    async with FakeNeocu(api_key=API_KEY, compute=1) as neocu, client_for(neocu) as client:
        ok, refused = await client.generate_many(["a", "b"], concurrency=1)
    assert (ok.provider, refused.provider) == ("neocu", "neocu")
    assert refused.job is None and isinstance(refused.error, InsufficientBalanceError)
    assert ok.job is not None and ok.job.provider == "neocu"


async def test_the_client_opens_and_closes_its_clients() -> None:
    async with FakeNeocu(api_key=API_KEY) as neocu, FakeDeepixels(api_key=API_KEY) as deepixels:
        first, second = client_for(neocu), client_for(deepixels)
        client = FallbackClient([first, second])
        async with client:
            assert not first.closed and not second.closed
        assert client.closed and first.closed and second.closed
        with pytest.raises(RuntimeError, match="this FallbackClient is closed"):
            await client.generate("a")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: FallbackClient([]), "one CreativeClient or more"),
        (lambda: FallbackClient(["neocu"]), "one CreativeClient or more"),  # type: ignore[list-item]
        (
            lambda: FallbackClient([CreativeClient("neocu", "k"), CreativeClient("neocu", "k")]),
            "one client per provider",
        ),
        (lambda: FallbackClient([CreativeClient("neocu", "k")], cooldown=-1), "cooldown"),
    ],
)
def test_bad_clients_are_a_configuration_error(make: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make()


# -- configuration ----------------------------------------------------------------------


def config_for(neocu: FakeServer, deepixels: FakeServer, **top: Any) -> dict[str, Any]:
    return {
        "provider": "neocu",
        "fallback": ["deepixels"],
        "poll_initial": 0.01,
        "poll_max": 0.05,
        "neocu": {"api_key": API_KEY, "base_url": neocu.base_url},
        "deepixels": {"api_key": API_KEY, "base_url": deepixels.base_url, "model": "flux"},
        **top,
    }


async def test_from_config_with_fallback_runs_on_the_next_provider(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with (
        FakeNeocu(api_key=API_KEY, compute=1) as neocu,
        FakeDeepixels(api_key=API_KEY) as deepixels,
    ):
        config = config_for(neocu, deepixels, fallback_cooldown=5)
        client = FallbackClient.from_config(config, {}, concurrency=3)
        assert client.providers == ("neocu", "deepixels") and client.cooldown == 5.0
        assert [c.concurrency for c in client.clients] == [3, 3]
        assert client.client("deepixels").model == "flux"  # its own table's defaults
        async with client:
            outcomes = await client.generate_many(["a", "b", "c"], concurrency=1)
        assert [o.provider for o in outcomes] == ["neocu", "deepixels", "deepixels"]
        assert json.loads(deepixels.requests[0].body)["model"] == "flux"
        # A CreativeClient runs on the provider alone (the fallback list is checked),
        # and says so once.
        with caplog.at_level(logging.WARNING, logger="creative_client"):
            single = CreativeClient.from_config(config, {})
        assert single.provider == "neocu"
        [said] = [r.getMessage() for r in caplog.records if "FallbackClient" in r.getMessage()]
        assert "runs on neocu alone" in said and "deepixels" in said
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="creative_client"):
            CreativeClient.from_config({**config, "fallback": []}, {})
            CreativeClient.from_config(config, {}, provider="deepixels")  # the list is its own
        assert not [r for r in caplog.records if "FallbackClient" in r.getMessage()]
        switched = FallbackClient.from_config(config, {}, provider="deepixels", cooldown=0)
        assert switched.providers == ("deepixels",) and switched.cooldown == 0.0


def test_from_config_reads_a_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "creative.toml"
    path.write_text(
        'provider = "deepixels"\n'
        'fallback = ["neocu"]\n'
        "[deepixels]\n"
        'api_key_env = "MY_DP_KEY"\n'
        'model = "sdxl"\n'
        "[neocu]\n"
        'api_key = "inline-key"\n'
    )
    client = FallbackClient.from_config(path, {"MY_DP_KEY": API_KEY}, base_url="http://x/v1")
    assert client.providers == ("deepixels", "neocu") and client.cooldown == 60.0
    assert client.clients[0].base_url == "http://x/v1"  # base_url= is the first's alone
    assert client.clients[1].base_url == "https://api.neocu.com/v1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fallback": "deepixels"}, "list of provider names"),
        ({"fallback": [1]}, "list of provider names"),
        ({"fallback": ["nope"]}, "nope"),
        ({"fallback": ["deepixels", "deepixels"]}, "twice"),
        ({"fallback_cooldown": -1}, "fallback_cooldown"),
        ({"fallback_cooldown": "soon"}, "fallback_cooldown"),
        ({"deepixels": {"api_key_env": "UNSET_VAR_FOR_TEST"}}, "UNSET_VAR_FOR_TEST"),
    ],
)
def test_bad_fallback_config(change: dict[str, Any], message: str) -> None:
    config = {
        "provider": "neocu",
        "fallback": ["deepixels"],
        "neocu": {"api_key": "k"},
        "deepixels": {"api_key": "k"},
        **change,
    }
    with pytest.raises(ConfigurationError, match=message):
        FallbackClient.from_config(config, {})
    if "api_key_env" not in str(change):  # a CreativeClient checks the list too
        with pytest.raises(ConfigurationError, match=message):
            CreativeClient.from_config(config, {})


# -- the journal --------------------------------------------------------------------------


async def test_the_journal_keeps_which_provider_holds_each_job(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.journal")
    journal.add([('"a"', 1), ('"b"', 2)])
    rows = journal.load()
    journal.start()
    journal.write(rows['"a"'].moved("submitted", job_id="de-1", provider="deepixels"))
    await journal.write_durably(rows['"b"'].moved("submitted", job_id="ne-1", provider="neocu"))
    await journal.stop()
    journal.close()
    again = SqliteJournal(tmp_path / "j.journal")  # the log folded in at open
    try:
        rows = again.load()
        assert (rows['"a"'].provider, rows['"b"'].provider) == ("deepixels", "neocu")
        assert again.retry_failed("JobFailedError") == 0
        assert again.meta().get("version") is None  # set by set_meta, as before
        again.set_meta(provider="neocu")
        assert again.meta()["version"] == "2"
    finally:
        again.close()


def test_a_journal_from_before_the_provider_was_kept_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.journal"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE rows (id TEXT PRIMARY KEY, line INTEGER NOT NULL, state TEXT NOT NULL,"
        " job_id TEXT, outputs TEXT NOT NULL DEFAULT '[]', files TEXT NOT NULL DEFAULT '[]',"
        " error_type TEXT, error TEXT);"
        "CREATE TABLE log (seq INTEGER PRIMARY KEY, row TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('version', '1'), ('provider', 'neocu');"
        "INSERT INTO rows (id, line, state) VALUES ('\"a\"', 1, 'pending'),"
        " ('\"b\"', 2, 'pending');"
    )
    old_row: list[Any] = ["submitted", "ne-7", [], [], None, None, '"a"']  # version 1: 7 values
    db.execute("INSERT INTO log (row) VALUES (?)", (json.dumps(old_row),))
    db.commit()
    db.close()
    journal = SqliteJournal(path)
    try:
        rows = journal.load()
        assert rows['"a"'] == Row(key='"a"', line=1, state="submitted", job_id="ne-7")
        assert rows['"a"'].provider is None and rows['"b"'].state == "pending"
    finally:
        journal.close()


# -- the command --------------------------------------------------------------------------


def environment(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CREATIVE_") and not k.endswith("_API_KEY")
    }
    env["CREATIVE_SIMULATE_STATE"] = str(tmp_path / ".simulated")
    return env


async def creative(*args: str | Path, cwd: Path) -> tuple[int, str, str]:
    """The command as a process of its own (the fakes answer on this loop meanwhile)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "creative_client", *map(str, args),
        cwd=cwd, env=environment(cwd), stdin=asyncio.subprocess.DEVNULL,
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


def write_config(path: Path, neocu: FakeServer, deepixels: FakeServer, fallback: bool) -> None:
    path.write_text(
        'provider = "neocu"\n'
        + ('fallback = ["deepixels"]\n' if fallback else "")
        + "poll_initial = 0.01\npoll_max = 0.05\n"
        + f'[neocu]\napi_key = "{API_KEY}"\nbase_url = "{neocu.base_url}"\n'
        + f'[deepixels]\napi_key = "{API_KEY}"\nbase_url = "{deepixels.base_url}"\n'
        + 'model = "flux"\n'
    )


def write_inputs(path: Path, n: int) -> list[str]:
    ids = [f"row-{i}" for i in range(n)]
    path.write_text("".join(json.dumps({"id": i, "prompt": f"prompt {i}"}) + "\n" for i in ids))
    return ids


def read_out(path: Path) -> dict[str, dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return {line["id"]: line for line in lines}


def providers_of(out: dict[str, dict[str, Any]], ids: Sequence[str]) -> list[str]:
    return [out[i]["provider"] for i in ids]


async def test_creative_batch_with_a_fallback_config(tmp_path: Path) -> None:
    ids = write_inputs(tmp_path / "in.jsonl", 8)
    async with (
        FakeNeocu(api_key=API_KEY, compute=3) as neocu,
        FakeDeepixels(api_key=API_KEY) as deepixels,
    ):
        write_config(tmp_path / "creative.toml", neocu, deepixels, fallback=True)
        args = ("batch", "in.jsonl", "--out", "out.jsonl", "--config", "creative.toml")
        status, _, err = await creative(*args, "--concurrency", "1", cwd=tmp_path)
        assert status == 0, err
        out = read_out(tmp_path / "out.jsonl")
        assert [out[i]["status"] for i in ids] == ["succeeded"] * 8
        assert providers_of(out, ids) == ["neocu"] * 3 + ["deepixels"] * 5
        for i in ids:
            fake = neocu if out[i]["provider"] == "neocu" else deepixels
            assert out[i]["job_id"] in fake.jobs
        assert made(neocu) == {f"prompt {i}": 1 for i in ids[:3]}
        assert made(deepixels) == {f"prompt {i}": 1 for i in ids[3:]}
        assert neocu.count("submit") == 4  # one 402, then the cool-down
        # Run again: everything is finished; nothing is sent, OUT is the same.
        status, _, err = await creative(*args, cwd=tmp_path)
        assert status == 0, err
        assert neocu.count("submit") == 4 and deepixels.count("submit") == 5
    assert read_out(tmp_path / "out.jsonl") == out


async def test_a_resumed_batch_reads_each_job_from_the_provider_that_holds_it(
    tmp_path: Path,
) -> None:
    ids = write_inputs(tmp_path / "in.jsonl", 4)
    async with (
        FakeNeocu(api_key=API_KEY, compute=2, job_duration=1.0) as neocu,
        FakeDeepixels(api_key=API_KEY, job_duration=1.0) as deepixels,
    ):
        write_config(tmp_path / "creative.toml", neocu, deepixels, fallback=True)
        args = ("batch", "in.jsonl", "--out", "out.jsonl", "--config", "creative.toml")
        status, _, err = await creative(*args, "--concurrency", "1", "--timeout", "0.1",
                                        cwd=tmp_path)  # fmt: skip
        assert status == 1, err
        out = read_out(tmp_path / "out.jsonl")
        assert [out[i]["status"] for i in ids] == ["submitted"] * 4
        assert providers_of(out, ids) == ["neocu"] * 2 + ["deepixels"] * 2
        # Without its fallback provider, the run cannot read the jobs it holds.
        write_config(tmp_path / "creative.toml", neocu, deepixels, fallback=False)
        status, _, err = await creative(*args, cwd=tmp_path)
        assert status == 2 and "held by deepixels" in err, err
        write_config(tmp_path / "creative.toml", neocu, deepixels, fallback=True)
        await asyncio.sleep(1.0)
        reads = neocu.count("get"), deepixels.count("get")
        status, _, err = await creative(*args, cwd=tmp_path)
        assert status == 0, err
        assert (neocu.count("get") - reads[0], deepixels.count("get") - reads[1]) == (2, 2)
        assert neocu.count("submit") == 3 and deepixels.count("submit") == 2  # none again
    out = read_out(tmp_path / "out.jsonl")
    assert [out[i]["status"] for i in ids] == ["succeeded"] * 4
    assert providers_of(out, ids) == ["neocu"] * 2 + ["deepixels"] * 2


async def test_a_batch_with_a_fallback_is_not_stopped_by_one_empty_balance(
    tmp_path: Path,
) -> None:
    ids = write_inputs(tmp_path / "in.jsonl", 3)
    async with (
        FakeNeocu(api_key=API_KEY, compute=0) as neocu,
        FakeDeepixels(api_key=API_KEY) as deepixels,
    ):
        write_config(tmp_path / "creative.toml", neocu, deepixels, fallback=True)
        status, _, err = await creative(
            "batch", "in.jsonl", "--out", "out.jsonl", "--config", "creative.toml", cwd=tmp_path
        )
        assert status == 0, err
        assert "the neocu balance is 0: its submits go to deepixels" in err
        assert neocu.count("compute") == 1 and len(neocu.jobs) == 0
    assert providers_of(read_out(tmp_path / "out.jsonl"), ids) == ["deepixels"] * 3


async def test_a_fallback_config_is_refused_for_a_batch_in_postgresql(tmp_path: Path) -> None:
    write_inputs(tmp_path / "in.jsonl", 2)
    async with (
        FakeNeocu(api_key=API_KEY) as neocu,
        FakeDeepixels(api_key=API_KEY) as deepixels,
    ):
        write_config(tmp_path / "creative.toml", neocu, deepixels, fallback=True)
        status, _, err = await creative(
            "batch", "in.jsonl", "--out", "out.jsonl", "--config", "creative.toml",
            "--journal", f"postgresql://127.0.0.1:{closed_port()}/creative", cwd=tmp_path,
        )  # fmt: skip
        assert status == 2 and "runs on one provider" in err, err
        assert neocu.count("submit") == deepixels.count("submit") == 0


async def test_creative_generate_with_a_fallback_config(tmp_path: Path) -> None:
    async with (
        FakeNeocu(api_key=API_KEY, compute=0) as neocu,
        FakeDeepixels(api_key=API_KEY, job_duration=0.5) as deepixels,
    ):
        write_config(tmp_path / "creative.toml", neocu, deepixels, fallback=True)
        config = ("--config", "creative.toml")
        status, out, err = await creative("generate", "a red fox", *config, cwd=tmp_path)
        assert status == 0, err
        assert json.loads(out)["provider"] == "deepixels"
        status, out, err = await creative(
            "generate", "a blue whale", *config, "--timeout", "0.05", cwd=tmp_path
        )
        assert status == 1, err
        job = json.loads(out)
        assert job["provider"] == "deepixels"
        # How to read it later names the config file and the provider that holds the
        # job: that command reads it.
        hint = f"`creative get {job['id']} --config creative.toml --provider deepixels`"
        assert hint in err, err
        status, out, err = await creative(
            "get", job["id"], *config, "--provider", "deepixels", cwd=tmp_path
        )
        assert status == 0 and json.loads(out)["id"] == job["id"], err
        assert made(neocu) == {} and made(deepixels) == {"a red fox": 1, "a blue whale": 1}


# -- what proves no job, a stop, job slots, the provider a submit went to -------------------


@pytest.mark.parametrize("status", [400, 404, 409, 413, 422])
async def test_another_4xx_answer_is_final_and_never_sent_elsewhere(status: int) -> None:
    """Deepixels' 400 is also "generation failed": a job may have run. Only 401, 402, 403
    and 429 (and a request refused before sending) prove that none exists."""
    async with (
        FakeDeepixels(api_key=API_KEY) as deepixels,
        FakeNeocu(api_key=API_KEY) as neocu,
    ):
        answer = Reply(status=status, json={"status": "failed", "message": "no"}, create=True)
        deepixels.inject("submit", answer, answer)
        async with fallback(deepixels, neocu) as client:
            with pytest.raises(CreativeError) as caught:
                await client.generate("a red fox")
            [outcome] = await client.generate_many(["a blue whale"])
            assert client.cooling == {}
        assert caught.value.status == status and caught.value.provider == "deepixels"
        assert caught.value.refusals == ()
        assert outcome.error is not None and outcome.error.status == status
        assert outcome.provider == "deepixels"
        assert sum(neocu.counts.values()) == 0  # never sent elsewhere
        assert made(deepixels) == {"a red fox": 1, "a blue whale": 1}


async def test_a_stop_while_the_first_provider_refuses_asks_no_other(tmp_path: Path) -> None:
    """The first Ctrl-C ("no new submits") comes while the first provider's submit is in
    flight, and it then refuses (402): the row is not sent to the next provider; it is
    put back as it was (no job exists anywhere: the next run sends it)."""
    stop = asyncio.Event()
    async with (
        FakeNeocu(api_key=API_KEY) as neocu,
        FakeDeepixels(api_key=API_KEY) as deepixels,
    ):
        low = Reply(status=402, json={"error": "low compute", "message": "low"}, delay=0.3)
        neocu.inject("submit", low)
        journal = SqliteJournal(tmp_path / "j.journal")
        journal.add([('"a"', 1)])
        row = journal.load()['"a"']
        journal.start()
        try:
            async with fallback(neocu, deepixels) as client:
                request = GenerationRequest(prompt="a red fox")
                sending = asyncio.create_task(
                    submit_row(client, journal, row, request, stop.is_set)
                )
                await until(lambda: neocu.count("submit") == 1)
                stop.set()
                result = await sending
        finally:
            await journal.stop()
            journal.close()
        assert result is None
        assert journal.current['"a"'] == row  # pending, naming no provider
        assert neocu.count("submit") == 1 and sum(deepixels.counts.values()) == 0
        assert made(neocu) == made(deepixels) == {}


async def test_max_jobs_holds_a_slot_through_a_wait_longer_than_the_clients_timeout() -> None:
    """``generate(timeout=5)`` on a client whose own timeout is 0.2: the job's slot is
    held until its wait sees it end, not given back when the client's timeout passes."""
    async with FakeDeepixels(api_key=API_KEY, job_duration=0.6) as deepixels:
        provider = client_for(deepixels, max_jobs=1, timeout=0.2)
        async with FallbackClient([provider]) as client:
            jobs = await asyncio.gather(*(client.generate(p, timeout=5) for p in ("a", "b")))
        assert [job.status for job in jobs] == ["succeeded"] * 2
        assert deepixels.peak_active == 1
    # The same for a CreativeClient's submit and wait (the slot is the client's).
    async with FakeDeepixels(api_key=API_KEY, job_duration=0.6) as deepixels:
        async with client_for(deepixels, max_jobs=1, timeout=0.2) as single:

            async def one(prompt: str) -> str:
                return (await single.wait(await single.submit(prompt), timeout=5)).status

            assert list(await asyncio.gather(one("a"), one("b"))) == ["succeeded"] * 2
        assert deepixels.peak_active == 1


async def test_a_submit_cut_short_names_the_provider_it_was_sent_to(tmp_path: Path) -> None:
    """A second Ctrl-C while the fallback provider's submit is in flight: the row names
    that provider (on disk before the POST left), and so does OUT; a row with neither
    a job nor a provider names none."""
    async with (
        FakeNeocu(api_key=API_KEY, compute=0) as neocu,
        FakeDeepixels(api_key=API_KEY) as deepixels,
    ):
        deepixels.inject("submit", Reply(kind="hang"))
        journal = SqliteJournal(tmp_path / "j.journal")
        journal.add([('"a"', 1), ('"b"', 2)])
        rows = journal.load()
        journal.start()
        try:
            async with fallback(neocu, deepixels) as client:
                request = GenerationRequest(prompt="a red fox")
                sending = asyncio.create_task(submit_row(client, journal, rows['"a"'], request))
                await until(lambda: deepixels.count("submit") == 1)
                now = journal.current['"a"']
                assert (now.state, now.provider) == ("submitting", "deepixels")
                sending.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await sending
        finally:
            await journal.stop()
            journal.close()
        assert neocu.count("submit") == 1 and len(neocu.jobs) == 0
    again = SqliteJournal(tmp_path / "j.journal")
    try:
        rows = again.load()
    finally:
        again.close()
    assert (rows['"a"'].state, rows['"a"'].provider) == ("uncertain", "deepixels")
    entries = [
        Entry(key=k, line=n, request=GenerationRequest(prompt="p")) for k, n in rows_of(rows)
    ]
    out = [
        json.loads(line)
        for line in out_text(entries, rows, [], "neocu", alone=False).split("\n")
        if line
    ]
    assert [(o["status"], o["provider"]) for o in out] == [
        ("uncertain", "deepixels"),
        ("pending", None),
    ]
    alone = [json.loads(line) for line in out_text(entries, rows, [], "neocu").split("\n") if line]
    assert alone[1]["provider"] == "neocu"  # one provider: it is every row's


def rows_of(rows: dict[str, Row]) -> list[tuple[str, int]]:
    return sorted(((row.key, row.line) for row in rows.values()), key=lambda kv: kv[1])


async def test_a_lost_submit_keeps_its_provider_until_it_is_sent_again(tmp_path: Path) -> None:
    """A run lost while a submit was in flight: its row, made uncertain by the next run,
    names the provider; sent again (--resubmit-uncertain), it forgets it."""
    path = tmp_path / "j.journal"
    journal = SqliteJournal(path)
    journal.add([('"a"', 1)])
    row = journal.load()['"a"']
    journal.start()
    await journal.write_durably(row.moved("submitting", provider="deepixels"))
    await journal.stop()
    journal.close()  # the run is lost here, its POST in flight
    again = SqliteJournal(path)
    try:
        lost = again.move(
            "submitting", "uncertain", error_type="SubmissionUncertainError", error=""
        )
        assert lost == 1 and again.load()['"a"'].provider == "deepixels"
        assert again.move("uncertain", "pending", error_type=None, error=None) == 1
        assert again.load()['"a"'] == row  # pending, naming no provider
    finally:
        again.close()


async def test_a_batch_killed_during_a_fallback_submit_names_that_provider(
    tmp_path: Path,
) -> None:
    write_inputs(tmp_path / "in.jsonl", 1)
    async with (
        FakeNeocu(api_key=API_KEY, compute=0) as neocu,
        FakeDeepixels(api_key=API_KEY) as deepixels,
    ):
        deepixels.inject("submit", Reply(kind="hang"))
        write_config(tmp_path / "creative.toml", neocu, deepixels, fallback=True)
        args = ("batch", "in.jsonl", "--out", "out.jsonl", "--config", "creative.toml")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "creative_client", *args, cwd=tmp_path,
            env=environment(tmp_path), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await until(lambda: deepixels.count("submit") == 1)
        finally:
            proc.kill()  # lost with the POST in flight
            await proc.wait()
        status, _, err = await creative(*args, cwd=tmp_path)
        assert status == 1 and "marked uncertain" in err, err
        assert neocu.count("submit") == 1 and deepixels.count("submit") == 1  # none again
    [line] = read_out(tmp_path / "out.jsonl").values()
    assert (line["status"], line["job_id"], line["provider"]) == ("uncertain", None, "deepixels")


def test_a_journal_from_a_newer_creative_client_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    journal = SqliteJournal(path)
    journal.set_meta(provider="neocu")
    journal.close()

    def set_version(value: str) -> None:
        db = sqlite3.connect(path)
        db.execute("UPDATE meta SET value = ? WHERE key = 'version'", (value,))
        db.commit()
        db.close()

    set_version("99")
    with pytest.raises(JournalError, match="is version 99, newer than"):
        SqliteJournal(path)
    set_version("2")  # refused, and let go of: it opens once it is a version it knows
    SqliteJournal(path).close()


async def test_a_batch_keeps_what_each_provider_learned(tmp_path: Path) -> None:
    """Every provider of the rotation starts the next run warm, not only the first."""
    write_inputs(tmp_path / "in.jsonl", 3)
    async with (
        FakeNeocu(api_key=API_KEY, compute=1, job_duration=0.2) as neocu,
        FakeDeepixels(api_key=API_KEY, job_duration=0.2) as deepixels,
    ):
        write_config(tmp_path / "creative.toml", neocu, deepixels, fallback=True)
        status, _, err = await creative(
            "batch", "in.jsonl", "--out", "out.jsonl", "--config", "creative.toml",
            "--concurrency", "1", cwd=tmp_path,
        )  # fmt: skip
        assert status == 0, err
        fresh = FallbackClient.from_config(config_for(neocu, deepixels), {})
    journal = SqliteJournal(tmp_path / "out.jsonl.journal")
    try:
        meta = journal.meta()
        async with fresh:
            taken = await recall(journal, fresh)
    finally:
        journal.close()
    assert json.loads(meta["durations"])["provider"] == "neocu"
    assert json.loads(meta["durations:deepixels"])["provider"] == "deepixels"
    assert taken > 0 and all(each.export_durations()["models"] for each in fresh.clients)
