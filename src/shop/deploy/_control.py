"""Talking to the stack's two controllers over their Unix sockets: supervisord (XML-RPC) and
HAProxy's runtime API (``show stat``, ``set weight``)."""

from __future__ import annotations

import csv
import http.client
import io
import socket
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["HAProxyRuntime", "ProcessInfo", "ServerState", "Supervisor"]


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(str(self._path))
        self.sock = sock


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__()
        self._path = path
        self._timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        return _UnixConnection(self._path, self._timeout)


@dataclass(frozen=True)
class ProcessInfo:
    """One supervisord program: its state (``RUNNING``, ``STARTING``, ``BACKOFF``, ``FATAL``,
    ``EXITED``, ``STOPPED``, ...) and pid (0 when not running)."""

    name: str
    state: str
    pid: int
    description: str


class Supervisor:
    """supervisord's XML-RPC interface on its Unix socket; calls wait at most ``timeout``
    seconds (a stop waits for the program's stopwaitsecs)."""

    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self.path = path
        self._proxy = xmlrpc.client.ServerProxy(
            "http://localhost/RPC2", transport=_UnixTransport(path, timeout)
        )

    def _call(self, method: str, *args: Any) -> Any:
        return getattr(self._proxy, f"supervisor.{method}")(*args)

    def reachable(self) -> bool:
        """True when supervisord answers and is running."""
        try:
            return bool(self._call("getState")["statename"] == "RUNNING")
        except (OSError, xmlrpc.client.Error):
            return False

    def pid(self) -> int:
        """supervisord's own pid."""
        return int(self._call("getPID"))

    def processes(self) -> list[ProcessInfo]:
        return [
            ProcessInfo(p["name"], p["statename"], int(p["pid"]), p["description"])
            for p in self._call("getAllProcessInfo")
        ]

    def process(self, name: str) -> ProcessInfo:
        p = self._call("getProcessInfo", name)
        return ProcessInfo(p["name"], p["statename"], int(p["pid"]), p["description"])

    def start(self, name: str) -> None:
        """Start ``name`` and wait until it has run startsecs."""
        self._call("startProcess", name, True)

    def stop(self, name: str) -> None:
        """Stop ``name`` (TERM to its group, KILL after stopwaitsecs) and wait."""
        self._call("stopProcess", name, True)

    def shutdown(self) -> None:
        """Stop every program, then supervisord itself (returns before it is done)."""
        self._call("shutdown")


@dataclass(frozen=True)
class ServerState:
    """HAProxy's view of one server of the ``shop`` backend."""

    name: str
    status: str
    """``UP``, ``DOWN``, ``MAINT``, ``UP 1/2`` (going down), ``DOWN 1/2`` (going up), ..."""
    weight: int
    check_status: str
    """The last check's result, e.g. ``L7OK``, ``L4CON`` (refused), ``L7STS`` (bad status)."""
    check_failures: int
    """Failed checks since HAProxy started (``chkfail``)."""
    downs: int
    """UP to DOWN transitions since HAProxy started (``chkdown``)."""
    sessions: int
    """Requests (sessions) sent to it since HAProxy started (``stot``)."""


class HAProxyRuntime:
    """HAProxy's runtime API on its admin socket (one command per connection)."""

    def __init__(self, path: Path, timeout: float = 5.0) -> None:
        self.path = path
        self.timeout = timeout

    def command(self, line: str) -> str:
        """Send one command; returns HAProxy's answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            sock.connect(str(self.path))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def servers(self, backend: str = "shop") -> dict[str, ServerState]:
        """Each server of ``backend``, by name."""
        text = self.command("show stat").lstrip("# ")
        states = {}
        for row in csv.DictReader(io.StringIO(text)):
            if row.get("pxname") != backend or row["svname"] in ("FRONTEND", "BACKEND"):
                continue
            states[row["svname"]] = ServerState(
                name=row["svname"],
                status=row["status"],
                weight=int(row["weight"] or 0),
                check_status=row["check_status"],
                check_failures=int(row["chkfail"] or 0),
                downs=int(row["chkdown"] or 0),
                sessions=int(row["stot"] or 0),
            )
        return states

    def set_weight(self, backend: str, server: str, weight: int) -> None:
        answer = self.command(f"set weight {backend}/{server} {weight}").strip()
        if answer:
            raise RuntimeError(f"haproxy refused set weight {backend}/{server} {weight}: {answer}")
