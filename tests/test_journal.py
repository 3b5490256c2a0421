"""The batch journal on its own: rows kept across runs, one run at a time, failures said."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from creative_client._cli._journal import Journal, JournalError, Row


def fresh(path: Path, keys: list[str]) -> Journal:
    journal = Journal(path)
    journal.add((key, n) for n, key in enumerate(keys, start=1))
    return journal


@pytest.mark.parametrize("grouped", [True, False])
async def test_rows_written_while_running_are_there_when_reopened(
    tmp_path: Path, grouped: bool
) -> None:
    path = tmp_path / "j.sqlite"
    keys = [f'"id-{i}"' for i in range(500)]
    journal = fresh(path, keys)
    rows = journal.load()
    journal.start(grouped=grouped)
    for n, key in enumerate(keys):
        row = rows[key].moved("submitting")
        if n % 50 == 1:  # each waits for a commit, at most one per GROUP_WINDOW
            await journal.write_durably(row)
        else:
            journal.write(row)
        journal.write(row.moved("submitted", job_id=f"job-{n}"))
        if n % 3 == 0:
            journal.write(
                row.moved("succeeded", job_id=f"job-{n}", outputs=("http://x/1", "http://x/2"))
            )
    journal.write(rows['"id-1"'].moved("failed", error=("JobFailedError", "no luck ✗")))
    await journal.stop()
    journal.close()

    again = Journal(path)
    try:
        back = again.load()
    finally:
        again.close()
    assert back == journal.current
    assert back['"id-0"'] == Row(
        key='"id-0"',
        line=1,
        state="succeeded",
        job_id="job-0",
        outputs=("http://x/1", "http://x/2"),
    )
    assert back['"id-2"'].state == "submitted" and back['"id-2"'].outputs == ()
    assert back['"id-1"'].error == "no luck ✗" and back['"id-1"'].job_id == "job-1"


def test_add_keeps_the_state_of_rows_already_there(tmp_path: Path) -> None:
    journal = fresh(tmp_path / "j", ['"a"', '"b"'])
    journal.move("pending", "uncertain", error_type="SubmissionUncertainError", error="?")
    journal.add([('"b"', 7), ('"c"', 8)])
    rows = journal.load()
    journal.close()
    assert {key: row.state for key, row in rows.items()} == {
        '"a"': "uncertain",
        '"b"': "uncertain",
        '"c"': "pending",
    }
    assert rows['"b"'].line == 7


def test_a_second_run_on_the_same_journal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j"
    journal = fresh(path, ['"a"'])
    try:
        with pytest.raises(JournalError, match="in use by another run"):
            Journal(path)
        # Another process, too (the lock is SQLite's, on the file).
        code = f"from creative_client._cli._journal import Journal; Journal({str(path)!r})"
        other = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
        )
        assert other.returncode != 0 and "in use by another run" in other.stderr
    finally:
        journal.close()
    Journal(path).close()  # free again once closed


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are my notes, not a database\n" * 100)
    with pytest.raises(JournalError, match="is not a journal"):
        Journal(path)
    assert path.read_bytes().startswith(b"these are my notes")


async def test_a_failed_write_is_an_error_for_whoever_waits_and_at_stop(tmp_path: Path) -> None:
    path = tmp_path / "j"
    fresh(path, ['"ok"', '"boom"']).close()
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TRIGGER fail BEFORE INSERT ON log WHEN json_extract(new.row, '$[6]') = '\"boom\"' "
        "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
    )
    db.commit()
    db.close()
    journal = Journal(path)
    rows = journal.load()
    journal.start()
    await journal.write_durably(rows['"ok"'].moved("submitting"))
    with pytest.raises(JournalError, match="disk on fire"):
        await journal.write_durably(rows['"boom"'].moved("submitting"))
    with pytest.raises(JournalError, match="disk on fire"):
        await journal.stop()
    journal.close()
