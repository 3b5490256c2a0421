"""Reading a batch's input: JSON lines of ``{"id", "prompt", "model"?, "input"?, "files"?}``."""

from __future__ import annotations

import hashlib
import json
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
    """A line that cannot run. ``key`` is set when the line has a usable id of its own,
    so that the output can still say what became of it."""

    line: int
    message: str
    key: str | None = None


@attrs.frozen
class Inputs:
    entries: list[Entry]
    problems: list[Problem]
    digest: str  # sha256 of the file's bytes


def read_inputs(path: Path) -> Inputs:
    """Parse the file; every line is an entry or a problem (blank lines are neither)."""
    data = path.read_bytes()
    entries: list[Entry] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            document = json.loads(raw)
        except ValueError as exc:
            problems.append(Problem(number, f"not a JSON object ({exc})"))
            continue
        if not isinstance(document, dict):
            problems.append(Problem(number, "not a JSON object"))
            continue
        ident = document.get("id")
        if isinstance(ident, bool) or not isinstance(ident, str | int) or ident == "":
            problems.append(Problem(number, "'id' must be a non-empty string or an integer"))
            continue
        key = json.dumps(ident)
        if key in seen:
            problems.append(Problem(number, f"duplicate id {key} (first on line {seen[key]})"))
            continue
        seen[key] = number
        try:
            entries.append(Entry(key, number, _request(document)))
        except ValueError as exc:
            problems.append(Problem(number, str(exc), key))
    return Inputs(entries, problems, hashlib.sha256(data).hexdigest())


def _request(document: Mapping[str, Any]) -> GenerationRequest:
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
