"""The library as its peers' users expect (issue 12): prompts as strings, a status that is
a string, errors that point the right way, keys never shown and messages never garbled."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from _helpers import API_KEY, FAST_RETRY, client_for

from creative_client import (
    AuthenticationError,
    CreativeClient,
    GenerationRequest,
    InvalidRequestError,
    Job,
    JobStatus,
    NotFoundError,
    ServerError,
    TransportError,
)
from creative_client.testing import FakeDeepixels, FakeProcess, FakeServer, Reply, fake_for

# -- prompts as strings ------------------------------------------------------------------


async def test_a_prompt_is_taken_positionally_everywhere(fake: FakeServer) -> None:
    async with client_for(fake) as client:
        job = await client.generate("a red fox")
        submitted = await client.submit("a blue whale")
        outcomes = await client.generate_many(["one", GenerationRequest(prompt="two"), "three"])
        seen = [o.request.prompt async for o in client.as_completed(["x", "y"])]
    assert job.status is JobStatus.SUCCEEDED and submitted.id
    assert [o.request.prompt for o in outcomes] == ["one", "two", "three"]
    assert all(o.ok for o in outcomes) and sorted(seen) == ["x", "y"]
    assert fake.prompts == {"a red fox": 1, "a blue whale": 1, "one": 1, "two": 1, "three": 1} | {
        "x": 1,
        "y": 1,
    }


async def test_a_request_is_given_once(fake: FakeServer) -> None:
    async with client_for(fake) as client:
        for call in (
            client.generate("a", prompt="b"),
            client.submit(GenerationRequest(prompt="a"), model="m"),
            client.submit(),
            client.submit("a", files="one-id"),  # a str is a Sequence[str]: caught at run time
        ):
            with pytest.raises(InvalidRequestError):
                await call
    assert fake.count("submit") == 0


def test_the_status_is_a_string() -> None:
    job = Job(id="j", provider="p", status=JobStatus.SUCCEEDED)
    assert job.status == "succeeded" and str(job.status) == "succeeded"
    assert f"{job.status}" == "succeeded" and JobStatus("failed") is JobStatus.FAILED
    assert job.status.is_terminal and not JobStatus.RUNNING.is_terminal


async def test_download_of_a_job_that_has_not_succeeded_is_refused(
    fake: FakeServer, tmp_path: Path
) -> None:
    fake.job_duration = 5
    async with client_for(fake) as client:
        job = await client.submit("x")
        with pytest.raises(InvalidRequestError, match=r"not succeeded.*wait"):
            await client.download(job, tmp_path)
        failed = Job(id="j", provider=fake.name, status=JobStatus.FAILED)
        with pytest.raises(InvalidRequestError, match="j is failed"):
            await client.download(failed, tmp_path)
    assert fake.count("file") == 0


async def test_deepixels_submit_answers_with_job_id_or_jobId(deepixels: FakeDeepixels) -> None:
    deepixels.inject("submit", Reply(json={"job_id": "dp-snake", "status": "created"}))
    async with client_for(deepixels) as client:
        assert (await client.submit("x")).id == "dp-snake"
        assert (await client.submit("y")).id.startswith("de-")


# -- errors that point the right way --------------------------------------------------------


async def test_a_404_page_that_is_not_the_api_says_check_base_url(fake: FakeServer) -> None:
    async with client_for(fake, base_url=fake.root_url + "/wrong") as client:
        with pytest.raises(NotFoundError) as submitted:
            await client.submit("x")
        with pytest.raises(NotFoundError) as read:
            await client.get("j")
    for info in (submitted, read):
        assert "check base_url" in str(info.value) and "/wrong" in str(info.value)
    async with client_for(fake) as client:  # the provider's own 404: no such hint
        with pytest.raises(NotFoundError) as own:
            await client.get("no-such-job")
    assert "base_url" not in str(own.value)


async def test_413_says_the_request_is_too_large(fake: FakeServer) -> None:
    fake.inject("submit", Reply(status=413, body="<html>Request Entity Too Large</html>"))
    async with client_for(fake) as client:
        with pytest.raises(InvalidRequestError, match="request is too large"):
            await client.submit("x")


async def test_a_timeout_says_what_timed_out_and_after_how_long(fake: FakeServer) -> None:
    async with client_for(fake, request_timeout=0.2, retry=FAST_RETRY) as client:
        fake.inject("get", *[Reply(kind="hang", delay=5)] * 4)
        with pytest.raises(TransportError) as info:
            await client.get("j")
    assert "timed out after 0.2s (request_timeout)" in str(info.value)
    assert "GET /" in str(info.value)
    assert isinstance(info.value.__cause__, TimeoutError)


async def test_errors_from_aiohttp_keep_it_as_their_cause(fake: FakeServer) -> None:
    fake.inject("get", *[Reply(kind="drop")] * 8)
    async with client_for(fake, retry=FAST_RETRY) as client:
        with pytest.raises(TransportError) as info:
            await client.get("j")
    assert info.value.__cause__ is not None
    assert type(info.value.__cause__).__module__.startswith("aiohttp")


async def test_a_failed_download_names_the_host_not_the_provider(
    fake: FakeServer, tmp_path: Path
) -> None:
    async with client_for(fake, retry=FAST_RETRY) as client:
        job = await client.generate("x")
        gone = Job(
            id="j",
            provider=fake.name,
            status=JobStatus.SUCCEEDED,
            outputs=(job.outputs[0].__class__(url="http://localhost:9/a.png"),),
        )
        fake.inject("file", *[Reply(status=500)] * 4)
        with pytest.raises(ServerError) as server:
            await client.download(job, tmp_path)
        with pytest.raises(TransportError) as refused:
            await client.download(gone, tmp_path)
    assert str(server.value).startswith("127.0.0.1 answered HTTP 500 for /files/")
    assert "could not connect to localhost" in str(refused.value)
    for error in (server.value, refused.value):
        assert f"{fake.name} answered" not in str(error)


# -- the key is never shown, and no message is garbled -------------------------------------


@pytest.mark.parametrize("key", ["key", "e", "api", "local"])
async def test_a_short_key_garbles_no_message(provider: str, key: str) -> None:
    """Issue 12: with the key "key" a 401 read `Invalid API [redacted]`; with "e" a host
    name was cut apart."""
    async with fake_for(provider) as fake:
        async with client_for(fake, api_key=key, retry=FAST_RETRY) as client:
            fake.inject("submit", fake.error_reply(401, "Invalid API key"))
            with pytest.raises(AuthenticationError) as denied:
                await client.submit("x")
        async with client_for(
            fake, api_key=key, base_url="http://localhost:9/v1", retry=FAST_RETRY
        ) as client:
            with pytest.raises(TransportError) as refused:
                await client.get("j")
    assert f"{provider} answered HTTP 401: Invalid API key" in str(denied.value)
    assert "[redacted]" not in str(denied.value) + str(refused.value)
    assert f"could not connect to {provider}" in str(refused.value)
    assert "localhost:9" in str(refused.value)


async def test_a_real_key_echoed_anywhere_is_never_shown(fake: FakeServer) -> None:
    fake.inject("get", fake.error_reply(400, f"key {API_KEY} is not allowed here"))
    fake.inject("submit", Reply(status=403, body=f"<p>denied:{API_KEY}x</p>"))
    async with client_for(fake) as client:
        with pytest.raises(InvalidRequestError) as read:
            await client.get("j")
        with pytest.raises(AuthenticationError) as submitted:
            await client.submit("x")
    for error in (read.value, submitted.value):
        shown = " ".join([str(error), repr(error), json.dumps(vars(error), default=str)])
        assert API_KEY not in shown and "[redacted]" in shown
    assert "key [redacted] is not allowed here" in str(read.value)


# -- one client, one event loop --------------------------------------------------------------


def test_a_client_used_from_a_second_event_loop_says_so() -> None:
    with FakeProcess() as fake:
        client = CreativeClient("deepixels", API_KEY, base_url=fake.base_url, model="m")
        first = asyncio.new_event_loop()
        try:
            job = first.run_until_complete(client.submit("x"))

            async def elsewhere() -> None:
                with pytest.raises(RuntimeError, match="belongs to another event loop"):
                    await client.get(job.id)
                with pytest.raises(RuntimeError, match="belongs to another event loop"):
                    await client.aclose()

            asyncio.run(elsewhere())
            assert first.run_until_complete(client.get(job.id)).id == job.id
            first.run_until_complete(client.aclose())
        finally:
            first.close()


async def test_one_prompt_is_not_taken_for_a_batch_of_characters(fake: FakeServer) -> None:
    async with client_for(fake) as client:
        with pytest.raises(TypeError, match="wrap it in a list"):
            await client.generate_many("a red fox")
        with pytest.raises(TypeError, match="wrap it in a list"):
            client.as_completed(GenerationRequest(prompt="x"))  # type: ignore[arg-type]
    assert fake.count("submit") == 0


def test_a_batch_made_outside_any_loop_is_checked_where_it_runs() -> None:
    with FakeProcess() as fake:
        client = CreativeClient("deepixels", API_KEY, base_url=fake.base_url, model="m")
        stream = client.as_completed(["a"])  # no loop yet: checked when it runs
        first = asyncio.new_event_loop()
        try:
            first.run_until_complete(client.submit("x"))

            async def elsewhere() -> None:
                with pytest.raises(RuntimeError, match="belongs to another event loop"):
                    await anext(stream)

            asyncio.run(elsewhere())
            first.run_until_complete(client.aclose())
        finally:
            first.close()
