"""Client instructions per job, SDK next to raw aiohttp, counted by valgrind's callgrind.

    python benchmarks/instructions.py [--n 2000] [--concurrency 256]

Wall-clock ratios on a shared machine move with the neighbours; instruction
counts do not. Each side runs as ``fanout.py --child`` under callgrind twice,
with N jobs and with none, against the same fake server process; the
difference divided by N is that side's instructions per job (imports and
start-up cancel out). Needs ``valgrind`` on PATH.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from fanout import ALLOCATOR

from creative_client.testing import FakeProcess

HERE = Path(__file__).resolve().parent


def instructions(side: str, url: str, n: int, concurrency: int) -> int:
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, str(HERE / "fanout.py"), "--child", side, "--url", url,
        "--n", str(n), "--concurrency", str(concurrency),
    ]  # fmt: skip
    out = subprocess.run(
        command, env={**os.environ, **ALLOCATOR}, capture_output=True, text=True, timeout=1800
    )
    found = re.search(r"Collected : (\d+)", out.stderr)
    if out.returncode != 0 or not found:
        raise SystemExit(f"{side} under callgrind failed:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--side", choices=("raw", "sdk"), help="count one side only")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    with FakeProcess("deepixels") as fake:
        url = fake.base_url
        per_job = {}
        for side in (args.side,) if args.side else ("raw", "sdk"):
            base = instructions(side, url, 0, args.concurrency)
            full = instructions(side, url, args.n, args.concurrency)
            per_job[side] = (full - base) / args.n
            print(f"{side:>3}: {per_job[side] / 1e3:8.1f} k instructions/job", flush=True)
    if args.side:
        return
    print(
        f"SDK / raw: {per_job['sdk'] / per_job['raw']:.3f}  "
        f"(N={args.n:,}, concurrency {args.concurrency})"
    )


if __name__ == "__main__":
    main()
