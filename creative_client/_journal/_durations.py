"""A journal keeps what its batch's client learned of how long jobs take (issue 16): read
into the client as a run starts, so a resumed or later batch polls well from its first
job, and written back as the run ends (a clean end, an error or a signal; a run killed
outright keeps what the run before it wrote: it is a cache, nothing paid for is in it).

Used by the library's ``journaled`` (``_run.py``) and the CLI's batches (``_cli/_batch.py``,
``_cli/_fleet.py``), on SQLite and PostgreSQL alike: the durations are one meta value.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

from ..errors import ConfigurationError
from ._model import JournalBackend, JournalError

if TYPE_CHECKING:
    from .._client import CreativeClient
    from .._fallback import FallbackClient

logger = logging.getLogger("creative_client")

#: The meta key the durations are kept under: the batch's (first) provider's; with
#: fallback providers, each other one's under ``durations:<provider>``.
KEY = "durations"


def _keyed(client: CreativeClient | FallbackClient) -> list[tuple[str, CreativeClient]]:
    """Each provider's client of ``client``, with the meta key of its durations."""
    from .._fallback import FallbackClient  # here: it imports the client, which imports this

    if not isinstance(client, FallbackClient):
        return [(KEY, client)]
    first, *others = client.clients
    return [(KEY, first), *((f"{KEY}:{each.provider}", each) for each in others)]


async def recall(journal: JournalBackend, client: CreativeClient | FallbackClient) -> int:
    """Load the durations ``journal`` keeps into ``client`` (each of a
    ``FallbackClient``'s providers): the ended jobs taken in."""
    try:
        meta = await asyncio.to_thread(journal.meta)
    except JournalError:
        return 0
    taken = 0
    for key, each in _keyed(client):
        text = meta.get(key)
        if not text:
            continue
        try:
            taken += each.load_durations(json.loads(text))
        except (ValueError, RecursionError, ConfigurationError) as exc:
            logger.debug("the journal's durations are not used: %s", exc)
    return taken


async def keep(journal: JournalBackend, client: CreativeClient | FallbackClient) -> None:
    """Write what ``client`` (each of a ``FallbackClient``'s providers) learned into
    ``journal`` (nothing of a provider that learned nothing); a journal that cannot
    take it loses only this cache."""
    values: dict[str, str] = {}
    for key, each in _keyed(client):
        state = each.export_durations()
        if state["models"]:
            values[key] = json.dumps(state, separators=(",", ":"))
    if not values:
        return
    try:
        await asyncio.to_thread(journal.set_meta, **values)
    except JournalError as exc:
        logger.debug("the durations were not kept in the journal: %s", exc)
