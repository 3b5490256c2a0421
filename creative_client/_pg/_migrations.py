"""The SQL of each schema version, as it was shipped: version ``n`` brings a database
from ``n - 1`` to ``n`` (``MIGRATIONS`` in ``creative_client/_pg/_schema.py``). A
version, once shipped, never changes: a change is a new version."""

V1 = """
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

V2 = """
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

V3 = """
-- Version 3: the batch journal (``_journal.py``), for many workers on one batch. A row
-- is held by ``worker`` until ``lease``; rows in a finished state, and pending rows
-- nobody claimed, have no lease.
create table if not exists creative_batches (
    name text primary key,
    meta jsonb not null default '{}',
    created timestamptz not null default now()
);
create table if not exists creative_rows (
    batch text not null references creative_batches (name),
    key text not null,
    line integer not null,
    request jsonb not null,
    state text not null check (state in
        ('pending', 'submitting', 'submitted', 'succeeded', 'failed', 'uncertain')),
    job_id text,
    outputs jsonb not null default '[]',
    files jsonb not null default '[]',
    error_type text,
    error text,
    worker text,
    lease timestamptz,
    primary key (batch, key)
);
create index if not exists creative_rows_claim on creative_rows (batch, state, line);
-- The rows some worker holds (a lease): renewals and the count of rows held elsewhere.
create index if not exists creative_rows_held on creative_rows (batch, worker)
    where lease is not null;

-- A worker's claim of up to p_n rows, in one call. First, the submits whose worker
-- was lost (its lease ran out) become uncertain: they are never sent again here. Then
-- the submitted rows nobody holds are taken (reading a job again is safe), then the
-- pending ones, each in line order; rows another call has locked are skipped. (Rows
-- are updated by primary key, "key = any(array(...))": whatever the statistics say,
-- never a join over the whole batch.)
create or replace function creative_claim(
    p_batch text, p_worker text, p_n integer, p_lease double precision)
returns table (key text, line integer, state text, job_id text, outputs jsonb,
               files jsonb, error_type text, error text, request jsonb)
language plpgsql as $$
#variable_conflict use_column
declare
    now_ timestamptz := clock_timestamp();
    until_ timestamptz := now_ + make_interval(secs => p_lease);
    taken integer;
begin
    update creative_rows r
        set state = 'uncertain', lease = null, error_type = 'SubmissionUncertainError',
            error = 'the worker ' || coalesce(r.worker, '(none)') || ' was lost while '
                || 'this submit was in flight; it may or may not have created a job'
        where r.batch = p_batch and r.key = any(array(
            select s.key from creative_rows s
            where s.batch = p_batch and s.state = 'submitting'
                and (s.lease is null or s.lease < now_)
            for update skip locked));
    return query
    update creative_rows r set worker = p_worker, lease = until_
        where r.batch = p_batch and r.key = any(array(
            select s.key from creative_rows s
            where s.batch = p_batch and s.state = 'submitted'
                and (s.lease is null or s.lease < now_)
            order by s.line limit p_n
            for update skip locked))
        returning r.key, r.line, r.state, r.job_id, r.outputs, r.files, r.error_type,
                  r.error, r.request;
    get diagnostics taken = row_count;
    if taken >= p_n then
        return;
    end if;
    return query
    update creative_rows r set worker = p_worker, lease = until_
        where r.batch = p_batch and r.key = any(array(
            select s.key from creative_rows s
            where s.batch = p_batch and s.state = 'pending'
                and (s.lease is null or s.lease < now_)
            order by s.line limit p_n - taken
            for update skip locked))
        returning r.key, r.line, r.state, r.job_id, r.outputs, r.files, r.error_type,
                  r.error, r.request;
end $$;

-- A worker's group of row writes (p_rows: a JSON list of rows), in one call; the keys
-- NOT written. A row is written when this worker holds it, when nobody does, or when
-- it is pending and its holder's lease ran out; never over another live worker's
-- row, nor over a row another worker took over (it finishes that row itself).
-- Unfinished rows are held for p_lease seconds; pending ones (put back) and finished
-- ones are let go. Row by row, by primary key, in key order: two writers never
-- deadlock.
create or replace function creative_write_rows(
    p_batch text, p_worker text, p_lease double precision, p_rows jsonb)
returns text[]
language plpgsql as $$
#variable_conflict use_column
declare
    now_ timestamptz := clock_timestamp();
    v record;
    skipped text[] := '{}';
begin
    for v in
        select * from jsonb_to_recordset(p_rows) as e(
            key text, state text, job_id text, outputs jsonb, files jsonb,
            error_type text, error text)
        order by e.key
    loop
        update creative_rows r
            set state = v.state, job_id = v.job_id, outputs = v.outputs, files = v.files,
                error_type = v.error_type, error = v.error,
                worker = case when v.state = 'pending' then null else p_worker end,
                lease = case when v.state in ('submitting', 'submitted')
                    then now_ + make_interval(secs => p_lease) end
            where r.batch = p_batch and r.key = v.key
                and (r.worker is null or r.worker = p_worker
                     or (r.state = 'pending' and (r.lease is null or r.lease < now_)));
        if not found then
            skipped := skipped || v.key;
        end if;
    end loop;
    return skipped;
end $$;
"""

#: The statements that bring a database from version ``n - 1`` to ``n``.
