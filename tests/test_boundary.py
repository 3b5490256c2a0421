"""The parse-boundary rule on each adapter, and each fake's hooks against its adapter, for every
provider with a fake: the kit's ``boundary`` group (creative_client/testing/kit/boundary.py)."""

from __future__ import annotations

from creative_client.testing.kit import conformance_tests

globals().update(conformance_tests(groups=["boundary"]))
