"""Fake Deepixels and Neocu servers on loopback, for tests, demos and benchmarks.

They speak each provider's wire contract over real HTTP, so the real adapters
and transport run against them::

    from creative_client import CreativeClient
    from creative_client.testing import FakeDeepixels, Faults

    async with FakeDeepixels(job_duration=0.1, read_faults=Faults(server_error=0.1)) as fake:
        async with CreativeClient("deepixels", "any-key", base_url=fake.base_url,
                                  model="flux-schnell") as client:
            job = await client.generate(prompt="a red fox")
        assert fake.count("submit") == 1
"""

from __future__ import annotations

from typing import Any

from ._deepixels import FakeDeepixels
from ._neocu import FakeNeocu
from ._process import FakeProcess
from ._server import HTML_PAGE, FakeServer, Faults, RecordedRequest, Reply

__all__ = [
    "HTML_PAGE",
    "FakeDeepixels",
    "FakeNeocu",
    "FakeProcess",
    "FakeServer",
    "Faults",
    "RecordedRequest",
    "Reply",
    "fake_for",
]

_FAKES: dict[str, type[FakeServer]] = {FakeDeepixels.name: FakeDeepixels, FakeNeocu.name: FakeNeocu}


def fake_for(provider: str, **options: Any) -> FakeServer:
    """A fake server for the provider of that name."""
    try:
        return _FAKES[provider](**options)
    except KeyError:
        raise ValueError(f"no fake for provider {provider!r}; have {sorted(_FAKES)}") from None
