"""The parse boundary, checked on the adapter alone (no network), and the fake's hooks.

The rule: *compute nothing from wire values outside the converter's boundary.*
``parse_submit``, ``parse_job`` and ``error_message`` turn a provider's JSON into
our models through the adapter's cattrs converter, and every failure inside it
becomes ``ProviderResponseError``. Anything computed from a wire value after
that (a ``urlsplit`` of an output URL, ``int()`` of a count, a ``datetime`` from
a timestamp, a ``.lower()`` of a status) must happen inside the converter's hooks
too, or its ``ValueError``/``TypeError``/``KeyError`` leaks past the boundary
(one ``urlsplit`` outside it once did, and hypothesis over HTTP missed it).

Checked two ways: every valid document the fake makes (``read_answer``,
``submit_answer``, ``error_reply``) with each value in turn made odd or left out,
exhaustively; then hypothesis' near misses, mutants and random JSON.

So: whatever document comes in, ``parse_submit``/``parse_job`` return a ``Job`` or
raise ``ProviderResponseError``, ``parse_balance`` (for a provider with a
``balance_call``) a finite number or ``ProviderResponseError``, and ``error_message``
a string or None; nothing else ever comes out.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ... import Job, JobStatus, ProviderResponseError
from ...providers import Provider, get_provider
from .._contract import PHASES
from .._server import FakeServer
from ._shapes import documents, single_mutations
from ._support import fake_for


@functools.cache
def _adapter(provider: str) -> Provider:
    return get_provider(provider)()


@functools.cache
def _fake(provider: str) -> FakeServer:
    return fake_for(provider)  # never started: only its hooks are asked


@functools.cache
def _documents(provider: str) -> st.SearchStrategy[Any]:
    return documents(_fake(provider))


def _parse(call: Any, *args: Any) -> Job | ProviderResponseError:
    try:
        result = call(*args)
    except ProviderResponseError as exc:
        return exc
    assert isinstance(result, Job), result
    return result


def _balance(adapter: Provider, body: Any) -> None:
    if adapter.balance_call() is None:
        return
    try:
        left = adapter.parse_balance(body)
    except ProviderResponseError:
        return
    assert isinstance(left, float) and math.isfinite(left), left


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(data=st.data())
def test_only_provider_response_error_leaves_the_parse_boundary(provider: str, data: Any) -> None:
    adapter = _adapter(provider)
    body = data.draw(_documents(provider))
    submitted = _parse(adapter.parse_submit, body)
    if isinstance(submitted, Job):
        assert isinstance(submitted.id, str) and submitted.provider == provider
    read = _parse(adapter.parse_job, "j-1", body)
    if isinstance(read, Job):
        assert read.status in JobStatus and read.provider == provider
        for asset in read.outputs:
            assert isinstance(asset.url, str)
    message = adapter.error_message(body)
    assert message is None or isinstance(message, str)
    _balance(adapter, body)


def test_no_single_odd_value_in_a_valid_document_escapes(provider: str) -> None:
    """Each valid document with one value made odd, every way: deterministic, exhaustive."""
    adapter = _adapter(provider)
    checked = 0
    for body in single_mutations(_fake(provider)):
        _parse(adapter.parse_submit, body)
        _parse(adapter.parse_job, "j-1", body)
        message = adapter.error_message(body)
        assert message is None or isinstance(message, str)
        _balance(adapter, body)
        checked += 1
    assert checked > 100


def test_the_fakes_documents_parse_as_the_adapter_reads_them(provider: str) -> None:
    """The fake's hooks and the adapter agree; the shared tests rely on it."""
    adapter, fake = _adapter(provider), _fake(provider)
    submitted = adapter.parse_submit(fake.submit_answer("j-1"))
    assert submitted.id == "j-1" and submitted.status is JobStatus.QUEUED
    for phase in PHASES:
        for outputs in (0, 2) if phase == "completed" else (0,):
            for minimal in (False, True):
                doc = fake.read_answer("j-1", fake.status_for(phase), outputs=outputs,
                                       minimal=minimal)  # fmt: skip
                job = adapter.parse_job("j-1", doc)
                assert job.id == "j-1" and job.raw_status == fake.status_for(phase), doc
                assert len(job.outputs) == outputs, doc
                if phase in ("completed", "failed"):
                    done = JobStatus.SUCCEEDED if phase == "completed" else JobStatus.FAILED
                    assert job.status is done, doc
                else:
                    assert not job.status.is_terminal, doc
    error = fake.error_reply(400, "prompt too long")
    assert adapter.error_message(error.json) == "prompt too long"
