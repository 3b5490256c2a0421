"""One script, either provider: which one is the environment's business.

    CREATIVE_PROVIDER=deepixels DEEPIXELS_API_KEY=... CREATIVE_MODEL=flux-schnell \
        python examples/from_env.py "a red fox"
    CREATIVE_PROVIDER=neocu NEOCU_API_KEY=... python examples/from_env.py "a red fox"

Prints the finished job as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys

from creative_client import CreativeClient


async def main(prompt: str) -> None:
    async with CreativeClient.from_env() as client:
        job = await client.generate(prompt=prompt)
    print(
        json.dumps(
            {
                "provider": job.provider,
                "id": job.id,
                "status": job.status.value,
                "outputs": [asset.url for asset in job.outputs],
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or "a red fox"))
