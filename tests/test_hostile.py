"""Hostile and malformed answers, drawn by hypothesis and served over real HTTP, for every
provider with a fake: the kit's ``hostile`` group (creative_client/testing/kit/hostile.py)."""

from __future__ import annotations

from creative_client.testing.kit import conformance_tests

globals().update(conformance_tests(groups=["hostile"]))
