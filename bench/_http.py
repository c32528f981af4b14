"""HTTP helpers for the benchmarks: one minimal Starlette app in several variants (bare, or with
one metrics middleware), each served by uvicorn in its own subprocess on a free loopback port,
and a keep-alive HTTP/1.1 load client on raw asyncio sockets.

The server side runs as ``python -m bench._http VARIANT``: it builds the app, binds
``127.0.0.1:0``, prints ``PORT <n> <loop>`` on stdout and serves with uvicorn (one worker,
httptools, uvloop when installed, access log off, lifespan off) until SIGTERM, SIGINT or the
end of its stdin: the parent holds the other end of that pipe, so a server never outlives the
benchmark that started it, even one killed outright.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "ROUTE",
    "VARIANTS",
    "LoadSample",
    "ServerProcess",
    "fetch",
    "load",
    "running",
    "server_loop",
    "split_cpus",
]

ROUTE = "/items/{item_id}"
VARIANTS = ("bare", "goldensignals", "instrumentator", "starlette_exporter")
ROOT = Path(__file__).resolve().parent.parent  # the checkout: ``-m bench._http`` runs from it


def server_loop() -> str:
    """The event loop every server variant runs on: uvloop when installed, else asyncio."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


# -- the server side: the app and its variants ------------------------------------------------


async def item(request: Any) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse({"id": request.path_params["item_id"], "ok": True})


def build_app(variant: str) -> Any:
    """The same Starlette app for every variant: ``GET /items/{item_id}`` answers a small JSON
    body; each instrumented variant adds its middleware and its metrics endpoint the way its
    documentation says (the endpoint is a second route, after the measured one)."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    app = Starlette(routes=[Route(ROUTE, item)])
    if variant == "bare":
        pass
    elif variant == "goldensignals":
        from prometheus_client import CollectorRegistry

        from tailguard.observe import GoldenSignals, metrics_app

        registry = CollectorRegistry()
        app.add_middleware(GoldenSignals, registry=registry)
        app.mount("/metrics", metrics_app(registry))
    elif variant == "instrumentator":
        from prometheus_fastapi_instrumentator import Instrumentator

        # Its defaults label by route template (``handler``); works on plain Starlette.
        Instrumentator().instrument(app).expose(app)
    elif variant == "starlette_exporter":
        from starlette_exporter import PrometheusMiddleware, handle_metrics

        # group_paths=True (label by route template) is its default; spelled out here.
        app.add_middleware(PrometheusMiddleware, group_paths=True)
        app.add_route("/metrics", handle_metrics)
    else:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    return app


def serve(variant: str) -> None:
    """Build ``variant``, bind a free loopback port, announce it on stdout, serve until told."""
    import uvicorn

    app = build_app(variant)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    loop = server_loop()
    config = uvicorn.Config(
        app,
        http="httptools",
        loop=loop,
        lifespan="off",
        access_log=False,
        log_level="warning",
        workers=1,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)

    def orphan_guard() -> None:
        # The parent holds our stdin: EOF means it is gone (or done with us). Stop, and make
        # sure of it a few seconds later.
        with contextlib.suppress(OSError):
            sys.stdin.buffer.read()
        server.should_exit = True
        time.sleep(5)
        os._exit(1)

    threading.Thread(target=orphan_guard, name="orphan-guard", daemon=True).start()
    print(f"PORT {port} {loop}", flush=True)
    server.run(sockets=[sock])


# -- the client side -------------------------------------------------------------------------


def _content_length(head: bytes) -> int:
    lowered = head.lower()
    at = lowered.find(b"\r\ncontent-length:")
    if at < 0:
        raise RuntimeError(f"response without content-length: {head[:200]!r}")
    start = at + len(b"\r\ncontent-length:")
    return int(lowered[start : lowered.index(b"\r\n", start)])


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += body[:size]
        body = body[size + 2 :]
    return bytes(out)


async def fetch(port: int, path: str, *, within: float = 10.0) -> tuple[int, bytes]:
    """One ``GET path`` on a fresh connection (``Connection: close``): status and body, or
    TimeoutError after ``within`` seconds (for each of connecting and reading)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), within)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        raw = await asyncio.wait_for(reader.read(), within)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"\r\ntransfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    return status, body


@dataclasses.dataclass(frozen=True, slots=True)
class LoadSample:
    """One timed load sample: ``requests`` answered 200 in ``seconds``; ``sent`` counts every
    ``/items`` request of the sample, the untimed warm-up ones included."""

    requests: int
    seconds: float
    sent: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


async def load(
    port: int,
    *,
    connections: int,
    seconds: float,
    max_requests: int,
    ids: int = 1000,
) -> LoadSample:
    """``connections`` keep-alive connections, each sending ``GET /items/<id>`` and reading the
    whole response (by Content-Length) before sending the next, ids varying; the sample stops
    after ``seconds`` or ``max_requests`` requests, whichever comes first. Connections are
    opened, and each answers one request, before the clock starts; they close after it stops.
    Any answer but 200 raises."""
    requests = [f"GET /items/{i} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode() for i in range(ids)]
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    remaining = max_requests
    answered = 0
    clock = time.perf_counter

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int) -> None:
        writer.write(requests[i % ids])
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200 "):
            raise RuntimeError(f"port {port}: unexpected answer {head[:200]!r}")
        await reader.readexactly(_content_length(head))

    async def worker(
        k: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, deadline: float
    ) -> None:
        nonlocal remaining, answered
        i = k
        while remaining > 0 and clock() < deadline:
            remaining -= 1
            await one(reader, writer, i)
            answered += 1
            i += connections

    try:
        for _ in range(connections):
            conns.append(await asyncio.open_connection("127.0.0.1", port))
        await asyncio.gather(*(one(r, w, k) for k, (r, w) in enumerate(conns)))
        start = clock()
        deadline = start + seconds
        await asyncio.gather(*(worker(k, r, w, deadline) for k, (r, w) in enumerate(conns)))
        elapsed = clock() - start
    finally:
        for _, writer in conns:
            writer.close()
        for _, writer in conns:
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    return LoadSample(answered, elapsed, answered + len(conns))


# -- the parent's handle on a server ----------------------------------------------------------


class ServerProcess:
    """One ``python -m bench._http VARIANT`` subprocess. ``sent`` counts the ``/items``
    requests it answered 200 (the parent adds them up), to check its metrics against.
    ``cpus``: the CPUs it may run on (Linux; None: any)."""

    def __init__(self, variant: str, cpus: set[int] | None = None) -> None:
        self.variant = variant
        self.cpus = cpus
        self.port = 0
        self.loop = ""
        self.sent = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench._http", self.variant],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        if self.cpus is not None:
            try:
                os.sched_setaffinity(self.proc.pid, self.cpus)  # before it has built the app
            except OSError:  # refused (a sandbox): it runs where it may
                self.cpus = None

    async def ready(self, within: float = 30.0) -> None:
        """Read the announced port, then poll ``GET /items/0`` until it answers 200."""
        proc = self.proc
        assert proc is not None
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), within)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"{self.variant}: server did not announce a port") from None
        if not line.startswith(b"PORT "):
            self.stop()
            raise RuntimeError(
                f"{self.variant}: server exited ({proc.returncode}) before serving: {line!r}"
            )
        _, port, self.loop = line.decode().split()
        self.port = int(port)
        deadline = time.monotonic() + within
        while True:
            try:
                status, _ = await fetch(self.port, "/items/0", within=2.0)
            except (OSError, TimeoutError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{self.variant}: server on {self.port} never answered"
                    ) from None
                await asyncio.sleep(0.05)
                continue
            if status != 200:
                raise RuntimeError(f"{self.variant}: GET /items/0 answered {status}")
            self.sent += 1
            return

    def cpu_seconds(self) -> float | None:
        """User + system CPU time the server has used so far (Linux ``/proc``), or None."""
        if self.proc is None:
            return None
        try:
            with open(f"/proc/{self.proc.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM (uvicorn's graceful shutdown), then SIGKILL after 5 s; reap it."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def split_cpus() -> tuple[set[int], set[int]] | None:
    """(the client's CPUs, the servers' CPUs) on Linux with two CPUs or more: the first CPU
    this process may use for the load client, the others for the servers, so that the two
    do not share a CPU (two hyperthreads of one core still share it: the VM does not say).
    None where affinity cannot be set (or one CPU only)."""
    getter = getattr(os, "sched_getaffinity", None)
    setter = getattr(os, "sched_setaffinity", None)
    if getter is None or setter is None:
        return None
    mine = sorted(getter(0))
    if len(mine) < 2:
        return None
    try:
        setter(0, set(mine))  # may this process set it at all (some sandboxes refuse)
    except OSError:
        return None
    return {mine[0]}, set(mine[1:])


@contextlib.contextmanager
def running(
    variants: Sequence[str], cpus: set[int] | None = None
) -> Iterator[dict[str, ServerProcess]]:
    """Start a server per variant (all at once, on ``cpus`` if given); stop every one of them
    on the way out, on an exception or Ctrl-C too. Wait for them with ``await server.ready()``."""
    servers = {variant: ServerProcess(variant, cpus) for variant in variants}
    try:
        for server in servers.values():
            server.start()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: python -m bench._http {{{','.join(VARIANTS)}}}")
    serve(sys.argv[1])
