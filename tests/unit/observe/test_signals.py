"""GoldenSignals, @monitor and metrics_app on real ASGI apps (FastAPI, Starlette)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from tailguard.observe import GoldenSignals, metrics_app, monitor
from tailguard.observe.signals import UNMATCHED


def shop(registry: CollectorRegistry) -> Any:
    app = FastAPI()

    @app.get("/users/{uid}")
    async def user(uid: int) -> dict[str, int]:
        return {"id": uid}

    @app.get("/boom")
    async def boom() -> None:
        raise ValueError("boom")

    @app.get("/busy")
    async def busy() -> JSONResponse:
        return JSONResponse({"detail": "busy"}, status_code=503)

    app.add_middleware(GoldenSignals, registry=registry)
    app.mount("/metrics", metrics_app(registry))
    return app


def value(registry: CollectorRegistry, metric: str, /, **labels: str) -> float:
    got = registry.get_sample_value(metric, labels)
    return 0.0 if got is None else got


def series(registry: CollectorRegistry, prefix: str) -> int:
    return sum(
        1
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name.startswith(prefix)
    )


async def call(app: Any, path: str, method: str = "GET") -> int:
    """One request straight through the ASGI app (no client library): fast enough for 10,000."""
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "headers": [(b"host", b"t")], "client": ("127.0.0.1", 1),
        "server": ("t", 80),
    }  # fmt: skip
    await app(scope, receive, send)
    return status


async def test_ten_thousand_ids_make_no_new_series() -> None:
    registry = CollectorRegistry()
    app = shop(registry)
    await call(app, "/users/0")
    before = series(registry, "tailguard_http")
    for uid in range(1, 10_001):
        assert await call(app, f"/users/{uid}") == 200
    assert series(registry, "tailguard_http") == before
    labels = {"route": "/users/{uid}", "method": "GET", "status_class": "2xx"}
    assert value(registry, "tailguard_http_requests_total", **labels) == 10_001
    assert value(registry, "tailguard_http_request_duration_seconds_count", **labels) == 10_001


async def test_errors_by_exception_type_and_by_5xx_status() -> None:
    registry = CollectorRegistry()
    app = shop(registry)
    with pytest.raises(ValueError):
        await call(app, "/boom")
    assert await call(app, "/busy") == 503
    assert await call(app, "/nowhere") == 404
    err = "tailguard_http_request_errors_total"
    assert value(registry, err, route="/boom", method="GET", error="ValueError") == 1
    assert value(registry, err, route="/busy", method="GET", error="503") == 1
    req = "tailguard_http_requests_total"
    assert value(registry, req, route="/boom", method="GET", status_class="5xx") == 1
    assert value(registry, req, route="/busy", method="GET", status_class="5xx") == 1
    # An unmatched path is one label, not the raw path; a 404 is not an error.
    assert value(registry, req, route=UNMATCHED, method="GET", status_class="4xx") == 1
    assert value(registry, err, route=UNMATCHED, method="GET", error="404") == 0


async def test_unknown_methods_are_one_label() -> None:
    registry = CollectorRegistry()
    app = shop(registry)
    for verb in ("FOO", "BAR", "PROPFIND"):
        await call(app, "/users/1", method=verb)
    assert value(
        registry, "tailguard_http_requests_total",
        route="/users/{uid}", method="other", status_class="4xx",
    ) == 3  # fmt: skip


async def test_in_flight_counts_requests_being_served() -> None:
    registry = CollectorRegistry()
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(request: Any) -> PlainTextResponse:
        entered.set()
        await release.wait()
        return PlainTextResponse("ok")

    app = GoldenSignals(Starlette(routes=[Route("/slow/{n}", slow)]), registry=registry)
    task = asyncio.create_task(call(app, "/slow/1"))
    await entered.wait()
    assert value(registry, "tailguard_http_requests_in_flight") == 1
    release.set()
    assert await task == 200
    assert value(registry, "tailguard_http_requests_in_flight") == 0
    # Starlette's template, too.
    labels = {"route": "/slow/{n}", "method": "GET", "status_class": "2xx"}
    assert value(registry, "tailguard_http_requests_total", **labels) == 1


async def test_metrics_app_serves_the_registry_and_is_not_itself_recorded() -> None:
    registry = CollectorRegistry()
    app = shop(registry)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", follow_redirects=True
    ) as client:
        assert (await client.get("/users/7")).status_code == 200
        text = (await client.get("/metrics")).text
        assert 'tailguard_http_requests_total{method="GET",route="/users/{uid}"' in text
        assert "/metrics" not in text  # the scrape is not a request of the service
        om = await client.get("/metrics", headers={"accept": "application/openmetrics-text"})
        assert om.headers["content-type"].startswith("application/openmetrics-text")


async def test_websocket_and_lifespan_scopes_pass_through() -> None:
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    registry = CollectorRegistry()
    app = GoldenSignals(inner, registry=registry)
    await app({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    await app({"type": "websocket", "path": "/ws"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan", "websocket"]
    assert series(registry, "tailguard_http_requests_total") == 0


async def test_monitor_records_async_and_sync_calls_with_errors_by_type() -> None:
    registry = CollectorRegistry()
    inside: list[float] = []

    @monitor("pay", registry=registry)
    async def pay(amount: int) -> int:
        inside.append(value(registry, "tailguard_calls_in_flight", name="pay"))
        if amount < 0:
            raise ValueError(amount)
        return amount

    @monitor("tax", registry=registry)
    def tax(amount: int) -> float:
        return amount * 0.2

    assert await pay(3) == 3
    with pytest.raises(ValueError):
        await pay(-1)
    assert tax(10) == 2.0
    assert inside == [1, 1]
    assert value(registry, "tailguard_calls_in_flight", name="pay") == 0
    assert value(registry, "tailguard_calls_total", name="pay", outcome="ok") == 1
    assert value(registry, "tailguard_calls_total", name="pay", outcome="error") == 1
    assert value(registry, "tailguard_call_errors_total", name="pay", error="ValueError") == 1
    assert value(registry, "tailguard_call_duration_seconds_count", name="tax", outcome="ok") == 1
    assert pay.__name__ == "pay"  # the signature is kept (mypy checks the types)


async def test_monitor_records_a_cancelled_call_apart_from_errors() -> None:
    registry = CollectorRegistry()

    @monitor("wait", registry=registry)
    async def wait() -> None:
        await asyncio.Event().wait()

    task = asyncio.create_task(wait())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    labels = {"name": "wait", "error": "CancelledError"}
    assert value(registry, "tailguard_call_errors_total", **labels) == 0
    assert value(registry, "tailguard_calls_total", name="wait", outcome="cancelled") == 1
    assert value(registry, "tailguard_calls_total", name="wait", outcome="error") == 0
    assert value(registry, "tailguard_calls_in_flight", name="wait") == 0


def test_bare_monitor_names_the_function() -> None:
    @monitor
    def add(a: int, b: int) -> int:
        return a + b

    assert add(1, 2) == 3
    name = f"{__name__}.test_bare_monitor_names_the_function.<locals>.add"
    from tailguard.observe import REGISTRY

    assert value(REGISTRY, "tailguard_calls_total", name=name, outcome="ok") == 1


def test_two_middlewares_on_one_registry_share_their_families() -> None:
    registry = CollectorRegistry()
    GoldenSignals(Starlette(), registry=registry)
    GoldenSignals(Starlette(), registry=registry)  # no "Duplicated timeseries" error
    assert registry.get_sample_value("tailguard_http_requests_in_flight") == 0


async def test_routes_under_mounts_keep_their_prefix() -> None:
    registry = CollectorRegistry()
    v1, v2 = FastAPI(), FastAPI()

    @v1.get("/users/{uid}")
    async def one(uid: int) -> dict[str, int]:
        return {"v": 1}

    @v2.get("/users/{uid}")
    async def two(uid: int) -> dict[str, int]:
        return {"v": 2}

    async def item(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def raw(scope: Any, receive: Any, send: Any) -> None:  # a mounted app, no routes
        await PlainTextResponse("file")(scope, receive, send)

    app = FastAPI()
    app.mount("/v1", v1)
    app.mount("/v2", v2)
    app.mount("/api", Starlette(routes=[Mount("/admin", routes=[Route("/items/{id}", item)])]))
    app.mount("/static", raw)
    app.add_middleware(GoldenSignals, registry=registry)
    for path in ("/v1/users/1", "/v2/users/2", "/api/admin/items/3", "/static/a/b.css"):
        assert await call(app, path) == 200
    assert await call(app, "/v1/nothing/here") == 404
    routes = {
        s.labels["route"]: s.value
        for m in registry.collect()
        for s in m.samples
        if s.name == "tailguard_http_requests_total"
    }
    assert routes == {
        "/v1/users/{uid}": 1,
        "/v2/users/{uid}": 1,
        "/api/admin/items/{id}": 1,
        "/static/{path}": 1,
        "/v1/{path}": 1,  # unmatched inside a mount: still one label, never the raw path
    }


async def test_an_abort_mid_response_is_a_5xx_and_a_disconnect_is_not_an_error() -> None:
    registry = CollectorRegistry()
    gate = asyncio.Event()

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"part", "more_body": True})
            raise RuntimeError("upstream broke mid-stream")
        await gate.wait()  # /slow: the client leaves before an answer

    app = GoldenSignals(inner, registry=registry, route_of=lambda scope: scope["path"])
    with pytest.raises(RuntimeError):
        await call(app, "/stream")
    task = asyncio.create_task(call(app, "/slow"))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    req, err = "tailguard_http_requests_total", "tailguard_http_request_errors_total"
    assert value(registry, req, route="/stream", method="GET", status_class="5xx") == 1
    assert value(registry, req, route="/stream", method="GET", status_class="2xx") == 0
    assert value(registry, err, route="/stream", method="GET", error="RuntimeError") == 1
    assert value(registry, req, route="/slow", method="GET", status_class="4xx") == 1  # 499
    assert value(registry, err, route="/slow", method="GET", error="CancelledError") == 0


# -- regressions from the review of the batched recording (each failed before its fix) ------


async def test_a_host_route_beside_a_mount_does_not_break_the_label() -> None:
    from starlette.routing import Host

    async def ok(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[
            Host("admin.example.com", app=Starlette(routes=[Route("/", ok)])),
            Mount("/v1", routes=[Route("/users/{id}", ok)]),
        ]
    )
    registry = CollectorRegistry()
    assert await call(GoldenSignals(app, registry=registry), "/v1/users/1") == 200
    labels = {"route": "/v1/users/{id}", "method": "GET", "status_class": "2xx"}
    assert value(registry, "tailguard_http_requests_total", **labels) == 1


def test_requests_from_two_threads_keep_their_own_rows() -> None:
    import threading

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        status = 200 if scope["path"] == "/a" else 404
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    registry = CollectorRegistry()
    app = GoldenSignals(inner, registry=registry, route_of=lambda scope: scope["path"])

    def serve(path: str) -> None:
        async def many() -> None:
            for _ in range(5_000):
                await call(app, path)

        asyncio.run(many())

    threads = [threading.Thread(target=serve, args=(p,)) for p in ("/a", "/b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    req = "tailguard_http_requests_total"
    assert value(registry, req, route="/a", method="GET", status_class="2xx") == 5_000
    assert value(registry, req, route="/b", method="GET", status_class="4xx") == 5_000
    assert value(registry, req, route="/a", method="GET", status_class="4xx") == 0
    assert value(registry, req, route="/b", method="GET", status_class="2xx") == 0


async def test_excluded_paths_behind_a_root_path() -> None:
    registry = CollectorRegistry()
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = GoldenSignals(inner, registry=registry, route_of=lambda scope: scope["path"])
    scope = {"type": "http", "method": "GET", "path": "/api/metrics", "root_path": "/api"}
    messages: list[Any] = []

    async def send(message: Any) -> None:
        messages.append(message)

    await app(scope, None, send)  # type: ignore[arg-type]
    assert seen == ["/api/metrics"]
    assert series(registry, "tailguard_http_requests_total") == 0


async def test_an_app_that_returns_without_a_response_is_an_error() -> None:
    registry = CollectorRegistry()

    async def silent(scope: Any, receive: Any, send: Any) -> None:
        return None

    app = GoldenSignals(silent, registry=registry, route_of=lambda scope: "/silent")
    assert await call(app, "/silent") == 0
    err = "tailguard_http_request_errors_total"
    assert value(registry, err, route="/silent", method="GET", error="no response") == 1


def test_other_buckets_on_a_registry_that_has_the_family_are_refused() -> None:
    from tailguard.errors import ConfigurationError

    registry = CollectorRegistry()
    GoldenSignals(Starlette(), registry=registry)
    with pytest.raises(ConfigurationError, match="buckets"):
        GoldenSignals(Starlette(), registry=registry, buckets=(0.1, 1.0))
    monitor("x", registry=registry, buckets=(0.1,))(lambda: None)
    with pytest.raises(ConfigurationError, match="buckets"):
        monitor("y", registry=registry, buckets=(0.2,))(lambda: None)


async def test_requests_of_a_dropped_middleware_are_still_counted() -> None:
    import gc

    registry = CollectorRegistry()

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app: Any = GoldenSignals(inner, registry=registry, route_of=lambda scope: "/x")
    for _ in range(10):  # fewer than a batch: pending, not yet counted
        await call(app, "/x")
    del app
    gc.collect()
    labels = {"route": "/x", "method": "GET", "status_class": "2xx"}
    assert value(registry, "tailguard_http_requests_total", **labels) == 10


# -- exclusion decided once per route template, per path only where the template is ambiguous --


def test_exclusion_verdicts_by_route_template() -> None:
    from tailguard.observe._http_recorder import Exclusion

    ex = Exclusion(["/metrics", "/health/"])
    assert ex.verdict("/metrics") is True
    assert ex.verdict("/health") is True
    assert ex.verdict("/metrics/{path}") is True
    assert ex.verdict("/metrics/x/{id}") is True
    assert ex.verdict("/items/{id}") is False
    assert ex.verdict("/metricsfoo/{id}") is False  # neither /metrics nor under it
    assert ex.verdict("/metricsfoo") is False
    assert ex.verdict("/about") is False
    assert ex.verdict("/{page}") is None  # may be /metrics, may be /about
    assert ex.verdict("/metr{x}") is None
    assert ex.verdict("/metrics{suffix}") is None
    assert ex.verdict(UNMATCHED) is None
    assert ex.path("/metrics", "")
    assert ex.path("/metrics/", "")
    assert ex.path("/metrics/a", None)
    assert ex.path("/api/metrics", "/api")
    assert not ex.path("/api/about", "/api")
    assert not ex.path("/metricsfoo", "")


@pytest.mark.parametrize(
    ("exclude", "named"),
    [("/metrics", "/metrics"), (["/"], "'/'"), (["metrics"], "metrics"), ([""], "''")],
)
def test_an_exclusion_that_is_not_a_path_below_the_root_is_refused(
    exclude: Any, named: str
) -> None:
    from tailguard.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="exclude") as raised:
        GoldenSignals(Starlette(), registry=CollectorRegistry(), exclude=exclude)
    assert named in str(raised.value)


async def test_a_catch_all_route_has_each_path_checked() -> None:
    async def page(request: Any) -> PlainTextResponse:
        return PlainTextResponse(request.path_params["page"])

    registry = CollectorRegistry()
    app = GoldenSignals(Starlette(routes=[Route("/{page}", page)]), registry=registry)
    for path in ("/about", "/metrics", "/about", "/metrics", "/faq"):
        assert await call(app, path) == 200
    labels = {"route": "/{page}", "method": "GET", "status_class": "2xx"}
    assert value(registry, "tailguard_http_requests_total", **labels) == 3  # not /metrics


async def test_routes_at_and_under_an_excluded_path_are_not_recorded() -> None:
    async def ok(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    registry = CollectorRegistry()
    inner = Starlette(
        routes=[Route("/metrics", ok), Route("/metrics/{x}", ok), Route("/metricsfoo", ok)]
    )
    app = GoldenSignals(inner, registry=registry)
    for path in ("/metrics", "/metrics/a", "/metricsfoo", "/metrics", "/metricsfoo"):
        assert await call(app, path) == 200
    req = "tailguard_http_requests_total"
    assert value(registry, req, route="/metricsfoo", method="GET", status_class="2xx") == 2
    assert series(registry, req) == 1  # nothing for /metrics nor /metrics/{x}


async def test_an_excluded_route_behind_a_root_path_is_not_recorded() -> None:
    async def ok(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    registry = CollectorRegistry()
    app = GoldenSignals(Starlette(routes=[Route("/metrics", ok)]), registry=registry)
    scope = {"type": "http", "method": "GET", "path": "/api/metrics", "root_path": "/api",
             "query_string": b"", "headers": []}  # fmt: skip
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    await app(scope, receive, send)
    assert sent[0]["status"] == 200  # served, by the route (Starlette takes the root off)
    assert series(registry, "tailguard_http_requests_total") == 0


async def test_in_flight_counts_an_excluded_request_while_it_is_served() -> None:
    registry = CollectorRegistry()
    entered, release = asyncio.Event(), asyncio.Event()
    seen: list[float] = []

    async def metrics(request: Any) -> PlainTextResponse:
        entered.set()
        await release.wait()
        return PlainTextResponse("scrape")

    app = GoldenSignals(Starlette(routes=[Route("/metrics", metrics)]), registry=registry)
    task = asyncio.create_task(call(app, "/metrics"))
    await entered.wait()
    seen.append(value(registry, "tailguard_http_requests_in_flight"))
    release.set()
    assert await task == 200
    assert seen == [1.0]  # documented: a scrape sees itself
    assert value(registry, "tailguard_http_requests_in_flight") == 0
    assert series(registry, "tailguard_http_requests_total") == 0


# -- regressions from the review of the per-kind recording (each failed before its fix) -------


async def test_fastapi_included_routers_keep_their_prefix_and_exclusion() -> None:
    from fastapi import APIRouter

    ops, reports = APIRouter(), APIRouter()

    @ops.get("/")
    async def index() -> int:
        return 1

    @ops.get("/{x}")
    async def health(x: str) -> int:
        return 1

    @reports.get("/metrics")
    async def metrics_report() -> int:
        return 1

    app = FastAPI()
    app.include_router(ops, prefix="/metrics")  # served under the excluded path
    app.include_router(ops, prefix="/ops")  # the same routes under another prefix
    app.include_router(reports, prefix="/reports")
    registry = CollectorRegistry()
    wrapped = GoldenSignals(app, registry=registry)
    for path in ("/metrics/", "/metrics/health", "/metrics/health", "/ops/health"):
        assert await call(wrapped, path) == 200
    for _ in range(3):
        assert await call(wrapped, "/reports/metrics") == 200
    req = "tailguard_http_requests_total"
    assert value(registry, req, route="/reports/metrics", method="GET", status_class="2xx") == 3
    assert value(registry, req, route="/ops/{x}", method="GET", status_class="2xx") == 1
    assert series(registry, req) == 2  # nothing under /metrics, nor a prefix-less "/{x}"


async def test_client_chosen_methods_are_one_kind() -> None:
    async def ok(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    registry = CollectorRegistry()
    app = GoldenSignals(Starlette(routes=[Route("/items/{id}", ok)]), registry=registry)
    for i in range(300):
        await call(app, "/items/1", method=f"M{i}")  # a 405 each
    recorder = app._recorder
    assert len(recorder.kinds) + len(recorder._lists) + len(recorder._verdicts) <= 3
    labels = {"route": "/items/{id}", "method": "other", "status_class": "4xx"}
    assert value(registry, "tailguard_http_requests_total", **labels) == 300


async def test_kinds_past_the_bound_are_still_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    from tailguard.observe import _http_recorder

    monkeypatch.setattr(_http_recorder, "MAX_KINDS", 5)

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    registry = CollectorRegistry()
    app = GoldenSignals(inner, registry=registry, route_of=lambda scope: scope["path"])
    for i in range(40):
        await call(app, f"/raw/{i % 20}")
    assert len(app._recorder._lists) <= 5
    assert series(registry, "tailguard_http_requests_total") == 20
    total = sum(
        value(registry, "tailguard_http_requests_total", route=f"/raw/{i}", method="GET",
              status_class="2xx")
        for i in range(20)
    )  # fmt: skip
    assert total == 40


async def test_string_routes_made_per_request_are_kinds_by_value() -> None:
    async def inner(scope: Any, receive: Any, send: Any) -> None:
        # A framework leaving a fresh string as the route: a reused address must not carry
        # an excluded template's verdict to another one.
        scope["route"] = "".join(["/metrics/{x}"] if scope["path"].startswith("/m") else
                                 ["/things/{id}"])  # fmt: skip
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    registry = CollectorRegistry()
    app = GoldenSignals(inner, registry=registry)
    for i in range(200):
        await call(app, f"/metrics/{i}" if i % 2 else f"/things/{i}")
    labels = {"route": "/things/{id}", "method": "GET", "status_class": "2xx"}
    assert value(registry, "tailguard_http_requests_total", **labels) == 100
    assert series(registry, "tailguard_http_requests_total") == 1
    assert len(app._recorder._verdicts) <= 2


async def test_a_route_whose_template_is_not_its_path_has_each_path_checked() -> None:
    from starlette.routing import Route as StarletteRoute

    async def ok(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    # A router that strips its own prefix before matching, as some do without a Mount: the
    # template ("/health/{x}", never excluded as such) does not spell the path.
    route = StarletteRoute("/health/{x}", ok)

    async def prefixed(scope: Any, receive: Any, send: Any) -> None:
        scope["route"] = route
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    registry = CollectorRegistry()
    app = GoldenSignals(prefixed, registry=registry)
    for path in ("/api/health/a", "/metrics/health/a", "/api/health/b", "/metrics/health/b"):
        await call(app, path)
    labels = {"route": "/health/{x}", "method": "GET", "status_class": "2xx"}
    assert value(registry, "tailguard_http_requests_total", **labels) == 2


# -- regressions from the second review (each failed before its fix) -----------------------


async def test_starlette_routes_and_mounts_of_included_fastapi_routers_keep_their_prefix() -> None:
    from fastapi import APIRouter
    from starlette.routing import Router

    async def plain(request: Any) -> PlainTextResponse:
        return PlainTextResponse("plain")

    ops, deeper = APIRouter(), APIRouter()

    @ops.get("/boom/{x}")
    async def boom(x: str) -> None:
        raise ValueError("boom")

    @deeper.get("/deep/{y}")
    async def deep(y: str) -> int:
        return 1

    ops.add_route("/plain/{x}", plain)  # a Starlette Route in an APIRouter
    ops.mount("/static", Router([Route("/files/{name}", plain)]))
    ops.include_router(deeper, prefix="/nested")
    app = FastAPI()
    app.include_router(ops, prefix="/ops")
    registry = CollectorRegistry()
    app.add_middleware(GoldenSignals, registry=registry)
    for path in ("/ops/plain/1", "/ops/static/files/a", "/ops/nested/deep/1"):
        assert await call(app, path) == 200
    with pytest.raises(ValueError, match="boom"):
        await call(app, "/ops/boom/1")
    req = "tailguard_http_requests_total"
    for route in ("/ops/plain/{x}", "/ops/static/files/{name}", "/ops/nested/deep/{y}"):
        assert value(registry, req, route=route, method="GET", status_class="2xx") == 1, route
    assert value(registry, req, route="/ops/boom/{x}", method="GET", status_class="5xx") == 1
    assert series(registry, req) == 4  # no "" label


async def test_a_mounted_fastapi_app_with_included_routers_keeps_its_templates() -> None:
    from fastapi import APIRouter

    users = APIRouter()

    @users.get("/{uid}")
    async def user(uid: int) -> int:
        return uid

    v1 = FastAPI()
    v1.include_router(users, prefix="/users")
    app = Starlette(routes=[Mount("/v1", app=v1)])
    registry = CollectorRegistry()
    wrapped = GoldenSignals(app, registry=registry)
    assert await call(wrapped, "/v1/users/1") == 200
    labels = {"route": "/v1/users/{uid}", "method": "GET", "status_class": "2xx"}
    assert value(registry, "tailguard_http_requests_total", **labels) == 1


async def test_the_middleware_of_a_mounted_sub_app_sees_paths_as_the_sub_app_does() -> None:
    async def ok(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    registry = CollectorRegistry()
    sub = Starlette(
        routes=[
            Route("/metrics", ok),
            Route("/users/{id}", ok),
            Mount("/admin", routes=[Route("/users/{id}", ok)]),
        ]
    )
    sub.add_middleware(GoldenSignals, registry=registry)
    parent = Starlette(routes=[Mount("/v1", app=sub)])
    for path in ("/v1/metrics", "/v1/users/1", "/v1/admin/users/2"):
        assert await call(parent, path) == 200
    req = "tailguard_http_requests_total"
    assert value(registry, req, route="/users/{id}", method="GET", status_class="2xx") == 1
    assert value(registry, req, route="/admin/users/{id}", method="GET", status_class="2xx") == 1
    assert series(registry, req) == 2  # /v1/metrics is the sub-app's /metrics: excluded


def test_a_root_path_is_taken_off_at_a_segment_boundary_only() -> None:
    from tailguard.observe._http_recorder import Exclusion

    ex = Exclusion(["/metrics"])
    assert ex.path("/metrics", "/me")  # the app's /metrics (a path without its root), not "trics"
    assert ex.path("/me/metrics", "/me")
    assert not ex.path("/me", "/me")  # the app's root itself
