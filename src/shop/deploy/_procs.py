"""Processes and ports on this host (Linux ``/proc``): is a pid still the process we started,
kill it by pid, find the processes of a stack, and loopback ports."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = ["alive", "free_port", "marked", "port_in_use", "signal", "started_at", "wait_gone"]

MARKER = "TAILGUARD_STACK"
"""The environment variable naming the stack every one of its processes belongs to."""


def started_at(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), None when there is no such process.

    With the pid it identifies a process: a pid reused by another process has another time.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie has exited; only its parent's wait is missing
        return None
    return int(fields[19])


def alive(pid: int, started: int | None = None) -> bool:
    """True while ``pid`` runs (and, given ``started``, is still the same process)."""
    now = started_at(pid)
    return now is not None and (started is None or now == started)


def signal(pid: int, started: int | None, signum: int) -> bool:
    """Send ``signum`` to ``pid`` (and to its process group when it leads one, as each program
    supervisord starts does) if it is still the process started at ``started``; True when
    sent."""
    if not alive(pid, started):
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)
            return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
        return True
    return False


def wait_gone(pids: Iterable[tuple[int, int | None]], timeout: float) -> list[int]:
    """Wait up to ``timeout`` seconds for every (pid, start time) to exit; returns those left."""
    pending = list(pids)
    deadline = time.monotonic() + timeout
    while True:
        pending = [(pid, started) for pid, started in pending if alive(pid, started)]
        if not pending or time.monotonic() >= deadline:
            return [pid for pid, _ in pending]
        time.sleep(0.05)


def marked(stack_id: str) -> dict[int, int]:
    """The processes whose environment says ``TAILGUARD_STACK=stack_id``: pid -> start time."""
    needle = f"{MARKER}={stack_id}".encode()
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            started = started_at(int(entry.name))
            if started is not None:
                found[int(entry.name)] = started
    return found


def port_in_use(host: str, port: int) -> bool:
    """True when a server could not listen on ``host:port`` (someone listens there)."""
    with socket.socket() as sock:
        # As servers do: connections of a stopped server in TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def free_port(host: str = "127.0.0.1", taken: Iterable[int] = ()) -> int:
    """A TCP port free on ``host`` now, not in ``taken``."""
    avoid = set(taken)
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind((host, 0))
            port: int = sock.getsockname()[1]
        if port not in avoid:
            return port
    raise RuntimeError(f"no free TCP port on {host}")
