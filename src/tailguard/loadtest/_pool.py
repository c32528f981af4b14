"""A pool of keep-alive connections to one address, for the scenario client.

A request takes a connection (an idle one, a new one while under the limit, or the next one
released), writes, and waits on a future that the connection's callbacks resolve with
``(status, head, body)`` or an error kind. ``expire`` is the request's timeout timer.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from tailguard.loadtest._http import HttpConnection

__all__ = ["TIMEOUT", "Pool", "expire"]

TIMEOUT = "timeout"


class Pool:
    """Keep-alive connections to one address: at most ``limit`` open at once."""

    def __init__(self, host: str, port: int, limit: int, connect_timeout: float) -> None:
        self.host, self.port, self.limit, self.connect_timeout = host, port, limit, connect_timeout
        self.idle: list[HttpConnection] = []
        self.size = 0  # open, opening or checked out
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.closed = False

    async def acquire(self) -> HttpConnection:
        while True:
            while self.idle:
                conn = self.idle.pop()
                if not conn.closed:
                    return conn
                self.size -= 1
            if self.size < self.limit:
                self.size += 1
                try:
                    return await self._connect()
                except BaseException:
                    self.size -= 1
                    self._wake()
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self.waiters:
                    self.waiters.remove(waiter)
                elif not waiter.cancelled():
                    self._wake()  # it was woken for a slot it no longer wants
                raise

    async def _connect(self) -> HttpConnection:
        loop = asyncio.get_running_loop()
        _, conn = await asyncio.wait_for(
            loop.create_connection(lambda: HttpConnection(self), self.host, self.port),
            self.connect_timeout,
        )
        return conn

    def release(self, conn: HttpConnection) -> None:
        if conn.closed or self.closed:
            self.size -= 1
            conn.close()
        else:
            self.idle.append(conn)
        self._wake()

    def _wake(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        self.closed = True
        for conn in self.idle:
            conn.close()
        self.size -= len(self.idle)
        self.idle.clear()

    # -- HttpConnection's owner ------------------------------------------------------------------

    def on_response(self, conn: HttpConnection, status: int, head: bytes, body: bytes) -> None:
        waiter, conn.waiter = conn.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, head, body))

    def on_failure(self, conn: HttpConnection, kind: str) -> None:
        waiter, conn.waiter = conn.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(kind)

    def on_idle_lost(self, conn: HttpConnection) -> None:
        if conn in self.idle:
            self.idle.remove(conn)
            self.size -= 1


def expire(conn: HttpConnection, waiter: asyncio.Future[Any]) -> None:
    if conn.waiter is waiter:
        conn.waiter = None
        conn.abort()
        if not waiter.done():
            waiter.set_result(TIMEOUT)
