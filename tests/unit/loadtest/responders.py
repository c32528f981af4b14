"""Small HTTP/1.1 responders for the load generator's tests, each in its own thread and event
loop (so the generator's loop, and the synchronous CLI, cannot disturb its timing).

``Responder(delay=0.05)`` answers every request after 50 ms; ``stall=(period, length)`` holds
every response that arrives in the last ``length`` seconds of each ``period`` until the period
ends (a server that stalls ``length`` s once every ``period`` s); ``status`` may be an int or a
function of the request path; ``chunked=True`` sends the body in chunks; ``close=True`` answers
with ``Connection: close``; ``hang=True`` never answers. ``holds`` lists how long each response
was actually held (seconds, from reading the request to writing the answer) when
``keep_holds=True``: a timer may fire late, and that lateness is part of the true latency.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

__all__ = ["Responder", "ResponderProcess", "free_port"]


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Conn(asyncio.Protocol):
    def __init__(self, server: Responder) -> None:
        self.server = server
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.queue: list[tuple[float, bytes]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections += 1

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            method, path, _ = head.split(" ", 2)
            self.server.requests += 1
            self.server.paths.append(path) if self.server.keep_paths else None
            self.server.bodies.append(body) if self.server.keep_paths else None
            self._answer(method, path)

    def _answer(self, method: str, path: str) -> None:
        server = self.server
        if server.hang:
            return
        status = server.status(path) if callable(server.status) else server.status
        payload = server.body
        headers = [f"HTTP/1.1 {status} X"]
        if server.close:
            headers.append("Connection: close")
        if server.chunked:
            headers.append("Transfer-Encoding: chunked")
            mid = len(payload) // 2
            parts = [payload[:mid], payload[mid:]]
            body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p) + b"0\r\n\r\n"
        else:
            headers.append(f"Content-Length: {len(payload)}")
            body = payload
        response = ("\r\n".join(headers) + "\r\n\r\n").encode() + body
        loop = asyncio.get_running_loop()
        delay = server.delay
        if server.stall is not None:
            period, length = server.stall
            phase = (time.monotonic() - server.t0) % period
            if phase >= period - length:
                delay = max(delay, period - phase)
        if delay > 0:
            loop.call_later(delay, self._write, response, time.perf_counter())
        else:
            self._write(response, time.perf_counter())

    def _write(self, response: bytes, since: float) -> None:
        if self.server.keep_holds:
            self.server.holds.append(time.perf_counter() - since)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(response)
            if self.server.close:
                self.transport.close()


class Responder:
    """Start with ``with Responder(...) as server:``; ``server.url`` is its address."""

    def __init__(
        self,
        *,
        delay: float = 0.0,
        status: int | Callable[[str], int] = 200,
        body: bytes = b"ok",
        stall: tuple[float, float] | None = None,
        chunked: bool = False,
        close: bool = False,
        hang: bool = False,
        keep_paths: bool = False,
        keep_holds: bool = False,
    ) -> None:
        self.delay, self.status, self.body, self.stall = delay, status, body, stall
        self.chunked, self.close, self.hang, self.keep_paths = chunked, close, hang, keep_paths
        self.requests = 0
        self.connections = 0
        self.keep_holds = keep_holds
        self.holds: list[float] = []
        self.paths: list[str] = []
        self.bodies: list[bytes] = []
        self.port = 0
        self.t0 = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def _serve(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        server = loop.run_until_complete(
            loop.create_server(lambda: _Conn(self), "127.0.0.1", 0, backlog=1024)
        )
        self.port = server.sockets[0].getsockname()[1]
        self.t0 = time.monotonic()
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            loop.run_until_complete(server.wait_closed())
            loop.close()

    def __enter__(self) -> Responder:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


class ResponderProcess:
    """A :class:`Responder` in a child process (``python -m tests.unit.loadtest.responders``),
    so that neither the GIL nor a garbage collection couples its timing to the generator's.
    ``holds`` is filled when it stops (the child prints them as it exits)."""

    def __init__(self, *, delay: float = 0.0) -> None:
        self.delay = delay
        self.port = 0
        self.holds: list[float] = []
        self._proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> ResponderProcess:
        root = Path(__file__).resolve().parents[3]
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.unit.loadtest.responders", str(self.delay)],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line.startswith("PORT "):
            self._proc.kill()
            raise RuntimeError(f"the responder did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def __exit__(self, *exc: object) -> None:
        proc = self._proc
        assert proc is not None
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.close()  # the child's cue to stop and report
        out = proc.stdout.read()
        proc.wait(10)
        self.holds = json.loads(out) if out.strip() else []


def _serve_until_stdin_closes(delay: float) -> None:
    with Responder(delay=delay, keep_holds=True) as server:
        print(f"PORT {server.port}", flush=True)
        sys.stdin.read()
    print(json.dumps(server.holds), flush=True)


if __name__ == "__main__":
    _serve_until_stdin_closes(float(sys.argv[1]))
