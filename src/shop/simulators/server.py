"""Serving a simulator: inside the caller's event loop (the shop's embedded default, tests) or
standalone (``run``, blocking).

``serve_in_background`` binds the listening socket itself before handing it to uvicorn, so a
busy port raises ``OSError`` here instead of uvicorn's ``sys.exit(1)``, and the port is known
at once. The embedded server leaves the host process alone: no signal handlers, and no logging
configuration (uvicorn's ``log_level`` would set the global ``uvicorn.*`` loggers, silencing the
shop's own uvicorn); its warnings reach whatever handlers the host has, and access logs are off.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

__all__ = ["RunningServer", "run", "serve_in_background"]

_START_TIMEOUT = 10.0  # seconds


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves the process's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class RunningServer:
    """A simulator served in the background on ``url``; ``aclose()`` or ``async with`` stops it."""

    def __init__(
        self, server: uvicorn.Server, task: asyncio.Task[None], host: str, port: int
    ) -> None:
        self._server = server
        self._task = task
        self._grace = server.config.timeout_graceful_shutdown or 0
        self.host = host
        self.port = port
        """The bound TCP port."""

    @property
    def url(self) -> str:
        """``http://HOST:PORT``, without a trailing slash."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def aclose(self) -> None:
        """Stop serving: requests in flight get the grace period, then are cancelled (a hang).

        Idempotent. When it returns the port is closed.
        """
        if self._task.done():
            return
        self._server.should_exit = True
        # uvicorn cancels what outlives the grace period itself; the margin covers its 0.1 s ticks.
        done, _ = await asyncio.wait({self._task}, timeout=self._grace + 2.0)
        if not done:
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def __aenter__(self) -> RunningServer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<RunningServer {self.url}>"


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


async def serve_in_background(
    app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0, grace: int = 1
) -> RunningServer:
    """Serve ``app`` with uvicorn in a task of the running loop; return once it accepts.

    ``port=0`` picks a free port (read it from ``.port`` or ``.url``). ``grace`` is how long
    ``aclose`` lets requests in flight finish, seconds. Raises ``OSError`` when the address
    cannot be bound and ``RuntimeError`` when uvicorn stops before it starts.
    """
    sock = _bind(host, port)
    bound_port: int = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        host=host,
        port=bound_port,
        lifespan="off",
        log_config=None,
        log_level=None,
        access_log=False,
        timeout_graceful_shutdown=grace,
    )
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"simulator:{bound_port}")
    try:
        async with asyncio.timeout(_START_TIMEOUT):
            while not server.started:
                if task.done():
                    break
                await asyncio.sleep(0.005)
    except BaseException:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()
        raise
    if not server.started:
        sock.close()
        exc = task.exception()
        raise RuntimeError(f"the simulator server on {host}:{bound_port} did not start") from exc
    return RunningServer(server, task, host, bound_port)


def run(app: ASGIApp, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve ``app`` in the foreground until interrupted (the standalone simulator CLI)."""
    uvicorn.run(app, host=host, port=port, log_level="info")
