"""Reading a batch's input: JSON lines of ``{"id", "prompt", "model"?, "input"?, "files"?}``."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .._models import GenerationRequest

_FIELDS = frozenset({"id", "prompt", "model", "input", "files"})


@attrs.frozen
class Entry:
    """A good input line: its id (as JSON, the journal's key), line number and request."""

    key: str
    line: int
    request: GenerationRequest


@attrs.frozen
class Problem:
    """A line that cannot run, under its own id (as JSON) when it has a usable one, or
    under ``"line:N"`` (a duplicate id, no id, not JSON), so that the output accounts
    for every line."""

    line: int
    message: str
    key: str


def line_key(number: int) -> str:
    """The key of a bad line without a usable id of its own."""
    return json.dumps(f"line:{number}")


@attrs.frozen
class Inputs:
    entries: list[Entry]
    problems: list[Problem]
    digest: str  # sha256 of the file's bytes


def read_inputs(path: Path) -> Inputs:
    """Parse the file (``-``: stdin); every line is an entry or a problem (blank lines
    are neither). Raises ``OSError``."""
    data = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    return parse_inputs(data)


def parse_inputs(data: bytes) -> Inputs:
    """Every line of ``data`` as an entry or a problem (blank lines are neither)."""
    entries: list[Entry] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            document = json.loads(raw)
        except ValueError as exc:
            problems.append(Problem(number, f"not a JSON object ({exc})", line_key(number)))
            continue
        if not isinstance(document, dict):
            problems.append(Problem(number, "not a JSON object", line_key(number)))
            continue
        ident = document.get("id")
        if isinstance(ident, bool) or not isinstance(ident, str | int) or ident == "":
            message = "'id' must be a non-empty string or an integer"
            problems.append(Problem(number, message, line_key(number)))
            continue
        key = json.dumps(ident)
        if key in seen:
            message = f"duplicate id {key} (first on line {seen[key]})"
            problems.append(Problem(number, message, line_key(number)))
            continue
        seen[key] = number
        try:
            entries.append(Entry(key, number, request_of(document)))
        except ValueError as exc:
            problems.append(Problem(number, str(exc), key))
    return Inputs(entries, problems, hashlib.sha256(data).hexdigest())


def request_of(document: Mapping[str, Any]) -> GenerationRequest:
    """An input line's request (its fields but the id). Raises ``ValueError``."""
    unknown = sorted(set(document) - _FIELDS)
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(map(repr, unknown))}")
    prompt = document.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("'prompt' is missing or not a non-empty string")
    model = document.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise ValueError("'model' must be a non-empty string")
    extras = document.get("input", {})
    if not isinstance(extras, dict):
        raise ValueError("'input' must be a JSON object")
    files = document.get("files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) and f for f in files):
        raise ValueError("'files' must be a list of non-empty strings")
    return GenerationRequest(prompt=prompt, model=model, input=extras, files=files)
