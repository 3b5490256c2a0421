"""A throwaway PostgreSQL server on loopback, for tests and benchmarks.

::

    with PostgresServer() as pg:        # initdb into a fresh temporary folder, then start
        run_something_against(pg.url)   # postgresql://postgres@127.0.0.1:PORT/test

The server listens on 127.0.0.1 only, on a port picked at run time, with its Unix
socket in its own temporary folder; durability is off (``fsync``, ``full_page_writes``,
``synchronous_commit``), so it is fast and good for nothing but tests. ``restart()``
keeps the port (to test reconnects); ``stop()`` shuts it down and removes the folder.

The binaries come from ``pg_config --bindir``, else the highest version under
``/usr/lib/postgresql/*/bin``, else wherever ``initdb`` on PATH points; none of them is
a ``RuntimeError`` saying to ``apt-get install postgresql``. PostgreSQL refuses to run
as root, so as root the server runs as the OS user ``os_user`` (``postgres``, which
Debian's package creates) through ``runuser`` (or ``su``), and the folder is theirs.

The server is stopped and its folder removed even if this process dies: ``stop()`` is
registered with ``atexit`` (a normal exit, an unhandled exception), and a watchdog
process holding a pipe from this one does it when the pipe closes (SIGKILL included).
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

HOST = "127.0.0.1"
_TOOLS = ("initdb", "pg_ctl", "postgres", "pg_isready", "createdb")
_INSTALL = "install PostgreSQL: apt-get install postgresql (or put pg_config on PATH)"
_SETTINGS = {
    "listen_addresses": HOST,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}
#: Run by the watchdog when this process's end of its stdin closes: stop, then remove.
_WATCHDOG = 'read line; "$0" stop -D "$1" -m fast -t 20; rm -rf "$2"'


def find_bindir() -> Path:
    """The folder with PostgreSQL's server binaries (``initdb``, ``pg_ctl``, ...)."""
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    versions.sort(key=lambda p: [int(n) for n in Path(p).parent.name.split(".") if n.isdigit()])
    candidates += [Path(p) for p in reversed(versions)]
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).resolve().parent)
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in _TOOLS):
            return bindir
    raise RuntimeError(f"no PostgreSQL server binaries ({', '.join(_TOOLS)}) found; {_INSTALL}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """A PostgreSQL server on 127.0.0.1 in a temporary folder; see the module docstring.

    ``user`` is the superuser (trust auth, no password), ``dbname`` the database made
    at start, ``base_dir`` where the temporary folder goes (default: the system's),
    ``os_user`` whom the server runs as when this process is root.
    """

    def __init__(
        self,
        *,
        user: str = "postgres",
        dbname: str = "test",
        base_dir: str | os.PathLike[str] | None = None,
        os_user: str = "postgres",
        timeout: float = 30.0,
    ) -> None:
        self.user, self.dbname, self.os_user, self.timeout = user, dbname, os_user, timeout
        self._base_dir = base_dir
        self._root: Path | None = None
        self._port: int | None = None
        self._bindir = Path()
        self._watchdog: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the PostgreSQL server is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@{HOST}:{self.port}/{self.dbname}"

    @property
    def socket_dir(self) -> Path:
        """The temporary folder: the Unix socket's, and the data folder's parent."""
        if self._root is None:
            raise RuntimeError("the PostgreSQL server is not started")
        return self._root

    @property
    def data_dir(self) -> Path:
        return self.socket_dir / "data"

    def start(self) -> Self:
        """initdb, start on a free port, wait until it answers, create ``dbname``."""
        if self._root is not None:
            raise RuntimeError("the PostgreSQL server is already started")
        self._bindir = find_bindir()
        self._root = Path(tempfile.mkdtemp(prefix="pg-", dir=self._base_dir))
        atexit.register(self.stop)
        try:
            self._give_folder()
            self._watch()
            self._run(["initdb", "-D", str(self.data_dir), "-U", self.user, "--auth=trust",
                       "--encoding=UTF8", "--locale=C", "--no-sync"])  # fmt: skip
            settings = {**_SETTINGS, "unix_socket_directories": str(self._root)}
            with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
                conf.writelines(f"{key} = '{value}'\n" for key, value in settings.items())
            self._launch()
            self._run(["createdb", "-h", HOST, "-p", str(self.port), "-U", self.user,
                       self.dbname], as_owner=False)  # fmt: skip
        except BaseException:
            self.stop()
            raise
        return self

    def restart(self) -> None:
        """Fast shutdown (clients are disconnected), then start again on the same port."""
        self._pg_ctl("restart", "-m", "fast", "-l", str(self.socket_dir / "server.log"))
        self._wait_ready()

    def stop(self) -> None:
        """Fast shutdown, then remove the folder. Does nothing if not started."""
        atexit.unregister(self.stop)
        if self._root is None:
            return
        try:
            running = (self.data_dir / "postmaster.pid").exists()
            if running and self._pg_ctl("stop", "-m", "fast", check=False).returncode != 0:
                self._pg_ctl("stop", "-m", "immediate", check=False)
        finally:
            if self._watchdog is not None:
                self._watchdog.communicate(timeout=60)  # closes its stdin: it finds no server
                self._watchdog = None
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _launch(self) -> None:
        """``pg_ctl start`` on a free port; another port if that one was taken meanwhile."""
        log = str(self.socket_dir / "server.log")
        for attempt in range(3):
            self._port = _free_port()
            started = self._pg_ctl("start", "-l", log, "-o", f"-p {self._port}", check=False)
            if started.returncode == 0:
                return self._wait_ready()
            if attempt == 2 or "could not bind" not in self._log_tail():
                raise self._error("pg_ctl start failed", started)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            ready = self._run(["pg_isready", "-q", "-h", HOST, "-p", str(self.port),
                               "-U", self.user], check=False, as_owner=False)  # fmt: skip
            if ready.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise self._error(f"not accepting connections after {self.timeout} s", ready)
            time.sleep(0.05)

    def _watch(self) -> None:
        """The watchdog: it stops the server and removes the folder when its stdin closes."""
        args = [_WATCHDOG, str(self._bindir / "pg_ctl"), str(self.data_dir), str(self.socket_dir)]
        self._watchdog = subprocess.Popen(
            self._as_owner(["sh", "-c", *args]), stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self._root,
            start_new_session=True,  # a Ctrl-C for the tests is not for it
        )  # fmt: skip

    def _give_folder(self) -> None:
        """As root: the folder is ``os_user``'s, and reachable by them."""
        if os.geteuid() != 0:
            return
        try:
            owner = pwd.getpwnam(self.os_user)
        except KeyError:
            message = f"PostgreSQL refuses root, and there is no user {self.os_user!r}; {_INSTALL}"
            raise RuntimeError(message) from None
        os.chown(self.socket_dir, owner.pw_uid, owner.pw_gid)
        os.chmod(self.socket_dir, 0o711)
        for parent in self.socket_dir.parents:
            if not parent.stat().st_mode & 0o001:
                raise RuntimeError(f"{self.os_user} cannot reach {parent}: pass base_dir=")

    def _as_owner(self, args: list[str]) -> list[str]:
        """``args`` run as ``os_user`` if this process is root."""
        if os.geteuid() != 0:
            return args
        if shutil.which("runuser"):
            return ["runuser", "-u", self.os_user, "--", *args]
        return ["su", self.os_user, "-s", "/bin/sh", "-c", shlex.join(args)]

    def _pg_ctl(
        self, action: str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``pg_ctl ACTION`` on the data folder, waiting for it up to ``timeout``."""
        timeout = str(int(self.timeout))
        return self._run(["pg_ctl", action, "-D", str(self.data_dir), "-w", "-t", timeout, *args],
                         check=check)  # fmt: skip

    def _run(
        self, args: list[str], *, check: bool = True, as_owner: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """A PostgreSQL tool (``args[0]``, from the bindir), its output captured."""
        args = [str(self._bindir / args[0]), *args[1:]]
        result = subprocess.run(
            self._as_owner(args) if as_owner else args,
            capture_output=True, text=True, cwd=self._root, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise self._error(f"{Path(args[0]).name} failed", result)
        return result

    def _log_tail(self, lines: int = 20) -> str:
        log = self.socket_dir / "server.log"
        if not log.exists():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def _error(self, what: str, result: subprocess.CompletedProcess[str]) -> RuntimeError:
        output = (result.stdout + result.stderr).strip()
        return RuntimeError(
            f"PostgreSQL: {what} (exit {result.returncode}): {output}\n"
            f"--- the server log's tail:\n{self._log_tail()}"
        )
