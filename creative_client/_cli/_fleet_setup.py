"""Setting up a worker of a batch kept in PostgreSQL (``creative batch --journal
postgresql://...``, ``creative status --journal URL --batch NAME``); the run itself is
``FleetBatch`` in ``_fleet.py``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, TextIO

from .._client import CreativeClient
from .._journal._run import open_journal
from ._files import check_writable_file, check_writable_folder, describe
from ._fleet import FleetBatch, write_out
from ._inputs import Inputs, read_inputs
from ._settings import fallback_settings, settings, simulation
from ._setup import UsageError, batch_options

#: How long a worker waits for a lost journal database before it stops (seconds).
OUTAGE = 3600.0


def is_database(journal: str | None) -> bool:
    return journal is not None and journal.startswith(("postgresql://", "postgres://"))


def open_pg_journal(url: str, batch: str, lease: float = 30.0) -> Any:
    """The batch's journal in PostgreSQL (the ``[postgres]`` extra). A worker waits out
    a database that went away (claiming nothing, its jobs going on, their states
    queued) for up to an hour before it gives up."""
    return open_journal(url, batch, lease, patience=OUTAGE)


def fleet(args: argparse.Namespace) -> int:
    """``creative batch`` as one worker of a batch in PostgreSQL."""
    if not args.simulate and len(fallback_settings(args, None)[0]) > 1:
        # Its journal does not keep which provider holds each row's job.
        raise UsageError(
            "a batch in PostgreSQL runs on one provider: the config file's fallback "
            "providers work with a batch on one machine (a SQLite journal)"
        )
    source: Path | None = args.source
    inputs: Inputs | None = None
    if source is not None:
        try:
            inputs = read_inputs(source)
        except OSError as exc:
            raise UsageError(f"cannot read {str(source)!r}: {describe(exc)}") from None
    name = args.batch or (inputs.digest[:16] if inputs is not None else None)
    if name is None:
        raise UsageError("a worker without the input file needs --batch NAME")
    if args.out is not None:
        out: Path = args.out
    elif source is not None and str(source) != "-":
        out = source.with_name(source.name.removesuffix(".jsonl") + ".out.jsonl")
    else:
        raise UsageError("give --out (where the worker that sees the batch finish writes it)")
    options = batch_options(args, source or Path("-"), out, Path(name))
    check_writable_file(out, "the output")
    if options.download is not None:
        check_writable_folder(options.download, "downloads")
    journal = open_pg_journal(args.journal, name, args.lease)

    async def run() -> int:
        async with simulation(args) as simulated:
            client_settings = settings(args, simulated)
            client_settings.setdefault("share", args.journal)  # one budget for the fleet
            batch = FleetBatch(
                options, journal, inputs, lambda: CreativeClient(**client_settings), sys.stderr
            )
            return await batch.run()

    try:
        return asyncio.run(run())
    finally:
        journal.close()


def fleet_status(url: str, batch: str | None, out: Path | None, stdout: TextIO) -> int:
    """Counts per state, and per worker, of a batch in PostgreSQL; with ``out``, OUT
    rebuilt from the journal as it stands."""
    if not is_database(url) or batch is None:
        raise UsageError("--journal takes a postgresql:// URL, with --batch NAME")
    journal = open_pg_journal(url, batch)
    try:
        if not journal.meta():
            raise UsageError(f"there is no batch {batch!r} in that journal")
        counts = asyncio.run(_counts(journal))
        if out is not None:
            write_out(journal, out, journal.meta().get("provider", ""))
            print(f"{out}: written from the journal", file=stdout)
    finally:
        journal.close()
    states = counts.pop("*", {})
    workers = counts
    print(f"batch {batch!r}: {sum(states.values())} row(s)", file=stdout)
    for state, n in sorted(states.items()):
        print(f"  {state:<11}{n:>7}", file=stdout)
    for worker, by_state in sorted(workers.items()):
        shown = ", ".join(f"{s} {n}" for s, n in sorted(by_state.items()))
        print(f"  worker {worker}: {shown}", file=stdout)
    return 0


async def _counts(journal: Any) -> dict[str, Any]:
    result: dict[str, Any] = await journal.counts()
    return result
