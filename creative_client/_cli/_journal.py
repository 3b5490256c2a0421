"""The batch journal, as the rest of the CLI imports it: one row per input id, so a batch
survives a crash or Ctrl-C without paying twice.

What lives where:

- ``_journal_model.py``: the row states (``State``, ``FINISHED``), ``Row``,
  ``JournalError`` and ``JournalBackend``, the protocol a storage backend implements
  (``_setup.py``, ``_batch.py`` and ``_batch_row.py`` hold a journal as that).
- ``_journal_sqlite.py``: ``SqliteJournal``, the SQLite backend (schema, locking, the
  log folded in at open); ``_journal_writer.py``: its group-commit writer thread.
- here: ``Journal``, the backend a run opens, and ``peek``, a journal as the last run
  left it, for ``creative status`` (``_status.py``).

OUT.jsonl is made from the rows by ``_out.py``. SQLite still shows outside the
backend in three places a second backend must meet: ``peek`` and ``open_journal``
(``_setup.py``) turn ``sqlite3.Error`` into ``JournalError``, and ``_status.py`` knows
a journal by the SQLite file header.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ._journal_model import FINISHED, JournalBackend, JournalError, Row, State
from ._journal_sqlite import SqliteJournal
from ._journal_writer import GROUP_WINDOW, GROUPED

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
