"""The shared budget's and the batch journal's tables and functions in PostgreSQL,
created on first use and versioned (``creative_meta.version``). Every change of an
account's slots or tokens runs in one function call, one round trip, under the account
row's lock; so does a journal worker's claim, and a group of its row writes
(``_journal.py``)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Generator
from typing import Any

from ._migrations import V1, V2, V3

#: The schema this code reads and writes; a database at a later version is refused.
VERSION = 3

_LOCK = 0x63726561


class SchemaError(Exception):
    """The database holds a schema this code cannot use."""


# pg_advisory_xact_lock key: "crea"

MIGRATIONS: dict[int, str] = {1: V1, 2: V2, 3: V3}

#: A statement and its parameters (None: none, and several statements allowed).
Step = tuple[str, tuple[object, ...] | None]


def upgrade() -> Generator[Step, tuple[Any, ...] | None, tuple[bytes, bytes]]:
    """The statements that create or upgrade the schema, to run in one transaction;
    each is sent back its first row (None if none). Returns ``(salt, secret)``.

    One source of SQL for ``ensure`` (async) and ``ensure_sync`` (a sync connection)."""
    yield "select pg_advisory_xact_lock(%s)", (_LOCK,)
    exists = yield "select to_regclass('creative_meta')", None
    version = 0
    if exists is not None and exists[0] is not None:
        row = yield "select version from creative_meta", None
        version = row[0] if row is not None else 0
    if version > VERSION:
        raise SchemaError(
            f"the share's schema is version {version}; this creative_client knows "
            f"up to {VERSION}: upgrade creative_client"
        )
    for step in range(version + 1, VERSION + 1):
        yield MIGRATIONS[step], None
    yield (
        "insert into creative_meta (version, salt, secret) values (%s, %s, %s) "
        "on conflict (id) do update set version = excluded.version",
        (VERSION, secrets.token_bytes(16), secrets.token_bytes(32)),
    )
    row = yield "select salt, secret from creative_meta", None
    assert row is not None
    return bytes(row[0]), bytes(row[1])


async def ensure(conn: Any) -> tuple[bytes, bytes]:
    """Create or upgrade the schema (once, under an advisory lock); ``(salt, secret)``."""
    steps = upgrade()
    async with conn.transaction():
        row: tuple[Any, ...] | None = None
        while True:
            try:
                sql, params = steps.send(row)
            except StopIteration as done:
                result: tuple[bytes, bytes] = done.value
                return result
            cursor = await conn.execute(sql, params)
            row = await cursor.fetchone() if cursor.description is not None else None


def ensure_sync(conn: Any) -> tuple[bytes, bytes]:
    """``ensure`` on a sync (``psycopg.Connection``) connection."""
    steps = upgrade()
    with conn.transaction():
        row: tuple[Any, ...] | None = None
        while True:
            try:
                sql, params = steps.send(row)
            except StopIteration as done:
                result: tuple[bytes, bytes] = done.value
                return result
            cursor = conn.execute(sql, params)
            row = cursor.fetchone() if cursor.description is not None else None


def account_of(salt: bytes, provider: str, base_url: str, api_key: str) -> str:
    """The account's name in the share: provider, base URL and a salted hash of the key
    (never the key). Hex, so it also names the account's channel."""
    key = hmac.new(salt, api_key.encode(), hashlib.sha256).hexdigest()
    name = f"{provider}\n{base_url}\n{key}".encode()
    return hashlib.sha256(name).hexdigest()[:40]


def channel_of(account: str) -> str:
    """The account's LISTEN/NOTIFY channel (an identifier under 63 bytes)."""
    return f"creative_{account[:32]}"
