from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from creative_client.testing import FakeDeepixels, FakeNeocu, PostgresServer, fake_names
from creative_client.testing.kit import API_KEY, fake_fixture, provider_fixture
from creative_client.testing.kit import leak_check as leak_check  # autouse: no leaks, anywhere

#: Each test that takes ``fake`` (a started fake) or ``provider`` (a name) runs once per
#: registered provider with a fake: the built-ins, and any plugin installed.
fake = fake_fixture(fake_names())
provider = provider_fixture(fake_names())


@pytest.fixture
async def deepixels() -> AsyncIterator[FakeDeepixels]:
    async with FakeDeepixels(api_key=API_KEY) as server:
        yield server


@pytest.fixture
async def neocu() -> AsyncIterator[FakeNeocu]:
    async with FakeNeocu(api_key=API_KEY) as server:
        yield server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server on loopback, for the whole session (started on first
    use, stopped and removed at the end)."""
    with PostgresServer() as server:
        yield server


@pytest.fixture
def share(postgres: PostgresServer) -> str:
    """The URL of the session's PostgreSQL server, for ``share=``."""
    return postgres.url
