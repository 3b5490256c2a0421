"""Waiting by webhook: HTTP requests per job, and how soon a job is yielded after its
callback, for jobs that last 5 s.

    python benchmarks/webhooks.py                 # N=1,000, concurrency 250, 3 rounds
    python benchmarks/webhooks.py --spread 0      # every job of a wave ends at once
    python benchmarks/webhooks.py --loss 0.05 --webhook-poll 10   # 5% of callbacks lost

Three sides, each run a fresh child process, in rounds A B C A B C ..., against the
same fake Deepixels process, which POSTs each job's webhook when the job ends. Jobs
last 5 s ± 20% (``--spread``): real jobs do not all end in the same millisecond;
``--spread 0`` makes each wave of 250 end together, the worst case.

- ``raw-hook``: a minimal raw-aiohttp loop with a receiver of its own: per-job token,
  answer 202, confirm with one GET, hand the job over; no fallback polls.
- ``sdk-hook``: ``CreativeClient(webhook_listen="127.0.0.1:0")`` and ``as_completed``.
- ``sdk-poll``: the same client polling (its defaults: 0.5 s growing to 5 s).

Requests per job are counted by the server (submits and reads; the callbacks are the
provider's requests, not the client's). Latency is from the moment the fake sent a
callback's headers to the moment the client yielded that job (``time.monotonic()`` on
both sides: one clock on one machine), so it includes the trip to the receiver.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time
from typing import Any

from fanout import KEY, Run, child, measure, median

from creative_client.testing import FakeProcess

Yielded = dict[str, float]


async def raw_hook(url: str, n: int, concurrency: int) -> tuple[int, Yielded]:
    """What a careful user writes by hand: a receiver, a token per job, a confirming read."""
    import aiohttp
    from aiohttp import web

    headers = {"x-api-key": KEY}
    loop = asyncio.get_running_loop()
    waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
    job_ids: dict[str, str] = {}
    reads: set[asyncio.Task[None]] = set()
    yielded: Yielded = {}

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def confirm(token: str) -> None:
            params = {"jobId": job_ids[token]}
            async with session.get(f"{url}/get", params=params, headers=headers) as resp:
                doc = await resp.json()
            waiter = waiters.get(token)
            if doc["status"] in ("completed", "failed") and waiter and not waiter.done():
                waiter.set_result(doc)

        async def callback(request: web.Request) -> web.Response:
            token = request.match_info["token"]
            if token not in waiters:
                return web.Response(status=404)
            await request.read()
            if token in job_ids:
                task = asyncio.create_task(confirm(token))
                reads.add(task)
                task.add_done_callback(reads.discard)
            return web.Response(status=202)

        app = web.Application()
        app.router.add_post("/hook/{token}", callback)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        hook = f"http://127.0.0.1:{runner.addresses[0][1]}/hook/"
        semaphore = asyncio.Semaphore(concurrency)

        async def one(i: int) -> bool:
            async with semaphore:
                token = secrets.token_urlsafe(24)
                waiters[token] = loop.create_future()
                body = {"model": "m", "input": {"prompt": f"prompt {i}"}, "webhook": hook + token}
                async with session.post(f"{url}/generate", json=body, headers=headers) as resp:
                    job_ids[token] = (await resp.json())["jobId"]
                doc = await waiters[token]
                yielded[doc["jobId"]] = time.monotonic()
                del waiters[token], job_ids[token]
                return bool(doc["status"] == "completed")

        results = await asyncio.gather(*(one(i) for i in range(n)))
        await runner.cleanup()
    return sum(results), yielded


async def sdk(url: str, n: int, concurrency: int, **options: Any) -> tuple[int, Yielded]:
    from creative_client import CreativeClient, GenerationRequest

    requests = (GenerationRequest(prompt=f"prompt {i}") for i in range(n))
    ok, yielded = 0, {}
    async with CreativeClient(
        "deepixels", KEY, base_url=url, model="m", concurrency=concurrency, **options
    ) as client:
        async for outcome in client.as_completed(requests, concurrency=concurrency):
            if outcome.job is not None:
                yielded[outcome.job.id] = time.monotonic()
            ok += outcome.ok
    return ok, yielded


def runner(side: str, webhook_poll: float) -> Run:
    def run(url: str, n: int, concurrency: int) -> tuple[int, dict[str, Any]]:
        if side == "raw-hook":
            ok, yielded = asyncio.run(raw_hook(url, n, concurrency))
        elif side == "sdk-hook":
            hooks = {"webhook_listen": "127.0.0.1:0", "webhook_poll": webhook_poll}
            ok, yielded = asyncio.run(sdk(url, n, concurrency, **hooks))
        else:
            ok, yielded = asyncio.run(sdk(url, n, concurrency))
        return ok, {"yielded": yielded}

    return run


SIDES = ("raw-hook", "sdk-hook", "sdk-poll")


def latencies_ms(result: dict[str, Any], sent: dict[str, float]) -> list[float]:
    """For each job whose callback went out: from then to its yield, in ms."""
    yielded: Yielded = result.pop("yielded")
    return [(t - sent[job]) * 1000 for job, t in yielded.items() if job in sent]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=250)
    parser.add_argument("--pairs", type=int, default=3, help="rounds of the three sides")
    parser.add_argument("--job-duration", type=float, default=5.0)
    parser.add_argument(
        "--spread", type=float, default=0.2, help="durations vary by this fraction, +/-"
    )
    parser.add_argument("--loss", type=float, default=0.0, help="callbacks the fake loses")
    parser.add_argument("--webhook-poll", type=float, default=30.0, help="the SDK's fallback")
    parser.add_argument("--sides", default=",".join(SIDES), help="which, comma-separated")
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(runner(args.child, args.webhook_poll), args.url, args.n, args.concurrency)
        return
    sides = [side for side in SIDES if side in args.sides.split(",")]
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    with FakeProcess(
        "deepixels", job_duration=args.job_duration, job_spread=args.spread, webhook_loss=args.loss
    ) as fake:
        for i in range(args.pairs):
            for side in sides:
                options = ["--webhook-poll", str(args.webhook_poll)]
                lost = fake.stats()["webhooks_lost"]
                result = measure(side, fake, args.n, args.concurrency, __file__, options)
                result["lost"] = fake.stats()["webhooks_lost"] - lost
                delays = latencies_ms(result, fake.callbacks())
                result["latency_ms"] = statistics.median(delays) if delays else float("nan")
                result["latency_p90_ms"] = (
                    statistics.quantiles(delays, n=10)[-1] if len(delays) > 1 else float("nan")
                )
                runs[side].append(result)
                print(
                    f"round {i + 1} {side:>8}: {result['jobs_per_s']:7.1f} jobs/s  "
                    f"{result['cpu_per_job'] * 1e6:7.1f} us CPU/job  "
                    f"{result['peak_rss_mib']:6.1f} MiB  {result['requests_per_job']:.3f} req/job  "
                    f"callback->yield median {result['latency_ms']:.1f} ms "
                    f"(p90 {result['latency_p90_ms']:.1f}), {result['lost']} callbacks lost",
                    flush=True,
                )
    print(
        f"\nmedians of {args.pairs} rounds, N={args.n:,}, concurrency {args.concurrency}, "
        f"{args.job_duration:g} s jobs (+/- {args.spread:.0%}), {args.loss:.0%} of callbacks lost:"
    )
    print(f"{'':28}" + "".join(f"{side:>12}" for side in sides) + f"{'hook: SDK/raw':>15}")
    rows = [
        ("jobs/s", "jobs_per_s", 1.0),
        ("client CPU us/job", "cpu_per_job", 1e6),
        ("peak RSS MiB", "peak_rss_mib", 1.0),
        ("HTTP requests/job", "requests_per_job", 1.0),
        ("callback->yield median ms", "latency_ms", 1.0),
        ("callback->yield p90 ms", "latency_p90_ms", 1.0),
    ]
    for label, key, scale in rows:
        values = [median(runs[side], key) * scale for side in sides]
        hooks = [median(runs[side], key) if side in runs else float("nan") for side in SIDES[:2]]
        ratio = hooks[1] / hooks[0] if hooks[0] else float("nan")
        print(f"{label:28}" + "".join(f"{v:12.3f}" for v in values) + f"{ratio:15.3f}")
    requests, latency = (
        median(runs["sdk-hook"], "requests_per_job"),
        median(runs["sdk-hook"], "latency_ms"),
    )
    print(
        f"\ntargets, SDK by webhook: requests/job {requests:.3f} (<= 3: "
        f"{'met' if requests <= 3 else 'MISSED'}), callback->yield median {latency:.1f} ms "
        f"(<= 50: {'met' if latency <= 50 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
