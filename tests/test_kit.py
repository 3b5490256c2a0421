"""The conformance kit's own surface: what ``conformance_tests`` hands a test module."""

from __future__ import annotations

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
