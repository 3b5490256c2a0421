"""Conformance with Deepixels' published OpenAPI document (tests/data/deepixels.openapi.json).

Requests: every request the adapter sends is checked by openapi-core's validator,
built from the document. Responses: hypothesis draws bodies from the document's
response schemas, the fake serves them over HTTP, and each must come back as a
``Job`` or a typed ``CreativeError``, never anything else.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from _helpers import API_KEY, client_for
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest

from creative_client import (
    CreativeError,
    Job,
    JobStatus,
    ProviderResponseError,
    RetryPolicy,
    SubmissionUncertainError,
)
from creative_client.errors import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    ServerError,
)
from creative_client.testing import FakeDeepixels, Reply

SPEC_PATH = Path(__file__).parent / "data" / "deepixels.openapi.json"
SPEC: dict[str, Any] = json.loads(SPEC_PATH.read_text())
ONE_TRY = RetryPolicy(max_attempts=1)


def json_schema(node: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: $refs inlined, ``nullable`` as a null type."""
    if isinstance(node, list):
        return [json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target: Any = SPEC
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return json_schema(target)
    out = {k: json_schema(v) for k, v in node.items() if k not in ("nullable", "example")}
    if node.get("nullable"):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


def response_schema(path: str, method: str, status: str) -> Any:
    response = SPEC["paths"][path][method]["responses"][status]
    if "$ref" in response:
        response = json_schema(response)
    return json_schema(response["content"]["application/json"]["schema"])


async def test_requests_validate_against_the_spec(deepixels: FakeDeepixels) -> None:
    openapi = OpenAPI.from_file_path(str(SPEC_PATH))
    async with client_for(deepixels) as client:
        await client.submit(prompt="a red fox")
        await client.submit(
            prompt="a red fox",
            input={"width": 512, "seed": 7},
            webhook="https://example.com/hooks/deepixels",
        )
        job = await client.submit(prompt="a fox", model="video-gen")
        await client.wait(job.id)
    assert len(deepixels.requests) >= 4
    for recorded in deepixels.requests:
        request = MockRequest(
            "https://api.deepixels.co",
            recorded.method,
            recorded.path,
            args=dict(recorded.query),
            headers=dict(recorded.headers),
            data=recorded.body or None,
            content_type=recorded.headers.get("Content-Type", "application/json"),
        )
        openapi.validate_request(request)  # raises on any mismatch


async def test_a_request_the_spec_refuses_is_caught_by_the_validator() -> None:
    """The validator is real: a body without ``input`` fails it."""
    openapi = OpenAPI.from_file_path(str(SPEC_PATH))
    bad = MockRequest(
        "https://api.deepixels.co",
        "POST",
        "/v1/generate",
        headers={"x-api-key": "k"},
        data=b'{"model": "m"}',
    )
    with pytest.raises(Exception, match=r"(?i)valid"):
        openapi.validate_request(bad)


async def _serve(endpoint: str, reply: Reply) -> Job | CreativeError:
    async with (
        FakeDeepixels(api_key=API_KEY) as fake,
        client_for(fake, retry=ONE_TRY) as client,
    ):
        job = await client.submit(prompt="x")
        fake.inject(endpoint, reply)
        try:
            if endpoint == "submit":
                return await client.submit(prompt="x")
            return await client.get(job.id)
        except CreativeError as exc:
            return exc


EXAMPLES = SPEC["paths"]["/get"]["get"]["responses"]["200"]["content"]["application/json"][
    "examples"
]


@pytest.mark.parametrize("name", sorted(EXAMPLES))
async def test_the_documents_own_examples_parse(name: str) -> None:
    doc = EXAMPLES[name]["value"]
    result = await _serve("get", Reply(json=doc))
    assert isinstance(result, Job), result
    assert result.raw_status == doc["status"]
    output = doc["output"] or {}
    urls = (output.get("imageUrl") or []) + ([output["videoUrl"]] if output.get("videoUrl") else [])
    assert [a.url for a in result.outputs] == urls


SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,  # the same examples every run
)


@SETTINGS
@given(body=from_schema(response_schema("/get", "get", "200")))
def test_every_job_document_the_spec_allows(body: Any) -> None:
    result = asyncio.run(_serve("get", Reply(json=body)))
    if "status" in body:
        assert isinstance(result, Job), result
        assert result.raw_status == body["status"]
        assert result.status in JobStatus
    else:
        assert isinstance(result, ProviderResponseError)


@SETTINGS
@given(body=from_schema(response_schema("/generate", "post", "200")))
@example(body={"jobId": ""})
@example(body={"jobId": "j-1"})
def test_every_submit_answer_the_spec_allows(body: Any) -> None:
    result = asyncio.run(_serve("submit", Reply(json=body)))
    if isinstance(body.get("jobId"), str) and body["jobId"].strip():
        assert isinstance(result, Job) and result.id == body["jobId"]
    else:
        # A 200 without a usable id (the schema allows ""): a job may exist, and the
        # client cannot say which.
        assert isinstance(result, SubmissionUncertainError)


ERRORS = {
    ("get", "400"): InvalidRequestError,
    ("get", "401"): AuthenticationError,
    ("get", "404"): NotFoundError,
    ("get", "500"): ServerError,
    ("submit", "400"): InvalidRequestError,
    ("submit", "401"): AuthenticationError,
    ("submit", "500"): SubmissionUncertainError,
}


@SETTINGS
@given(
    case=st.sampled_from(sorted(ERRORS)),
    body=from_schema(response_schema("/get", "get", "400")),
)
def test_every_error_answer_the_spec_allows(case: tuple[str, str], body: Any) -> None:
    endpoint, status = case
    result = asyncio.run(_serve(endpoint, Reply(status=int(status), json=body)))
    assert isinstance(result, ERRORS[case]), result
    assert result.status == int(status)
    message = body.get("message") or body.get("status")
    if isinstance(message, str) and message.strip():
        assert result.provider_message == message
