"""The shared budget's tables and functions in PostgreSQL, created on first use and
versioned (``creative_meta.version``). Every change of an account's slots or tokens
runs in one function call, one round trip, under the account row's lock."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

#: The schema this code reads and writes; a database at a later version is refused.
VERSION = 2

_LOCK = 0x63726561


class SchemaError(Exception):
    """The database holds a schema this code cannot use."""


# pg_advisory_xact_lock key: "crea"

_V1 = """
create table if not exists creative_meta (
    id integer primary key default 1 check (id = 1),
    version integer not null,
    salt bytea not null,
    secret bytea not null
);
create table if not exists creative_accounts (
    account text primary key,
    tokens double precision not null,
    refreshed timestamptz not null
);
create table if not exists creative_holders (
    account text not null,
    holder uuid not null,
    slots integer not null,
    wanting integer not null,
    expires timestamptz not null,
    primary key (account, holder)
);

-- Slots: the holder states what it holds (p_held) and wants more; granted what the
-- account's max leaves once every live holder is counted. Holders whose lease ran out
-- are dropped here: their slots come back.
create or replace function creative_take_slots(
    p_account text, p_holder uuid, p_held integer, p_want integer, p_max integer,
    p_lease double precision, p_wanting integer)
returns table (granted integer, others_wanting integer, holders integer)
language plpgsql as $$
declare
    used integer;
    now_ timestamptz := clock_timestamp();
begin
    insert into creative_accounts (account, tokens, refreshed)
        values (p_account, 0, now_) on conflict do nothing;
    perform 1 from creative_accounts where account = p_account for update;
    delete from creative_holders
        where account = p_account and expires < now_ and holder <> p_holder;
    select coalesce(sum(h.slots), 0) into used
        from creative_holders h where h.account = p_account and h.holder <> p_holder;
    granted := greatest(0, least(p_want, p_max - used - p_held));
    insert into creative_holders as h (account, holder, slots, wanting, expires)
        values (p_account, p_holder, p_held + granted, greatest(0, p_wanting - granted),
                now_ + make_interval(secs => p_lease))
        on conflict (account, holder) do update
        set slots = excluded.slots, wanting = excluded.wanting, expires = excluded.expires;
    select coalesce(sum(h.wanting), 0), count(*) into others_wanting, holders
        from creative_holders h where h.account = p_account and h.holder <> p_holder;
    return next;
end $$;

-- A holder's renewal (heartbeat) or give-back: it now holds p_held. Others waiting
-- for slots hear of freed ones on the account's channel.
create or replace function creative_hold(
    p_account text, p_holder uuid, p_held integer, p_lease double precision,
    p_wanting integer, p_channel text)
returns table (others_wanting integer, holders integer)
language plpgsql as $$
declare
    before integer;
    now_ timestamptz := clock_timestamp();
begin
    select h.slots into before from creative_holders h
        where h.account = p_account and h.holder = p_holder;
    insert into creative_holders as h (account, holder, slots, wanting, expires)
        values (p_account, p_holder, p_held, p_wanting, now_ + make_interval(secs => p_lease))
        on conflict (account, holder) do update
        set slots = excluded.slots, wanting = excluded.wanting, expires = excluded.expires;
    select coalesce(sum(h.wanting), 0), count(*) into others_wanting, holders
        from creative_holders h
        where h.account = p_account and h.holder <> p_holder and h.expires >= now_;
    if others_wanting > 0 and coalesce(before, 0) > p_held then
        perform pg_notify(p_channel, 'slots');
    end if;
    return next;
end $$;

-- Tokens: one bucket per account, refilled at p_rate up to p_capacity.
create or replace function creative_take_tokens(
    p_account text, p_want integer, p_rate double precision, p_capacity double precision)
returns table (granted integer, wait double precision)
language plpgsql as $$
declare
    t double precision;
    r timestamptz;
    now_ timestamptz := clock_timestamp();
begin
    insert into creative_accounts (account, tokens, refreshed)
        values (p_account, p_capacity, now_) on conflict do nothing;
    select a.tokens, a.refreshed into t, r from creative_accounts a
        where a.account = p_account for update;
    t := least(p_capacity, t + p_rate * greatest(0, extract(epoch from now_ - r)));
    granted := greatest(0, least(p_want, floor(t)::integer));
    t := t - granted;
    update creative_accounts set tokens = t, refreshed = now_ where account = p_account;
    wait := case when granted >= p_want then 0 else greatest(0, 1 - t) / p_rate end;
    return next;
end $$;

-- A holder leaving: its slots come back at once.
create or replace function creative_leave(p_account text, p_holder uuid, p_channel text)
returns void language plpgsql as $$
begin
    delete from creative_holders where account = p_account and holder = p_holder;
    perform pg_notify(p_channel, 'slots');
end $$;
"""

_V2 = """
-- Version 2: while others wait, no holder is granted more than a fair share, and one
-- refused tells the others on the account's channel ('want <holder>'); a renewal locks
-- the account row (against the expiry delete) and says whether the lease had lapsed.
drop function if exists creative_take_slots(
    text, uuid, integer, integer, integer, double precision, integer);
drop function if exists creative_hold(
    text, uuid, integer, double precision, integer, text);

-- Slots: the holder states what it holds (p_held) and wants more; granted what the
-- account's max leaves once every live holder is counted, and while others wait, no
-- more than a fair share (max / holders). Holders whose lease ran out are dropped
-- here: their slots come back.
create or replace function creative_take_slots(
    p_account text, p_holder uuid, p_held integer, p_want integer, p_max integer,
    p_lease double precision, p_wanting integer, p_channel text)
returns table (granted integer, others_wanting integer, holders integer)
language plpgsql as $$
declare
    used integer;
    now_ timestamptz := clock_timestamp();
begin
    insert into creative_accounts (account, tokens, refreshed)
        values (p_account, 0, now_) on conflict do nothing;
    perform 1 from creative_accounts where account = p_account for update;
    delete from creative_holders
        where account = p_account and expires < now_ and holder <> p_holder;
    select coalesce(sum(h.slots), 0), coalesce(sum(h.wanting), 0), count(*)
        into used, others_wanting, holders
        from creative_holders h where h.account = p_account and h.holder <> p_holder;
    granted := greatest(0, least(p_want, p_max - used - p_held));
    if others_wanting > 0 then  -- others wait: no more than a fair share
        granted := greatest(
            0, least(granted, ceil(p_max::numeric / (holders + 1))::integer - p_held));
    end if;
    insert into creative_holders as h (account, holder, slots, wanting, expires)
        values (p_account, p_holder, p_held + granted, greatest(0, p_wanting - granted),
                now_ + make_interval(secs => p_lease))
        on conflict (account, holder) do update
        set slots = excluded.slots, wanting = excluded.wanting, expires = excluded.expires;
    select coalesce(sum(h.wanting), 0), count(*) into others_wanting, holders
        from creative_holders h where h.account = p_account and h.holder <> p_holder;
    if granted < p_want then
        perform pg_notify(p_channel, 'want ' || p_holder::text);
    end if;
    return next;
end $$;

-- A holder's renewal (heartbeat) or give-back: it now holds p_held. Others waiting
-- for slots hear of freed ones on the account's channel. ``lapsed``: the holder's
-- lease had run out (its row was gone or expired) while it held slots.
create or replace function creative_hold(
    p_account text, p_holder uuid, p_held integer, p_lease double precision,
    p_wanting integer, p_channel text)
returns table (others_wanting integer, holders integer, lapsed boolean)
language plpgsql as $$
declare
    before integer;
    was timestamptz;
    now_ timestamptz := clock_timestamp();
begin
    insert into creative_accounts (account, tokens, refreshed)
        values (p_account, 0, now_) on conflict do nothing;
    perform 1 from creative_accounts where account = p_account for update;
    select h.slots, h.expires into before, was from creative_holders h
        where h.account = p_account and h.holder = p_holder;
    lapsed := p_held > 0 and (was is null or was < now_);
    insert into creative_holders as h (account, holder, slots, wanting, expires)
        values (p_account, p_holder, p_held, p_wanting, now_ + make_interval(secs => p_lease))
        on conflict (account, holder) do update
        set slots = excluded.slots, wanting = excluded.wanting, expires = excluded.expires;
    select coalesce(sum(h.wanting), 0), count(*) into others_wanting, holders
        from creative_holders h
        where h.account = p_account and h.holder <> p_holder and h.expires >= now_;
    if others_wanting > 0 and coalesce(before, 0) > p_held then
        perform pg_notify(p_channel, 'slots');
    end if;
    return next;
end $$;
"""

#: The statements that bring a database from version ``n - 1`` to ``n``.
MIGRATIONS: dict[int, str] = {1: _V1, 2: _V2}


async def ensure(conn: Any) -> tuple[bytes, bytes]:
    """Create or upgrade the schema (once, under an advisory lock); ``(salt, secret)``."""
    async with conn.transaction():
        await conn.execute("select pg_advisory_xact_lock(%s)", (_LOCK,))
        exists = await (await conn.execute("select to_regclass('creative_meta')")).fetchone()
        version = 0
        if exists is not None and exists[0] is not None:
            row = await (await conn.execute("select version from creative_meta")).fetchone()
            version = row[0] if row is not None else 0
        if version > VERSION:
            raise SchemaError(
                f"the share's schema is version {version}; this creative_client knows "
                f"up to {VERSION}: upgrade creative_client"
            )
        for step in range(version + 1, VERSION + 1):
            await conn.execute(MIGRATIONS[step])
        await conn.execute(
            "insert into creative_meta (version, salt, secret) values (%s, %s, %s) "
            "on conflict (id) do update set version = excluded.version",
            (VERSION, secrets.token_bytes(16), secrets.token_bytes(32)),
        )
        row = await (await conn.execute("select salt, secret from creative_meta")).fetchone()
    assert row is not None
    return bytes(row[0]), bytes(row[1])


def account_of(salt: bytes, provider: str, base_url: str, api_key: str) -> str:
    """The account's name in the share: provider, base URL and a salted hash of the key
    (never the key). Hex, so it also names the account's channel."""
    key = hmac.new(salt, api_key.encode(), hashlib.sha256).hexdigest()
    name = f"{provider}\n{base_url}\n{key}".encode()
    return hashlib.sha256(name).hexdigest()[:40]


def channel_of(account: str) -> str:
    """The account's LISTEN/NOTIFY channel (an identifier under 63 bytes)."""
    return f"creative_{account[:32]}"
