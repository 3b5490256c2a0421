"""The ``creative`` command (also ``python -m creative_client``).

    creative generate "a red fox" [--model M] [--input JSON] [--download DIR]
    creative get JOB_ID
    creative batch IN.jsonl [--out OUT.jsonl] [--journal PATH] [--concurrency N] ...
    creative status OUT.jsonl|JOURNAL
    creative balance

Configuration is the library's: ``--provider``, ``--base-url``, ``--model`` and
``--config FILE`` over the environment (``CREATIVE_PROVIDER``, ``CREATIVE_BASE_URL``,
``CREATIVE_MODEL``). API keys come only from the environment or the config file, never
from the command line (where other users and shell history would see them).
``--simulate`` runs against the built-in fake providers on loopback instead.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigurationError
from ._balance import show_balance
from ._batch import EXIT_FAILED, EXIT_USAGE, Batch
from ._files import FileError, describe
from ._fleet_setup import fleet, fleet_status, is_database
from ._inputs import read_inputs
from ._journal import JournalError
from ._otel import exporting
from ._parser import parser
from ._settings import batch_client, fallback_settings, simulation
from ._setup import UsageError, batch_options, check_files
from ._single import job_document, single
from ._status import status

__all__ = ["job_document", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; its exit status."""
    args = parser().parse_args(argv)
    logging.basicConfig(format="creative: %(message)s", stream=sys.stderr)
    verbose = getattr(args, "verbose", False)
    logging.getLogger("creative_client").setLevel(logging.INFO if verbose else logging.WARNING)
    try:
        if args.command == "status":
            if args.journal is not None:
                return fleet_status(args.journal, args.batch, args.out, sys.stdout)
            if args.path is None:
                raise UsageError("give OUT.jsonl, a journal, or --journal URL --batch NAME")
            return status(args.path, sys.stdout)
        if args.command == "batch":
            with exporting(args.otel) as telemetry:
                args.telemetry = telemetry  # the batch's clients take it (_settings.py)
                return _batch(args)
        if args.command == "balance":
            return asyncio.run(show_balance(args))
        return asyncio.run(single(args))
    except (ConfigurationError, UsageError, JournalError, FileError) as exc:
        print(f"creative: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("creative: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        # The last guard: a file of ours (or stdout) failed somewhere not foreseen. Said
        # in one line, never as a traceback.
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"creative: error: {where}{describe(exc)}", file=sys.stderr)
        return EXIT_FAILED


def _batch(args: argparse.Namespace) -> int:
    if is_database(args.journal):
        return fleet(args)
    if args.source is None:
        raise UsageError("give the input file (IN.jsonl, or '-' for stdin)")
    source: Path = args.source
    stdin = str(source) == "-"
    if args.out is not None:
        out: Path = args.out
    elif stdin:
        raise UsageError("reading the input from stdin ('-') needs --out")
    else:
        out = source.with_name(source.name.removesuffix(".jsonl") + ".out.jsonl")
    if not stdin and out.resolve() == source.resolve():
        raise UsageError("--out must not be the input file")
    journal = Path(args.journal) if args.journal else out.with_name(out.name + ".journal")
    options = batch_options(args, source, out, journal)
    check_files(options)
    try:
        inputs = read_inputs(source)
    except OSError as exc:
        raise UsageError(f"cannot read {str(source)!r}: {describe(exc)}") from None

    async def run() -> int:
        async with simulation(args) as simulated:
            every, cooldown = fallback_settings(args, simulated)
            batch = Batch(options, inputs, lambda: batch_client(every, cooldown), sys.stderr)
            return await batch.run()

    return asyncio.run(run())
