"""The API key never shows: not in logs at DEBUG, reprs, exception messages or tracebacks, for every
provider with a fake: the kit's ``secrets`` group (creative_client/testing/kit/secrets.py)."""

from __future__ import annotations

from creative_client.testing.kit import conformance_tests

globals().update(conformance_tests(groups=["secrets"]))
