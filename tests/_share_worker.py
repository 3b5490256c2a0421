"""A process of a fleet for tests/test_share.py: one client on a shared budget runs
``n`` jobs and prints what came of them as one JSON line (``ready`` first)."""

from __future__ import annotations

import asyncio
import json
import sys

from creative_client import CreativeClient


async def main(settings: dict[str, object]) -> None:
    options = settings["options"]
    assert isinstance(options, dict)
    async with CreativeClient("deepixels", **options) as client:
        print("ready", flush=True)
        prompts = [f"{settings['tag']}-{i}" for i in range(int(str(settings["n"])))]
        outcomes = await client.generate_many(prompts)
    errors = [repr(o.error) for o in outcomes if not o.ok]
    print(json.dumps({"ok": sum(o.ok for o in outcomes), "errors": errors[:3]}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
