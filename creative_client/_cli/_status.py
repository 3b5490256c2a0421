"""``creative status OUT.jsonl|JOURNAL``: a batch's rows by state, and what to do next."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TextIO

from ._files import describe
from ._journal import peek
from ._out import read_out
from ._setup import UsageError

_ORDER = ("succeeded", "failed", "uncertain", "submitted", "submitting", "pending", "invalid")
_SQLITE = b"SQLite format 3\x00"


def status(path: Path, stdout: TextIO) -> int:
    """Print the counts and the next steps; exit status 0 (2: not a batch's file)."""
    try:
        with path.open("rb") as f:
            head = f.read(len(_SQLITE))
    except OSError as exc:
        raise UsageError(f"cannot read {str(path)!r}: {describe(exc)}") from None
    states: Counter[str] = Counter()
    job_failed = 0
    if head == _SQLITE:
        meta, rows = peek(path)
        for row in rows:
            states[row.state] += 1
            job_failed += row.state == "failed" and row.error_type == "JobFailedError"
        made_from = meta.get("input_path")
        title = f"{path}: the journal of {made_from}" if made_from else f"{path}: a journal"
    else:
        try:
            documents = read_out(path)
        except OSError as exc:
            raise UsageError(f"cannot read {str(path)!r}: {describe(exc)}") from None
        if not documents or not all("status" in d for d in documents):
            raise UsageError(f"{str(path)!r} is neither a batch's OUT.jsonl nor its journal")
        for document in documents:
            states[str(document["status"])] += 1
            error = document.get("error")
            job_failed += (
                document["status"] == "failed"
                and isinstance(error, dict)
                and error.get("type") == "JobFailedError"
            )
        title = f"{path}: the output of a batch"
    total = sum(states.values())
    print(f"{title}, {total} row(s)", file=stdout)
    for state in sorted(states, key=lambda s: (_ORDER.index(s) if s in _ORDER else 99, s)):
        print(f"  {state:<11}{states[state]:>7}", file=stdout)
    for step in _next_steps(states, job_failed):
        print(step, file=stdout)
    return 0


def _next_steps(states: Counter[str], job_failed: int) -> list[str]:
    steps: list[str] = []
    left = states["submitted"] + states["pending"]
    if left or states["submitting"]:
        steps.append(
            f"next: run the same `creative batch` command again to resume ({left} row(s) "
            "left; submitted jobs are picked up by their ids, nothing is sent twice)"
        )
    if states["submitting"]:
        steps.append(
            f"      {states['submitting']} submit(s) were in flight when a run stopped: "
            "the next run marks them uncertain"
        )
    if states["uncertain"]:
        steps.append(
            f"next: add --resubmit-uncertain to send the {states['uncertain']} uncertain "
            "submit(s) again (each may cost a second job)"
        )
    if job_failed:
        steps.append(
            f"next: add --retry-failed to send the {job_failed} failed job(s) again "
            "(each is a new job)"
        )
    others = states["failed"] - job_failed
    if others:
        steps.append(
            f"note: {others} row(s) failed without a job (the provider refused the submit): "
            "see their error in OUT"
        )
    if states["invalid"]:
        steps.append(f"note: {states['invalid']} input line(s) are invalid: OUT says which and why")
    if not steps:
        steps.append("next: nothing; every job succeeded")
    return steps
