"""BalancedTransport at the adapter seam: an httpx.MockTransport answers for every endpoint."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tailguard.balance import BalancedTransport, Balancer, IPHash, RoundRobin
from tailguard.resilience import RetryBudget

URLS = ["http://10.0.0.1:8001", "http://10.0.0.2:8002/api", "http://10.0.0.3:8003"]


def mock(handler: Callable[[httpx.Request], httpx.Response]) -> Callable[[], httpx.MockTransport]:
    return lambda: httpx.MockTransport(handler)


def client(handler: Callable[[httpx.Request], httpx.Response], **kw: object) -> httpx.AsyncClient:
    kw.setdefault("picker", RoundRobin)
    transport = BalancedTransport(URLS, transport=mock(handler), **kw)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://catalog")


async def test_requests_are_rewritten_to_each_endpoint_in_turn() -> None:
    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers["host"]))
        return httpx.Response(200, text="ok")

    async with client(handler) as c:
        for _ in range(3):
            assert (await c.get("/items/7", params={"q": "x"})).text == "ok"
    assert seen == [
        ("http://10.0.0.1:8001/items/7?q=x", "10.0.0.1:8001"),
        ("http://10.0.0.2:8002/api/items/7?q=x", "10.0.0.2:8002"),
        ("http://10.0.0.3:8003/items/7?q=x", "10.0.0.3:8003"),
    ]


def failing_on(port: int, exc: type[Exception], log: list[str]) -> Callable[..., httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        log.append(f"{request.method} {request.url.port}")
        if request.url.port == port:
            raise exc("down", request=request)  # type: ignore[call-arg]
        return httpx.Response(200, text=str(request.url.port))

    return handler


@pytest.mark.parametrize("exc", [httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError])
async def test_a_get_is_retried_on_another_endpoint(exc: type[Exception]) -> None:
    log: list[str] = []
    async with client(failing_on(8001, exc, log)) as c:
        response = await c.get("/x")
    assert response.status_code == 200
    assert response.text != "8001"
    assert log == ["GET 8001", f"GET {response.text}"]  # the retry went elsewhere


async def test_a_post_is_retried_only_when_it_never_left() -> None:
    log: list[str] = []
    async with client(failing_on(8001, httpx.ConnectError, log)) as c:
        r = await c.post("/orders", content=b"{}")
    assert log == ["POST 8001", f"POST {r.text}"]
    assert r.text != "8001"
    log.clear()
    async with client(failing_on(8001, httpx.ReadError, log)) as c:
        with pytest.raises(httpx.ReadError):
            await c.post("/orders", content=b"{}")
    assert log == ["POST 8001"]  # it may have been processed: never sent twice
    log.clear()
    async with client(failing_on(8001, httpx.ReadError, log)) as c:
        r = await c.post("/orders", content=b"{}", headers={"Idempotency-Key": "k1"})
    assert log == ["POST 8001", f"POST {r.text}"]
    assert r.text != "8001"


async def test_a_streamed_body_is_not_sent_twice() -> None:
    log: list[str] = []

    async def body():  # type: ignore[no-untyped-def]
        yield b"chunk"

    async with client(failing_on(8001, httpx.ReadError, log)) as c:
        with pytest.raises(httpx.ReadError):
            await c.put("/x", content=body())
    assert log == ["PUT 8001"]


async def test_retryable_statuses_move_on_and_the_last_one_is_returned() -> None:
    ports: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        ports.append(request.url.port or 0)
        return httpx.Response(503 if request.url.port == 8001 else 200)

    async with client(handler) as c:
        assert (await c.get("/x")).status_code == 200
        assert ports[0] == 8001
        assert len(ports) == 2
        assert ports[1] != 8001
        ports.clear()
        while (await c.get("/y")).status_code == 200 and ports[-1] != 8003:
            pass  # bring the round robin back to 8001
        ports.clear()
        assert (await c.post("/x")).status_code == 503  # not idempotent: returned as is
        assert len(ports) == 1

    async with client(lambda r: httpx.Response(503), retry=2) as c:
        assert (await c.get("/x")).status_code == 503  # out of attempts: the last answer


async def test_failures_eject_the_endpoint_and_retries_respect_the_budget() -> None:
    log: list[str] = []
    budget = RetryBudget(0.0, min_per_second=0.0)  # no retries allowed at all
    async with client(failing_on(8001, httpx.ConnectError, log), retry=budget) as c:
        with pytest.raises(httpx.ConnectError) as info:
            await c.get("/x")
    assert log == ["GET 8001"]
    assert any("budget" in note for note in getattr(info.value, "__notes__", []))


async def test_a_shared_balancer_with_ip_hash_keys_and_aclose() -> None:
    closed: list[int] = []

    class Tracked(httpx.MockTransport):
        async def aclose(self) -> None:
            closed.append(1)

    balancer = Balancer(IPHash(URLS))
    transport = BalancedTransport(
        balancer,
        key=lambda r: r.headers.get("x-client-ip"),
        transport=lambda: Tracked(lambda r: httpx.Response(200, text=str(r.url.port))),
    )
    async with httpx.AsyncClient(transport=transport) as c:
        answers = {
            (await c.get("http://x/", headers={"x-client-ip": "203.0.113.9"})).text
            for _ in range(5)
        }
    assert len(answers) == 1  # one client, one endpoint
    assert closed == [1]
    assert transport.balancer is balancer
    assert "BalancedTransport" in repr(transport)


def test_error_kinds() -> None:
    t = BalancedTransport(URLS)
    req = httpx.Request("GET", "http://x")
    assert t.error_kind(httpx.ConnectTimeout("t", request=req)) == "unsent"
    assert t.error_kind(httpx.ReadTimeout("t", request=req)) == "sent"
    assert t.error_kind(httpx.UnsupportedProtocol("t", request=req)) is None
    assert t.error_kind(ValueError()) is None


async def test_retries_are_the_same_whether_retry_runs_from_the_start_or_takes_over() -> None:
    """Without a deadline the first attempt runs before ``Retry`` (which takes over only when
    it must retry); under a ``Timeout`` ``Retry`` runs from the start. Same sends, same events,
    same budget."""
    from tailguard.events import Event, HookRegistry, RetryGaveUp, RetryScheduled
    from tailguard.resilience import Timeout
    from tailguard.testing import RecordingHook

    async def scenario(under_timeout: bool) -> tuple[list[str], list[Event], list[int], float]:
        log: list[str] = []
        hooks = HookRegistry()
        recorder = RecordingHook(hooks, RetryScheduled, RetryGaveUp)
        budget = RetryBudget()

        def handler(request: httpx.Request) -> httpx.Response:
            log.append(f"{request.method} {request.url.path} {request.url.port}")
            if request.url.port == 8001:
                raise httpx.ConnectError("refused", request=request)
            return httpx.Response(503 if request.url.path.endswith("/busy") else 200)

        statuses = []
        async with client(handler, retry=budget, hooks=hooks) as c:
            for path in ("/x", "/x", "/busy", "/x", "/y"):
                if under_timeout:
                    async with Timeout(60.0):
                        statuses.append((await c.get(path)).status_code)
                else:
                    statuses.append((await c.get(path)).status_code)
        return log, recorder.events, statuses, budget.balance()

    fast, general = await scenario(False), await scenario(True)
    assert fast == general
    log, events, statuses, balance = fast
    assert statuses == [200, 200, 503, 200, 200]
    assert log == [
        "GET /x 8001", "GET /x 8003",  # refused: never left, so sent elsewhere
        "GET /x 8003",
        "GET /busy 8001", "GET /api/busy 8002", "GET /busy 8003",  # out of attempts: the 503
        "GET /x 8001", "GET /x 8003",
        "GET /y 8003",
    ]  # fmt: skip
    assert [type(e).__name__ for e in events] == [
        "RetryScheduled", "RetryScheduled", "RetryScheduled", "RetryGaveUp", "RetryScheduled",
    ]  # fmt: skip
    retries = 4
    assert balance == pytest.approx(0.2 * 5 + 100 - retries)  # one deposit per request
