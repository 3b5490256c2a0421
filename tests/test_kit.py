"""The conformance kit's own surface: what ``conformance_tests`` hands a test module."""

from __future__ import annotations

import asyncio
import importlib
import inspect

import pytest

from creative_client.testing import fake_names
from creative_client.testing.kit import GROUPS, conformance_tests


def test_every_group_and_its_fixtures_are_handed_over() -> None:
    found = conformance_tests()
    assert {"fake", "provider", "harness", "leak_check"} <= set(found)
    for group in GROUPS:
        module = importlib.import_module(f"creative_client.testing.kit.{group}")
        tests = {name for name in vars(module) if name.startswith("test_")}
        assert tests and tests <= set(found), group


def test_async_tests_are_marked_for_strict_mode_once() -> None:
    conformance_tests("deepixels")
    found = conformance_tests("deepixels")
    for name, test in found.items():
        inner = getattr(test, "hypothesis", None)
        function = inner.inner_test if inner is not None else test
        if name.startswith("test_") and inspect.iscoroutinefunction(function):
            marks = [m for m in getattr(test, "pytestmark", []) if m.name == "asyncio"]
            assert len(marks) == 1, name


def test_groups_can_be_picked() -> None:
    found = conformance_tests(*fake_names(), groups=["boundary"])
    assert {n for n in found if n.startswith("test_")} == {
        "test_only_provider_response_error_leaves_the_parse_boundary",
        "test_no_single_odd_value_in_a_valid_document_escapes",
        "test_the_fakes_documents_parse_as_the_adapter_reads_them",
    }
    with pytest.raises(ValueError, match="unknown conformance groups"):
        conformance_tests(groups=["status_codes", "nope"])


async def test_client_tasks_sees_a_batch_in_flight_and_none_after() -> None:
    """The kit's "nothing left running" check can fail: it sees the tasks of a batch."""
    from creative_client.testing import FakeDeepixels
    from creative_client.testing.kit._support import client_for, client_tasks

    async with FakeDeepixels(job_duration=5.0) as fake, client_for(fake) as client:
        batch = client.as_completed([f"p{i}" for i in range(3)], concurrency=3)
        first = asyncio.ensure_future(anext(batch))
        for _ in range(100):
            if fake.count("submit") == 3:
                break
            await asyncio.sleep(0.01)
        assert len(client_tasks()) >= 3
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        await batch.aclose()
        assert not client_tasks()
