"""Hostile and malformed answers, drawn by hypothesis and served over real HTTP.

Whatever a provider (or a proxy in front of it) answers, on either endpoint,
with any status, the adapters give back a ``Job`` or a ``CreativeError``:
never a ``KeyError``, ``TypeError``, ``AttributeError`` or ``ValueError``, and
never a hang. One fake and one client per provider serve every example, on an
event loop of their own, so thousands of examples take seconds.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from _helpers import API_KEY, client_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creative_client import (
    CreativeClient,
    CreativeError,
    Job,
    ProviderResponseError,
    RetryPolicy,
    SubmissionUncertainError,
)
from creative_client.testing import FakeDeepixels, FakeNeocu, FakeServer, Reply

ONE_TRY = RetryPolicy(max_attempts=1)

#: Every final status a server can send (1xx are not final answers).
STATUSES = st.one_of(
    st.sampled_from([200, 201, 202, 204, 301, 302, 304, 400, 401, 402, 403, 404, 409, 422,
                     429, 500, 501, 502, 503, 504]),
    st.integers(200, 599),
)  # fmt: skip

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def near_miss(keys: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Documents with the contract's keys and hostile values: they reach deep into parsing."""
    return st.fixed_dictionaries({}, optional=keys)


KNOWN = ["completed", "COMPLETED", " Failed ", "pending", "processing", "generating", "created"]
STATUS_TEXT = st.sampled_from([*KNOWN, "", "???"]) | st.text(max_size=12)
TIMES = st.integers() | st.floats() | st.text(max_size=30) | JSON

SHAPES: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "deepixels": {
        "jobId": st.text(max_size=10) | JSON,
        "status": STATUS_TEXT | JSON,
        "date": TIMES,
        "output": JSON
        | near_miss({"imageUrl": st.lists(st.text(max_size=10) | JSON) | JSON, "videoUrl": JSON}),
        "error": JSON,
        "message": JSON,
    },
    "neocu": {
        "task_id": st.text(max_size=10) | JSON,
        "message": JSON,
        "isSuccess": JSON,
        "error": JSON,
        "task": JSON | near_miss({"status": STATUS_TEXT | JSON, "message": JSON, "date": TIMES}),
        "asset": JSON
        | st.lists(
            near_miss({"url": JSON | st.text(max_size=10), "type": JSON | st.text(max_size=6),
                       "thumbnail": JSON, "name": JSON, "_id": JSON}),
            max_size=3,
        ),
    },
}  # fmt: skip


def bodies(provider: str) -> st.SearchStrategy[bytes]:
    return st.one_of(
        near_miss(SHAPES[provider]).map(lambda d: json.dumps(d).encode()),
        JSON.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=64),
        st.sampled_from([b"", b"<html><body>502 Bad Gateway</body></html>", b"{", b"null",
                         b"\xff\xfe", b'{"jobId": 1e999}', b"[]" * 1000]),
    )  # fmt: skip


def replies(provider: str) -> st.SearchStrategy[Reply]:
    return st.builds(
        Reply,
        status=STATUSES,
        body=bodies(provider),
        content_type=st.sampled_from(["application/json", "text/html", "text/plain"]),
        headers=st.sampled_from([{}, {"Retry-After": "0"}, {"Retry-After": "soon"}]),
    )


class Harness:
    """A fake and a client for one provider, on an event loop kept for the whole module."""

    def __init__(self, cls: type[FakeServer]) -> None:
        self.runner = asyncio.Runner()
        self.fake = cls(api_key=API_KEY)
        self.client: CreativeClient | None = None
        self.job_id = ""
        self.runner.run(self._start())

    async def _start(self) -> None:
        await self.fake.start()
        self.client = client_for(self.fake, retry=ONE_TRY, request_timeout=5.0)
        await self.client.__aenter__()
        self.job_id = (await self.client.submit(prompt="x")).id

    def serve(self, endpoint: str, reply: Reply) -> Job | CreativeError:
        async def one() -> Job | CreativeError:
            assert self.client is not None
            self.fake.inject(endpoint, reply)
            try:
                async with asyncio.timeout(10):  # a hang fails the example, not the run
                    if endpoint == "submit":
                        return await self.client.submit(prompt="x")
                    return await self.client.get(self.job_id)
            except CreativeError as exc:
                return exc

        return self.runner.run(one())

    def serve_drawn(self, endpoint: str, data: Any) -> tuple[Reply, Job | CreativeError]:
        """Serve a reply hypothesis draws; whatever it is, the result must be one of ours."""
        reply = data.draw(replies(self.fake.name))
        result = self.serve(endpoint, reply)
        assert isinstance(result, Job | CreativeError), result
        return reply, result

    def close(self) -> None:
        async def stop() -> None:
            assert self.client is not None
            await self.client.aclose()
            await self.fake.close()

        self.runner.run(stop())
        self.runner.close()


@pytest.fixture(scope="module", params=[FakeDeepixels, FakeNeocu], ids=["deepixels", "neocu"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    h = Harness(request.param)
    yield h
    h.close()


SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same examples every run
)


@SETTINGS
@given(data=st.data())
def test_any_answer_to_a_read_is_a_job_or_a_typed_error(harness: Harness, data: Any) -> None:
    reply, result = harness.serve_drawn("get", data)
    if isinstance(result, Job):
        assert 200 <= reply.status < 300
        assert result.provider == harness.fake.name
    elif 200 <= reply.status < 300:
        assert isinstance(result, ProviderResponseError)


@SETTINGS
@given(data=st.data())
def test_any_answer_to_a_submit_is_a_job_or_a_typed_error(harness: Harness, data: Any) -> None:
    reply, result = harness.serve_drawn("submit", data)
    if isinstance(result, Job):
        assert 200 <= reply.status < 300 and result.id
    elif reply.status < 400 or reply.status >= 500:
        # Anything but a refusal may have created a job: the submit rule says uncertain.
        assert isinstance(result, SubmissionUncertainError)
        assert result.request is not None
    else:
        assert not isinstance(result, SubmissionUncertainError)


@pytest.mark.parametrize("endpoint", ["submit", "get"])
@pytest.mark.parametrize("length", ["declared", "endless"])
def test_an_oversized_body_is_refused_without_reading_it_all(
    harness: Harness, endpoint: str, length: str
) -> None:
    if length == "declared":
        reply = Reply(body=b"[" + b"1," * (5 * 1024 * 1024) + b"1]")  # 10 MiB, Content-Length
    else:
        reply = Reply(kind="endless")  # no length, never ends: reading it all would hang
    result = harness.serve(endpoint, reply)
    expected = SubmissionUncertainError if endpoint == "submit" else ProviderResponseError
    assert isinstance(result, expected), result
    assert "over 8388608 bytes" in result.message
    assert result.body is not None and len(result.body) <= 1024
