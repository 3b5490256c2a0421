"""A fake provider's jobs on disk, so they outlive its process (``state=PATH``).

The file is JSON lines, appended to and never rewritten: one line per job, written
whole in a single ``write`` as the job is created, so a process killed right after
a submit was answered has the job on disk, and several processes can append to one
file at once (``O_APPEND`` puts each line at the end, never over another's).
"""

from __future__ import annotations

import json
import os
import secrets
import string
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._server import FakeJob

#: Bumped if a line's shape ever changes incompatibly; lines of another version are skipped.
VERSION = 1
_TAG_ALPHABET = string.ascii_lowercase + string.digits


def run_tag() -> str:
    """A random tag for one fake's job ids (36**6, about 2e9, so two runs never meet).

    ``secrets``, not the fake's seeded RNG: two runs with the same seed must still
    get different tags, or their ids would collide in a shared file.
    """
    return "".join(secrets.choice(_TAG_ALPHABET) for _ in range(6))


class JobStore:
    """The append-only file of one provider's jobs (other providers' lines are skipped)."""

    def __init__(self, path: str | os.PathLike[str], provider: str) -> None:
        self.path = Path(path)
        self.provider = provider
        self._file: IO[bytes] | None = None
        #: Bytes read so far, up to the end of the last whole line.
        self._offset = 0

    def open(self) -> list[dict[str, Any]]:
        """Open the file for appending (created, with its folder, if missing); the jobs in it.

        Raises ``OSError`` naming the file when it cannot be read or written.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Unbuffered: each line goes out in one write(), whole, as soon as it is made.
            self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115 (closed by close())
            records = list(self.read_new())
            if self._file.tell() > self._offset:
                # A line cut short by a killed process: end it, so the next job's line
                # is not glued onto it and lost with it.
                self._file.write(b"\n")
        except OSError as exc:
            self.close()
            # OSError(errno, ...) keeps the kind (PermissionError, IsADirectoryError, ...).
            raise OSError(
                exc.errno,
                f"cannot use {self.path} as the state file of the fake {self.provider}: "
                f"{exc.strerror or exc}",
            ) from exc
        return records

    def read_new(self) -> Iterator[dict[str, Any]]:
        """The jobs appended since the last read (by any process), skipping broken lines."""
        with open(self.path, "rb") as file:
            file.seek(self._offset)
            data = file.read()
        end = data.rfind(b"\n") + 1  # a last line without its newline may still be growing
        self._offset += end
        for line in data[:end].splitlines():
            record = _parse(line, self.provider)
            if record is not None:
                yield record

    def append(self, job: FakeJob) -> None:
        """Write the job's line at the end of the file, at once."""
        assert self._file is not None, "the store is not open"
        record = {
            "v": VERSION,
            "provider": self.provider,
            "id": job.id,
            "wall_created": job.wall_created,
            "duration": job.duration,
            "fails": job.fails,
            "prompt": job.prompt,
            "body": job.body,
        }
        line = json.dumps(record, separators=(",", ":")).encode()
        view = memoryview(line + b"\n")
        while view:  # a regular file takes it all in one write; be safe anyway
            written = self._file.write(view)
            view = view[written or 0 :]

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()


def _parse(line: bytes, provider: str) -> dict[str, Any] | None:
    """One job's fields, or None for a line of another provider, version or a broken one."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not (
        isinstance(record, dict)
        and record.get("v") == VERSION
        and record.get("provider") == provider
        and isinstance(record.get("id"), str)
        and isinstance(record.get("body"), dict)
        and isinstance(record.get("prompt"), str)
        and isinstance(record.get("fails"), bool)
        and isinstance(record.get("duration"), int | float)
        and isinstance(record.get("wall_created"), int | float)
    ):
        return None
    return record
