"""The types of ``creative``'s arguments (``_parser.py``): each turns a string into a
value or says, in argparse's words, why it cannot."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from ..errors import ConfigurationError
from ..providers import get_provider


def provider_name(text: str) -> str:
    """A registered provider's name; for a plugin that failed to load, why (where
    argparse's ``choices`` would only say it is not one of them)."""
    try:
        return get_provider(text).name
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a whole number > 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def size_in_bytes(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if match is None or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(f"expected a size such as 512M, got {text!r}")
    return int(match[1]) * _UNITS[match[2].upper()]
