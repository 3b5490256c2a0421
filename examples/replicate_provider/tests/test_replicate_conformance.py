"""The conformance kit on this plugin: every shared end-to-end, status-code, tolerance,
hostile-answer, secrets, fan-out and parse-boundary test, against FakeReplicate over
real HTTP. Run from this folder: ``pytest``."""

from __future__ import annotations

from creative_client.testing.kit import conformance_tests

globals().update(conformance_tests("replicate"))
