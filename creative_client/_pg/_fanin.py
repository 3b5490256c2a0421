"""Webhooks across replicas: a callback that reaches any replica's receiver is confirmed
there (one read) and handed to the replica that awaits the job, over the account's
LISTEN/NOTIFY channel (``creative_client/_pg/_budget.py`` listens).

Callback tokens are signed with the share's secret (``Signer`` in
``creative_client/_webhooks.py``), so a replica relays only callbacks some replica of
the fleet minted. A notification carries the token, the job id and the document the
read returned; a document too large for a notification (8000 bytes) is left out, and
the awaiting replica reads the job itself.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from typing import Any

from .._webhooks import Reader, Signer, WebhookReceiver
from ..errors import CreativeError
from ..providers import Provider
from ._budget import SharedBudget
from ._link import Down

logger = logging.getLogger("creative_client")

#: What a notification may carry (PostgreSQL's limit is 8000 bytes).
MAX_PAYLOAD = 7900
#: Relays in flight at once; beyond, a callback is dropped (the fallback poll finds it).
MAX_RELAYS = 64
#: Tokens remembered as relayed: a replayed callback URL causes no second read.
REMEMBERED = 65536
_PREFIX = "cb "


class FanIn:
    """One client's part in the fleet's callbacks: relays those its receiver takes for
    other replicas, and takes those other replicas relay for its jobs."""

    def __init__(self, budget: SharedBudget, provider: Provider, reader: Reader) -> None:
        self._budget = budget
        self._provider = provider
        self._reader = reader
        self._receiver: WebhookReceiver | None = None
        self._relays: set[asyncio.Task[None]] = set()
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.dropped = 0
        budget.on_notify = self._notified

    def attach(self, receiver: WebhookReceiver) -> None:
        """Sign ``receiver``'s tokens for the fleet, and relay what it cannot place."""
        self._receiver = receiver
        receiver.signer = Signer(self._budget.secret)
        receiver.relay = self._relay

    async def close(self) -> None:
        for task in list(self._relays):
            task.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)

    def _relay(self, token: str, body: bytes) -> None:
        if token in self._seen or len(self._relays) >= MAX_RELAYS:
            self.dropped += 1  # a replay or a flood: no read, and nothing handed on
            return
        self._seen[token] = None
        if len(self._seen) > REMEMBERED:
            self._seen.popitem(last=False)
        task = asyncio.create_task(self._confirm_and_hand_on(token, body))
        self._relays.add(task)
        task.add_done_callback(self._relays.discard)

    async def _confirm_and_hand_on(self, token: str, body: bytes) -> None:
        note: dict[str, Any] = {"t": token}
        job_id = self._job_id(body)
        if job_id:
            try:
                job = await self._reader(job_id)
            except CreativeError as exc:
                logger.debug("a relayed callback's read failed: %s", exc)
            else:
                if job.status.is_terminal:
                    note.update(j=job.id, d=job.raw)
        payload = _PREFIX + json.dumps(note, separators=(",", ":"))
        if len(payload.encode()) > MAX_PAYLOAD:
            payload = _PREFIX + json.dumps({"t": token})
        try:
            await self._budget.link.call(
                "select pg_notify(%s, %s)", (self._budget.channel, payload)
            )
        except Down:
            logger.debug("a relayed callback was dropped: the share's database is away")

    def _job_id(self, body: bytes) -> str | None:
        """The job id a callback's body names, if it names one (it is only a hint)."""
        try:
            return self._provider.parse_job("", json.loads(body)).id or None
        except (ValueError, CreativeError):
            return None

    def _notified(self, payload: str) -> None:
        if not payload.startswith(_PREFIX) or self._receiver is None:
            return
        try:
            note = json.loads(payload[len(_PREFIX) :])
            token = note["t"]
        except (ValueError, KeyError, TypeError):
            return
        job = None
        if "d" in note and isinstance(note.get("j"), str):
            try:
                job = self._provider.parse_job(note["j"], note["d"])
            except CreativeError:
                job = None
        if isinstance(token, str):
            self._receiver.delivered(token, job)
