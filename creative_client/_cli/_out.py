"""A batch's OUT.jsonl: one line per input line (good or bad), in input order."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._inputs import Entry, Problem
from ._journal import Row


def out_text(
    entries: Iterable[Entry],
    rows: dict[str, Row],
    problems: Iterable[Problem],
    provider: str,
    *,
    alone: bool = True,
) -> str:
    """OUT's whole text: every entry as its row says, every bad line as "invalid".
    ``provider`` is the batch's (first) provider, for rows that name none of their own:
    with fallback providers (not ``alone``), only those with a job (a journal from
    before the provider was kept); a row with neither says null."""
    lines: list[tuple[int, str]] = []
    for entry in entries:
        row = rows[entry.key]
        holder = row.provider or (provider if alone or row.job_id else None)
        error = None
        if row.error_type is not None:
            error = {"type": row.error_type, "message": row.error or ""}
        lines.append(
            (
                entry.line,
                out_line(
                    entry.key,
                    entry.line,
                    row.state,
                    row.job_id,
                    holder,
                    row.outputs,
                    row.files,
                    error,
                ),
            )
        )
    for problem in problems:
        error = {"type": "InvalidRequestError", "message": problem.message}
        text = out_line(problem.key, problem.line, "invalid", None, provider, (), (), error)
        lines.append((problem.line, text))
    lines.sort()
    return "".join(text + "\n" for _, text in lines)


def out_line(
    key: str,
    line: int,
    status: str,
    job_id: str | None,
    provider: str | None,
    outputs: tuple[str, ...],
    files: tuple[str, ...],
    error: dict[str, str] | None,
) -> str:
    """One line of OUT.jsonl. ``key`` is the id as JSON already (the journal's key)."""
    rest = {
        "line": line,
        "status": status,
        "job_id": job_id,
        "provider": provider,
        "outputs": outputs,
        "files": files,
        "error": error,
    }
    return '{"id": ' + key + ", " + json.dumps(rest, ensure_ascii=False)[1:]


def read_out(path: Path) -> list[dict[str, Any]]:
    """OUT's lines that are JSON objects (others are skipped). Raises ``OSError``."""
    documents: list[dict[str, Any]] = []
    with path.open("rb") as f:
        for raw in f:
            try:
                document = json.loads(raw)
            except ValueError:
                continue
            if isinstance(document, dict):
                documents.append(document)
    return documents


def jobs_recorded(path: Path) -> int:
    """How many lines of the OUT at ``path`` name a job (0 if there is no such file)."""
    try:
        return sum(1 for document in read_out(path) if document.get("job_id"))
    except (OSError, UnicodeDecodeError):
        return 0
