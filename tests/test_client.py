"""The facade end to end: validation, session ownership; waiting, deadlines and fan-out
are the kit's ``end_to_end`` group (creative_client/testing/kit/end_to_end.py), run here
for every provider with a fake."""

from __future__ import annotations

import aiohttp
import pytest
from _helpers import API_KEY, client_for

from creative_client import (
    CreativeClient,
    GenerationRequest,
    InvalidRequestError,
    JobStatus,
    NotFoundError,
)
from creative_client.testing import FakeDeepixels, FakeNeocu, FakeServer, fake_for
from creative_client.testing.kit import conformance_tests

globals().update(conformance_tests(groups=["end_to_end"]))

# -- validation: refused before any request ---------------------------------------------

INVALID = [
    ("deepixels", {"prompt": ""}, "prompt"),
    ("deepixels", {"prompt": "   "}, "prompt"),
    ("deepixels", {"prompt": "x", "webhook": "ftp://example.com/hook"}, "webhook"),
    ("deepixels", {"prompt": "x", "webhook": "not a url"}, "webhook"),
    ("deepixels", {"prompt": "x", "files": ["f1"]}, "files"),
    ("deepixels", {"prompt": "x", "input": {"prompt": "other"}}, "input"),
    ("neocu", {"prompt": ""}, "prompt"),
    ("neocu", {"prompt": "x", "model": "flux"}, "model"),
    ("neocu", {"prompt": "x", "webhook": "https://example.com/hook"}, "webhook"),
    ("neocu", {"prompt": "x", "input": {"steps": 4}}, "input"),
    ("neocu", {"prompt": "x", "files": [""]}, "files"),
]


@pytest.mark.parametrize(("name", "fields", "field"), INVALID)
async def test_invalid_requests_are_refused_before_sending(
    name: str, fields: dict[str, object], field: str
) -> None:
    async with fake_for(name, api_key=API_KEY) as fake:
        async with client_for(fake) as client:
            with pytest.raises(InvalidRequestError) as info:
                await client.submit(GenerationRequest(**fields))  # type: ignore[arg-type]
            with pytest.raises(InvalidRequestError):
                await client.generate(**fields)  # type: ignore[arg-type]
        assert fake.count("submit") == 0
    assert f"'{field}'" in str(info.value)
    assert name in str(info.value)


async def test_deepixels_needs_a_model_from_somewhere(deepixels: FakeDeepixels) -> None:
    async with client_for(deepixels, model=None) as client:
        with pytest.raises(InvalidRequestError, match="'model' is required"):
            await client.submit(prompt="x")
        job = await client.submit(prompt="x", model="sdxl")
    assert deepixels.count("submit") == 1
    assert deepixels.requests[0].json()["model"] == "sdxl"
    assert job.id in deepixels.jobs


async def test_default_model_is_ignored_by_neocu(neocu: FakeNeocu) -> None:
    async with client_for(neocu, model="flux-schnell") as client:
        assert client.model is None
        job = await client.generate(prompt="a red fox")
    assert job.status is JobStatus.SUCCEEDED
    assert neocu.requests[0].json() == {"query": "a red fox"}


async def test_wire_bodies(deepixels: FakeDeepixels, neocu: FakeNeocu) -> None:
    async with client_for(deepixels) as client:
        await client.submit(
            prompt="a fox", input={"width": 512}, webhook="https://example.com/hook"
        )
    assert deepixels.requests[0].json() == {
        "model": "flux-schnell",
        "input": {"width": 512, "prompt": "a fox"},
        "webhook": "https://example.com/hook",
    }
    assert deepixels.requests[0].headers["x-api-key"] == API_KEY
    async with client_for(neocu) as client:
        await client.submit(prompt="a fox", files=["file-1", "file-2"])
    assert neocu.requests[0].json() == {"query": "a fox", "files": ["file-1", "file-2"]}
    assert neocu.requests[0].headers["api-key"] == API_KEY


@pytest.mark.parametrize("prefix", ["", "/v1", "/proxy/some/deep/path/v2"])
async def test_any_base_url_with_or_without_prefix(provider: str, prefix: str) -> None:
    async with fake_for(provider, api_key=API_KEY, prefix=prefix) as fake:
        for base in (fake.base_url, fake.base_url + "/"):
            async with client_for(fake, base_url=base) as client:
                job = await client.generate(prompt="x")
            assert job.status is JobStatus.SUCCEEDED


async def test_job_ids_are_escaped_in_paths(neocu: FakeNeocu) -> None:
    async with client_for(neocu) as client:
        with pytest.raises(NotFoundError):
            await client.get("../../etc/passwd?x=1")
    assert neocu.requests[-1].path.startswith(neocu.prefix + "/task/")


# -- lifecycle --------------------------------------------------------------------------


async def test_closed_client_refuses_calls(fake: FakeServer) -> None:
    client = client_for(fake)
    async with client:
        await client.submit(prompt="x")
    with pytest.raises(RuntimeError, match="closed"):
        await client.submit(prompt="x")
    with pytest.raises(RuntimeError, match="closed"):
        await client.get("x")
    with pytest.raises(RuntimeError, match="closed"):
        async with client:
            pass
    await client.aclose()  # idempotent


async def test_a_callers_session_is_used_and_left_open(fake: FakeServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with client_for(fake, session=session) as client:
            job = await client.generate(prompt="x")
        assert not session.closed
        async with session.get(fake.root_url + "/files/x.png") as resp:
            assert resp.status == 200
    assert job.status is JobStatus.SUCCEEDED


async def test_works_without_async_with_when_closed_explicitly(fake: FakeServer) -> None:
    client = client_for(fake)
    try:
        job = await client.generate(prompt="x")
    finally:
        await client.aclose()
    assert job.status is JobStatus.SUCCEEDED


@pytest.mark.parametrize(
    "options",
    [{"concurrency": 0}, {"timeout": -1}, {"poll_initial": -0.1}, {"concurrency": 2.5}],
)
def test_bad_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must be a"):  # ConfigurationError is a ValueError
        CreativeClient("neocu", API_KEY, **options)  # type: ignore[arg-type]


async def test_empty_job_ids_are_refused_before_sending(fake: FakeServer) -> None:
    async with client_for(fake) as client:
        for call in (client.get(""), client.wait("")):
            with pytest.raises(InvalidRequestError, match="job_id"):
                await call
    assert fake.count("get") == 0
