"""The conformance kit: the shared test matrix, for this project and for provider plugins.

Every provider (a ``Provider`` adapter and its ``FakeServer``, registered once)
must pass the same end-to-end tests over real HTTP against its fake: the status
codes its contract lists, tolerant parsing, hostile answers, secrets that never
show, fan-out, waiting, and the parse-boundary rule. A plugin runs them all from
its own test suite in one call, e.g. in its ``tests/test_conformance.py``::

    from creative_client.testing.kit import conformance_tests

    globals().update(conformance_tests("replicate"))

``conformance_tests(*providers, groups=None)`` returns the kit's test functions
and the fixtures they take (``fake``, ``provider``, ``harness``, ``leak_check``),
parametrized over ``providers`` (default: every registered provider with a fake);
pytest collects them from the module's globals. ``groups`` picks some of
``GROUPS`` only. Needs pytest, pytest-asyncio and hypothesis; the tests are marked
for pytest-asyncio, so they run in its strict mode too.

The fake answers the provider-specific questions (hooks in
creative_client/testing/_contract.py: ``read_answer``, ``submit_answer``,
``error_reply``, ``status_for``, ``document_shapes``, ``submit_problem``,
``sample_model``, ...), so no test here branches on a provider's name.

**The parse-boundary rule** (checked by ``boundary``): *compute nothing from wire
values outside the converter's boundary.* Whatever JSON a provider answers, the
adapter's ``parse_submit`` and ``parse_job`` return a ``Job`` or raise
``ProviderResponseError``, and ``error_message`` returns a string or None: never a
``ValueError``, ``KeyError``, ``TypeError`` or ``AttributeError``. Anything derived
from a wire value (a URL split, a number converted, a timestamp, a status
lowered) is computed inside the adapter's cattrs converter hooks, where failures
become ``ProviderResponseError``. The kit checks it on the adapter alone: every
valid document the fake makes with each value in turn swapped for odd values of
its kind (URLs that do not split, out-of-range timestamps, odd statuses) or left
out, then hypothesis' near misses of the fake's shapes, mutants and random JSON.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable
from typing import Any

try:
    import hypothesis  # noqa: F401  (checked here: the kit's groups draw with it)
    import pytest
    import pytest_asyncio  # noqa: F401
except ImportError as exc:  # said once, naming the extra, rather than deep in a group
    raise ImportError(
        f"creative_client.testing.kit needs pytest, pytest-asyncio and hypothesis "
        f"({exc.name} is missing): pip install 'creative-client[kit]'"
    ) from exc

from ._support import (
    API_KEY,
    FAST_RETRY,
    client_for,
    fake_fixture,
    fake_names,
    leak_check,
    module_fixture,
    provider_fixture,
)

__all__ = [
    "API_KEY",
    "FAST_RETRY",
    "GROUPS",
    "client_for",
    "conformance_tests",
    "fake_fixture",
    "leak_check",
    "provider_fixture",
]

#: The kit's test modules, by behaviour (creative_client/testing/kit/<group>.py).
GROUPS = (
    "status_codes",
    "tolerance",
    "hostile",
    "boundary",
    "secrets",
    "fanout",
    "end_to_end",
)


def conformance_tests(*providers: str, groups: Iterable[str] | None = None) -> dict[str, Any]:
    """The kit's tests and fixtures for ``providers``, to put in a test module's globals.

    >>> globals().update(conformance_tests("replicate"))   # in a plugin's test module

    ``providers`` defaults to every registered provider with a fake; ``groups`` to
    all of ``GROUPS``. Raises ``ValueError`` for an unknown group or no provider.
    """
    names = providers or fake_names()
    if not names:
        raise ValueError("no provider to test: none is registered with a fake")
    chosen = tuple(GROUPS if groups is None else groups)
    unknown = sorted(set(chosen) - set(GROUPS))
    if unknown:
        raise ValueError(f"unknown conformance groups {unknown}; have {list(GROUPS)}")
    from .hostile import Harness

    found: dict[str, Any] = {
        "leak_check": leak_check,
        "fake": fake_fixture(names),
        "provider": provider_fixture(names),
        "harness": module_fixture(names, "harness", Harness),
    }
    for group in chosen:
        module = importlib.import_module(f"{__name__}.{group}")
        for name, value in vars(module).items():
            if name.startswith("test_") and callable(value):
                found[name] = _marked(value)
    return found


def _marked(test: Any) -> Any:
    """The test, marked for pytest-asyncio if it is a coroutine (once, however often asked)."""
    inner = getattr(test, "hypothesis", None)
    function = inner.inner_test if inner is not None else test
    if inspect.iscoroutinefunction(function):
        marks = getattr(test, "pytestmark", [])
        if not any(m.name == "asyncio" for m in marks):
            test = pytest.mark.asyncio(test)
    return test
