"""The webhook receiver on its own: callbacks confirmed by a read, forgeries resolve nothing."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from _helpers import API_KEY
from aiohttp import web

from creative_client import CreativeClient, JobStatus
from creative_client._webhooks import WebhookReceiver
from creative_client.testing import FakeDeepixels


class Served:
    """A receiver mounted in an aiohttp server of the test's own, on 127.0.0.1."""

    def __init__(self, fake: FakeDeepixels, client: CreativeClient) -> None:
        self.fake, self.client = fake, client
        self.receiver: WebhookReceiver
        self.runner: web.AppRunner

    async def start(self, **options: int) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self.receiver = WebhookReceiver(self.client, f"http://127.0.0.1:{port}", **options)
        self.runner = web.AppRunner(self.receiver.app, shutdown_timeout=0.5)
        await self.runner.setup()
        await web.SockSite(self.runner, sock).start()

    async def close(self) -> None:
        await self.receiver.close()
        await self.runner.cleanup()


@pytest.fixture
async def served(request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    options = getattr(request, "param", {})
    async with (
        FakeDeepixels(job_duration=0.3, **options) as fake,
        CreativeClient("deepixels", API_KEY, base_url=fake.base_url, model="m") as client,
    ):
        served = Served(fake, client)
        await served.start()
        try:
            yield served
        finally:
            await served.close()


async def post(url: str, body: bytes = b"{}", method: str = "POST") -> int:
    async with aiohttp.ClientSession() as session, session.request(method, url, data=body) as r:
        return r.status


async def test_a_callback_is_confirmed_by_a_read(served: Served) -> None:
    expected = served.receiver.expect()
    job = await served.client.submit(prompt="a fox", webhook=expected.url)
    served.receiver.bind(expected, job.id)
    done = await asyncio.wait_for(expected.job, 5)
    assert done.id == job.id and done.status is JobStatus.SUCCEEDED
    assert served.fake.webhooks_sent == 1
    assert served.receiver.callbacks == 1 and served.receiver.confirmations == 1
    assert served.fake.count("get") == 1  # the confirming read, and no polls
    served.receiver.forget(expected)
    assert await post(expected.url) == 404  # after the waiter is done


@pytest.mark.parametrize("served", [{"webhook_copies": 3}], indirect=True)
async def test_a_duplicate_callback_resolves_the_job_once(served: Served) -> None:
    expected = served.receiver.expect()
    job = await served.client.submit(prompt="a fox", webhook=expected.url)
    served.receiver.bind(expected, job.id)
    done = await asyncio.wait_for(expected.job, 5)
    assert done.id == job.id
    await asyncio.sleep(0.1)
    assert served.fake.webhooks_sent == 3 and served.receiver.callbacks == 3
    assert served.receiver.confirmations == 1  # the others came once it was known


async def test_forged_callbacks_resolve_nothing(served: Served) -> None:
    served.fake.job_duration = 5.0
    expected = served.receiver.expect()
    job = await served.client.submit(prompt="a slow fox", webhook=expected.url)
    served.receiver.bind(expected, job.id)
    # A guessed token: nobody's.
    assert await post(expected.url.rsplit("/", 1)[0] + "/guessed-token") == 404
    # The right token while the job still runs: answered, read, and not believed.
    assert await post(expected.url, b'{"jobId": "x", "status": "completed"}') == 202
    for _ in range(50):
        if served.receiver.confirmations and not served.receiver._reads:
            break
        await asyncio.sleep(0.02)
    assert served.receiver.confirmations == 1
    assert not expected.job.done()


async def test_other_methods_and_large_bodies_are_refused(served: Served) -> None:
    expected = served.receiver.expect()
    assert await post(expected.url, method="GET") == 405
    assert await post(expected.url, method="PUT") == 405
    assert await post(expected.url, b"x" * (served.receiver.max_body + 1)) == 413
    assert served.receiver.callbacks == 0


async def test_a_callback_before_the_submit_answered_is_kept(served: Served) -> None:
    served.fake.job_duration = 0.0
    expected = served.receiver.expect()
    job = await served.client.submit(prompt="instant", webhook=expected.url)
    for _ in range(100):  # the callback arrives before bind()
        if served.receiver.callbacks:
            break
        await asyncio.sleep(0.01)
    assert served.receiver.callbacks == 1 and served.receiver.confirmations == 0
    served.receiver.bind(expected, job.id)
    assert (await asyncio.wait_for(expected.job, 5)).id == job.id


async def test_the_fake_never_calls_a_webhook_beyond_loopback() -> None:
    async with (
        FakeDeepixels(job_duration=0.0) as fake,
        CreativeClient("deepixels", API_KEY, base_url=fake.base_url, model="m") as client,
    ):
        await client.generate(prompt="a fox", webhook="https://example.com/hook")
        await asyncio.sleep(0.05)
        assert fake.webhooks_sent == 0 and not fake._timers
