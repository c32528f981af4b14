"""BalancedSession against an aiohttp server on a loopback port: headers in any form aiohttp
takes, and a request in flight until its body ends or the response is released."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web

from tailguard.balance import BalancedSession, Balancer, RoundRobin
from tailguard.errors import ConfigurationError
from tailguard.resilience import BreakerConfig

pytestmark = pytest.mark.timeout(30)


class Server:
    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.hits: list[str] = []
        self.url = ""
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(f"{request.method} {request.path}")
        if request.path == "/busy":
            return web.Response(status=503, text="busy")
        if request.path in ("/stream", "/broken"):
            response = web.StreamResponse(headers={"Content-Length": "2"})
            await response.prepare(request)
            await response.write(b"x")
            await self.gate.wait()
            if request.path == "/broken":
                assert request.transport is not None
                request.transport.abort()  # the server goes away mid-body
                return response
            await response.write(b"y")
            await response.write_eof()
            return response
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    s = Server()
    await s.start()
    yield s
    s.gate.set()
    assert s.runner is not None
    await s.runner.cleanup()


def session(server: Server, **kw: object) -> BalancedSession:
    kw.setdefault("picker", RoundRobin)
    kw.setdefault("outlier", False)
    kw.setdefault("breaker", BreakerConfig(failure_threshold=1))
    return BalancedSession([server.url], **kw)  # type: ignore[arg-type]


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(5000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never held")


async def test_headers_as_pairs_or_a_multidict(server: Server) -> None:
    async with session(server, breaker=None) as s:
        for headers in ([("X-A", "1")], (("X-A", "1"),), {"X-A": "1"}, None):
            response = await s.get("/x", headers=headers)
            async with response:
                assert response.status == 200
        server.hits.clear()
        response = await s.post("/busy", headers=[("Idempotency-Key", "k1")])
        async with response:
            assert response.status == 503
    assert server.hits == ["POST /busy"] * 3  # the key in a list of pairs made it retryable


async def test_in_flight_until_the_body_ends_and_finished_once(server: Server) -> None:
    async with session(server) as s:
        (ep,) = s.balancer.endpoints
        response = await s.get("/stream")
        assert ep.in_flight == 1  # headers in, body still coming
        server.gate.set()
        async with response:
            assert await response.read() == b"xy"
        assert ep.in_flight == 0
        response.release()
        response.close()
        assert ep.in_flight == 0
        for _ in range(3):
            response = await s.get("/x")
            async with response:
                assert await response.text() == "ok"
        assert ep.in_flight == 0
    assert ep.breaker is not None
    assert ep.breaker.state == "closed"


async def test_a_response_released_unread_is_finished(server: Server) -> None:
    async with session(server) as s:
        (ep,) = s.balancer.endpoints
        async with await s.get("/stream"):
            assert ep.in_flight == 1
        assert ep.in_flight == 0
        assert ep.breaker is not None
        assert ep.breaker.state == "closed"


async def test_a_body_cut_short_is_a_failure_of_the_endpoint(server: Server) -> None:
    async with session(server) as s:
        (ep,) = s.balancer.endpoints
        response = await s.get("/broken")
        server.gate.set()
        with pytest.raises(aiohttp.ClientPayloadError):
            async with response:
                await response.read()
        assert ep.in_flight == 0
        assert ep.breaker is not None
        assert ep.breaker.state == "open"


async def test_a_cancelled_body_read_is_neither_success_nor_failure(server: Server) -> None:
    async with session(server) as s:
        (ep,) = s.balancer.endpoints
        started = asyncio.Event()

        async def fetch() -> bytes:
            response = await s.get("/stream")
            started.set()
            async with response:
                return await response.read()

        task = asyncio.create_task(fetch())
        await started.wait()
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert ep.in_flight == 0
        assert ep.breaker is not None
        assert ep.breaker.state == "closed"
        assert ep.latency(0.0) == 0.0  # no sample taken


async def test_endpoints_must_be_http_urls() -> None:
    for address in ("10.0.0.7:8000", "localhost:8000", "ftp://h/"):
        with pytest.raises(ConfigurationError):
            BalancedSession([address])
    with pytest.raises(ConfigurationError):
        BalancedSession(Balancer(["a"]))
