"""GoldenSignals with tracing on: a server span per request, continuing the caller's trace,
parent of the handler's spans, and its trace id as the latency exemplar."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest

from tailguard.observe import (
    GoldenSignals,
    memory_exporter,
    setup_tracing,
    shutdown_tracing,
    traced,
)

TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER = "b7ad6b7169203331"


@pytest.fixture(autouse=True)
def tracing() -> Iterator[None]:
    setup_tracing("shop", exporter="memory", set_global=False, span_events=False)
    yield
    shutdown_tracing()


def app_with(registry: CollectorRegistry) -> FastAPI:
    app = FastAPI()

    @traced("load user")
    async def load(uid: int) -> dict[str, int]:
        return {"id": uid}

    @app.get("/users/{uid}")
    async def user(uid: int) -> dict[str, int]:
        return await load(uid)

    @app.get("/fail")
    async def fail() -> None:
        raise RuntimeError("db down")

    app.add_middleware(GoldenSignals, registry=registry)
    return app


async def test_request_span_continues_the_trace_and_parents_the_handler() -> None:
    registry = CollectorRegistry()
    transport = httpx.ASGITransport(app=app_with(registry))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        headers = {"traceparent": f"00-{TRACE}-{CALLER}-01"}
        assert (await client.get("/users/42", headers=headers)).status_code == 200
    spans = {s.name: s for s in memory_exporter().get_finished_spans()}
    server, handler = spans["GET /users/{uid}"], spans["load user"]
    assert format(server.context.trace_id, "032x") == TRACE
    assert server.parent is not None
    assert format(server.parent.span_id, "016x") == CALLER
    assert handler.parent is not None
    assert handler.parent.span_id == server.context.span_id
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/users/{uid}"
    assert server.attributes["http.response.status_code"] == 200
    exposition = generate_latest(registry).decode()
    assert f'# {{trace_id="{TRACE}"}}' in exposition  # the latency exemplar


async def test_a_failed_request_marks_its_span_as_an_error() -> None:
    registry = CollectorRegistry()
    transport = httpx.ASGITransport(app=app_with(registry), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/fail")).status_code == 500
    (server,) = [s for s in memory_exporter().get_finished_spans() if s.name == "GET /fail"]
    assert server.status.status_code.name == "ERROR"
    assert any(e.name == "exception" for e in server.events)


async def test_an_excluded_path_has_no_span_and_is_in_flight_as_without_tracing() -> None:
    import asyncio

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    registry = CollectorRegistry()
    entered, release = asyncio.Event(), asyncio.Event()
    in_flight: list[float | None] = []

    async def scrape(request: object) -> PlainTextResponse:
        entered.set()
        await release.wait()
        return PlainTextResponse("metrics")

    app = GoldenSignals(Starlette(routes=[Route("/metrics", scrape)]), registry=registry)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        request = asyncio.create_task(client.get("/metrics"))
        await entered.wait()
        in_flight.append(registry.get_sample_value("tailguard_http_requests_in_flight"))
        release.set()
        assert (await request).status_code == 200
    assert in_flight == [1.0]  # as with tracing off (docs/observe.md)
    assert memory_exporter().get_finished_spans() == ()
    assert registry.get_sample_value("tailguard_http_requests_total", {
        "route": "/metrics", "method": "GET", "status_class": "2xx"}) is None  # fmt: skip


async def test_a_method_no_standard_names_the_span_http_and_is_kept_apart() -> None:
    registry = CollectorRegistry()
    transport = httpx.ASGITransport(app=app_with(registry))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.request("XYZZY-1", "/users/1")).status_code == 405
    (span,) = memory_exporter().get_finished_spans()
    assert span.name == "HTTP /users/{uid}"  # a client's token is not a span name
    assert span.attributes is not None
    assert span.attributes["http.request.method"] == "_OTHER"
    assert span.attributes["http.request.method_original"] == "XYZZY-1"


async def test_a_route_of_that_raises_still_ends_the_span() -> None:
    from starlette.applications import Starlette

    def broken(scope: object) -> str:
        raise LookupError("no template")

    registry = CollectorRegistry()
    app = GoldenSignals(Starlette(), registry=registry, route_of=broken)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        with pytest.raises(LookupError):
            await client.get("/anything")
    (span,) = memory_exporter().get_finished_spans()
    assert span.name == "GET <unmatched>"
