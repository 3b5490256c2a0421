"""The CLI's own files: checked before anything is paid for, written whole, with the umask."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path


class FileError(Exception):
    """One of our own files cannot be written; the message names it."""


def describe(exc: OSError) -> str:
    """An OSError as ``strerror`` (the path is named by the caller, once)."""
    return exc.strerror or str(exc)


def check_writable_folder(folder: Path, what: str) -> None:
    """Create ``folder`` if need be and a probe file in it, then remove the probe.

    Trying is the only honest check: ``os.access`` says yes to root whatever the
    file's mode, and knows nothing of read-only mounts or immutable folders.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".creative-probe-{os.getpid()}-{secrets.token_hex(4)}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise FileError(f"cannot write {what} in {str(folder)!r}: {describe(exc)}") from None


def check_writable_file(path: Path, what: str) -> None:
    """``path`` can be made or replaced: its folder takes files, and it is no folder."""
    if path.is_dir():
        raise FileError(f"cannot write {what} {str(path)!r}: it is a folder")
    check_writable_folder(path.parent, what)


def current_umask() -> int:
    """The process's umask, without setting it (setting it to read it races other threads)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, synced and
    renamed into place: a reader sees the old file or the new one, never a part.

    The file gets the mode any new file would (0666 less the umask): ``mkstemp``
    makes it 0600 whatever the umask. Raises ``FileError`` naming ``path``.
    """
    temp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o666 & ~current_umask())
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except OSError as exc:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        raise FileError(f"cannot write {str(path)!r}: {describe(exc)}") from None
    except BaseException:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        raise
