"""Every answer a provider's contract lists, end to end over real HTTP.

Table-driven: each row scripts the fake's answers to one endpoint and says what
the client must raise (or return) and how many requests the fake must have seen.
Error bodies are in the provider's own shape (``FakeContract.error_reply``).
"""

from __future__ import annotations

from typing import Any

import pytest

from ... import (
    AuthenticationError,
    CreativeError,
    InvalidRequestError,
    Job,
    JobStatus,
    NotFoundError,
    ProviderResponseError,
    RateLimitError,
    ServerError,
    SubmissionUncertainError,
)
from .._replies import Reply
from .._server import FakeServer
from ._support import client_for

OK = None  # the call succeeds
Row = tuple[str, list[Any], type[CreativeError] | None, int]

SUBMIT_ROWS: list[Row] = [
    ("400 invalid", [(400, "Invalid request")], InvalidRequestError, 1),
    ("401 bad key", [(401, "Unauthorized")], AuthenticationError, 1),
    ("500 after create", [(500, "Internal error")], SubmissionUncertainError, 1),
    ("502 html page", [Reply.html(502)], SubmissionUncertainError, 1),
    ("503 empty body", [Reply(status=503, body=b"")], SubmissionUncertainError, 1),
    ("dropped before answer", [Reply(kind="drop")], SubmissionUncertainError, 1),
    ("cut mid-answer", [Reply(kind="cut")], SubmissionUncertainError, 1),
    (
        "200 not json",
        [Reply(body=b"<html>ok</html>", content_type="text/html")],
        SubmissionUncertainError,
        1,
    ),
    ("200 without id", [Reply(json={"status": "created"})], SubmissionUncertainError, 1),
    ("429 then ok", [Reply(status=429, headers={"Retry-After": "0"})], OK, 2),
    ("429 without Retry-After, then ok", [Reply(status=429)], OK, 2),
    (
        "429 until retries run out",
        [Reply(status=429, headers={"Retry-After": "0"})] * 4,
        RateLimitError,
        4,
    ),
]


def _script(fake: FakeServer, rows: list[Any]) -> list[Reply]:
    return [r if isinstance(r, Reply) else fake.error_reply(*r) for r in rows]


@pytest.mark.parametrize(
    ("case", "script", "expected", "posts"), SUBMIT_ROWS, ids=[r[0] for r in SUBMIT_ROWS]
)
async def test_submit_answers(
    fake: FakeServer,
    case: str,
    script: list[Any],
    expected: type[CreativeError] | None,
    posts: int,
) -> None:
    fake.inject("submit", *_script(fake, script))
    async with client_for(fake) as client:
        if expected is None:
            job = await client.submit(prompt="a red fox")
            assert isinstance(job, Job)
            assert job.status is JobStatus.QUEUED
        else:
            with pytest.raises(expected) as info:
                await client.submit(prompt="a red fox")
            err = info.value
            assert err.provider == fake.name
            if isinstance(err, SubmissionUncertainError):
                assert err.request is not None and err.request.prompt == "a red fox"
    assert fake.count("submit") == posts, "a submit must never be resent silently"


async def test_submit_error_carries_provider_message_and_body(fake: FakeServer) -> None:
    fake.inject("submit", fake.error_reply(400, "prompt too long"))
    async with client_for(fake) as client:
        with pytest.raises(InvalidRequestError) as info:
            await client.submit(prompt="x")
    err = info.value
    assert err.status == 400
    assert err.provider_message == "prompt too long"
    assert err.body is not None and "prompt too long" in err.body
    assert "prompt too long" in str(err)


READ_ROWS: list[Row] = [
    ("400", [(400, "jobId is required")], InvalidRequestError, 1),
    ("401", [(401, "Unauthorized")], AuthenticationError, 1),
    ("404", [(404, "Job not found")], NotFoundError, 1),
    ("500 then ok", [(500, "Internal error")], OK, 2),
    ("502 html then ok", [Reply.html(502)], OK, 2),
    ("503 html then ok", [Reply.html(503)], OK, 2),
    ("504 empty then ok", [Reply(status=504, body=b"")], OK, 2),
    ("500 until retries run out", [(500, "Internal error")] * 4, ServerError, 4),
    ("501 is final", [(501, "Not implemented")], ServerError, 1),
    ("429 then ok", [Reply(status=429, headers={"Retry-After": "0"})], OK, 2),
    ("dropped then ok", [Reply(kind="drop")], OK, 2),
    ("cut then ok", [Reply(kind="cut")], OK, 2),
    (
        "200 html",
        [Reply(body=b"<html></html>", content_type="text/html")],
        ProviderResponseError,
        1,
    ),
    ("200 empty", [Reply(body=b"")], ProviderResponseError, 1),
    ("200 wrong shape", [Reply(json=["not", "a", "job"])], ProviderResponseError, 1),
    ("418 other 4xx", [(418, "teapot")], InvalidRequestError, 1),
]


@pytest.mark.parametrize(
    ("case", "script", "expected", "gets"), READ_ROWS, ids=[r[0] for r in READ_ROWS]
)
async def test_read_answers(
    fake: FakeServer,
    case: str,
    script: list[Any],
    expected: type[CreativeError] | None,
    gets: int,
) -> None:
    async with client_for(fake) as client:
        job = await client.submit(prompt="a red fox")
        fake.inject("get", *_script(fake, script))
        if expected is None:
            read = await client.get(job.id)
            assert read.id == job.id
            assert read.status is JobStatus.SUCCEEDED
        else:
            with pytest.raises(expected) as info:
                await client.get(job.id)
            assert info.value.provider == fake.name
    assert fake.count("get") == gets
    assert fake.count("submit") == 1


async def test_real_401_from_a_wrong_key(fake: FakeServer) -> None:
    async with client_for(fake, api_key="sk-wrong-key") as client:
        with pytest.raises(AuthenticationError) as info:
            await client.submit(prompt="x")
    assert info.value.status == 401
    assert fake.count("submit") == 1
    assert not fake.jobs


async def test_real_404_for_an_unknown_job(fake: FakeServer) -> None:
    async with client_for(fake) as client:
        with pytest.raises(NotFoundError) as info:
            await client.get("no-such-job")
    assert info.value.status == 404
    assert info.value.provider_message


async def test_retry_after_is_honoured(fake: FakeServer, caplog: pytest.LogCaptureFixture) -> None:
    fake.inject("get", Reply(status=429, headers={"Retry-After": "0.3"}))
    caplog.set_level("INFO", logger="creative_client")
    async with client_for(fake) as client:
        job = await client.submit(prompt="x")
        await client.get(job.id)
    retries = [r for r in caplog.records if r.getMessage().startswith("retrying")]
    assert len(retries) == 1
    line = retries[0].getMessage()
    assert "in 0.30s" in line and "status=429" in line and fake.name in line
