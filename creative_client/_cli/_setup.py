"""Before a batch runs: its options, its files checked, and its journal opened and
checked against this run (provider, input, an OUT whose journal went missing)."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import attrs

from ..errors import JobFailedError, SubmissionUncertainError
from ._files import check_writable_file, check_writable_folder
from ._inputs import Entry, Inputs
from ._journal import Journal, JournalBackend, JournalError
from ._out import jobs_recorded
from ._progress import mode_for


class UsageError(Exception):
    """Something the user must fix before the batch can run (exit status 2)."""


@attrs.frozen(kw_only=True)
class BatchOptions:
    source: Path  # "-": stdin
    out: Path
    journal: Path
    concurrency: int
    download: Path | None = None
    max_download: int
    resubmit_uncertain: bool = False
    retry_failed: bool = False
    force: bool = False
    strict: bool = False
    progress: str = "lines"  # "bar", "lines" or "none"
    progress_every: float = 10.0


def batch_options(args: argparse.Namespace, source: Path, out: Path, journal: Path) -> BatchOptions:
    """``creative batch``'s options from its flags, with the paths already settled."""
    return BatchOptions(
        source=source,
        out=out,
        journal=journal,
        concurrency=args.concurrency,
        download=args.download,
        max_download=args.max_download,
        resubmit_uncertain=args.resubmit_uncertain,
        retry_failed=args.retry_failed,
        force=args.force,
        strict=args.strict,
        progress=mode_for(args.quiet, sys.stderr),
        progress_every=args.progress_interval,
    )


def check_files(options: BatchOptions) -> None:
    """Every path the run will write can be written: said before anything is sent
    (and paid for), not after. Raises ``FileError``."""
    check_writable_file(options.out, "the output")
    check_writable_file(options.journal, "the journal")
    if options.download is not None:
        check_writable_folder(options.download, "downloads")


def open_journal(
    opts: BatchOptions,
    inputs: Inputs,
    provider: str,
    entries: list[Entry],
    warn: Callable[[str], None],
) -> JournalBackend:
    """The batch's journal, checked against this run and set up for it: rows for the
    entries, submits an earlier run left in flight marked uncertain, and the rows
    this run is told to send again made pending. Raises ``UsageError``."""
    if not opts.journal.exists():
        _check_out_unclaimed(opts)
    journal = Journal(opts.journal)
    try:
        meta = journal.meta()
        if not meta:
            _check_out_unclaimed(opts)
        made_for = meta.get("provider")
        if made_for is not None and made_for != provider:
            raise UsageError(
                f"the journal {str(opts.journal)!r} belongs to a batch on "
                f"{made_for}, not {provider}; give this run its own --out"
            )
        _check_input(opts, inputs, meta, warn)
        journal.set_meta(
            provider=provider, input_sha256=inputs.digest, input_path=_input_path(opts.source)
        )
        journal.add((entry.key, entry.line) for entry in entries)
        _recover(opts, journal, warn)
    except sqlite3.Error as exc:  # a full disk, say: one line, not a traceback
        journal.close()
        raise JournalError(f"cannot set up the journal {str(opts.journal)!r}: {exc}") from None
    except BaseException:
        journal.close()
        raise
    return journal


def _check_out_unclaimed(opts: BatchOptions) -> None:
    """Refuse to start afresh over an OUT that records jobs (its journal was deleted
    or moved): they would be submitted, and paid for, again."""
    if opts.force:
        return
    jobs = jobs_recorded(opts.out)
    if jobs:
        raise UsageError(
            f"{str(opts.out)!r} records {jobs} submitted job(s), but its journal "
            f"{str(opts.journal)!r} is missing: running would submit them again "
            "and overwrite it. Give the journal back (--journal PATH), give this run its "
            "own --out, or run with --force to start afresh"
        )


def _check_input(
    opts: BatchOptions, inputs: Inputs, meta: dict[str, str], warn: Callable[[str], None]
) -> None:
    digest = meta.get("input_sha256")
    if digest is None or digest == inputs.digest:
        return
    made_from = meta.get("input_path")
    other = made_from is not None and made_from != _input_path(opts.source)
    if not opts.force:
        if other:
            raise UsageError(
                f"the journal {str(opts.journal)!r} was made from a different input file "
                f"({made_from!r}). Give this run its own --out (or --journal), or run with "
                "--force to go on with this file; rows already submitted keep their "
                "state by id"
            )
        raise UsageError(
            f"{str(opts.source)!r} has changed since the journal "
            f"{str(opts.journal)!r} was made. Rows already submitted keep "
            "their state by id; run with --force to go on with the new file, "
            "or give this run its own --out"
        )
    what = f"a different input file ({made_from!r})" if other else "the input as it was"
    warn(f"creative: the journal was made from {what}; going on (--force)")


def _recover(opts: BatchOptions, journal: JournalBackend, warn: Callable[[str], None]) -> None:
    """What earlier runs left in flight, and what this run is told to send again."""
    lost = journal.move(
        "submitting",
        "uncertain",
        error_type=SubmissionUncertainError.__name__,
        error="the run stopped while this submit was in flight; it may or may not "
        "have created a job",
    )
    if lost:
        warn(
            f"creative: {lost} submit(s) were in flight when an earlier run stopped; "
            "they are marked uncertain"
        )
    if opts.resubmit_uncertain:
        again = journal.move("uncertain", "pending", error_type=None, error=None)
        if again:
            warn(
                f"creative: resubmitting {again} uncertain job(s) (--resubmit-uncertain);"
                " each may cost a second generation"
            )
    if opts.retry_failed:
        again = journal.retry_failed(JobFailedError.__name__)
        warn(
            f"creative: resending {again} failed job(s) (--retry-failed); each is a new "
            "job, paid for again"
        )


def _input_path(source: Path) -> str:
    """The input as the journal records it: its absolute path, or "-" for stdin."""
    return "-" if str(source) == "-" else str(source.absolute())
