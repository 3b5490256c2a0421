"""The ``creative`` command (also ``python -m creative_client``).

    creative generate "a red fox" [--model M] [--input JSON] [--download DIR]
    creative get JOB_ID
    creative batch IN.jsonl [--out OUT.jsonl] [--journal PATH] [--concurrency N] ...

Configuration is the library's: ``--provider``, ``--base-url``, ``--model`` and
``--config FILE`` over the environment (``CREATIVE_PROVIDER``, ``CREATIVE_BASE_URL``,
``CREATIVE_MODEL``). API keys come only from the environment or the config file, never
from the command line (where other users and shell history would see them).
``--simulate`` runs against the built-in fake providers on loopback instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import cattrs

from .. import _config
from .._client import CreativeClient
from .._download import DEFAULT_MAX_DOWNLOAD
from .._models import GenerationRequest, Job
from ..errors import ConfigurationError, CreativeError, JobFailedError
from ..providers import get_provider, provider_names
from ._batch import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Batch, BatchOptions, UsageError
from ._inputs import read_inputs
from ._journal import JournalError
from ._progress import mode_for

_EPILOG = """\
exit status:
  0    every job succeeded (get: the job was read)
  1    a job failed, timed out or is uncertain, or an input line was rejected
  2    nothing ran: bad arguments, configuration, input (with --strict) or journal
  130  stopped by Ctrl-C (143: SIGTERM); run the same command again to resume

API keys come from the environment (DEEPIXELS_API_KEY, NEOCU_API_KEY) or the
config file, never from the command line.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; its exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(format="creative: %(message)s", stream=sys.stderr)
    logging.getLogger("creative_client").setLevel(logging.INFO if args.verbose else logging.WARNING)
    try:
        if args.command == "batch":
            return _batch(args)
        return asyncio.run(_single(args))
    except (ConfigurationError, UsageError, JournalError) as exc:
        print(f"creative: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("creative: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("configuration")
    group.add_argument("--provider", choices=provider_names(), help="default: CREATIVE_PROVIDER")
    group.add_argument("--base-url", help="the provider's API root (default: its public one)")
    group.add_argument("--model", help="the default model (Deepixels)")
    group.add_argument("--config", type=Path, metavar="FILE", help="a TOML config file")
    group.add_argument("--timeout", type=_positive_float, help="seconds to wait for a job")
    group.add_argument(
        "--simulate",
        action="store_true",
        help="run against the built-in fake providers on 127.0.0.1 (no key, no network)",
    )
    group.add_argument(
        "--simulate-duration",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how long a simulated job runs (default 1)",
    )
    group.add_argument("-v", "--verbose", action="store_true", help="log retries")

    parser = argparse.ArgumentParser(
        prog="creative",
        description="Generate media with Deepixels or Neocu: one job, or a resumable batch.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    kw: dict[str, Any] = {
        "parents": [common],
        "epilog": _EPILOG,
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }

    generate = commands.add_parser(
        "generate", help="run one job and print it as JSON", description="Run one job.", **kw
    )
    generate.add_argument("prompt")
    generate.add_argument("--input", type=_json_object, metavar="JSON", help="model extras")
    generate.add_argument("--file", action="append", default=[], help="a file id (Neocu)")
    generate.add_argument("--download", type=Path, metavar="DIR", help="save the outputs here")
    generate.add_argument("--max-download", type=_size, default=DEFAULT_MAX_DOWNLOAD)

    get = commands.add_parser(
        "get", help="print one job's current state as JSON", description="Read one job.", **kw
    )
    get.add_argument("job_id")

    batch = commands.add_parser(
        "batch",
        help="run a JSONL file of requests, resumably",
        description=(
            "Run every line of IN.jsonl ({'id', 'prompt', 'model'?, 'input'?, 'files'?}). "
            "A journal records each id's state, so running the same command again after a "
            "crash or Ctrl-C resumes without submitting anything twice."
        ),
        **kw,
    )
    batch.add_argument("source", type=Path, metavar="IN.jsonl")
    batch.add_argument("--out", type=Path, help="results, one line per id (default IN.out.jsonl)")
    batch.add_argument("--journal", type=Path, help="the journal (default OUT.jsonl.journal)")
    batch.add_argument("--concurrency", type=_positive_int, default=32, help="jobs at once")
    batch.add_argument("--rate", type=_positive_float, help="HTTP requests per second, at most")
    batch.add_argument("--download", type=Path, metavar="DIR", help="save outputs as DIR/{id}-{n}")
    batch.add_argument(
        "--max-download",
        type=_size,
        default=DEFAULT_MAX_DOWNLOAD,
        metavar="SIZE",
        help="largest file to download, e.g. 512M (default)",
    )
    batch.add_argument(
        "--resubmit-uncertain",
        action="store_true",
        help="send again the submits whose outcome is unknown (each may cost a second job)",
    )
    batch.add_argument("--force", action="store_true", help="go on though IN.jsonl changed")
    batch.add_argument("--strict", action="store_true", help="run nothing if any line is bad")
    batch.add_argument("--quiet", action="store_true", help="no progress and no summary")
    batch.add_argument(
        "--progress-interval",
        type=_positive_float,
        default=10.0,
        metavar="SECONDS",
        help="between progress lines when stderr is not a terminal (default 10)",
    )
    return parser


# -- configuration ---------------------------------------------------------------------


def _settings(args: argparse.Namespace, simulated: dict[str, str] | None) -> dict[str, Any]:
    """The client's keyword arguments: flags over the config file over the environment."""
    env: dict[str, str] = dict(os.environ)
    if simulated is not None:
        # The fakes take any key; never send a real one to them.
        for name in provider_names():
            env[get_provider(name).api_key_env] = "simulated-key"
    if args.config is not None:
        settings = _config.from_config(args.config, env, args.provider)
    else:
        if args.provider:
            env["CREATIVE_PROVIDER"] = args.provider
        elif simulated is not None:
            env.setdefault("CREATIVE_PROVIDER", "deepixels")
        settings = _config.from_env(env)
    if simulated is not None:
        settings["api_key"] = "simulated-key"
        settings["base_url"] = simulated[settings["provider"]]
        if get_provider(settings["provider"]).takes_model and not (
            args.model or settings.get("model")
        ):
            settings["model"] = "flux-schnell"
    if args.base_url:
        settings["base_url"] = args.base_url
    if args.model:
        settings["model"] = args.model
    if args.timeout is not None:
        settings["timeout"] = args.timeout
    if getattr(args, "concurrency", None) is not None:
        settings["concurrency"] = args.concurrency
    if getattr(args, "rate", None) is not None:
        settings["rate"] = args.rate
    return settings


@contextlib.asynccontextmanager
async def _simulation(args: argparse.Namespace) -> AsyncIterator[dict[str, str] | None]:
    """With ``--simulate``, fake providers on loopback for the run: their base URLs."""
    if not args.simulate:
        yield None
        return
    from ..testing import FakeDeepixels, FakeNeocu

    duration = max(args.simulate_duration, 0.0)
    async with (
        FakeDeepixels(job_duration=duration, record=False) as deepixels,
        FakeNeocu(job_duration=duration, record=False) as neocu,
    ):
        yield {"deepixels": deepixels.base_url, "neocu": neocu.base_url}


# -- generate and get --------------------------------------------------------------------


async def _single(args: argparse.Namespace) -> int:
    async with _simulation(args) as simulated:
        settings = _settings(args, simulated)
        async with CreativeClient(**settings) as client:
            try:
                if args.command == "get":
                    _print_job(await client.get(args.job_id))
                    return EXIT_OK
                request = GenerationRequest(
                    prompt=args.prompt, input=args.input or {}, files=args.file
                )
                try:
                    job = await client.generate(request)
                except JobFailedError as exc:
                    _print_job(exc.job)
                    print(f"creative: the job failed: {exc.job.error or ''}", file=sys.stderr)
                    return EXIT_FAILED
                files = None
                if args.download is not None:
                    paths = await client.download(job, args.download, max_size=args.max_download)
                    files = [str(p) for p in paths]
                _print_job(job, files)
                return EXIT_OK
            except CreativeError as exc:
                print(f"creative: {type(exc).__name__}: {exc}", file=sys.stderr)
                return EXIT_FAILED


#: Jobs as plain JSON: the model's own fields, enums as their values, times in ISO 8601.
_JSON = cattrs.Converter()
_JSON.register_unstructure_hook(datetime, datetime.isoformat)


def job_document(job: Job) -> dict[str, Any]:
    """A job as plain JSON."""
    document: dict[str, Any] = _JSON.unstructure(job)
    return document


def _print_job(job: Job, files: list[str] | None = None) -> None:
    document = job_document(job)
    if files is not None:
        document["files"] = files
    print(json.dumps(document, indent=2, ensure_ascii=False))


# -- batch --------------------------------------------------------------------------------


def _batch(args: argparse.Namespace) -> int:
    source: Path = args.source
    out: Path = args.out or source.with_name(source.name.removesuffix(".jsonl") + ".out.jsonl")
    if out.resolve() == source.resolve():
        raise UsageError("--out must not be the input file")
    options = BatchOptions(
        source=source,
        out=out,
        journal=args.journal or out.with_name(out.name + ".journal"),
        concurrency=args.concurrency,
        download=args.download,
        max_download=args.max_download,
        resubmit_uncertain=args.resubmit_uncertain,
        force=args.force,
        strict=args.strict,
        progress=mode_for(args.quiet, sys.stderr),
        progress_every=args.progress_interval,
    )
    try:
        inputs = read_inputs(source)
    except OSError as exc:
        raise UsageError(f"cannot read {str(source)!r}: {exc.strerror}") from None

    async def run() -> int:
        async with _simulation(args) as simulated:
            settings = _settings(args, simulated)
            batch = Batch(options, inputs, lambda: CreativeClient(**settings), sys.stderr)
            return await batch.run()

    return asyncio.run(run())


# -- argument types -----------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a whole number > 0, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def _size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if match is None or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(f"expected a size such as 512M, got {text!r}")
    return int(match[1]) * _UNITS[match[2].upper()]
