"""Tolerant parsing end to end, for every
provider with a fake: the kit's ``tolerance`` group (creative_client/testing/kit/tolerance.py)."""

from __future__ import annotations

from creative_client.testing.kit import conformance_tests

globals().update(conformance_tests(groups=["tolerance"]))
