"""Waiting by webhook: callbacks confirmed by a read, forgeries resolve nothing, lost
callbacks found by the slow fallback poll, a receiver that closes with its client.

Everything runs on 127.0.0.1: the fake of each provider that takes a webhook calls the
client's receiver back over real HTTP (it calls nothing that is not loopback).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from _helpers import API_KEY, client_for
from aiohttp import web

from creative_client import (
    ConfigurationError,
    CreativeClient,
    GenerationRequest,
    JobStatus,
    JobTimeoutError,
    WebhookReceiver,
)
from creative_client.providers import get_provider
from creative_client.testing import FakeDeepixels, FakeServer, fake_for, fake_names

HOOKED = [name for name in fake_names() if get_provider(name).takes_webhook]
UNHOOKED = [name for name in fake_names() if not get_provider(name).takes_webhook]


def free_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


class Served:
    """A receiver mounted in an aiohttp server of the test's own, under ``/hooks``."""

    def __init__(self) -> None:
        sock = free_socket()
        self.port = sock.getsockname()[1]
        self.receiver = WebhookReceiver(f"http://127.0.0.1:{self.port}/hooks/")
        parent = web.Application()
        parent.add_subapp("/hooks", self.receiver.app)
        self.runner = web.AppRunner(parent, shutdown_timeout=0.5)
        self._sock = sock

    async def start(self) -> None:
        await self.runner.setup()
        await web.SockSite(self.runner, self._sock).start()

    async def close(self) -> None:
        await self.runner.cleanup()


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    served = Served()
    await served.start()
    try:
        yield served
    finally:
        await served.close()


@pytest.fixture(params=HOOKED)
def hooked(request: pytest.FixtureRequest) -> str:
    """Each provider that takes a webhook."""
    name: str = request.param
    return name


@pytest.fixture
async def fake(request: pytest.FixtureRequest, hooked: str) -> AsyncIterator[FakeServer]:
    options: dict[str, Any] = {"job_duration": 0.3, **getattr(request, "param", {})}
    async with fake_for(hooked, api_key=API_KEY, **options) as server:
        yield server


def listening(fake: FakeServer, **options: Any) -> CreativeClient:
    """A client that waits by webhook on a free loopback port, with no fallback polls
    unless the test asks for them."""
    settings: dict[str, Any] = {"webhook_listen": "127.0.0.1:0", "webhook_poll": 60.0}
    return client_for(fake, **{**settings, **options})


async def post(url: str, body: bytes = b"{}", method: str = "POST") -> int:
    async with aiohttp.ClientSession() as session, session.request(method, url, data=body) as r:
        return r.status


def webhooks_sent(fake: FakeServer) -> list[str]:
    urls = [fake.webhook_of(r.json()) for r in fake.requests if r.endpoint == "submit"]
    return [url for url in urls if url is not None]


async def until(condition: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


# -- the receiver on its own, mounted in a server of the test's --------------------------


async def test_a_mounted_receiver_serves_a_client(fake: FakeServer, served: Served) -> None:
    async with client_for(fake, webhook_receiver=served.receiver, webhook_poll=60.0) as client:
        assert client.webhook_receiver is served.receiver and client.webhook_address is None
        job = await client.generate(prompt="a fox")
    assert job.status is JobStatus.SUCCEEDED
    [url] = webhooks_sent(fake)
    assert url.startswith(f"http://127.0.0.1:{served.port}/hooks/creative-client/callback/")
    assert fake.webhooks_sent == 1 and served.receiver.callbacks == 1
    assert fake.count("get") == 1  # the confirming read; no poll
    assert await post(url) == 404  # reported: the path is gone


async def test_other_methods_and_large_bodies_are_refused(fake: FakeServer, served: Served) -> None:
    fake.job_duration = 5.0
    async with client_for(fake, webhook_receiver=served.receiver, webhook_poll=60.0) as client:
        await client.submit(prompt="a slow fox")
        [url] = webhooks_sent(fake)
        assert await post(url, method="GET") == 405
        assert await post(url, method="PUT") == 405
        assert await post(url, b"x" * (served.receiver.max_body + 1)) == 413
        assert served.receiver.callbacks == 0 and fake.count("get") == 0


async def test_a_receiver_serves_one_client_at_a_time(fake: FakeServer, served: Served) -> None:
    async with client_for(fake, webhook_receiver=served.receiver):
        with pytest.raises(ConfigurationError, match="another client"):
            client_for(fake, webhook_receiver=served.receiver)
    async with client_for(fake, webhook_receiver=served.receiver) as client:  # once closed
        assert (await client.generate(prompt="a fox")).status is JobStatus.SUCCEEDED


# -- a client that serves its own receiver ----------------------------------------------


async def test_generate_waits_by_callback(fake: FakeServer) -> None:
    async with listening(fake) as client:
        assert client.webhook_address is not None
        host, port = client.webhook_address
        assert host == "127.0.0.1" and port > 0
        receiver = client.webhook_receiver
        assert receiver is not None and receiver.public_url == f"http://127.0.0.1:{port}"
        jobs = await asyncio.gather(*(client.generate(prompt=f"fox {n}") for n in range(5)))
    assert {job.status for job in jobs} == {JobStatus.SUCCEEDED}
    urls = webhooks_sent(fake)
    assert len(set(urls)) == 5  # one unguessable path per job
    assert all(u.startswith(f"http://127.0.0.1:{port}/creative-client/callback/") for u in urls)
    assert all(len(u.rsplit("/", 1)[1]) >= 32 for u in urls)
    assert fake.count("submit") == 5 and fake.count("get") == 5  # submit + confirming read


async def test_forged_callbacks_resolve_nothing(fake: FakeServer) -> None:
    fake.job_duration = 5.0
    async with listening(fake) as client:
        task = asyncio.create_task(client.generate(prompt="a slow fox"))
        await until(lambda: fake.count("submit") == 1)
        [url] = webhooks_sent(fake)
        receiver = client.webhook_receiver
        assert receiver is not None
        # A guessed token: nobody's.
        assert await post(url.rsplit("/", 1)[0] + "/guessed-token") == 404
        # The right token while the job still runs: answered, read, and not believed.
        forged = fake.read_answer("x", fake.status_for("completed"))
        assert await post(url, json.dumps(forged).encode()) == 202
        await until(lambda: fake.count("get") == 1)
        await asyncio.sleep(0.05)
        assert receiver.confirmations == 1 and not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await post(url) == 404  # a cancelled wait leaves no path behind


@pytest.mark.parametrize("fake", [{"job_duration": 0.0, "hold_submits_after": 0}], indirect=True)
async def test_a_callback_before_the_submit_answered_is_kept(fake: FakeServer) -> None:
    async with listening(fake) as client:
        task = asyncio.create_task(client.generate(prompt="instant"))
        receiver = client.webhook_receiver
        assert receiver is not None
        await until(lambda: receiver.callbacks == 1)  # the submit's answer is held
        assert receiver.confirmations == 0 and fake.count("get") == 0
        fake.release()
        job = await asyncio.wait_for(task, 5)
    assert job.status is JobStatus.SUCCEEDED and fake.count("get") == 1


@pytest.mark.parametrize("fake", [{"webhook_loss": 1.0}], indirect=True)
async def test_a_lost_callback_is_caught_by_the_fallback_poll(
    fake: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with listening(fake, webhook_poll=0.5) as client:
        with caplog.at_level(logging.WARNING, logger="creative_client"):
            jobs = await asyncio.wait_for(
                asyncio.gather(*(client.generate(prompt=f"fox {n}") for n in range(3))), 5
            )
    assert {job.status for job in jobs} == {JobStatus.SUCCEEDED}
    assert fake.webhooks_lost == 3 and fake.webhooks_sent == 0
    assert fake.count("get") == 3  # one fallback poll each, 0.5 s in (the jobs took 0.3 s)
    warnings = [r for r in caplog.records if "without a callback" in r.getMessage()]
    assert len(warnings) == 1  # once per client, not once per job


@pytest.mark.parametrize("fake", [{"webhook_copies": 3}], indirect=True)
async def test_a_duplicate_callback_yields_the_job_once(fake: FakeServer) -> None:
    requests = [GenerationRequest(prompt=f"fox {n}") for n in range(20)]
    async with listening(fake) as client:
        outcomes = [o async for o in client.as_completed(requests, concurrency=20)]
        receiver = client.webhook_receiver
        assert receiver is not None
        await until(lambda: fake.webhooks_sent == 60)
        assert receiver.callbacks >= 20  # the copies after the first got 404
    assert len(outcomes) == 20 and all(o.ok for o in outcomes)
    assert len({o.job.id for o in outcomes if o.job is not None}) == 20
    assert fake.count("get") == 20  # one confirming read per job, copies or not


async def test_generate_many_waits_by_callback(fake: FakeServer) -> None:
    async with listening(fake) as client:
        outcomes = await client.generate_many(
            [GenerationRequest(prompt=f"fox {n}") for n in range(10)]
        )
    assert [o.request.prompt for o in outcomes] == [f"fox {n}" for n in range(10)]
    assert all(o.ok for o in outcomes)
    assert fake.webhooks_sent == 10 and fake.count("get") == 10


async def test_submit_then_wait_hears_the_callback(fake: FakeServer) -> None:
    fake.job_duration = 0.5
    async with listening(fake) as client:
        job = await client.submit(prompt="a fox")
        with pytest.raises(JobTimeoutError):
            await client.wait(job, timeout=0.05)  # gives up; the callback is still expected
        done = await asyncio.wait_for(client.wait(job.id), 5)
        assert done.status is JobStatus.SUCCEEDED
        assert fake.count("get") == 1  # only the confirming read
        # A job nobody waits for: its confirmed callback is dropped, a wait() reads it.
        other = await client.submit(prompt="another fox")
        await until(lambda: fake.count("get") == 2)
        await asyncio.sleep(0.01)
        assert client._expecting == {}
        assert (await client.wait(other.id)).status is JobStatus.SUCCEEDED


async def test_a_request_with_its_own_webhook_is_polled(fake: FakeServer) -> None:
    async with listening(fake, poll_initial=0.1) as client:
        job = await client.generate(prompt="a fox", webhook="https://example.com/my-hook")
    assert job.status is JobStatus.SUCCEEDED
    assert webhooks_sent(fake) == ["https://example.com/my-hook"]
    assert fake.count("get") >= 1 and fake.webhooks_sent == 0


@pytest.mark.parametrize("name", UNHOOKED)
async def test_a_provider_without_webhooks_polls_silently_under_the_same_options(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with fake_for(name, api_key=API_KEY, job_duration=0.1) as fake:
        with caplog.at_level(logging.DEBUG, logger="creative_client"):
            async with client_for(fake, webhook_listen="127.0.0.1:0") as client:
                assert client.webhook_receiver is None and client.webhook_address is None
                jobs = await client.generate_many(
                    [GenerationRequest(prompt=f"fox {n}") for n in range(3)]
                )
    assert all(o.ok for o in jobs)
    assert fake.count("get") >= 3
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


PROC_NET = Path("/proc/net/tcp").exists()


def open_sockets(port: int) -> list[str]:
    """This machine's TCP sockets on ``port`` that are listening or connected (Linux)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state = fields[1], fields[3]
                # 01 established, 08 close-wait, 0A listen: an open socket, not TIME_WAIT.
                if int(local.rsplit(":", 1)[1], 16) == port and state in ("01", "08", "0A"):
                    found.append(line)
    return found


async def test_the_receiver_closes_with_the_client(fake: FakeServer) -> None:
    fake.job_duration = 5.0
    client = listening(fake)
    await client.__aenter__()
    assert client.webhook_address is not None
    port = client.webhook_address[1]
    waiting = asyncio.create_task(client.generate(prompt="a slow fox"))
    await until(lambda: fake.count("submit") == 1)
    [url] = webhooks_sent(fake)
    async with aiohttp.ClientSession() as session:  # a keep-alive connection to the receiver
        async with session.post(url.rsplit("/", 1)[0] + "/x") as resp:
            assert resp.status == 404
        assert open_sockets(port) or not PROC_NET
        await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await waiting
    assert client.webhook_address is None
    assert open_sockets(port) == []
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", port), timeout=1),
    ):
        pass


async def test_the_receiver_starts_at_first_use_without_async_with(
    fake: FakeServer,
) -> None:
    client = listening(fake)
    try:
        assert client.webhook_address is None
        job = await client.generate(prompt="a fox")
        assert job.status is JobStatus.SUCCEEDED and client.webhook_address is not None
        assert fake.count("get") == 1
    finally:
        await client.aclose()


def test_a_password_in_the_public_url_is_not_shown() -> None:
    receiver = WebhookReceiver("https://user:s3cret-pw@hooks.example.com/creative")
    assert receiver.public_url == "https://user:s3cret-pw@hooks.example.com/creative"
    assert "s3cret" not in repr(receiver) and "s3cret" not in receiver.shown_url
    assert receiver.shown_url == "https://hooks.example.com/creative"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"webhook_listen": "127.0.0.1"}, "HOST:PORT"),
        ({"webhook_listen": ":8080"}, "HOST:PORT"),
        ({"webhook_listen": "127.0.0.1:http"}, "HOST:PORT"),
        ({"webhook_listen": "127.0.0.1:70000"}, "HOST:PORT"),
        ({"webhook_listen": "0.0.0.0:0"}, "webhook_public_url"),
        ({"webhook_public_url": "https://hooks.example.com"}, "needs webhook_listen"),
        ({"webhook_listen": "127.0.0.1:0", "webhook_public_url": "ftp://x"}, "http"),
        ({"webhook_listen": "127.0.0.1:0", "webhook_poll": 0}, "webhook_poll"),
        ({"webhook_receiver": "http://127.0.0.1:1/"}, "WebhookReceiver"),
    ],
)
def test_bad_webhook_options_are_refused_at_once(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        CreativeClient("deepixels", API_KEY, **options)


async def test_a_port_in_use_is_a_clear_error(fake: FakeServer) -> None:
    with free_socket() as taken:
        taken.listen()
        port = taken.getsockname()[1]
        client = listening(fake, webhook_listen=f"127.0.0.1:{port}")
        with pytest.raises(
            ConfigurationError, match=f"cannot listen for webhooks on 127.0.0.1:{port}"
        ):
            await client.__aenter__()
        assert client.closed


async def test_the_fake_never_calls_a_webhook_beyond_loopback(fake: FakeServer) -> None:
    fake.job_duration = 0.0
    async with client_for(fake) as client:
        await client.generate(prompt="a fox", webhook="https://example.com/hook")
        await asyncio.sleep(0.05)
        assert fake.webhooks_sent == 0 and not fake.webhooks.pending


async def test_the_fake_spreads_job_durations_when_asked() -> None:
    async with FakeDeepixels(job_duration=1.0, job_spread=0.2) as spread:
        body = {"model": "m", "input": {}}
        durations = [spread.new_job(body, f"p{n}").duration for n in range(200)]
    assert 0.8 <= min(durations) < 0.85 and 1.15 < max(durations) <= 1.2
    async with FakeDeepixels(job_duration=1.0) as fixed:
        assert fixed.new_job(body, "p").duration == 1.0
