"""What the journal costs: ``creative batch`` next to a plain ``as_completed`` loop.

    python benchmarks/journal.py              # N=10,000 instant jobs, concurrency 256, 3 pairs

Both sides run the same client settings (``poll_initial = 0``: one submit and one
read per instant job) against the same fake Deepixels process, each run a fresh
child process, in pairs. The ``creative batch`` side is the whole command, timed
from ``main()`` to its return: reading and checking IN.jsonl, creating the journal
(SQLite, WAL, synchronous=FULL), a committed "submitting" row before every POST,
the job id and the result after it, and writing OUT.jsonl. Its input file is
written before the clock starts. Prints the medians and the ratio batch /
as_completed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from fanout import KEY, RUNNERS, child, throughput

from creative_client.testing import FakeProcess


def cli_runner(folder: Path, n: int) -> Any:
    """A runner for ``child``: the input and config are written first, outside the clock."""
    source = folder / "in.jsonl"
    source.write_text(
        "".join(json.dumps({"id": i, "prompt": f"prompt {i}"}) + "\n" for i in range(n))
    )
    config = folder / "creative.toml"

    def run(url: str, n: int, concurrency: int) -> int:
        from creative_client._cli import main

        config.write_text(
            f'provider = "deepixels"\npoll_initial = 0\n[deepixels]\napi_key = "{KEY}"\n'
            f'base_url = "{url}"\nmodel = "m"\n'
        )
        out = folder / "out.jsonl"
        argv = ["batch", str(source), "--out", str(out), "--config", str(config)]
        status = main([*argv, "--concurrency", str(concurrency), "--quiet"])
        if status != 0:
            raise SystemExit(f"creative batch exited {status}")
        lines = out.read_text().splitlines()
        return sum(json.loads(line)["status"] == "succeeded" for line in lines)

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--child", choices=["sdk", "cli"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory() as folder:
            runner = RUNNERS["sdk"] if args.child == "sdk" else cli_runner(Path(folder), args.n)
            child(runner, args.url, args.n, args.concurrency)
        return
    with FakeProcess("deepixels") as fake:
        throughput(
            fake,
            args.n,
            args.concurrency,
            args.pairs,
            sides=("sdk", "cli"),
            names=("as_completed", "creative batch", "batch / ac"),
            script=__file__,
        )


if __name__ == "__main__":
    main()
