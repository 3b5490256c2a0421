"""The command line: each subcommand with only the options that mean something for it."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import __version__
from ..providers import Provider, get_provider, provider_names
from ._argtypes import json_object, positive_float, positive_int, provider_name, size_in_bytes

_EPILOG = """\
exit status:
  0    every job succeeded (get: the job was read; status: the batch was read)
  1    a job failed, timed out, is unfinished or uncertain, a download failed, or an
       input line was rejected
  2    nothing ran: bad arguments, configuration, input (with --strict), a file that
       cannot be written, a journal in use, from another input, or missing, or no
       balance left (batch, without --force)
  130  stopped by Ctrl-C (143: SIGTERM); run the same command again to resume

{keys}
"""


def _epilog() -> str:
    key_vars = ", ".join(_providers(lambda p: p.api_key_env))
    keys = (
        f"API keys come from the environment ({key_vars}) or the config file, never "
        "from the command line."
    )
    return _EPILOG.format(keys=textwrap.fill(keys, width=86))


def _providers(what: Callable[[type[Provider]], str | None]) -> list[str]:
    """``what`` of each registered provider, where it says something."""
    said = (what(get_provider(name)) for name in provider_names())
    return [text for text in said if text]


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows each option's default, where it has one worth saying (not None or off)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" not in text
            and action.option_strings
            and default not in (None, False, [], argparse.SUPPRESS)
        ):
            text += " (default: %(default)s)"
        return text


def parser() -> argparse.ArgumentParser:
    epilog = _epilog()
    names = ", ".join(provider_names())
    top = argparse.ArgumentParser(
        prog="creative",
        description=f"Generate media with {names}: one job, or a resumable batch.",
        epilog=epilog,
        formatter_class=_Formatter,
    )
    top.add_argument("--version", action="version", version=f"creative {__version__}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    kw: dict[str, Any] = {"epilog": epilog, "formatter_class": _Formatter}

    generate = commands.add_parser(
        "generate", help="run one job and print it as JSON", description="Run one job.", **kw
    )
    generate.add_argument("prompt")
    _configuration(generate)
    _simulation(generate)
    _timeout(generate)
    generate.add_argument("--input", type=json_object, metavar="JSON", help="model extras")
    takers = ", ".join(_providers(lambda p: p.name if p.takes_files else None))
    generate.add_argument("--file", action="append", default=[], help=f"a file id ({takers})")
    _downloads(generate, "save the outputs in DIR")

    get = commands.add_parser(
        "get", help="print one job's current state as JSON", description="Read one job.", **kw
    )
    get.add_argument("job_id")
    _configuration(get)
    _simulation(get)

    _batch(commands, kw)

    balance = commands.add_parser(
        "balance",
        help="print the account's remaining balance",
        description=(
            "Print the account's remaining balance, in the provider's own unit. Exit 2 "
            "for a provider that documents none, 1 if it cannot be read. `creative "
            "batch` reads it before sending, and stops at 0 or less unless --force."
        ),
        **kw,
    )
    _configuration(balance)
    _simulation(balance)

    status = commands.add_parser(
        "status",
        help="count a batch's rows by state and say what to do next",
        description=(
            "Read a batch's OUT.jsonl or its journal: how many rows are in each state, and "
            "what would move the rest (resume, --resubmit-uncertain, --retry-failed)."
        ),
        **kw,
    )
    status.add_argument("path", type=Path, nargs="?", metavar="OUT.jsonl|JOURNAL")
    status.add_argument(
        "--journal", metavar="URL", help="a batch's PostgreSQL journal (with --batch)"
    )
    status.add_argument("--batch", metavar="NAME", help="the batch's name in that journal")
    status.add_argument(
        "--out",
        type=Path,
        metavar="OUT.jsonl",
        help="with --journal: write the batch's OUT from the journal, as it stands",
    )
    return top


def _batch(commands: Any, kw: dict[str, Any]) -> None:
    batch = commands.add_parser(
        "batch",
        help="run a JSONL file of requests, resumably",
        description=(
            "Run every line of IN.jsonl ({'id', 'prompt', 'model'?, 'input'?, 'files'?}); "
            "'-' reads it from stdin (then give --out). A journal records each id's state, "
            "so running the same command again after a crash or Ctrl-C resumes without "
            "submitting anything twice."
        ),
        **kw,
    )
    batch.add_argument(
        "source",
        type=Path,
        nargs="?",
        metavar="IN.jsonl",
        help="the requests (a worker joining a batch on PostgreSQL may leave it out)",
    )
    _configuration(batch)
    _simulation(batch)
    _timeout(batch)
    batch.add_argument(
        "--out",
        type=Path,
        metavar="OUT.jsonl",
        help="results, one line per input line (default: IN.out.jsonl; needed with '-')",
    )
    _journal(batch)
    _budget(batch)
    _downloads(batch, "save outputs as DIR/{id}-{n}.{ext}")
    batch.add_argument(
        "--resubmit-uncertain",
        action="store_true",
        help="send again the submits whose outcome is unknown (each may cost a second job)",
    )
    batch.add_argument(
        "--retry-failed",
        action="store_true",
        help="send again the rows whose job failed (JobFailedError); each is a new job",
    )
    batch.add_argument(
        "--force",
        action="store_true",
        help="go on though IN.jsonl changed, over an OUT whose journal is missing, or "
        "with the provider's balance at 0",
    )
    batch.add_argument("--strict", action="store_true", help="run nothing if any line is bad")
    batch.add_argument(
        "--otel",
        action="store_true",
        help="export traces and metrics with OpenTelemetry, as the standard OTEL_* "
        "variables say (default: OTLP over HTTP to localhost:4318; the [otel] extra)",
    )
    batch.add_argument("--quiet", action="store_true", help="no progress and no summary")
    batch.add_argument(
        "--progress-interval",
        type=positive_float,
        default=10.0,
        metavar="SECONDS",
        help="between progress lines when stderr is not a terminal",
    )


def _journal(command: argparse.ArgumentParser) -> None:
    group = command.add_argument_group("journal")
    group.add_argument(
        "--journal",
        metavar="PATH|URL",
        help="the journal (default: OUT.jsonl.journal); a postgresql:// URL lets many "
        "workers, on any machines, run one batch",
    )
    group.add_argument(
        "--batch",
        metavar="NAME",
        help="the batch's name in a PostgreSQL journal (default: the input's content hash, "
        "so the same command on every machine joins the same batch)",
    )
    group.add_argument(
        "--lease",
        type=positive_float,
        default=30.0,
        metavar="SECONDS",
        help="with a PostgreSQL journal: how long a lost worker's rows stay its own before "
        "the others take them over (its submits in flight then become uncertain)",
    )


def _budget(command: argparse.ArgumentParser) -> None:
    group = command.add_argument_group("budget")
    group.add_argument(
        "--concurrency", type=positive_int, default=32, metavar="N", help="jobs at once"
    )
    group.add_argument(
        "--rate", type=positive_float, metavar="N", help="HTTP requests per second, at most"
    )
    group.add_argument(
        "--max-jobs",
        type=positive_int,
        metavar="N",
        help="jobs in flight at the provider, at most (with --share: fleet-wide)",
    )
    group.add_argument(
        "--share",
        metavar="URL",
        help="a PostgreSQL URL: --rate and --max-jobs hold for every process given it, "
        "on any machine (default: CREATIVE_SHARE)",
    )


def _configuration(command: argparse.ArgumentParser) -> None:
    group = command.add_argument_group("configuration")
    group.add_argument(
        "--provider",
        type=provider_name,
        metavar="{" + ",".join(provider_names()) + "}",
        help="default: CREATIVE_PROVIDER",
    )
    group.add_argument("--base-url", help="the provider's API root (default: its public one)")
    takers = ", ".join(_providers(lambda p: p.name if p.takes_model else None))
    group.add_argument("--model", help=f"the default model ({takers}; default: CREATIVE_MODEL)")
    group.add_argument("--config", type=Path, metavar="FILE", help="a TOML config file")
    group.add_argument("-v", "--verbose", action="store_true", help="log retries")


def _simulation(command: argparse.ArgumentParser) -> None:
    group = command.add_argument_group("simulation")
    group.add_argument(
        "--simulate",
        action="store_true",
        help="run against the provider's fake on 127.0.0.1 (no key, no network; without "
        "a provider named, the first that has one); its jobs are kept in "
        "CREATIVE_SIMULATE_STATE (a folder; default $XDG_STATE_HOME/creative), so a "
        "later command still finds them",
    )
    group.add_argument(
        "--simulate-duration",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how long a simulated job runs",
    )


def _timeout(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--timeout",
        type=positive_float,
        metavar="SECONDS",
        help="how long to wait for a job (default: the config file's, or 600)",
    )


def _downloads(command: argparse.ArgumentParser, what: str) -> None:
    command.add_argument("--download", type=Path, metavar="DIR", help=what)
    command.add_argument(
        "--max-download",
        type=size_in_bytes,
        default="512M",
        metavar="SIZE",
        help="the largest file to download, e.g. 512M or 2G",
    )
