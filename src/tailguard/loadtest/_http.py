"""One HTTP/1.1 keep-alive connection as an asyncio ``Protocol``: send a request, get a callback.

No coroutine and no future per request: the owner (a load driver or a client pool) writes the
request with :meth:`HttpConnection.send` and is called back from ``data_received`` with
``on_response(conn, status, head, body)`` when the response is complete, or with
``on_failure(conn, kind)`` when the connection broke under it (kind ``read``). An idle
connection that closes calls ``on_idle_lost(conn)``. The owner may send the next request from
inside the callback.

The parser reads the status line, ``Content-Length``, ``Transfer-Encoding: chunked`` and
``Connection: close``; a body with neither length nor chunking runs to the end of the
connection. 1xx interim responses are skipped. ``keep_body=False`` counts body bytes without
keeping them (the load driver's case).
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

__all__ = ["MAX_HEAD", "HttpConnection", "Owner"]

MAX_HEAD = 64 * 1024  # bytes: a longer response head is a broken server, reported as "read"

_HEAD, _LENGTH, _CHUNKED, _EOF = 0, 1, 2, 3


class Owner(Protocol):
    def on_response(self, conn: HttpConnection, status: int, head: bytes, body: bytes) -> None:
        """A response came back whole (``head`` without its final blank line)."""

    def on_failure(self, conn: HttpConnection, kind: str) -> None:
        """The connection failed while a request was in flight (it is closed now)."""

    def on_idle_lost(self, conn: HttpConnection) -> None:
        """The server closed the connection while no request was in flight."""


class HttpConnection(asyncio.Protocol):
    """A keep-alive connection owned by ``owner``. ``busy``: a request is in flight.
    ``start`` and ``sent`` are the owner's timestamps for the request in flight (seconds);
    ``slot`` and ``waiter`` are the owner's to use (an index, a future)."""

    __slots__ = (
        "_body",
        "_buf",
        "_chunk_left",
        "_close",
        "_head",
        "_head_only",
        "_mode",
        "_need",
        "_status",
        "busy",
        "closed",
        "keep_body",
        "owner",
        "sent",
        "slot",
        "start",
        "transport",
        "waiter",
    )

    def __init__(self, owner: Owner, *, keep_body: bool = True, slot: int = 0) -> None:
        self.owner = owner
        self.keep_body = keep_body
        self.slot = slot
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self.closed = False
        self.start = 0.0
        self.sent = 0.0
        self.waiter: Any = None
        self._mode = _HEAD
        self._buf = b""
        self._need = 0
        self._status = 0
        self._head = b""
        self._body: list[bytes] = []
        self._chunk_left = -1
        self._close = False
        self._head_only = False

    # -- the owner's side ----------------------------------------------------------------------

    def send(self, request: bytes, *, head_only: bool = False) -> None:
        """Write ``request`` (whole, pre-encoded); ``head_only`` for HEAD (no body follows)."""
        self.busy = True
        self._head_only = head_only
        self.transport.write(request)  # type: ignore[union-attr]

    def abort(self) -> None:
        """Drop the connection now, reporting nothing (the owner has accounted for it)."""
        self.busy = False
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # -- asyncio's side ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        closed_by_us = self.closed
        self.closed = True
        if not self.busy:
            if not closed_by_us:
                self.owner.on_idle_lost(self)
            return
        if self._mode == _EOF:  # the body ran to the end of the connection: complete
            self._finish(b"".join(self._body))
            return
        self.busy = False
        self._reset()
        self.owner.on_failure(self, "read")

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost follows

    def data_received(self, data: bytes) -> None:
        if not self.busy:  # nothing asked (a server's parting 408, say): nothing to read
            return
        mode = self._mode
        if mode == _HEAD:
            self._on_head_data(data)
        elif mode == _LENGTH:
            need = self._need
            if len(data) >= need:
                if self.keep_body:
                    self._body.append(data[:need])
                self._finish(b"".join(self._body))
            else:
                self._need = need - len(data)
                if self.keep_body:
                    self._body.append(data)
        elif mode == _CHUNKED:
            self._on_chunked_data(data)
        elif self.keep_body:  # _EOF
            self._body.append(data)

    def _on_head_data(self, data: bytes) -> None:
        if self._buf:
            data = self._buf + data
            self._buf = b""
        while True:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                if len(data) > MAX_HEAD:
                    self._fail()
                else:
                    self._buf = data
                return
            if data[:7] != b"HTTP/1." or data[12:13] not in (b" ", b"\r"):
                self._fail()
                return
            try:
                status = int(data[9:12])
            except ValueError:
                self._fail()
                return
            if 100 <= status < 200 and status != 101:  # interim (100 Continue): skip it
                data = data[end + 4 :]
                continue
            break
        head = data[:end]
        lowered = head.lower()
        self._status = status
        self._head = head
        self._close = b"\r\nconnection: close" in lowered or (
            data[7:8] == b"0" and b"\r\nconnection: keep-alive" not in lowered
        )
        start = end + 4
        if self._head_only or status in (204, 304):
            self._finish(b"")
            return
        at = lowered.find(b"\r\ncontent-length:")
        if at >= 0:
            stop = lowered.find(b"\r\n", at + 17)
            try:
                length = int(lowered[at + 17 : stop if stop >= 0 else len(lowered)])
            except ValueError:
                self._fail()
                return
            have = len(data) - start
            if have >= length:
                self._finish(data[start : start + length] if self.keep_body else b"")
                return
            self._mode = _LENGTH
            self._need = length - have
            if self.keep_body and have:
                self._body.append(data[start:])
            return
        if b"\r\ntransfer-encoding:" in lowered and b"chunked" in lowered:
            self._mode = _CHUNKED
            self._chunk_left = -1
            self._on_chunked_data(data[start:])
            return
        self._mode = _EOF
        self._close = True
        if self.keep_body and len(data) > start:
            self._body.append(data[start:])

    def _on_chunked_data(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        self._buf = b""
        pos = 0
        while True:
            left = self._chunk_left
            if left > 0:  # inside a chunk: its data, then its CRLF
                take = min(left, len(buf) - pos)
                if self.keep_body and take:
                    self._body.append(buf[pos : pos + take])
                pos += take
                self._chunk_left = left - take
                if self._chunk_left:
                    return
                self._chunk_left = -2  # the CRLF after the data is next
                continue
            if left == -2:
                if len(buf) - pos < 2:
                    self._buf = buf[pos:]
                    return
                pos += 2
                self._chunk_left = -1
                continue
            if left == -3:  # after the last chunk: trailers, then a blank line
                if buf[pos : pos + 2] == b"\r\n":
                    self._finish(b"".join(self._body))
                    return
                end = buf.find(b"\r\n\r\n", pos)
                if end < 0:
                    self._buf = buf[pos:]
                    return
                self._finish(b"".join(self._body))
                return
            eol = buf.find(b"\r\n", pos)  # a chunk-size line
            if eol < 0:
                if len(buf) - pos > MAX_HEAD:
                    self._fail()
                else:
                    self._buf = buf[pos:]
                return
            try:
                size = int(buf[pos:eol].split(b";", 1)[0], 16)
            except ValueError:
                self._fail()
                return
            pos = eol + 2
            self._chunk_left = size if size else -3

    def _finish(self, body: bytes) -> None:
        self.busy = False
        if self._close:
            self._close = False
            self.closed = True
            if self.transport is not None:
                self.transport.close()
        if self._mode != _HEAD:  # the common case (one read, whole) has nothing to reset
            self._reset()
        self.owner.on_response(self, self._status, self._head, body)

    def _fail(self) -> None:
        self.busy = False
        self.closed = True
        self._reset()
        if self.transport is not None:
            self.transport.abort()
        self.owner.on_failure(self, "read")

    def _reset(self) -> None:
        self._mode = _HEAD
        self._buf = b""
        self._need = 0
        if self._body:
            self._body = []
        self._close = False
