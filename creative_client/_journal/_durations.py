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

logger = logging.getLogger("creative_client")

#: The meta key the durations are kept under.
KEY = "durations"


async def recall(journal: JournalBackend, client: CreativeClient) -> int:
    """Load the durations ``journal`` keeps into ``client``: the ended jobs taken in."""
    try:
        text = (await asyncio.to_thread(journal.meta)).get(KEY)
    except JournalError:
        return 0
    if not text:
        return 0
    try:
        return client.load_durations(json.loads(text))
    except (ValueError, RecursionError, ConfigurationError) as exc:
        logger.debug("the journal's durations are not used: %s", exc)
        return 0


async def keep(journal: JournalBackend, client: CreativeClient) -> None:
    """Write what ``client`` learned into ``journal`` (nothing when it learned nothing);
    a journal that cannot take it loses only this cache."""
    state = client.export_durations()
    if not state["models"]:
        return
    text = json.dumps(state, separators=(",", ":"))
    try:
        await asyncio.to_thread(journal.set_meta, **{KEY: text})
    except JournalError as exc:
        logger.debug("the durations were not kept in the journal: %s", exc)
