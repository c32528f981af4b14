"""BalancedTransport and response bodies: a request is in flight until its body ends, and a
retryable response held back is released however the request ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from tailguard.balance import BalancedTransport, Balancer, OutlierDetection, RoundRobin
from tailguard.errors import ConfigurationError
from tailguard.resilience import BreakerConfig, Retry
from tailguard.testing import ManualClock


class Body(httpx.AsyncByteStream):
    """Two chunks with ``gate`` between them; ``fail`` raises instead of the second."""

    def __init__(self, *, fail: bool = False, slow_close: bool = False) -> None:
        self.gate = asyncio.Event()
        self.fail = fail
        self.slow_close = slow_close
        self.closing = asyncio.Event()
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"x"
        await self.gate.wait()
        if self.fail:
            raise httpx.ReadError("peer went away mid-body")
        yield b"y"

    async def aclose(self) -> None:
        self.closing.set()
        if self.slow_close:
            for _ in range(5):
                await asyncio.sleep(0)
        self.closed = True


def transport(
    handler: Callable[[httpx.Request], httpx.Response], clock: ManualClock, **kw: object
) -> BalancedTransport:
    kw.setdefault("picker", RoundRobin)
    kw.setdefault("outlier", False)
    return BalancedTransport(
        ["http://10.0.0.1:8001", "http://10.0.0.2:8002"],
        transport=lambda: httpx.MockTransport(handler),
        clock=clock,
        **kw,  # type: ignore[arg-type]
    )


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def test_in_flight_and_latency_run_to_the_end_of_the_body() -> None:
    clock = ManualClock()
    body = Body()
    t = transport(lambda r: httpx.Response(200, stream=body), clock)
    a = t.balancer.endpoints[0]
    async with httpx.AsyncClient(transport=t) as c, c.stream("GET", "http://svc/") as r:
        assert a.in_flight == 1  # headers in, body still coming
        clock.advance(0.5)
        body.gate.set()
        assert await r.aread() == b"xy"
        assert a.in_flight == 0
    assert a.in_flight == 0  # closing after the end does not finish twice
    assert a.latency(clock.now()) == pytest.approx(0.5)


async def test_a_body_that_fails_is_a_failure_of_the_endpoint() -> None:
    clock = ManualClock()
    body = Body(fail=True)
    body.gate.set()
    t = transport(
        lambda r: httpx.Response(200, stream=body),
        clock,
        breaker=BreakerConfig(failure_threshold=1),
        outlier=OutlierDetection(consecutive_failures=1),
    )
    a = t.balancer.endpoints[0]
    async with httpx.AsyncClient(transport=t) as c:
        with pytest.raises(httpx.ReadError):
            await c.get("http://svc/")
    assert a.in_flight == 0
    assert a.breaker is not None
    assert a.breaker.state == "open"
    assert a.ejected(clock.now())


async def test_a_body_closed_unread_finishes_once_and_get_finishes_once() -> None:
    clock = ManualClock()
    bodies: list[Body] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/bytes":
            return httpx.Response(200, content=b"in memory")
        bodies.append(Body())
        bodies[-1].gate.set()
        return httpx.Response(200, stream=bodies[-1])

    t = transport(handler, clock, breaker=BreakerConfig(failure_threshold=1))
    eps = t.balancer.endpoints
    async with httpx.AsyncClient(transport=t) as c:
        async with c.stream("GET", "http://svc/") as r:
            assert r.status_code == 200
            assert [e.in_flight for e in eps] == [1, 0]
        assert bodies[0].closed
        assert [e.in_flight for e in eps] == [0, 0]
        assert (await c.get("http://svc/")).content == b"xy"
        assert (await c.get("http://svc/bytes")).content == b"in memory"
        assert (await c.get("http://svc/bytes")).content == b"in memory"
        response = await c.send(c.build_request("GET", "http://svc/"), stream=True)
        assert [e.in_flight for e in eps] == [1, 0]
        await response.aclose()
        await response.aclose()
    assert [e.in_flight for e in eps] == [0, 0]
    assert all(e.breaker is not None and e.breaker.state == "closed" for e in eps)


async def test_a_cancelled_body_read_is_neither_success_nor_failure() -> None:
    clock = ManualClock()
    body = Body()
    t = transport(
        lambda r: httpx.Response(200, stream=body),
        clock,
        breaker=BreakerConfig(failure_threshold=1),
    )
    a = t.balancer.endpoints[0]
    async with httpx.AsyncClient(transport=t) as c:
        task = asyncio.create_task(c.get("http://svc/"))
        await until(lambda: a.in_flight == 1)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert a.in_flight == 0
    assert a.breaker is not None
    assert a.breaker.state == "closed"
    assert a.latency(clock.now()) == 0.0  # no sample taken


async def test_a_held_response_is_released_when_cancelled_during_the_backoff() -> None:
    clock = ManualClock()
    bodies: list[Body] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(Body())
        return httpx.Response(503, stream=bodies[-1])

    retry = Retry(3, delay=5.0, max_delay=5.0, jitter="none", clock=clock)
    t = transport(handler, clock, retry=retry)
    async with httpx.AsyncClient(transport=t) as c:
        task = asyncio.create_task(c.get("http://svc/"))
        await until(lambda: clock.sleepers > 0)  # the first 503 is held, the backoff waits
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(bodies) == 1
    assert bodies[0].closed
    assert [e.in_flight for e in t.balancer.endpoints] == [0, 0]


async def test_releasing_a_held_response_survives_a_cancellation() -> None:
    clock = ManualClock()
    bodies: list[Body] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(Body(slow_close=True))
        return httpx.Response(503, stream=bodies[-1])

    t = transport(handler, clock, retry=3)
    async with httpx.AsyncClient(transport=t) as c:
        task = asyncio.create_task(c.get("http://svc/"))
        await until(lambda: bool(bodies) and bodies[0].closing.is_set())
        task.cancel()  # while the next attempt closes the 503 it held
        with pytest.raises(asyncio.CancelledError):
            await task
        await until(lambda: bodies[0].closed)
    assert len(bodies) == 1


async def test_endpoints_must_be_http_urls() -> None:
    for address in ("10.0.0.7:8000", "localhost:8000", "ftp://h/", "http:///x"):
        with pytest.raises(ConfigurationError):
            BalancedTransport([address])
    with pytest.raises(ConfigurationError):
        BalancedTransport(Balancer(["a"]))
    t = BalancedTransport(
        ["http://a"], transport=lambda: httpx.MockTransport(lambda r: httpx.Response(200))
    )
    t.balancer.picker.replace(["b:80"])  # added later: refused at its first request
    async with httpx.AsyncClient(transport=t) as c:
        with pytest.raises(ConfigurationError):
            await c.get("http://svc/")
