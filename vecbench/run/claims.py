"""Per-unit claims: one process computes a unit at a time, whatever number of `run`s share a
results folder (on one host or several, through a shared file system).

A claim is ``runs/<key>.claim``, created whole or not at all (written to a temporary file, then
hard-linked into place: the link fails when the claim exists). It names its holder well enough
to judge it on this host::

    {"host": ..., "boot_id": ..., "pid": ..., "start": ..., "created": ...}

``boot_id`` is ``/proc/sys/kernel/random/boot_id`` and ``start`` the process start time (field 22
of ``/proc/<pid>/stat``): a claim of this host is stale when the host restarted since, its
process is gone, or its pid now belongs to another process (pid reuse). A claim of another host
cannot be checked from here; its holder refreshes its modification time every
:data:`REFRESH_S` seconds, so one not refreshed for :data:`STALE_S` seconds is reported as
*unknown* and taken over only on request (``vecbench run --steal-claims``).
"""

from __future__ import annotations

import functools
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from vecbench.core import atomic
from vecbench.core.cache import pid_alive

#: Seconds between refreshes of the claims a run holds (their modification time).
REFRESH_S = 30.0
#: A claim of another host not refreshed for this long is reported instead of waited for.
STALE_S = 300.0
#: A claim file too young to hold its content yet (written by an older vecbench, which created
#: it empty and then filled it).
WRITING_S = 5.0


def claim_path(results: str | Path, key: str) -> Path:
    return Path(results) / "runs" / f"{key}.claim"


# ---------------------------------------------------------------------------------------------
# Who holds a claim

@functools.lru_cache(maxsize=1)
def boot_id() -> str:
    """This boot's id (the same for the process's life: read once)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' where /proc cannot tell): with
    the pid, it names one process, even after the pid is reused."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = text.rsplit(")", 1)[-1].split()   # the name, in parentheses, may hold spaces
    return fields[19] if len(fields) > 19 else ""


def identity(pid: int | None = None) -> dict:
    pid = pid or os.getpid()
    return {"host": socket.gethostname(), "boot_id": boot_id(), "pid": pid,
            "start": start_time(pid), "created": time.time()}


@dataclass
class Judgement:
    """What a claim file says and whether its holder still runs."""

    path: Path
    state: str        # "free", "held", "stale" (holder gone) or "unknown" (cannot be checked)
    holder: str = ""  # "host H pid P"
    why: str = ""     # why stale or unknown
    age: float = 0.0  # seconds since the holder last refreshed it

    def line(self) -> str:
        """``runs/K.claim (host h pid 12, refreshed 40 s ago)``, for messages."""
        return f"{self.path} ({self.holder}, refreshed {self.age:.0f} s ago)"


def judge(path: Path) -> Judgement:
    try:
        text = path.read_text()
        age = max(0.0, time.time() - path.stat().st_mtime)
    except FileNotFoundError:
        return Judgement(path, "free")
    except OSError as exc:
        return Judgement(path, "unknown", "an unreadable claim", exc.strerror or str(exc))
    holder = _parse(text)
    if holder is None:   # garbage, or an older vecbench's claim being written right now
        state = "held" if age < WRITING_S else "stale"
        return Judgement(path, state, "an unreadable claim", "not a claim", age)
    who = f"host {holder['host']} pid {holder['pid']}"
    if holder["host"] != socket.gethostname():
        if age > STALE_S:
            return Judgement(path, "unknown", who, f"another host's claim, not refreshed for "
                             f"{age:.0f} s (over {STALE_S:.0f} s)", age)
        return Judgement(path, "held", who, "", age)
    why = _gone_here(holder)
    return Judgement(path, "stale" if why else "held", who, why, age)


def _parse(text: str) -> dict | None:
    """The holder a claim names; an older vecbench's claim (``host pid``) too."""
    try:
        data = json.loads(text)
        if isinstance(data, dict) and isinstance(data.get("pid"), int) and \
                isinstance(data.get("host"), str):
            return data
    except ValueError:
        pass
    parts = text.split()
    if len(parts) == 2 and parts[1].isdigit():
        return {"host": parts[0], "pid": int(parts[1])}
    return None


def _gone_here(holder: dict) -> str:
    """Why the claim of this host's process is stale, or '' while that process runs."""
    pid = holder["pid"]
    booted = holder.get("boot_id")
    if booted and boot_id() and booted != boot_id():
        return "this host restarted since"
    if not pid_alive(pid):
        return f"process {pid} is gone"
    started = holder.get("start")
    if started and start_time(pid) and started != start_time(pid):
        return f"pid {pid} now belongs to another process"
    return ""


def held(path: Path) -> bool:
    """True while the claim's holder may still be computing its unit."""
    return judge(path).state in ("held", "unknown")


# ---------------------------------------------------------------------------------------------
# Taking, keeping and releasing claims

def claim(results: str | Path, key: str, steal: bool = False) -> bool:
    """Take the unit's claim; False while another process holds it. A stale claim (see
    :func:`judge`) is taken over; one that cannot be checked only when ``steal``."""
    path = claim_path(results, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    if _create(path):
        return True
    with _takeover_lock(path.parent):   # judge-and-remove by one process at a time
        state = judge(path).state
        if state == "held" or (state == "unknown" and not steal):
            return False
        if state != "free":
            path.unlink(missing_ok=True)
        return _create(path)


def _create(path: Path) -> bool:
    """Create the claim with its content in one step: False when it exists."""
    fd, tmp = atomic.temporary_for(path)   # an exclusive sibling, complete before the link
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(identity()))
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


class _takeover_lock:
    """An exclusive lock on the runs folder while a stale claim is judged and replaced: two
    runs judging the same stale claim at once would otherwise both take it over."""

    def __init__(self, folder: Path):
        self.path = folder / ".claims.lock"

    def __enter__(self):
        import fcntl

        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)   # closing releases the lock


def _mine(path: Path) -> bool:
    holder = _parse(path.read_text()) if path.exists() else None
    return bool(holder) and holder["pid"] == os.getpid() and \
        holder["host"] == socket.gethostname()


def release(results: str | Path, key: str) -> None:
    path = claim_path(results, key)
    try:
        if _mine(path):
            path.unlink()
    except OSError:
        pass


class Keeper:
    """Refreshes this run's claims every :data:`REFRESH_S` seconds (a daemon thread), so that
    a run on another host sharing the folder can tell a live claim from an abandoned one."""

    def __init__(self, results: str | Path, keys: list[str], every: float = REFRESH_S):
        self.paths = [claim_path(results, key) for key in keys]
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="claim-keeper")

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            for path in self.paths:
                try:
                    if _mine(path):
                        os.utime(path)
                except OSError:
                    pass   # released meanwhile, or a folder gone: nothing to keep
