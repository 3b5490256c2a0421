"""PostgresServer: a real PostgreSQL server on loopback, started by the tests themselves."""

from __future__ import annotations

import asyncio
import os
import pwd
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import pytest

from creative_client.testing import PostgresServer


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


async def connect(url: str) -> psycopg.AsyncConnection[tuple[object, ...]]:
    return await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=5)


async def test_select_one(pg: PostgresServer) -> None:
    async with await connect(pg.url) as conn:
        cursor = await conn.execute("select 1, current_database(), current_user")
        assert await cursor.fetchone() == (1, "test", "postgres")


async def test_listens_on_loopback_only(pg: PostgresServer) -> None:
    url = urlsplit(pg.url)
    assert (url.hostname, url.port, url.path) == ("127.0.0.1", pg.port, "/test")
    async with await connect(pg.url) as conn:
        cursor = await conn.execute("show listen_addresses")
        assert await cursor.fetchone() == ("127.0.0.1",)
        cursor = await conn.execute("show unix_socket_directories")
        assert await cursor.fetchone() == (str(pg.socket_dir),)
    assert (pg.socket_dir / f".s.PGSQL.{pg.port}").exists()
    if os.geteuid() == 0:  # PostgreSQL refuses root: it runs as the postgres user
        assert pg.data_dir.stat().st_uid == pwd.getpwnam("postgres").pw_uid


def test_refuses_other_loopback_addresses(pg: PostgresServer) -> None:
    # All of 127/8 reaches this machine on Linux; a server bound to 127.0.0.1 alone
    # refuses 127.0.0.2.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", pg.port), timeout=5).close()


async def test_restart_keeps_the_port(pg: PostgresServer) -> None:
    port = pg.port
    async with await connect(pg.url) as before:
        await asyncio.to_thread(pg.restart)
        with pytest.raises(psycopg.OperationalError):
            await before.execute("select 1")
    assert pg.port == port
    async with await connect(pg.url) as after:
        cursor = await after.execute("select 2")
        assert await cursor.fetchone() == (2,)


async def test_listen_notify_round_trip(pg: PostgresServer) -> None:
    async with await connect(pg.url) as listener, await connect(pg.url) as sender:
        await listener.execute("listen budget")
        await sender.execute("select pg_notify('budget', 'spent 3')")
        got = [n async for n in listener.notifies(timeout=10, stop_after=1)]
    assert [(n.channel, n.payload) for n in got] == [("budget", "spent 3")]


async def test_stop_removes_the_folder() -> None:
    server = await asyncio.to_thread(PostgresServer(dbname="other").start)
    url, root = server.url, server.socket_dir
    async with await connect(url) as conn:
        assert (await (await conn.execute("select current_database()")).fetchone()) == ("other",)
    await asyncio.to_thread(server.stop)
    assert not root.exists()
    with pytest.raises(psycopg.OperationalError):
        await connect(url)
    server.stop()  # twice is fine


def test_stops_when_its_process_is_killed() -> None:
    code = (
        "import time\n"
        "from creative_client.testing import PostgresServer\n"
        "server = PostgresServer().start()\n"
        "print(server.port, server.socket_dir, flush=True)\n"
        "time.sleep(60)\n"
    )
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        port, root = proc.stdout.readline().split()
        socket.create_connection(("127.0.0.1", int(port)), timeout=5).close()
        proc.kill()  # SIGKILL: no atexit; the watchdog sees its pipe close
    deadline = time.monotonic() + 20
    while os.path.exists(root) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(root)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(port)), timeout=5).close()
