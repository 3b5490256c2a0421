"""``creative generate`` and ``creative get``: one job, printed as JSON."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shlex
import signal
import sys
from datetime import datetime
from typing import Any

import cattrs

from .._client import CreativeClient
from .._fallback import FallbackClient
from .._models import GenerationRequest, Job, JobStatus
from ..errors import CreativeError, InvalidRequestError
from ._files import check_writable_folder, describe
from ._settings import batch_client, fallback_settings, settings, simulation

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: Jobs as plain JSON: the model's own fields, enums as their values, times in ISO 8601.
_JSON = cattrs.Converter()
_JSON.register_unstructure_hook(datetime, datetime.isoformat)


def job_document(job: Job) -> dict[str, Any]:
    """A job as plain JSON."""
    document: dict[str, Any] = _JSON.unstructure(job)
    return document


async def single(args: argparse.Namespace) -> int:
    """``generate`` or ``get``. SIGTERM stops it as Ctrl-C does (143), so a job that was
    paid for still has its id printed."""
    task = asyncio.current_task()
    assert task is not None
    terminated = False

    def on_term() -> None:
        nonlocal terminated
        terminated = True
        task.cancel()

    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, on_term)
    try:
        return await _single(args)
    except asyncio.CancelledError:
        if not terminated:
            raise
        task.uncancel()
        print("creative: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)


async def _single(args: argparse.Namespace) -> int:
    if args.command == "generate" and args.download is not None:
        # Before the job is paid for, not after it ran.
        check_writable_folder(args.download, "downloads")
    async with simulation(args) as simulated:
        if args.command == "generate":  # with the config file's fallback providers
            async with batch_client(*fallback_settings(args, simulated)) as providers:
                return await _generate(args, providers)
        async with CreativeClient(**settings(args, simulated)) as client:
            try:
                _print_job(await client.get(args.job_id))
            except CreativeError as exc:
                _error(exc)
                return EXIT_FAILED
            return EXIT_OK


async def _generate(args: argparse.Namespace, client: FallbackClient) -> int:
    request = GenerationRequest(prompt=args.prompt, input=args.input or {}, files=args.file)
    try:
        client.validate(request)
    except InvalidRequestError as exc:  # refused before sending: nothing ran
        _error(exc)
        return EXIT_USAGE
    try:
        job = await client.submit(request)
    except CreativeError as exc:  # a 400 from the provider is its answer: the run ended
        _error(exc)
        return EXIT_FAILED
    # From here the job exists and may be paid for: whatever happens, its id is shown.
    try:
        done = await client.wait(job)
    except CreativeError as exc:
        last = getattr(exc, "job", None)
        _print_job(last if isinstance(last, Job) else job)
        _error(exc)
        _how_to_read(job, args, client.provider)
        return EXIT_FAILED
    except asyncio.CancelledError:
        _how_to_read(job, args, client.provider)
        raise
    if done.status is not JobStatus.SUCCEEDED:
        _print_job(done)
        print(f"creative: the job failed: {done.error or ''}", file=sys.stderr)
        return EXIT_FAILED
    files = None
    if args.download is not None:
        try:
            paths = await client.download(done, args.download, max_size=args.max_download)
        except CreativeError as exc:
            _print_job(done)
            print(f"creative: download failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return EXIT_FAILED
        except OSError as exc:  # our folder: full, or made unwritable since the check
            _print_job(done)
            where = exc.filename or args.download
            print(f"creative: download failed: {where}: {describe(exc)}", file=sys.stderr)
            return EXIT_FAILED
        files = [str(p) for p in paths]
    _print_job(done, files)
    return EXIT_OK


def _error(exc: CreativeError) -> None:
    print(f"creative: {type(exc).__name__}: {exc}", file=sys.stderr)


def _how_to_read(job: Job, args: argparse.Namespace, first: str) -> None:
    """Say the command that reads the job later: with the run's config file, and the
    provider when it is not the configured one (a fallback's, or named by a flag)."""
    again = f"creative get {shlex.quote(job.id)}" + (" --simulate" if args.simulate else "")
    if args.config is not None:
        again += f" --config {shlex.quote(str(args.config))}"
    if job.provider != first or args.provider:  # a fallback provider's job, or the flag's
        again += f" --provider {job.provider}"
    print(f"creative: the job {job.id} was submitted; `{again}` reads it later", file=sys.stderr)


def _print_job(job: Job, files: list[str] | None = None) -> None:
    document = job_document(job)
    if files is not None:
        document["files"] = files
    print(json.dumps(document, indent=2, ensure_ascii=False), flush=True)
