"""The batch journal, as the rest of the CLI imports it: one row per input id, so a batch
survives a crash or Ctrl-C without paying twice.

What lives where (the journal itself is the library's, ``creative_client/_journal/``):

- ``creative_client/_journal/_model.py``: the row states (``State``, ``FINISHED``),
  ``Row``, ``JournalError`` and ``JournalBackend``, the protocol a storage backend
  implements (``_setup.py``, ``_batch.py`` and ``_batch_row.py`` hold a journal as that).
- ``creative_client/_journal/_sqlite.py``: ``SqliteJournal``, the SQLite backend
  (schema, locking, the log folded in at open); ``_writer.py``: its writer thread.
- ``creative_client/_pg/_journal.py``: ``PgJournal``, the PostgreSQL backend for many
  workers (``_fleet.py`` runs a worker).
- here: ``Journal``, the backend a run on one machine opens, and ``peek``, a journal as
  the last run left it, for ``creative status`` (``_status.py``).

OUT.jsonl is made from the rows by ``_out.py``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .._journal._model import FINISHED, JournalBackend, JournalError, Row, State
from .._journal._sqlite import SqliteJournal
from .._journal._writer import GROUP_WINDOW, GROUPED

__all__ = [
    "FINISHED",
    "GROUPED",
    "GROUP_WINDOW",
    "Journal",
    "JournalBackend",
    "JournalError",
    "Row",
    "SqliteJournal",
    "State",
    "peek",
]

#: The backend a run opens (and ``creative status`` reads).
Journal = SqliteJournal


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
