"""SyncCreativeClient: the async client on a private loop thread, driven from blocking code.

The fakes run in processes of their own (``FakeProcess``), one per kind for the module:
a test's own code blocks, so nothing may need the test's thread to serve them.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import itertools
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from _helpers import API_KEY, FAST_RETRY

from creative_client import (
    ConfigurationError,
    CreativeClient,
    GenerationRequest,
    InvalidRequestError,
    JobFailedError,
    JobStatus,
    Outcome,
    Progress,
    SyncCreativeClient,
)
from creative_client.testing import FakeProcess

#: Parameters of CreativeClient that hold objects of the caller's own event loop.
LOOP_BOUND = frozenset({"session", "webhook_receiver"})


@pytest.fixture(scope="module")
def fast() -> Iterator[FakeProcess]:
    with FakeProcess("deepixels") as fake:
        yield fake


@pytest.fixture(scope="module")
def slow() -> Iterator[FakeProcess]:
    """Jobs that outlast every test: whatever ends their polling is a cancel."""
    with FakeProcess("deepixels", job_duration=3600) as fake:
        yield fake


@pytest.fixture(autouse=True)
def _no_thread_left() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    assert set(threading.enumerate()) == before, "a thread outlived its test"


def sync_for(fake: FakeProcess, **options: Any) -> SyncCreativeClient:
    """A sync client for ``fake`` with quick polls and quick retries."""
    settings: dict[str, Any] = {
        "api_key": API_KEY,
        "base_url": fake.base_url,
        "model": "flux-schnell",
        "poll_initial": 0.01,
        "poll_max": 0.05,
        "retry": FAST_RETRY,
        "request_timeout": 5.0,
    }
    settings.update(options)
    return SyncCreativeClient(fake.provider, **settings)


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "SyncCreativeClient"]


def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def polls_stopped(fake: FakeProcess) -> bool:
    """True when the fake hears no read for 0.3 s (the clients poll every <= 0.05 s)."""
    time.sleep(0.1)  # a read already on its way when the polling stopped lands first
    reads = fake.stats()["get"]
    time.sleep(0.3)
    return fake.stats()["get"] == reads


def test_a_script_submits_reads_waits_generates_and_downloads(
    fast: FakeProcess, tmp_path: Path
) -> None:
    with sync_for(fast) as client:
        assert (client.provider, client.base_url, client.model) == (
            "deepixels",
            fast.base_url,
            "flux-schnell",
        )
        assert repr(client).startswith("SyncCreativeClient(provider='deepixels'")
        assert len(loop_threads()) == 1
        job = client.generate(prompt="a red fox", input={"width": 64}, timeout=10)
        assert job.status is JobStatus.SUCCEEDED and job.outputs
        queued = client.submit(GenerationRequest(prompt="a blue whale"))
        assert client.get(queued.id).id == queued.id
        done = client.wait(queued, timeout=10)
        assert done.status is JobStatus.SUCCEEDED
        paths = client.download(done, tmp_path, name="whale")
        assert paths and all(p.is_file() and p.name.startswith("whale-") for p in paths)
    assert client.closed and not loop_threads()


def test_errors_arrive_with_their_type_and_the_client_goes_on(fast: FakeProcess) -> None:
    with sync_for(fast) as client:
        with pytest.raises(JobFailedError) as failed:
            client.generate(prompt="a fox [fail]")
        assert failed.value.job.status is JobStatus.FAILED
        submits = fast.stats()["submit"]
        with pytest.raises(InvalidRequestError, match="files"):
            client.submit(prompt="a fox", files=["file-1"])  # Deepixels takes no files
        assert fast.stats()["submit"] == submits  # refused before anything was sent
        assert client.generate(prompt="a fox").status is JobStatus.SUCCEEDED


def test_as_completed_pulls_lazily_from_an_endless_input(fast: FakeProcess) -> None:
    pulled = 0

    def endless() -> Iterator[GenerationRequest]:
        nonlocal pulled
        for i in itertools.count():
            pulled += 1
            yield GenerationRequest(prompt=f"fox {i}")

    progress = Progress()
    outcomes: list[Outcome] = []
    with sync_for(fast) as client:
        for outcome in client.as_completed(endless(), concurrency=3, progress=progress):
            outcomes.append(outcome)
            assert pulled <= len(outcomes) + 3
            if len(outcomes) == 5:
                break
        assert all(o.ok for o in outcomes) and progress.succeeded >= 5
        assert client.generate(prompt="after the batch").status is JobStatus.SUCCEEDED


def test_generate_many_returns_outcomes_in_input_order(fast: FakeProcess) -> None:
    prompts = [f"owl {i}" + (" [fail]" if i == 2 else "") for i in range(6)]
    with sync_for(fast) as client:
        outcomes = client.generate_many(
            (GenerationRequest(prompt=p) for p in prompts), concurrency=2
        )
    assert [o.request.prompt for o in outcomes] == prompts
    assert [o.ok for o in outcomes] == [True, True, False, True, True, True]
    assert isinstance(outcomes[2].error, JobFailedError)


@pytest.mark.parametrize("leave", ["break", "close"])
def test_leaving_as_completed_early_cancels_the_jobs_in_flight(
    slow: FakeProcess, leave: str
) -> None:
    before = slow.stats()
    # The request Deepixels cannot take is the first outcome, at once; the others run on.
    requests = [GenerationRequest(prompt="bad", files=("f",))]
    requests += [GenerationRequest(prompt=f"slow {i}") for i in range(3)]

    def in_flight(first: Outcome) -> None:
        assert isinstance(first.error, InvalidRequestError)
        until(lambda: slow.stats()["submit"] == before["submit"] + 3)
        until(lambda: slow.stats()["get"] >= before["get"] + 6)  # all three are polled
        assert progress.running == 3

    progress = Progress()
    with sync_for(slow) as client:
        if leave == "break":
            for outcome in client.as_completed(requests, concurrency=4, progress=progress):
                in_flight(outcome)
                break
        else:
            outcomes = client.as_completed(requests, concurrency=4, progress=progress)
            in_flight(next(outcomes))
            outcomes.close()
        assert progress.running == 0  # ended by the time the loop is left, not later
        assert polls_stopped(slow)
        assert not client.closed
        assert client.submit(prompt="after").status is JobStatus.QUEUED


def test_several_threads_share_one_client(fast: FakeProcess) -> None:
    with sync_for(fast) as client, ThreadPoolExecutor(4) as pool:
        jobs = list(pool.map(lambda i: client.generate(prompt=f"heron {i}"), range(12)))
    assert all(j.status is JobStatus.SUCCEEDED for j in jobs)
    assert len({j.id for j in jobs}) == 12


async def test_works_where_an_event_loop_is_already_running(fast: FakeProcess) -> None:
    """As in Jupyter or a framework's sync handler: the caller's thread runs a loop."""
    asyncio.get_running_loop()
    with sync_for(fast) as client:
        assert client.generate(prompt="a lynx").status is JobStatus.SUCCEEDED
        outcomes = client.generate_many([GenerationRequest(prompt=f"lynx {i}") for i in range(3)])
        assert [o.ok for o in outcomes] == [True] * 3
        streamed = list(client.as_completed([GenerationRequest(prompt="one more lynx")]))
        assert [o.ok for o in streamed] == [True]
    assert not loop_threads()


def test_a_closed_client_refuses_calls_and_closes_twice(fast: FakeProcess) -> None:
    client = sync_for(fast)
    job = client.generate(prompt="a badger")
    held = client.as_completed([GenerationRequest(prompt=f"b {i}") for i in range(3)])
    next(held)
    client.close()
    client.close()
    assert client.closed and not loop_threads()
    with pytest.raises(RuntimeError, match="closed"):
        next(held)
    calls: list[Callable[[], object]] = [
        lambda: client.submit(prompt="x"),
        lambda: client.get(job.id),
        lambda: client.wait(job),
        lambda: client.generate(prompt="x"),
        lambda: client.generate_many([GenerationRequest(prompt="x")]),
        lambda: client.as_completed([GenerationRequest(prompt="x")]),
        lambda: client.download(job, "."),
        client.__enter__,
    ]
    for call in calls:
        with pytest.raises(RuntimeError, match="closed"):
            call()


def test_bad_options_raise_at_the_call_and_leave_no_thread(fast: FakeProcess) -> None:
    with pytest.raises(ConfigurationError, match="concurrency"):
        sync_for(fast, concurrency=0)
    with pytest.raises(ConfigurationError):
        SyncCreativeClient("no-such-provider", API_KEY)
    assert not loop_threads()

    async def prompts() -> AsyncIterator[GenerationRequest]:
        yield GenerationRequest(prompt="x")

    with sync_for(fast) as client:
        with pytest.raises(ConfigurationError, match="concurrency"):
            client.as_completed([GenerationRequest(prompt="x")], concurrency=0)
        with pytest.raises(TypeError, match="plain iterable"):
            client.as_completed(prompts())  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="plain iterable"):
            client.generate_many(prompts())  # type: ignore[arg-type]
        # Its own thread cannot wait on itself: refused, not a deadlock.
        with pytest.raises(RuntimeError, match="own thread"):
            client.generate_many(
                [GenerationRequest(prompt="x")], progress=lambda _p: client.get("dp-1")
            )


def test_from_env_and_from_config(fast: FakeProcess) -> None:
    environ = {
        "CREATIVE_PROVIDER": "deepixels",
        "CREATIVE_BASE_URL": fast.base_url,
        "CREATIVE_MODEL": "flux-schnell",
        "DEEPIXELS_API_KEY": API_KEY,
    }
    with SyncCreativeClient.from_env(environ, poll_initial=0.01) as client:
        assert client.model == "flux-schnell"
        assert client.generate(prompt="a hare").status is JobStatus.SUCCEEDED
    config = {
        "provider": "deepixels",
        "poll_initial": 0.01,
        "deepixels": {"api_key": API_KEY, "base_url": fast.base_url, "model": "sdxl"},
    }
    with SyncCreativeClient.from_config(config, environ={}) as client:
        assert (client.base_url, client.model) == (fast.base_url, "sdxl")
        assert client.generate(prompt="a hare").status is JobStatus.SUCCEEDED


def test_a_client_nobody_closed_is_closed_when_collected(fast: FakeProcess) -> None:
    client = sync_for(fast)
    client.generate(prompt="a mole")
    assert len(loop_threads()) == 1
    del client
    gc.collect()
    assert not loop_threads()


def test_prompt_strings_are_forwarded(fast: FakeProcess) -> None:
    """The positional prompt (``generate("a fox")``) and prompts as batch items."""
    with sync_for(fast) as client:
        assert client.generate("a fox").status is JobStatus.SUCCEEDED
        assert client.submit("a fox", input={"width": 64}).status is JobStatus.QUEUED
        outcomes = client.generate_many(["a", "b"])
        assert [o.request.prompt for o in outcomes] == ["a", "b"]
        assert [o.request.prompt for o in client.as_completed(["c"])] == ["c"]


def test_the_signatures_are_the_async_clients() -> None:
    def shape(function: Callable[..., object], skip: frozenset[str] = frozenset()) -> list[Any]:
        parameters = inspect.signature(function).parameters.values()
        return [(p.name, p.kind, p.default) for p in parameters if p.name not in skip]

    assert shape(SyncCreativeClient) == shape(CreativeClient, LOOP_BOUND)
    # Every public method of the async client, a new one included, has its blocking twin.
    methods = {
        name
        for name in dir(CreativeClient)
        if not name.startswith("_") and callable(getattr(CreativeClient, name))
    } - {"aclose"}
    assert {"submit", "generate", "as_completed", "download", "validate"} <= methods
    for name in sorted(methods):
        assert shape(getattr(SyncCreativeClient, name)) == shape(getattr(CreativeClient, name))
        assert getattr(SyncCreativeClient, name).__doc__, name
    for name in ("from_env", "from_config", "close", "provider", "base_url", "model", "closed"):
        assert getattr(SyncCreativeClient, name).__doc__, name


# A script interrupted by Ctrl-C while a call waits. "inside": it catches the interrupt
# within ``with``, waits for a line on stdin (the test checks the jobs stopped being
# polled meanwhile), then uses the client again; "outside": the interrupt leaves ``with``.
CTRL_C_SCRIPT = """
import signal, sys, threading
from creative_client import GenerationRequest, SyncCreativeClient

# As in a terminal, even where the test runner's shell ignores SIGINT for children.
signal.signal(signal.SIGINT, signal.default_int_handler)
base_url, call, where = sys.argv[1:4]
requests = [GenerationRequest(prompt=f"ctrl-c {i}") for i in range(3)]


def run(client):
    if call == "generate":
        client.generate(prompt="ctrl-c")
    elif call == "generate_many":
        client.generate_many(requests)
    else:
        for _ in client.as_completed(requests):
            pass


try:
    with SyncCreativeClient(
        "deepixels", "any-key", base_url=base_url, model="m", poll_initial=0.02, poll_max=0.05
    ) as client:
        print("ready", flush=True)
        if where == "outside":
            run(client)
        try:
            run(client)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.stdin.readline()
            print("usable", client.submit(prompt="after").id, flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
print("threads", threading.active_count(), flush=True)
"""


@pytest.mark.parametrize(
    ("call", "where"),
    [
        ("generate", "outside"),
        ("generate", "inside"),
        ("generate_many", "inside"),
        ("as_completed", "inside"),
    ],
)
def test_ctrl_c_cancels_the_call_and_leaves_nothing_behind(
    slow: FakeProcess, tmp_path: Path, call: str, where: str
) -> None:
    script = tmp_path / "interrupted.py"
    script.write_text(CTRL_C_SCRIPT)
    jobs = 1 if call == "generate" else 3
    before = slow.stats()
    proc = subprocess.Popen(
        [sys.executable, "-W", "error", str(script), slow.base_url, call, where],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        assert proc.stdout.readline() == "ready\n"
        until(lambda: slow.stats()["submit"] == before["submit"] + jobs)
        until(lambda: slow.stats()["get"] >= before["get"] + 2 * jobs)  # it waits
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        assert proc.stdout.readline() == "interrupted\n"
        assert time.monotonic() - sent < 5
        if where == "inside":
            assert polls_stopped(slow)  # cancelled while the client is still open
            proc.stdin.write("\n")
        proc.stdin.close()
        proc.wait(timeout=20)
        # Read through the same buffered files as readline() (communicate() would not).
        out, err = proc.stdout.read(), proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            pipe.close()
    if where == "inside":
        assert out.startswith("usable de-"), out
    assert out.endswith("threads 1\n"), out
    assert err == ""  # no traceback, no unclosed session, no pending task destroyed
    assert proc.returncode == 0


def test_a_script_that_never_closes_its_client_exits_cleanly(fast: FakeProcess) -> None:
    script = (
        "import sys\n"
        "from creative_client import SyncCreativeClient\n"
        "client = SyncCreativeClient('deepixels', 'any-key', base_url=sys.argv[1], model='m',"
        " poll_initial=0.01)\n"
        "print(client.generate(prompt='left open').status)\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script, fast.base_url],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "succeeded\n", "")
