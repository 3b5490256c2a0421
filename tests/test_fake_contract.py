"""The fake Deepixels against Deepixels' published contract, both ways.

tests/data/deepixels.openapi.json is the oracle: hypothesis draws submit bodies
from its request schema (valid ones) and near misses of them (a required field
gone, a field of another type, ``null``, a body that is not an object), the fake
is sent each over real HTTP, and its 200 or 400 must agree with the document's
verdict: a fake that accepted what the provider refuses (``"webhook": null``) or
refused what it takes (``"model": ""``) would let the suite pass against a
provider that does not exist.

The verdict is openapi-core's, plus ``format: uri`` for ``webhook`` (which that
validator leaves unchecked without the optional rfc3987 package): an absolute
URI as RFC 3986 has it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from _helpers import API_KEY
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from openapi_core import OpenAPI
from openapi_core.exceptions import OpenAPIError
from openapi_core.testing import MockRequest

from creative_client.testing import FakeDeepixels

SPEC_PATH = Path(__file__).parent / "data" / "deepixels.openapi.json"
SPEC: dict[str, Any] = json.loads(SPEC_PATH.read_text())
OPENAPI = OpenAPI.from_file_path(str(SPEC_PATH))
REQUEST_SCHEMA: dict[str, Any] = SPEC["components"]["schemas"]["GenerateRequest"]
#: RFC 3986, section 3: scheme ":" hier-part [ "?" query ] [ "#" fragment ], no spaces.
URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[A-Za-z0-9\-._~%!$&'()*+,;=:@/?#\[\]]*")


def the_contract_accepts(body: Any) -> bool:
    request = MockRequest(
        "https://api.deepixels.co",
        "POST",
        "/v1/generate",
        headers={"x-api-key": "k"},
        data=json.dumps(body).encode(),
        content_type="application/json",
    )
    try:
        OPENAPI.validate_request(request)
    except OpenAPIError:
        return False
    webhook = body.get("webhook") if isinstance(body, dict) else None
    return webhook is None or bool(URI.fullmatch(webhook))


WRONG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from(["", "not a uri", "//host/path", "http ://x", "https://example.com/h"]),
)


@st.composite
def near_misses(draw: st.DrawFn) -> Any:
    """A valid body with one field gone, or of another type; or no object at all."""
    drawn: Any = draw(from_schema(REQUEST_SCHEMA))
    body = dict(drawn)
    how = draw(st.sampled_from(["drop", "retype", "retype", "not an object"]))
    field = draw(st.sampled_from(["model", "input", "webhook"]))
    if how == "not an object":
        return draw(WRONG)
    if how == "drop":
        body.pop(field, None)
    else:
        body[field] = draw(WRONG)
    return body


class Poster:
    """A started fake and a session, on an event loop kept for the whole module."""

    def __init__(self) -> None:
        self.runner = asyncio.Runner()
        self.fake = FakeDeepixels(api_key=API_KEY, record=False, job_duration=3600)
        self.session: aiohttp.ClientSession | None = None
        self.runner.run(self._start())

    async def _start(self) -> None:
        await self.fake.start()
        self.session = aiohttp.ClientSession(headers={"x-api-key": API_KEY})

    def status(self, body: Any) -> int:
        async def post() -> int:
            assert self.session is not None
            data = json.dumps(body)
            url = self.fake.base_url + "/generate"
            async with self.session.post(
                url, data=data, headers={"Content-Type": "application/json"}
            ) as resp:
                await resp.read()
                return resp.status

        return self.runner.run(post())

    def close(self) -> None:
        async def stop() -> None:
            assert self.session is not None
            await self.session.close()
            await self.fake.close()

        self.runner.run(stop())
        self.runner.close()


@pytest.fixture(scope="module")
def poster() -> Iterator[Poster]:
    p = Poster()
    yield p
    p.close()


SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same examples every run
)


def _agree(poster: Poster, body: Any) -> bool:
    accepted = the_contract_accepts(body)
    status = poster.status(body)
    assert status == (200 if accepted else 400), (body, accepted, status)
    return accepted


@SETTINGS
@given(body=from_schema(REQUEST_SCHEMA))
@example(body={"model": "", "input": {}})  # the fake once refused an empty model
@example(body={"model": "m", "input": {}, "webhook": "urn:example:hook"})
def test_the_fake_takes_every_body_the_contract_allows(poster: Poster, body: Any) -> None:
    assert _agree(poster, body)


@SETTINGS
@given(body=near_misses())
@example(body={"model": "m", "input": {}, "webhook": None})  # the fake once took a null
@example(body={"model": "m", "input": None})
@example(body=["model", "input"])
def test_the_fake_refuses_what_the_contract_refuses(poster: Poster, body: Any) -> None:
    _agree(poster, body)


def test_both_verdicts_are_exercised() -> None:
    """The oracle is real: it refuses a null webhook and takes an empty model."""
    assert the_contract_accepts({"model": "", "input": {}})
    assert not the_contract_accepts({"model": "m", "input": {}, "webhook": None})
    assert not the_contract_accepts({"model": "m", "input": {}, "webhook": "not a uri"})
    assert not the_contract_accepts({"input": {}})
