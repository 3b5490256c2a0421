"""Fake provider servers on loopback, for tests, demos and benchmarks.

They speak each provider's wire contract over real HTTP, so the real adapters
and transport run against them::

    from creative_client import CreativeClient
    from creative_client.testing import FakeDeepixels, Faults

    async with FakeDeepixels(job_duration=0.1, read_faults=Faults(server_error=0.1)) as fake:
        async with CreativeClient("deepixels", "any-key", base_url=fake.base_url,
                                  model="flux-schnell") as client:
            job = await client.generate(prompt="a red fox")
        assert fake.count("submit") == 1

Every registered provider whose adapter names a fake (``Provider.fake``, a plugin's
included) has one here by name: ``fake_for(name, **options)``, ``fake_class(name)``,
``fake_names()``, ``FakeProcess(name)`` and ``python -m creative_client.testing NAME``.
A plugin's fake subclasses ``FakeServer`` and answers its hooks (see
``creative_client/testing/_contract.py``), with ``FakeJob``, ``Phase``, ``Shape`` and
``json_reply`` from here.

``PostgresServer`` is a throwaway PostgreSQL server on loopback, for testing code that
uses ``share=`` (it needs the server binaries; ``apt-get install postgresql``).
"""

from __future__ import annotations

import pkgutil
from typing import Any

from ..errors import ConfigurationError
from ..providers import get_provider, provider_names
from ._contract import Phase, Shape
from ._deepixels import FakeDeepixels
from ._jobs import FakeJob, RecordedRequest
from ._neocu import FakeNeocu
from ._postgres import PostgresServer
from ._process import FakeProcess
from ._replies import HTML_PAGE, Faults, Reply, json_reply
from ._server import FakeServer

__all__ = [
    "HTML_PAGE",
    "FakeDeepixels",
    "FakeJob",
    "FakeNeocu",
    "FakeProcess",
    "FakeServer",
    "Faults",
    "Phase",
    "PostgresServer",
    "RecordedRequest",
    "Reply",
    "Shape",
    "fake_class",
    "fake_for",
    "fake_names",
    "json_reply",
]


def fake_names() -> tuple[str, ...]:
    """The registered providers that have a fake, in registration order (the built-ins
    first: the first is what ``FakeProcess()`` and ``creative --simulate`` use when no
    provider is named). Nothing is imported to say so."""
    return tuple(name for name in provider_names() if get_provider(name).fake)


def fake_class(provider: str) -> type[FakeServer]:
    """The fake server class of the provider registered under that name (its
    ``Provider.fake``, imported now).

    Raises ``ConfigurationError`` (a ``ValueError``) for an unknown provider, one
    without a fake, or a fake that cannot be imported or is not a ``FakeServer``.
    """
    cls = get_provider(provider)
    path = cls.fake
    if not path:
        raise ConfigurationError(
            f"the provider {cls.name!r} has no fake (its adapter sets no Provider.fake); "
            f"providers with one: {', '.join(fake_names()) or 'none'}",
            provider=cls.name,
        )
    try:
        fake = pkgutil.resolve_name(path)
    except Exception as exc:  # whatever importing it raised, said with the name
        raise ConfigurationError(
            f"the fake of the provider {cls.name!r} ({path!r}) cannot be imported: "
            f"{type(exc).__name__}: {exc}",
            provider=cls.name,
        ) from exc
    if not (isinstance(fake, type) and issubclass(fake, FakeServer)):
        raise ConfigurationError(
            f"the fake of the provider {cls.name!r} ({path!r}) is not a FakeServer subclass",
            provider=cls.name,
        )
    if fake.name != cls.name:
        # Its job ids, state file lines and client_for() all go by the fake's own name.
        raise ConfigurationError(
            f"the fake of the provider {cls.name!r} ({path!r}) is named {fake.name!r}",
            provider=cls.name,
        )
    return fake


def fake_for(provider: str, **options: Any) -> FakeServer:
    """A fake server for the provider of that name, made with ``options``
    (``job_duration=``, ``state=``, ...; see ``FakeServer``). Not started yet:
    ``async with fake_for("deepixels") as fake: ...``.

    Raises ``ConfigurationError`` (a ``ValueError``) as ``fake_class`` does.
    """
    return fake_class(provider)(**options)
