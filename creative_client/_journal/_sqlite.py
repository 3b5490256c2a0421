"""The SQLite journal backend: ``SqliteJournal``, one SQLite row per input id, so a batch
survives a crash or Ctrl-C without paying twice.

It implements ``JournalBackend`` (``_model.py``, with the row states and
``Row``); ``_journal.py`` makes it the ``Journal`` a run uses. While a batch runs,
every write goes through one thread of its own, ``Writer`` (``_writer.py``),
in group commits. The database is in WAL mode with ``synchronous=FULL`` (a commit is
on disk when it returns) and ``locking_mode=EXCLUSIVE``, so a second run on the same
journal is refused rather than allowed to submit the same rows again.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ._model import JournalError, Row, State
from ._writer import GROUPED, Writer, write_failed

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
    error TEXT,
    provider TEXT                   -- who holds the job (version 2; NULL before)
);
-- What a run writes: each row's new states, appended (cheaper than updating in place:
-- a group's commit writes the last pages, not a page per row). The next open folds
-- the latest of each into "rows" and empties it.
CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY,
    row TEXT NOT NULL   -- JSON: [state, job_id, outputs, files, error_type, error, id, provider]
);
"""
#: 2: rows say which provider holds their job (a batch with fallback providers).
_VERSION = "2"
_UPDATE = (
    "UPDATE rows SET state = ?, job_id = ?, outputs = ?, files = ?, error_type = ?, error = ?,"
    " provider = ? WHERE id = ?"
)


class SqliteJournal:
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
            self._check_version()
            self._upgrade()
            self._fold_log()
        except JournalError:
            self._db.close()
            raise
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
        self._writer: Writer | None = None
        #: Every row's latest state, as read by ``load`` and written since.
        self.current: dict[str, Row] = {}

    def _check_version(self) -> None:
        """Refuse a journal written by a newer creative_client: its rows may say what
        this code cannot read, and its run must not be resumed from what it reads."""
        found = self._db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        if found is None:
            return
        try:
            newer = int(found[0]) > int(_VERSION)
        except ValueError:
            newer = True
        if newer:
            raise JournalError(
                f"the journal {str(self.path)!r} is version {found[0]}, newer than this "
                f"creative_client knows (version {_VERSION}): use a newer creative_client"
            )

    def _upgrade(self) -> None:
        """A journal of version 1 gets the ``provider`` column (NULL: the meta's)."""
        columns = {name for _, name, *_ in self._db.execute("PRAGMA table_info(rows)")}
        if "provider" not in columns:
            with self._transaction():
                self._db.execute("ALTER TABLE rows ADD COLUMN provider TEXT")

    def _fold_log(self) -> None:
        """Apply the states an earlier run appended to ``rows``, and empty the log."""
        latest: dict[object, list[Any]] = {}
        for (text,) in self._db.execute("SELECT row FROM log ORDER BY seq"):
            values = json.loads(text)
            latest[values[6]] = values
        if not latest:
            return
        with self._transaction():
            self._db.executemany(
                _UPDATE,
                [
                    (*values[:2], json.dumps(values[2]), json.dumps(values[3]), *values[4:6],
                     values[7] if len(values) > 7 else None, values[6])  # version 1: 7 values
                    for values in latest.values()
                ],
            )  # fmt: skip
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
        """Move every row in state ``old`` to ``new``; how many moved. A row made
        pending again forgets the provider it was sent to (it is sent afresh)."""
        forget = ", provider = NULL" if new == "pending" else ""
        with self._transaction():
            cursor = self._db.execute(
                f"UPDATE rows SET state = ?, error_type = ?, error = ?{forget} WHERE state = ?",
                (new, error_type, error, old),
            )
        return cursor.rowcount

    def retry_failed(self, error_type: str) -> int:
        """Move the failed rows whose error is ``error_type`` back to pending, their job
        forgotten (a new one will be made); how many moved."""
        with self._transaction():
            cursor = self._db.execute(
                "UPDATE rows SET state = 'pending', job_id = NULL, outputs = '[]', files = '[]',"
                " error_type = NULL, error = NULL, provider = NULL"
                " WHERE state = 'failed' AND error_type = ?",
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
        self._writer = Writer(self._db, asyncio.get_running_loop(), grouped=grouped, path=self.path)
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
                raise write_failed(writer.failure, self.path)

    def close(self) -> None:
        """Release the file (and its lock). Call after ``stop``."""
        assert self._writer is None, "stop() the writer first"
        self._db.close()

    def _transaction(self) -> sqlite3.Connection:
        # With isolation_level=None the connection is in autocommit mode; "with" on it
        # does not begin a transaction, so begin one here.
        self._db.execute("BEGIN IMMEDIATE")
        return self._db


def _read_rows(db: sqlite3.Connection) -> Iterator[Row]:
    for key, line, state, job_id, outputs, files, error_type, error, provider in db.execute(
        "SELECT id, line, state, job_id, outputs, files, error_type, error, provider FROM rows"
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
            provider=provider,
        )


def _strings(text: str) -> tuple[str, ...]:
    return () if text == "[]" else tuple(json.loads(text))
