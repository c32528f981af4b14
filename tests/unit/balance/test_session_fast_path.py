"""BalancedSession's fast path (the first attempt made inline in ``request``) against the
general path (a ``Call`` driven by ``Retry`` from the start, which a ``Timeout`` forces): the
same requests leave the same in-flight counts, latencies, ejections, breaker states, retry
budget and events. Also: a response is freed by reference counting once released (no cycle
left for the garbage collector), and a request cancelled while it is sent is neither success
nor failure on either path."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import weakref
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from tailguard.balance import BalancedSession, OutlierDetection, RoundRobin
from tailguard.events import (
    CircuitStateChanged,
    EndpointEjected,
    HookRegistry,
    RetryGaveUp,
    RetryScheduled,
)
from tailguard.resilience import BreakerConfig, RetryBudget, Timeout
from tailguard.testing import ManualClock, RecordingHook

pytestmark = pytest.mark.timeout(30)


@dataclass
class Backend:
    """An aiohttp server in the test's loop. Each answer first moves ``clock`` on by 0.25 s,
    so every latency the balancer records is known exactly."""

    name: str
    clock: ManualClock
    hits: list[str] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    runner: web.AppRunner | None = None
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(f"{request.method} {request.path}")
        self.clock.advance(0.25)
        if request.path == "/fail":
            return web.Response(status=500, text="fail")
        flaky = request.path == "/flaky" and self.hits.count("GET /flaky") == 1  # the first
        if request.path == "/busy" or flaky:
            return web.Response(status=503, text="busy")
        if request.path == "/hold":
            await self.gate.wait()
        if request.path == "/stream":  # headers and a first byte, then the rest 1 s later
            response = web.StreamResponse(headers={"Content-Length": "2"})
            await response.prepare(request)
            await response.write(b"x")
            await asyncio.sleep(0.01)
            self.clock.advance(1.0)
            with contextlib.suppress(ConnectionError):  # the client may have let go
                await response.write(b"y")
                await response.write_eof()
            return response
        return web.Response(text=self.name)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        self.gate.set()
        if self.runner is not None:
            await self.runner.cleanup()


def refused_url() -> str:
    """A loopback URL nothing listens on: a connection to it is refused (never sent)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@dataclass
class Run:
    """What one scenario left behind, for comparing the two paths."""

    answers: list[tuple[int, str]]
    endpoints: list[tuple[str, int, float, int, bool, str]]
    hits: dict[str, list[str]]
    events: list[tuple[object, ...]]
    budget: float


SCENARIO = [  # (method, path); see Backend.handle. Round robin over a, b and a dead one.
    ("GET", "/ok"),
    ("GET", "/ok"),
    ("GET", "/ok"),  # the dead endpoint refuses the connection: retried elsewhere
    ("GET", "/flaky"),  # 503 from each backend the first time: held, discarded, retried
    ("GET", "/fail"),  # 500: a failure, not retried
    ("POST", "/ok"),  # not idempotent, but a refused connection proves it never left
    ("POST", "/fail"),
    ("GET", "/busy"),  # 503 everywhere: the last 503 is returned once the retries run out
    ("GET", "/stream"),  # in flight until the body has been read, 1.25 s after it started
    ("GET", "/ok"),
    ("GET", "/flaky"),
]


@pytest.fixture
async def backends() -> AsyncIterator[tuple[ManualClock, list[Backend]]]:
    clock = ManualClock()
    servers = [Backend("a", clock), Backend("b", clock)]
    for s in servers:
        await s.start()
    yield clock, servers
    for s in servers:
        await s.stop()


async def scenario(clock: ManualClock, servers: list[Backend], *, under_timeout: bool) -> Run:
    dead = refused_url()
    hooks = HookRegistry()
    recorder = RecordingHook(hooks, RetryScheduled, RetryGaveUp, EndpointEjected,
                             CircuitStateChanged)  # fmt: skip
    budget = RetryBudget()
    session = BalancedSession(
        [servers[0].url, servers[1].url, dead],
        picker=RoundRobin,
        retry=budget,
        outlier=OutlierDetection(consecutive_failures=2, base_ejection_time=30.0),
        breaker=BreakerConfig(failure_threshold=3),
        clock=clock,
        hooks=hooks,
    )
    answers: list[tuple[int, str]] = []
    async with session:
        for method, path in SCENARIO:
            try:
                if under_timeout:
                    async with Timeout(60.0):
                        response = await session.request(method, path)
                else:
                    response = await session.request(method, path)
            except aiohttp.ClientError as exc:
                answers.append((0, type(exc).__name__))
                continue
            async with response:
                answers.append((response.status, await response.text()))
    names = {servers[0].url: "a", servers[1].url: "b", dead: "dead"}
    now = clock.now()
    endpoints = [
        (
            names[e.address],
            e.in_flight,
            round(e.latency(now), 9),
            e.ejections,
            e.ejected(now),
            e.breaker.state if e.breaker is not None else "-",
        )
        for e in session.balancer.endpoints
    ]
    events: list[tuple[object, ...]] = []
    for event in recorder.events:
        if isinstance(event, EndpointEjected):
            events.append(("ejected", names[event.address], event.ejections))
        elif isinstance(event, CircuitStateChanged):
            events.append(("breaker", names[event.name.split(":", 1)[1]], event.new))
        elif isinstance(event, RetryScheduled):
            events.append(("retry", event.attempt, event.error))
        elif isinstance(event, RetryGaveUp):
            events.append(("gave up", event.attempts, event.reason, event.error))
    hits = {s.name: list(s.hits) for s in servers}
    for s in servers:
        s.hits.clear()
    return Run(answers, endpoints, hits, events, budget.balance())


async def test_the_fast_path_and_the_general_path_leave_the_same_state(
    backends: tuple[ManualClock, list[Backend]],
) -> None:
    clock, servers = backends
    fast = await scenario(clock, servers, under_timeout=False)
    general = await scenario(clock, servers, under_timeout=True)
    assert fast == general
    # And what they both left is what the scenario means:
    assert [status for status, _ in fast.answers] == [
        200, 200, 200, 503, 500, 200, 500, 503, 200, 200, 200,
    ]  # fmt: skip
    assert [e[1] for e in fast.endpoints] == [0, 0, 0]  # nothing left in flight
    a, b, dead = fast.endpoints
    assert 1.0 < a[2] < 1.25  # the stream's 1.25 s peak, decaying, blended with 0.25 s since
    assert dead[3:5] == (1, True)  # refused twice in a row: ejected
    assert ("ejected", "dead", 1) in fast.events
    assert b[5] == "open"  # three failures in a row: 503, 500 and 500
    assert ("breaker", "b", "open") in fast.events
    assert fast.events.count(("gave up", 3, "attempts", "_Again")) == 2
    # One deposit per request (x 0.2), one withdrawal per retry, the floor 10/s x 10 s.
    retries = sum(1 for e in fast.events if e[0] == "retry")
    assert retries == 5
    assert fast.budget == pytest.approx(0.2 * len(SCENARIO) + 100 - retries)


async def test_latency_runs_to_the_end_of_a_streamed_body_on_the_fast_path(
    backends: tuple[ManualClock, list[Backend]],
) -> None:
    clock, servers = backends
    session = BalancedSession([servers[0].url], picker=RoundRobin, clock=clock)
    async with session:
        (a,) = session.balancer.endpoints
        response = await session.get("/stream")
        assert a.in_flight == 1  # headers in, body still coming
        async with response:
            assert await response.read() == b"xy"
        assert a.in_flight == 0
        assert a.latency(clock.now()) == pytest.approx(1.25)  # 0.25 to headers, 1 s more
        response = await session.get("/ok")
        async with response:
            assert await response.text() == "a"  # came with the headers: finished at once
        assert a.in_flight == 0


@pytest.mark.parametrize("under_timeout", [False, True])
async def test_a_request_cancelled_while_sent_is_neither_success_nor_failure(
    backends: tuple[ManualClock, list[Backend]], under_timeout: bool
) -> None:
    clock, servers = backends
    budget = RetryBudget()
    session = BalancedSession(
        [servers[0].url],
        picker=RoundRobin,
        retry=budget,
        breaker=BreakerConfig(failure_threshold=1),
        clock=clock,
    )
    async with session:
        (a,) = session.balancer.endpoints

        async def get() -> None:
            if under_timeout:
                async with Timeout(60.0):
                    await session.get("/hold")
            else:
                await session.get("/hold")

        task = asyncio.create_task(get())
        for _ in range(2000):
            if servers[0].hits:
                break
            await asyncio.sleep(0.001)
        assert a.in_flight == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert a.in_flight == 0
        assert a.breaker is not None
        assert a.breaker.state == "closed"
        assert a.latency(clock.now()) == 0.0  # no sample taken
    assert budget.balance() == pytest.approx(0.2 + 100)  # the request was counted once


@pytest.mark.parametrize("path", ["/ok", "/stream"])
@pytest.mark.parametrize("read", [True, False])
async def test_a_released_response_is_freed_without_the_garbage_collector(
    backends: tuple[ManualClock, list[Backend]], path: str, read: bool
) -> None:
    clock, servers = backends
    async with BalancedSession([servers[0].url], picker=RoundRobin, clock=clock) as session:
        (a,) = session.balancer.endpoints
        with no_gc():
            for _ in range(3):
                response = await session.get(path)
                async with response:
                    if read:
                        await response.read()
                ref = weakref.ref(response)
                del response
                assert ref() is None  # no reference cycle kept it alive
        assert a.in_flight == 0
