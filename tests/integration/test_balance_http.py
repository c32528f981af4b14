"""tailguard.balance against real HTTP servers on loopback ports.

Four tiny HTTP/1.1 servers (``asyncio.start_server``, keep-alive, a 1 ms think time so that
requests overlap) run in the test's own event loop. 600 GETs go through the httpx transport and
then through the aiohttp session, 20 at a time; after 200 of them one server is stopped (its
listening socket closed and its open connections aborted, in-flight requests included). No GET
may fail: each one that hit the dead server is retried on another.

POSTs are not idempotent. The rule asserted here: a POST is sent again only when the first
attempt proves it never left (the connection was refused); when a server read it and then
dropped the connection, the POST fails and no other server ever sees it, so every POST is
processed at most once.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import httpx
import pytest

from tailguard.balance import BalancedSession, BalancedTransport, RoundRobin
from tailguard.resilience import Retry
from tailguard.testing import ManualClock

REQUESTS = 600
CONCURRENCY = 20
KILL_AFTER = 200

pytestmark = pytest.mark.timeout(30)


class Backend:
    """A keep-alive HTTP/1.1 server answering its own name; ``drop=True`` reads a request,
    counts it, and closes the connection without answering."""

    def __init__(
        self, name: str, *, drop: bool = False, think: float = 0.001, status: int = 200
    ) -> None:
        self.name = name
        self.drop = drop
        self.status = status
        self.think = think
        self.counts: collections.Counter[str] = collections.Counter()
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                method = head.split(" ", 1)[0]
                length = 0
                for line in head.split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
                self.counts[method] += 1
                if self.drop:
                    writer.transport.abort()
                    return
                await asyncio.sleep(self.think)
                body = self.name.encode()
                writer.write(
                    b"HTTP/1.1 %d X\r\nContent-Type: text/plain\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (self.status, len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self.writers.discard(writer)
            writer.transport.abort()

    async def stop(self) -> None:
        """Close the listening socket and abort every open connection."""
        if self.server is not None:
            self.server.close()
            for writer in list(self.writers):
                writer.transport.abort()
            await self.server.wait_closed()
            self.server = None


@pytest.fixture
async def backends() -> AsyncIterator[list[Backend]]:
    servers = [Backend(f"s{i}") for i in range(4)]
    for s in servers:
        await s.start()
    yield servers
    for s in servers:
        await s.stop()


async def run_load(
    get: Callable[[int], Awaitable[tuple[int, str]]], victim: Backend
) -> dict[str, int]:
    """REQUESTS calls of ``get`` by CONCURRENCY workers; ``victim`` stops after KILL_AFTER.
    Returns the answers by server name; raises if any call failed."""
    answers: collections.Counter[str] = collections.Counter()
    failures: list[BaseException] = []
    done = 0
    next_i = 0
    killed = asyncio.Event()
    half = asyncio.Event()

    async def worker() -> None:
        nonlocal done, next_i
        while next_i < REQUESTS:
            i = next_i
            next_i += 1
            try:
                status, name = await get(i)
                assert status == 200, status
                answers[name] += 1
            except Exception as exc:  # every failure is reported below, not just the first
                failures.append(exc)
            done += 1
            if done == KILL_AFTER:
                half.set()

    async def killer() -> None:
        await half.wait()
        await victim.stop()
        killed.set()

    kill_task = asyncio.create_task(killer())
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    await kill_task
    assert killed.is_set()
    assert not failures, f"{len(failures)} GETs failed, e.g. {failures[0]!r}"
    assert sum(answers.values()) == REQUESTS
    return dict(answers)


def check_spread(answers: dict[str, int], backends: list[Backend]) -> None:
    victim, *rest = backends
    assert 0 < answers.get(victim.name, 0) < KILL_AFTER + CONCURRENCY  # served until stopped
    for s in rest:  # the survivors took the traffic
        assert answers[s.name] > (REQUESTS - KILL_AFTER) / len(rest) / 3, answers


async def test_httpx_transport_loses_no_get_when_a_server_dies(backends: list[Backend]) -> None:
    transport = BalancedTransport([b.url for b in backends])
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:

        async def get(i: int) -> tuple[int, str]:
            r = await client.get(f"/items/{i}")
            return r.status_code, r.text

        answers = await run_load(get, backends[0])
    check_spread(answers, backends)
    assert backends[0].url in {e.address for e in transport.balancer.endpoints if e.ejections}


async def test_aiohttp_session_loses_no_get_when_a_server_dies(backends: list[Backend]) -> None:
    async with BalancedSession([b.url for b in backends]) as session:

        async def get(i: int) -> tuple[int, str]:
            r = await session.get(f"/items/{i}")
            async with r:
                return r.status, await r.text()

        answers = await run_load(get, backends[0])
    check_spread(answers, backends)


async def post_through(kind: str, urls: list[str]) -> tuple[int, str]:
    """One POST through a round-robin adapter of ``kind`` whose first pick is ``urls[0]``."""
    if kind == "httpx":
        transport = BalancedTransport(urls, picker=RoundRobin)
        async with httpx.AsyncClient(transport=transport) as client:
            r = await client.post("http://shop/orders", content=b'{"sku": 1}')
            return r.status_code, r.text
    async with BalancedSession(urls, picker=RoundRobin) as session:
        response = await session.post("/orders", data=b'{"sku": 1}')
        async with response:
            return response.status, await response.text()


@pytest.mark.parametrize("kind", ["httpx", "aiohttp"])
async def test_a_post_to_a_dead_server_is_sent_elsewhere_once(
    kind: str, backends: list[Backend]
) -> None:
    dead, alive = backends[0], backends[1]
    await dead.stop()  # connection refused: the POST provably never left
    status, name = await post_through(kind, [dead.url, alive.url])
    assert (status, name) == (200, alive.name)
    assert sum(b.counts["POST"] for b in backends) == 1


@pytest.mark.parametrize("kind", ["httpx", "aiohttp"])
async def test_a_post_that_may_have_been_processed_is_never_sent_twice(
    kind: str, backends: list[Backend]
) -> None:
    dropper = Backend("dropper", drop=True)
    await dropper.start()
    try:
        errors = (httpx.TransportError, aiohttp.ClientError)
        with pytest.raises(errors):
            await post_through(kind, [dropper.url, backends[1].url])
        assert dropper.counts["POST"] == 1
        assert sum(b.counts["POST"] for b in backends) == 0
        # The same failure on a GET is retried on the other server.
        dropper.counts.clear()
        urls = [dropper.url, backends[1].url]
        if kind == "httpx":
            transport = BalancedTransport(urls, picker=RoundRobin)
            async with httpx.AsyncClient(transport=transport) as client:
                assert (await client.get("http://shop/items/1")).text == backends[1].name
        else:
            async with BalancedSession(urls, picker=RoundRobin) as session:
                response = await session.get("/items/1")
                async with response:
                    assert await response.text() == backends[1].name
        assert dropper.counts["GET"] >= 1
        assert backends[1].counts["GET"] == 1
    finally:
        await dropper.stop()


async def test_a_503_held_during_a_cancelled_backoff_gives_its_connection_back() -> None:
    """One connection per endpoint: a 503 held for a retry, then the request cancelled during
    the backoff; the next request must still get the connection."""
    busy = Backend("busy", status=503)
    await busy.start()
    clock = ManualClock()
    limits = httpx.Limits(max_connections=1)
    transport = BalancedTransport(
        [busy.url],
        outlier=False,
        retry=Retry(2, delay=5.0, max_delay=5.0, jitter="none", clock=clock),
        transport=lambda: httpx.AsyncHTTPTransport(limits=limits),
    )
    try:
        timeout = httpx.Timeout(2.0, pool=1.0)
        async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
            task = asyncio.create_task(client.get("http://shop/items/1"))
            for _ in range(2000):
                if clock.sleepers:
                    break
                await asyncio.sleep(0.001)
            assert clock.sleepers == 1  # the 503 is held, the backoff waits
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            task = asyncio.create_task(client.get("http://shop/items/2"))
            for _ in range(2000):
                if clock.sleepers:
                    break
                await asyncio.sleep(0.001)
            clock.advance(5.0)
            response = await task  # no PoolTimeout: the first connection came back
        assert response.status_code == 503
        assert busy.counts["GET"] == 3
        assert transport.balancer.endpoints[0].in_flight == 0
    finally:
        await busy.stop()
