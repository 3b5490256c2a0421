"""Shared test helpers (the fixtures are in conftest.py); the kit's, so both suites agree."""

from __future__ import annotations

from creative_client.testing.kit import API_KEY, FAST_RETRY, client_for

__all__ = ["API_KEY", "FAST_RETRY", "client_for"]
