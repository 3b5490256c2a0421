"""The SQLite journal's writer thread: while a batch runs, every row state goes through
it, off the event loop.

It commits what has queued up in one transaction and one statement (a group commit, at
most one per ``GROUP_WINDOW``): the event loop only queues, and a submit awaits only
the commit of its own ``submitting`` row. The states are appended to the ``log``
table that ``SqliteJournal`` (``_sqlite.py``) folds into ``rows`` when it
next opens the journal.
"""

from __future__ import annotations

import asyncio
import json
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from ._model import JournalError, Row

#: A group of row states appended in one statement (one bind and one step for the lot,
#: where executemany would take the GIL back and forth for every row).
_APPEND_GROUP = "INSERT INTO log (row) SELECT value FROM json_each(?)"
_APPEND_ONE = "INSERT INTO log (row) VALUES (?)"
#: The shortest time between two commits while a batch runs (seconds).
GROUP_WINDOW = 0.02
#: json_each is built into every SQLite from 3.38; older ones append row by row.
GROUPED = sqlite3.sqlite_version_info >= (3, 38, 0)


class Writer(threading.Thread):
    """Commits queued row states in groups, off the event loop."""

    def __init__(
        self, db: sqlite3.Connection, loop: asyncio.AbstractEventLoop, *, grouped: bool, path: Path
    ) -> None:
        super().__init__(name="creative-journal", daemon=True)
        self.path = path
        self._db = db
        self._loop = loop
        self._grouped = grouped
        self._queue: queue.SimpleQueue[tuple[Row | None, asyncio.Future[None] | None, bool]] = (
            queue.SimpleQueue()
        )
        self.failure: sqlite3.Error | None = None

    def put(
        self, row: Row | None, done: asyncio.Future[None] | None, *, last: bool = False
    ) -> None:
        self._queue.put((row, done, last))

    def run(self) -> None:
        last = False
        quiet_until = 0.0
        while not last:
            group = [self._queue.get()]
            # At most one commit per GROUP_WINDOW: under load, what arrives meanwhile
            # shares it (each commit writes and syncs whole pages, whatever it holds).
            pause = quiet_until - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            quiet_until = time.monotonic() + GROUP_WINDOW
            while True:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            # A row written twice in a group (its job id, then its result) is written once.
            rows = {row.key: row for row, _, _ in group if row is not None}
            waiters = [done for _, done, _ in group if done is not None]
            last = any(stop for _, _, stop in group)
            if rows and self.failure is None:
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                    self._commit(rows.values())
                    self._db.execute("COMMIT")
                except sqlite3.Error as exc:
                    self.failure = exc
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
            if waiters:
                self._loop.call_soon_threadsafe(_settle, waiters, self.failure, self.path)

    def _commit(self, rows: Iterable[Row]) -> None:
        if self._grouped:
            self._db.execute(_APPEND_GROUP, (json.dumps([row.values() for row in rows]),))
        else:
            self._db.executemany(_APPEND_ONE, [(json.dumps(row.values()),) for row in rows])


def _settle(waiters: list[asyncio.Future[None]], failure: sqlite3.Error | None, path: Path) -> None:
    for done in waiters:
        if done.done():  # its writer was cancelled; the write went in all the same
            continue
        if failure is None:
            done.set_result(None)
        else:
            done.set_exception(write_failed(failure, path))


def write_failed(failure: sqlite3.Error, path: Path) -> JournalError:
    return JournalError(f"writing the journal {str(path)!r} failed: {failure}")
