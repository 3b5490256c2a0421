"""The public surface named in design.md, and what ships with the package."""

from __future__ import annotations

import asyncio
import importlib.resources
import runpy
import sys
import types
from pathlib import Path

import pytest

import creative_client
from creative_client import errors

ROOT = Path(__file__).resolve().parent.parent

DESIGN_NAMES = {"CreativeClient", "GenerationRequest", "Job", "JobStatus", "Asset", "Outcome"}
ERROR_NAMES = {
    "CreativeError",
    "AuthenticationError",
    "InsufficientBalanceError",
    "InvalidRequestError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "TransportError",
    "ProviderResponseError",
    "SubmissionUncertainError",
    "JobFailedError",
    "JobTimeoutError",
    "ShareUnavailableError",
    "NotSupportedError",
}
CLIENT_METHODS = {
    "submit",
    "get",
    "wait",
    "generate",
    "as_completed",
    "generate_many",
    "from_env",
    "from_config",
    "aclose",
    "balance",
}


def test_all_is_exact_and_importable() -> None:
    for name in creative_client.__all__:
        assert hasattr(creative_client, name), name
    public = {
        n
        for n, v in vars(creative_client).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType)
    }
    public -= {"annotations", "version", "PackageNotFoundError"}
    assert public <= set(creative_client.__all__), public - set(creative_client.__all__)
    assert set(creative_client.__all__) >= DESIGN_NAMES


def test_error_hierarchy() -> None:
    assert set(errors.__all__) >= ERROR_NAMES
    for name in ERROR_NAMES:
        assert issubclass(getattr(errors, name), errors.CreativeError)


def test_client_surface() -> None:
    for name in CLIENT_METHODS:
        attr = getattr(creative_client.CreativeClient, name)
        assert attr.__doc__, f"{name} has no docstring"


def test_every_public_name_has_a_docstring() -> None:
    for name in creative_client.__all__:
        obj = getattr(creative_client, name)
        if isinstance(obj, type):
            assert obj.__doc__, name


def test_ships_py_typed() -> None:
    assert importlib.resources.files("creative_client").joinpath("py.typed").is_file()


def test_version() -> None:
    assert creative_client.__version__ != "0.0.0"


def test_quickstart_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """examples/quickstart.py, the library walk-through, keeps working."""
    module = runpy.run_path(str(ROOT / "examples" / "quickstart.py"))
    asyncio.run(module["main"]())
    out = capsys.readouterr().out
    assert "== deepixels" in out and "== neocu" in out
    assert out.count("  ok ") == 8 and out.count("  failed ") == 2
    assert "the fakes saw 6 + 6 submits" in out
    assert sys.modules.get("creative_client") is creative_client
