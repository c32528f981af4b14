"""The FastAPI app: routers, error answers, and the middleware each practice needs.

Outermost first: ``GoldenSignals`` (latency, traffic, errors, saturation by route template),
a request body limit, and ``HttpCaching`` (Cache-Control, ETag, 304) on the catalogue only.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from shop.bootstrap import bootstrap, secret_file
from shop.config import Settings, load_settings
from shop.domain.model import DomainError, UnknownProduct
from shop.service_layer.views import NotFound
from tailguard.cache import HttpCaching
from tailguard.errors import BackendUnavailable, Rejected
from tailguard.observe import (
    EventMetrics,
    GoldenSignals,
    LoopLag,
    QueryCounter,
    metrics_app,
    watch,
)

__all__ = ["create_app"]

_log = logging.getLogger("shop.app")

Scope = MutableMapping[str, Any]


class BodyLimit:
    """Pure ASGI: 413 for a request body over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: Any, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                await _too_large(send, self.max_bytes)
                return
        seen = 0

        async def limited() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await _too_large(send, self.max_bytes)


class _BodyTooLarge(HTTPException):
    """Raised from ``receive`` past the limit. An HTTPException, because FastAPI turns any other
    exception raised while it reads the body into 400 "There was an error parsing the body";
    this one it re-raises, and the app's handler answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")


async def _too_large(send: Any, limit: int) -> None:
    body = f'{{"detail":"request body over {limit} bytes"}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class CatalogueCaching:
    """``HttpCaching`` for the catalogue's paths only: user data is private and uncached."""

    def __init__(self, app: Any, *, prefix: str = "/products") -> None:
        self.app = app
        self.prefix = prefix
        self.cached = HttpCaching(app, max_age=30, s_maxage=300, stale_while_revalidate=60,
                                  surrogate_keys=lambda scope: ["products"])  # fmt: skip

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path", "").startswith(self.prefix):
            await self.cached(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class MetricsEndpoint:
    """Serves ``GET /metrics`` (the Prometheus scrape) before the app: at that exact path,
    with no redirect and no authentication."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.metrics = metrics_app()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path") == "/metrics":
            await self.metrics(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _retry_after(seconds: float | None) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds if seconds is not None else 1.0)))}


def _finite(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes each error's input, and Python's JSON parser reads NaN and
        # Infinity, which JSON cannot write: such a body made the 422 fail to render (a 500).
        errors = jsonable_encoder(exc.errors(), custom_encoder={float: _finite})
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(UnknownProduct)
    async def unknown_product(_: Request, exc: UnknownProduct) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(BackendUnavailable)
    async def unavailable(_: Request, exc: BackendUnavailable) -> JSONResponse:
        _log.warning("backend unavailable: %s", exc)
        return JSONResponse(
            {"detail": f"{exc.backend} is unavailable; retry later"},
            status_code=503,
            headers=_retry_after(1.0),
        )

    @app.exception_handler(Rejected)
    async def rejected(_: Request, exc: Rejected) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc)}, status_code=503, headers=_retry_after(exc.retry_after)
        )


def create_app(settings: Settings | None = None, *, prepare: bool = True) -> FastAPI:
    """The shop as an ASGI app; ``prepare`` migrates and seeds an empty database at start."""
    settings = settings if settings is not None else load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.secret = settings.secret_key or secret_file(settings, "secret_key")
        app.state.admin_token = settings.admin_token or secret_file(settings, "admin_token")
        async with contextlib.AsyncExitStack() as stack:
            if settings.tracing != "off":
                from tailguard.observe.tracing import setup_tracing, shutdown_tracing

                setup_tracing(
                    "shop",
                    exporter="console" if settings.tracing == "console" else "otlp",
                    sample_ratio=settings.trace_sample_ratio,
                )
                stack.callback(shutdown_tracing)
            svc = await stack.enter_async_context(bootstrap(settings, prepare=prepare))
            await stack.enter_async_context(LoopLag())
            app.state.services = svc
            watch(svc.extras["engine"], "database")
            if svc.extras.get("redis") is not None:
                watch(svc.extras["redis"], "redis")
            if svc.extras.get("bulkhead") is not None:
                watch(svc.extras["bulkhead"], "payments")
            # Breakers, retries, cache loads, rate limits as metrics; statements per request.
            stack.enter_context(EventMetrics())
            statements = stack.enter_context(
                QueryCounter(svc.extras["engine"], on_n_plus_one="warn", threshold=10)
            )
            watch(statements, "database")
            # What start-up built lives as long as the process: move it out of the collector's
            # sight, or every full collection rescans it (~100 ms pauses under load, measured).
            gc.collect()
            gc.freeze()
            yield
            gc.unfreeze()

    from shop.entrypoints.routers import admin, auth, cart, health, orders, products, users

    app = FastAPI(
        title="shop",
        summary="The guide's reference e-commerce service, built on tailguard.",
        version="0.1.0",
        lifespan=lifespan,
    )
    for module in (auth, users, products, cart, orders, health, admin):
        app.include_router(module.router)
    _install_errors(app)
    app.add_middleware(CatalogueCaching)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsEndpoint)
    app.add_middleware(GoldenSignals)
    app.state.settings = settings
    return app
