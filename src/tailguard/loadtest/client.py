"""The scenario's HTTP client: ``await self.client.get(path)``, over pooled keep-alive connections.

::

    async with Client("http://127.0.0.1:8000") as client:
        response = await client.post("/cart/items", json={"product_id": 7}, name="add to cart")
        print(response.status, response.json())

Failures are values, as in Locust: a request that got no response returns a :class:`Response`
with ``status`` 0 and ``error`` saying why (``timeout``, ``connect``, ``read``, ``other``); a
4xx/5xx response has ``error`` ``status_<code>``; ``ok`` is true for 2xx and 3xx. Redirects are
returned, not followed. Only plain ``http://`` targets, and only loopback hosts unless a host is
named in ``allow_hosts`` (the CLI's ``--allow-host``): a load generator pointed at someone
else's server by a typo is an attack.

When the client belongs to a run (``recorder``), each request is recorded under ``name``, else
the running task's name, else ``"METHOD /path"``; its latency runs from its intended start in
the open model (the arrival time), else from the moment it asked for a connection.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import json as jsonlib
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tailguard.errors import ConfigurationError
from tailguard.loadtest._pool import TIMEOUT, Pool, expire
from tailguard.loadtest._recorder import status_kind
from tailguard.loadtest.targets import parse_target

if TYPE_CHECKING:
    from tailguard.loadtest._recorder import Recorder

__all__ = ["Client", "Invocation", "Response", "current_invocation"]

USER_AGENT = "tailguard-loadtest"
_UNSET: Any = object()


@dataclasses.dataclass(slots=True)
class Invocation:
    """The task being run (set by the engine): requests default to its ``name``; the first
    one counts from ``intended`` (seconds, ``time.perf_counter``) in the open model."""

    name: str
    intended: float | None = None


current_invocation: contextvars.ContextVar[Invocation | None] = contextvars.ContextVar(
    "tailguard_loadtest_invocation", default=None
)


class Response:
    """An HTTP response (or its absence): ``status`` (0: none), ``error`` (``None`` or its
    kind), ``content`` (the body, bytes), ``elapsed`` (seconds), ``headers`` (names in
    lower case), ``text``, ``json()``."""

    __slots__ = ("_head", "_headers", "content", "elapsed", "error", "status")

    def __init__(
        self, status: int, head: bytes, content: bytes, error: str | None, elapsed: float
    ) -> None:
        self.status = status
        self.content = content
        self.error = error
        self.elapsed = elapsed
        self._head = head
        self._headers: dict[str, str] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def headers(self) -> dict[str, str]:
        if self._headers is None:
            headers: dict[str, str] = {}
            for line in self._head.split(b"\r\n")[1:]:
                name, sep, value = line.partition(b":")
                if sep:
                    key = name.strip().lower().decode("latin-1")
                    text = value.strip().decode("latin-1")
                    headers[key] = f"{headers[key]}, {text}" if key in headers else text
            self._headers = headers
        return self._headers

    @property
    def text(self) -> str:
        content_type = self.headers.get("content-type", "")
        charset = content_type.partition("charset=")[2].split(";")[0].strip() or "utf-8"
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)

    def __repr__(self) -> str:
        return f"<Response status={self.status} error={self.error!r} {len(self.content)} bytes>"


class Client:
    """HTTP/1.1 client bound to ``base_url``. ``connections``: most open at once per host;
    ``timeout``: seconds for each of connecting and a whole request; ``headers``: sent with
    every request; ``allow_hosts``: non-loopback hosts it may talk to."""

    def __init__(
        self,
        base_url: str,
        *,
        connections: int = 100,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        allow_hosts: Sequence[str] = (),
        recorder: Recorder | None = None,
    ) -> None:
        if connections < 1:
            raise ConfigurationError("connections", connections, "at least 1")
        if not timeout > 0:
            raise ConfigurationError("timeout", timeout, "seconds > 0")
        self.base = parse_target(base_url, allow_hosts)
        self.connections = connections
        self.timeout = timeout
        self.allow_hosts = tuple(allow_hosts)
        self.recorder = recorder
        self._common = _header_lines({"User-Agent": USER_AGENT, **(headers or {})})
        self._pools: dict[tuple[str, int], Pool] = {}
        self._closed = False

    async def get(self, url: str, **options: Any) -> Response:
        return await self.request("GET", url, **options)

    async def post(self, url: str, **options: Any) -> Response:
        return await self.request("POST", url, **options)

    async def put(self, url: str, **options: Any) -> Response:
        return await self.request("PUT", url, **options)

    async def patch(self, url: str, **options: Any) -> Response:
        return await self.request("PATCH", url, **options)

    async def delete(self, url: str, **options: Any) -> Response:
        return await self.request("DELETE", url, **options)

    async def head(self, url: str, **options: Any) -> Response:
        return await self.request("HEAD", url, **options)

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = _UNSET,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> Response:
        """Send one request; ``url`` is a path on the base URL's host or a full URL of an
        allowed host. ``json`` (encoded, with its content type) or ``data`` is the body."""
        if self._closed:
            raise RuntimeError("Client is closed")
        host, port, authority, path = self._locate(url)
        if not path.isascii() or " " in path:
            path = urllib.parse.quote(path, safe="/%:@!$&'()*+,;=~-._?")
        body = b""
        extra = dict(headers or {})
        if json is not _UNSET:
            body = jsonlib.dumps(json, separators=(",", ":")).encode()
            extra.setdefault("Content-Type", "application/json")
        elif data is not None:
            body = data.encode() if isinstance(data, str) else bytes(data)
        if body or method in ("POST", "PUT", "PATCH"):
            extra["Content-Length"] = str(len(body))
        request = b"".join(
            (
                f"{method} {path} HTTP/1.1\r\nHost: {authority}\r\n".encode("latin-1"),
                self._common,
                _header_lines(extra),
                b"\r\n",
                body,
            )
        )
        invocation = current_invocation.get()
        started = time.perf_counter()
        if invocation is not None and invocation.intended is not None:
            started = min(started, invocation.intended)
            invocation.intended = None
        status, head, content, error = await self._exchange(host, port, request, method == "HEAD")
        now = time.perf_counter()
        if self.recorder is not None:
            label = name or (invocation.name if invocation else f"{method} {path}")
            latency = now - started if status or error == TIMEOUT else None
            self.recorder.record(self.recorder.action(label), now, latency, error)
        return Response(status, head, content, error, now - started)

    async def _exchange(
        self, host: str, port: int, request: bytes, head_only: bool
    ) -> tuple[int, bytes, bytes, str | None]:
        pool = self._pools.get((host, port))
        if pool is None:
            pool = self._pools[(host, port)] = Pool(host, port, self.connections, self.timeout)
        try:
            conn = await pool.acquire()
        except (OSError, TimeoutError):
            return 0, b"", b"", "connect"
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Any] = loop.create_future()
        conn.waiter = waiter
        timer = loop.call_later(self.timeout, expire, conn, waiter)
        try:
            conn.send(request, head_only=head_only)
            outcome = await waiter
        except asyncio.CancelledError:
            conn.waiter = None
            conn.abort()  # a response may still come: the connection cannot be reused
            raise
        except Exception:  # a transport that broke under write
            conn.abort()
            return 0, b"", b"", "other"
        finally:
            timer.cancel()
            pool.release(conn)
        if isinstance(outcome, str):
            return 0, b"", b"", outcome
        status, head, content = outcome
        return status, head, content, status_kind(status)

    def _locate(self, url: str) -> tuple[str, int, str, str]:
        base = self.base
        if url.startswith("/"):
            return base.host, base.port, base.authority, url
        target = parse_target(urllib.parse.urljoin(base.url, url), self.allow_hosts)
        return target.host, target.port, target.authority, target.path

    async def aclose(self) -> None:
        """Close every idle connection; requests in flight finish on theirs."""
        self._closed = True
        for pool in self._pools.values():
            pool.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _header_lines(headers: Mapping[str, str]) -> bytes:
    lines = []
    for name, value in headers.items():
        text = f"{name}: {value}"
        if "\r" in text or "\n" in text:
            raise ConfigurationError("header", name, "a name and value without CR or LF")
        lines.append(text + "\r\n")
    return "".join(lines).encode("latin-1")
