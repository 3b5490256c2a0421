"""The batch journal: one SQLite row per input id, so a batch survives a crash or Ctrl-C
without paying twice.

A row is ``pending`` until its submit is about to leave, ``submitting`` (committed
*before* the POST is sent), ``submitted`` with the job id the provider answered, then
``succeeded``, ``failed`` or ``uncertain`` (a submit whose outcome is unknown).

While a batch runs, every write goes through one thread of its own that commits what
has queued up in one transaction and one statement (a group commit, at most one per
``GROUP_WINDOW``): the event loop only queues, and a submit awaits only the commit of
its own ``submitting`` row. The database is in WAL mode with ``synchronous=FULL`` (a
commit is on disk when it returns) and ``locking_mode=EXCLUSIVE``, so a second run on
the same journal is refused rather than allowed to submit the same rows again.
"""

from __future__ import annotations

import asyncio
import json
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

import attrs

State = Literal["pending", "submitting", "submitted", "succeeded", "failed", "uncertain"]
#: Rows that need nothing more. A failed row is final: its job failed, or its submit was
#: refused. A row whose wait gave up (a read error, a timeout) stays "submitted", with
#: the error, so that the next run reads its job again rather than paying for another.
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "uncertain"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    id TEXT PRIMARY KEY,            -- the input line's id, as JSON
    line INTEGER NOT NULL,          -- its line number in the input (1-based)
    state TEXT NOT NULL CHECK (state IN
        ('pending', 'submitting', 'submitted', 'succeeded', 'failed', 'uncertain')),
    job_id TEXT,
    outputs TEXT NOT NULL DEFAULT '[]',   -- JSON list of URLs
    files TEXT NOT NULL DEFAULT '[]',     -- JSON list of paths
    error_type TEXT,
    error TEXT
);
-- What a run writes: each row's new states, appended (cheaper than updating in place:
-- a group's commit writes the last pages, not a page per row). The next open folds
-- the latest of each into "rows" and empties it.
CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY,
    row TEXT NOT NULL               -- JSON: [state, job_id, outputs, files, error_type, error, id]
);
"""
_VERSION = "1"
#: A group of row states appended in one statement (one bind and one step for the lot,
#: where executemany would take the GIL back and forth for every row).
_APPEND_GROUP = "INSERT INTO log (row) SELECT value FROM json_each(?)"
_APPEND_ONE = "INSERT INTO log (row) VALUES (?)"
_UPDATE = (
    "UPDATE rows SET state = ?, job_id = ?, outputs = ?, files = ?, error_type = ?, error = ?"
    " WHERE id = ?"
)
#: The shortest time between two commits while a batch runs (seconds).
GROUP_WINDOW = 0.02
#: json_each is built into every SQLite from 3.38; older ones append row by row.
GROUPED = sqlite3.sqlite_version_info >= (3, 38, 0)


class JournalError(Exception):
    """The journal cannot be used: locked by another run, unreadable, or a write failed."""


@attrs.frozen(kw_only=True)
class Row:
    """One input id's state."""

    key: str
    line: int
    state: State = "pending"
    job_id: str | None = None
    outputs: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    error_type: str | None = None
    error: str | None = None

    def moved(
        self,
        state: State,
        *,
        job_id: str | None = None,
        outputs: tuple[str, ...] | None = None,
        files: tuple[str, ...] | None = None,
        error: tuple[str, str] | None = None,
    ) -> Row:
        """This row in ``state``: the job id, outputs and files kept unless given, the
        error (type, message) replaced (by none unless given)."""
        return Row(
            key=self.key,
            line=self.line,
            state=state,
            job_id=self.job_id if job_id is None else job_id,
            outputs=self.outputs if outputs is None else outputs,
            files=self.files if files is None else files,
            error_type=None if error is None else error[0],
            error=None if error is None else error[1],
        )

    def values(self) -> tuple[object, ...]:
        return (
            self.state,
            self.job_id,
            self.outputs,
            self.files,
            self.error_type,
            self.error,
            self.key,
        )


class Journal:
    """The journal at ``path``, opened (and created if need be) for one run.

    Setting up (``meta``, ``add``, ``move``, ``load``) is synchronous, before the batch
    starts; while it runs (after ``start``), ``write`` queues a row and
    ``write_durably`` waits for its commit. ``stop`` commits what is queued; ``close``
    releases the file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, timeout=0.0, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"cannot open the journal {str(self.path)!r}: {exc}") from None
        try:
            self._db.execute("PRAGMA locking_mode = EXCLUSIVE")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            # The first write takes the exclusive lock, held until close().
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executescript(_SCHEMA)  # commits
            self._fold_log()
        except sqlite3.OperationalError as exc:
            self._db.close()
            if "locked" in str(exc):
                raise JournalError(
                    f"the journal {str(self.path)!r} is in use by another run"
                ) from None
            raise JournalError(f"cannot use the journal {str(self.path)!r}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise JournalError(f"{str(self.path)!r} is not a journal: {exc}") from None
        self._writer: _Writer | None = None
        #: Every row's latest state, as read by ``load`` and written since.
        self.current: dict[str, Row] = {}

    def _fold_log(self) -> None:
        """Apply the states an earlier run appended to ``rows``, and empty the log."""
        latest: dict[object, list[object]] = {}
        for (text,) in self._db.execute("SELECT row FROM log ORDER BY seq"):
            values = json.loads(text)
            latest[values[6]] = values
        if not latest:
            return
        with self._transaction():
            self._db.executemany(
                _UPDATE,
                [
                    (state, job_id, json.dumps(outputs), json.dumps(files), kind, error, key)
                    for state, job_id, outputs, files, kind, error, key in latest.values()
                ],
            )
            self._db.execute("DELETE FROM log")

    # -- before the batch ------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    def set_meta(self, **values: str) -> None:
        with self._transaction():
            self._db.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [("version", _VERSION), *values.items()],
            )

    def add(self, entries: Iterable[tuple[str, int]]) -> None:
        """Add ``(key, line)`` rows as pending; keys already there keep their state."""
        with self._transaction():
            self._db.executemany(
                "INSERT INTO rows (id, line, state) VALUES (?, ?, 'pending')"
                " ON CONFLICT (id) DO UPDATE SET line = excluded.line",
                entries,
            )

    def move(self, old: State, new: State, *, error_type: str | None, error: str | None) -> int:
        """Move every row in state ``old`` to ``new``; how many moved."""
        with self._transaction():
            cursor = self._db.execute(
                "UPDATE rows SET state = ?, error_type = ?, error = ? WHERE state = ?",
                (new, error_type, error, old),
            )
        return cursor.rowcount

    def retry_failed(self, error_type: str) -> int:
        """Move the failed rows whose error is ``error_type`` back to pending, their job
        forgotten (a new one will be made); how many moved."""
        with self._transaction():
            cursor = self._db.execute(
                "UPDATE rows SET state = 'pending', job_id = NULL, outputs = '[]', files = '[]',"
                " error_type = NULL, error = NULL WHERE state = 'failed' AND error_type = ?",
                (error_type,),
            )
        return cursor.rowcount

    def load(self) -> dict[str, Row]:
        """Read every row; ``current`` from now on."""
        self.current = {row.key: row for row in self._rows()}
        return self.current

    def _rows(self) -> Iterator[Row]:
        return _read_rows(self._db)

    # -- while the batch runs ----------------------------------------------------------

    def start(self, *, grouped: bool = GROUPED) -> None:
        """Hand the database to the writer thread; call from the running loop.
        ``grouped=False`` writes a group row by row, as with SQLite before 3.38."""
        self._writer = _Writer(
            self._db, asyncio.get_running_loop(), grouped=grouped, path=self.path
        )
        self._writer.start()

    def write(self, row: Row) -> None:
        """Queue ``row``'s new state; it is committed with the next group."""
        assert self._writer is not None
        self.current[row.key] = row
        self._writer.put(row, None)

    async def write_durably(self, row: Row) -> None:
        """Queue ``row``'s new state and return once it is committed (``JournalError``
        if it could not be)."""
        assert self._writer is not None
        done = asyncio.get_running_loop().create_future()
        before = self.current.get(row.key)
        self.current[row.key] = row
        self._writer.put(row, done)
        try:
            await done
        except JournalError:
            if before is not None and self.current.get(row.key) is row:
                self.current[row.key] = before  # not on disk, so not so (nothing was sent)
            raise

    async def stop(self) -> None:
        """Commit what is queued and take the database back from the writer thread."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.put(None, None, last=True)
            await asyncio.to_thread(writer.join)
            if writer.failure is not None:
                raise _write_failed(writer.failure, self.path)

    def close(self) -> None:
        """Release the file (and its lock). Call after ``stop``."""
        assert self._writer is None, "stop() the writer first"
        self._db.close()

    def _transaction(self) -> sqlite3.Connection:
        # With isolation_level=None the connection is in autocommit mode; "with" on it
        # does not begin a transaction, so begin one here.
        self._db.execute("BEGIN IMMEDIATE")
        return self._db


class _Writer(threading.Thread):
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


def _read_rows(db: sqlite3.Connection) -> Iterator[Row]:
    for key, line, state, job_id, outputs, files, error_type, error in db.execute(
        "SELECT id, line, state, job_id, outputs, files, error_type, error FROM rows"
    ):
        yield Row(
            key=key,
            line=line,
            state=state,
            job_id=job_id,
            outputs=_strings(outputs),
            files=_strings(files),
            error_type=error_type,
            error=error,
        )


def peek(path: Path) -> tuple[dict[str, str], list[Row]]:
    """A journal's meta and rows (in input order), as the last run left them.

    Opened as a run opens it (a read-only connection would leave WAL side files
    behind, and could not see what a killed run appended but did not fold)."""
    journal = Journal(path)
    try:
        return journal.meta(), sorted(journal.load().values(), key=lambda row: row.line)
    except sqlite3.Error as exc:
        raise JournalError(f"cannot read the journal {str(path)!r}: {exc}") from None
    finally:
        journal.close()


def _strings(text: str) -> tuple[str, ...]:
    return () if text == "[]" else tuple(json.loads(text))


def _settle(waiters: list[asyncio.Future[None]], failure: sqlite3.Error | None, path: Path) -> None:
    for done in waiters:
        if done.done():  # its writer was cancelled; the write went in all the same
            continue
        if failure is None:
            done.set_result(None)
        else:
            done.set_exception(_write_failed(failure, path))


def _write_failed(failure: sqlite3.Error, path: Path) -> JournalError:
    return JournalError(f"writing the journal {str(path)!r} failed: {failure}")
