"""Run a fake provider in its own process, for benchmarks and manual tries.

    python -m creative_client.testing NAME [--port 0] [--job-duration 0] [--state FILE]
        [--durations SPEC] [--seed 0]

NAME is any registered provider with a fake (``fake_names()``: the built-ins and
the installed plugins).

Prints ``READY <base_url>`` once it listens (``ERROR <why>`` and exits 2 if it
cannot start, e.g. a state file it cannot use), then serves until stdin closes,
SIGINT or SIGTERM. GET ``<root>/_fake/stats`` returns its counters, GET
``<root>/_fake/prompts`` the jobs made per prompt, GET ``<root>/_fake/callbacks``
when each job's webhook callback went out, GET ``<root>/_fake/timings`` when each
job ended and was first seen ended (``FakeServer.timings``). ``--durations SPEC``
draws each job's duration by its model (``lognormal:6:0.5``,
``flux-schnell=fixed:5,video-gen=lognormal:60:0.3``; see ``_timing.py``), in place of
``--job-duration`` and ``--job-spread``. ``FakeProcess`` drives it from
a test or a benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from ..errors import ConfigurationError
from . import fake_for, fake_names


async def serve(args: argparse.Namespace) -> int:
    """Serve until told to stop; the exit status (2: the fake could not start)."""
    options: dict[str, object] = {"webhook_loss": args.webhook_loss} if args.webhook_loss else {}
    if args.durations is not None:
        options["durations"] = args.durations
    if args.seed:
        options["seed"] = args.seed
    try:
        fake = fake_for(
            args.provider,
            port=args.port,
            job_duration=args.job_duration,
            job_spread=args.job_spread,
            failure_rate=args.failure_rate,
            hold_submits_after=args.hold_submits_after,
            record=False,
            state=args.state,
            **options,
        )
    # A broken plugin, an option it lacks, a --durations that is not a spec.
    except (ConfigurationError, TypeError, ValueError) as exc:
        print(f"ERROR {exc}", flush=True)
        return 2
    try:
        await fake.start()
    except (OSError, ValueError) as exc:
        # One line on stdout, where FakeProcess waits for READY, instead of a traceback.
        print(f"ERROR {exc}", flush=True)
        return 2
    try:
        print(f"READY {fake.base_url}", flush=True)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if args.watch_stdin:

            def on_stdin() -> None:
                if not sys.stdin.read(1):  # end of file: the parent is gone
                    stop.set()

            loop.add_reader(sys.stdin.fileno(), on_stdin)
        await stop.wait()
    finally:
        await fake.close()
    return 0


def main(argv: list[str] | None = None) -> None:
    """Parse the command line (NAME: one of ``fake_names()``) and serve; exits with
    ``serve``'s status."""
    parser = argparse.ArgumentParser(prog="python -m creative_client.testing")
    parser.add_argument("provider", choices=fake_names())
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--job-duration", type=float, default=0.0)
    parser.add_argument(
        "--job-spread", type=float, default=0.0, help="durations vary by this fraction, +/-"
    )
    parser.add_argument(
        "--durations",
        metavar="SPEC",
        help="draw each job's duration: fixed:S, uniform:A:B, lognormal:MEDIAN:SIGMA, "
        "or by model, MODEL=...,MODEL=...,*=... (replaces --job-duration/--job-spread)",
    )
    parser.add_argument("--seed", type=int, default=0, help="the fake's random seed")
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument(
        "--hold-submits-after",
        type=int,
        metavar="K",
        help="hold the answers of submits after the K-th until POST /_fake/release",
    )
    parser.add_argument(
        "--webhook-loss",
        type=float,
        default=0.0,
        help="the fraction of webhook callbacks never sent",
    )
    parser.add_argument(
        "--state",
        metavar="FILE",
        help="keep the jobs in FILE (JSON lines), so a later run on it still has them",
    )
    parser.add_argument(
        "--watch-stdin", action="store_true", help="stop when stdin closes (a parent died)"
    )
    sys.exit(asyncio.run(serve(parser.parse_args(argv))))


if __name__ == "__main__":
    main()
