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
import statistics
import tempfile
from pathlib import Path
from typing import Any

from fanout import KEY, RUNNERS, child, measure, median

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
    runs: dict[str, list[dict[str, Any]]] = {"sdk": [], "cli": []}
    with FakeProcess("deepixels") as fake:
        for i in range(args.pairs):
            for side in ("sdk", "cli"):
                result = measure(side, fake, args.n, args.concurrency, script=__file__)
                runs[side].append(result)
                print(
                    f"pair {i + 1} {side:>3}: {result['jobs_per_s']:8.0f} jobs/s  "
                    f"{result['cpu_per_job'] * 1e6:7.1f} us CPU/job  "
                    f"{result['peak_rss_mib']:6.1f} MiB  {result['requests_per_job']:.2f} req/job",
                    flush=True,
                )
    print(f"\nmedians of {args.pairs} pairs, N={args.n:,}, concurrency {args.concurrency}:")
    print(f"{'':24}{'as_completed':>14}{'creative batch':>16}{'batch / ac':>12}{'per pair':>11}")
    for label, key, scale in (
        ("jobs/s", "jobs_per_s", 1.0),
        ("client CPU us/job", "cpu_per_job", 1e6),
        ("peak RSS MiB", "peak_rss_mib", 1.0),
        ("HTTP requests/job", "requests_per_job", 1.0),
    ):
        sdk, cli = median(runs["sdk"], key), median(runs["cli"], key)
        pairs = zip(runs["sdk"], runs["cli"], strict=True)
        paired = statistics.median(float(c[key]) / float(s[key]) for s, c in pairs)
        print(f"{label:24}{sdk * scale:14.2f}{cli * scale:16.2f}{cli / sdk:12.3f}{paired:11.3f}")


if __name__ == "__main__":
    main()
