"""The quick start: a handful of jobs on each provider, against the built-in fakes.

Runs with no API key and no network: it starts fake Deepixels and Neocu servers
on 127.0.0.1, then drives them through the same client code. Point the config
at the real providers (and real keys) and nothing else changes.

    python examples/quickstart.py
"""

from __future__ import annotations

import asyncio
from typing import Any

from creative_client import CreativeClient, GenerationRequest
from creative_client.testing import FakeDeepixels, FakeNeocu

PROMPTS = [
    "a red fox in the snow",
    "a lighthouse at dusk, oil painting",
    "a short video of waves on a beach",
    "a cat astronaut, 3d render",
    "this one is meant to fail [fail]",
]


async def run(config: dict[str, Any]) -> None:
    async with CreativeClient.from_config(config) as client:
        print(f"\n== {client.provider} at {client.base_url}")
        job = await client.generate(prompt=PROMPTS[0])
        print(f"generate(): {job.id} {job.status.name} -> {job.outputs[0].url}")

        requests = [GenerationRequest(prompt=p) for p in PROMPTS]
        async for outcome in client.as_completed(requests, concurrency=4):
            if outcome.ok:
                assert outcome.job is not None
                urls = ", ".join(a.url for a in outcome.job.outputs)
                print(f"  ok     {outcome.request.prompt[:36]:<36} {outcome.job.id}  {urls}")
            else:
                print(f"  failed {outcome.request.prompt[:36]:<36} {outcome.error}")


async def main() -> None:
    async with FakeDeepixels(job_duration=0.3) as deepixels, FakeNeocu(job_duration=0.3) as neocu:
        for provider in ("deepixels", "neocu"):
            # One config; switching provider is this one line.
            config = {
                "provider": provider,
                "poll_initial": 0.1,
                "deepixels": {
                    "api_key": "demo-key",
                    "base_url": deepixels.base_url,
                    "model": "flux-schnell",
                },
                "neocu": {"api_key": "demo-key", "base_url": neocu.base_url},
            }
            await run(config)
        print(
            f"\nthe fakes saw {deepixels.count('submit')} + {neocu.count('submit')} submits, "
            f"{deepixels.count('get')} + {neocu.count('get')} reads"
        )


if __name__ == "__main__":
    asyncio.run(main())
