"""Hostile and malformed answers, drawn by hypothesis and served over real HTTP.

Whatever a provider (or a proxy in front of it) answers, on either endpoint,
with any status, the adapter gives back a ``Job`` or a ``CreativeError``: never
a ``KeyError``, ``TypeError``, ``AttributeError`` or ``ValueError``, and never a
hang. The documents are near misses of the fake's ``document_shapes`` and random
JSON. One fake and one client per provider serve every example, on an event loop
of their own, so hundreds of examples take seconds.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ... import (
    CreativeClient,
    CreativeError,
    Job,
    ProviderResponseError,
    RetryPolicy,
    SubmissionUncertainError,
)
from .._replies import Reply
from ._shapes import replies
from ._support import API_KEY, client_for, fake_for

ONE_TRY = RetryPolicy(max_attempts=1)


class Harness:
    """A fake and a client for one provider, on an event loop kept for the whole module."""

    def __init__(self, provider: str) -> None:
        self.runner = asyncio.Runner()
        self.fake = fake_for(provider, api_key=API_KEY)
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
        reply = data.draw(replies(self.fake))
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
