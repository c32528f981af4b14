"""The golden signals: latency, traffic, errors and saturation, for HTTP and for any function.

* :class:`GoldenSignals`, pure-ASGI middleware (FastAPI, Starlette, Litestar, any ASGI app):
  a latency histogram and a request counter by route template, method and status class, an
  error counter by exception type (or 5xx status), and an in-flight gauge.
* :func:`monitor`, a decorator for async and sync functions: the same signals by name.
* :func:`metrics_app`, an ASGI app serving a registry (OpenMetrics with exemplars when the
  scraper asks for it).

Labels are route templates (``/users/{id}``), never raw paths, so the number of series stays
fixed however many ids are requested; an unmatched request is labelled ``<unmatched>`` and an
unknown method ``other``. Children of each family are looked up once per label set and kept,
and the families are tailguard's lock-free ones (``_fast``), exposed through the registry:
a request costs well under a microsecond of metrics.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, ParamSpec, TypeVar, cast, overload

from prometheus_client import CollectorRegistry, make_asgi_app

from tailguard.errors import ConfigurationError
from tailguard.observe import _names, _server_span
from tailguard.observe._fast import FastCounter, FastHistogram, FastUpDown, ProbeGauge
from tailguard.observe._http_recorder import BATCH, Exclusion, HttpRecorder, canonical
from tailguard.observe._registry import REGISTRY, family
from tailguard.observe._routes import UNMATCHED, matched_route, route_template
from tailguard.observe.tracing import _state as _tracing
from tailguard.observe.tracing import exemplar

__all__ = ["UNMATCHED", "GoldenSignals", "metrics_app", "monitor", "route_template"]

P = ParamSpec("P")
R = TypeVar("R")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_perf = time.perf_counter


def _same_buckets(histogram: FastHistogram, buckets: tuple[float, ...]) -> FastHistogram:
    """``histogram``, if it has ``buckets``: a family is made once per registry, so a second
    user asking other bounds would otherwise get the first one's, silently."""
    asked = tuple(sorted(float(b) for b in buckets if b != float("inf")))
    if histogram.bounds != asked:
        raise ConfigurationError(
            f"buckets of {histogram.name}", asked, f"{histogram.bounds}, as already registered"
        )
    return histogram


def _http_families(registry: CollectorRegistry, buckets: tuple[float, ...]) -> tuple[Any, ...]:
    def make_duration(reg: CollectorRegistry) -> FastHistogram:
        return FastHistogram(
            _names.HTTP_DURATION,
            "HTTP request latency in seconds, by route template, method and status class.",
            ["route", "method", "status_class"],
            buckets=buckets,
            registry=reg,
        )

    duration = _same_buckets(family(registry, _names.HTTP_DURATION, make_duration), buckets)
    requests = family(
        registry,
        _names.HTTP_REQUESTS,
        lambda reg: FastCounter(
            _names.HTTP_REQUESTS,
            "HTTP requests served, by route template, method and status class.",
            ["route", "method", "status_class"],
            registry=reg,
        ),
    )
    errors = family(
        registry,
        _names.HTTP_ERRORS,
        lambda reg: FastCounter(
            _names.HTTP_ERRORS,
            "HTTP requests that raised (error: the exception type) or answered 5xx (error: the "
            "status code).",
            ["route", "method", "error"],
            registry=reg,
        ),
    )
    in_flight = family(
        registry,
        _names.HTTP_IN_FLIGHT,
        lambda reg: ProbeGauge(
            _names.HTTP_IN_FLIGHT,
            "HTTP requests being served now.",
            registry=reg,
        ),
    )
    return duration, requests, errors, in_flight


class GoldenSignals:
    """Pure-ASGI middleware recording the golden signals of every HTTP request.

    ``registry``: where the metrics live (tailguard's ``REGISTRY`` by default).
    ``route_of``: how to find a request's route template after the app ran (default
    :func:`route_template`, mounts included). ``exclude``: paths not recorded, with
    everything under them (default ``/metrics``).
    ``buckets``: latency histogram bounds in seconds (default ``LATENCY_BUCKETS``).
    WebSocket and lifespan scopes pass through untouched. While tracing is set up
    (:func:`~tailguard.observe.setup_tracing`), each request also gets a server span that
    continues the caller's ``traceparent``, and its trace id is the latency exemplar.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        registry: CollectorRegistry | None = None,
        route_of: Callable[[Scope], str] | None = None,
        exclude: Iterable[str] = ("/metrics",),
        buckets: Iterable[float] = _names.LATENCY_BUCKETS,
    ) -> None:
        self.app = app
        self.registry = registry if registry is not None else REGISTRY
        self._custom_route = route_of
        exclusion = Exclusion(exclude)
        self._duration, self._requests, self._errors, in_flight = _http_families(
            self.registry, tuple(buckets)
        )
        self.in_flight = 0  # requests being served now, read by the gauge at scrape time
        in_flight.probe(self._in_flight_now)
        self._recorder = recorder = HttpRecorder(
            self._duration, self._requests, self._errors, exclusion
        )
        self._kinds = recorder.kinds
        for fam in (self._duration, self._requests, self._errors):
            fam.before_collect(recorder.flush)
        weakref.finalize(self, recorder.flush)  # requests pending when dropped still count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Every step here is paid by every request, so there are few: dict subscripts and
        # operators rather than calls, and exclusion decided once per route, not per path.
        # (Under callgrind in a uvicorn server, a Python call costs about ten such steps.)
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]  # as it came: the app may move root_path (mounts) or rewrite it
        # Under a mount of another app, the root_path it entered with, which the mounts below
        # would hide; otherwise read after the app (unchanged, or kept as app_root_path).
        root = scope["root_path"] if "app_root_path" in scope else None
        if _tracing.exemplars is None or self._recorder.excluded(
            path, scope.get("root_path") if root is None else root
        ):
            server = None  # (a span costs ~10 us: the path check is nothing beside it)
        else:
            server = _server_span.start(scope)
        status = 0

        # A plain function returning send's awaitable: the app awaits that directly, and no
        # coroutine of ours is made per message.
        def send_status(message: Message) -> Awaitable[None]:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            return send(message)

        self.in_flight += 1
        start = _perf()
        error: BaseException | None = None
        try:
            await self.app(scope, receive, send_status)
        except BaseException as exc:
            error = exc
            raise
        finally:
            elapsed = _perf() - start
            self.in_flight -= 1
            # What the request was, kept raw: counting it into the families is left to the
            # recorder's flush (at a scrape, or when a kind has BATCH pending), off its path.
            if (
                error is None
                and server is None
                and self._custom_route is None
                and "route" in scope
                and "app_root_path" not in scope
            ):
                # The common case: a router left the route it matched, outside any mount.
                # Route objects are unhashable (they compare by value): keyed by identity.
                route = scope["route"]
                if "fastapi" in scope:  # a route of an included router: its full template
                    route = matched_route(scope)
                key = (id(route), scope["method"], status)
                pending = self._kinds.get(key)
                if pending is None:
                    self._recorder.record(key, route, path, scope.get("root_path"), elapsed)
                else:
                    pending.append(elapsed)
                    if len(pending) >= BATCH:  # memory stays bounded between scrapes
                        self._recorder.flush()
            else:
                self._record(scope, path, root, status, elapsed, error, server)

    def _record(
        self,
        scope: Scope,
        path: str,
        root: str | None,
        status: int,
        elapsed: float,
        error: BaseException | None,
        server: Any,
    ) -> None:
        """Every other request: a custom ``route_of``, a mount, another framework, no route
        matched, an exception, or a traced request. ``root``: as ``__call__`` read it."""
        recorder = self._recorder
        if root is None:
            root = scope.get("app_root_path", scope.get("root_path"))
        if server is None and recorder.excluded(path, root):
            return  # (a traced request was checked before it ran)
        route: Any
        try:
            if self._custom_route is not None:
                route = self._custom_route(scope)
            elif scope.get("root_path") != root:  # under a mount: the template rebuilt now
                route = route_template(scope, self.app, root or "")
            else:
                route = matched_route(scope) or scope.get("path_template")
        except BaseException:
            if server is not None:  # route_of raised: the span still ends, the error goes on
                _server_span.finish(server, scope.get("method", "GET"), UNMATCHED, status, error)
            raise
        method = scope.get("method", "GET")
        if server is None and error is None:
            recorder.add(canonical(route, method, status), route, elapsed)
            return
        # The type, not the error (its traceback holds frames); the exemplar read while the
        # request's span is current: its trace id.
        ex = exemplar() if server is not None else None
        kind = None if error is None else type(error)
        recorder.rare.append((route, method, status, elapsed, (kind, ex, time.time())))
        if server is not None:
            _server_span.finish(server, method, recorder.template(route), status, error)
        if len(recorder.rare) >= BATCH:
            recorder.flush()

    def _in_flight_now(self) -> float:
        return self.in_flight


def metrics_app(registry: CollectorRegistry | None = None) -> ASGIApp:
    """An ASGI app serving ``registry`` (tailguard's ``REGISTRY`` by default) for scrapes:
    mount it at ``/metrics``. OpenMetrics (with exemplars) when the scraper accepts it."""
    return cast(ASGIApp, make_asgi_app(registry if registry is not None else REGISTRY))


class _CallSignals:
    """The pre-bound children of one monitored function."""

    __slots__ = (
        "cancelled",
        "cancelled_count",
        "errors",
        "errors_family",
        "in_flight",
        "ko",
        "ko_count",
        "name",
        "ok",
        "ok_count",
    )

    def __init__(self, name: str, registry: CollectorRegistry, buckets: tuple[float, ...]) -> None:
        duration = family(
            registry,
            _names.CALL_DURATION,
            lambda reg: FastHistogram(
                _names.CALL_DURATION,
                "Call latency in seconds, by monitored name and outcome (ok, error, cancelled).",
                ["name", "outcome"],
                buckets=buckets,
                registry=reg,
            ),
        )
        _same_buckets(duration, buckets)
        calls = family(
            registry,
            _names.CALLS,
            lambda reg: FastCounter(
                _names.CALLS,
                "Calls made, by monitored name and outcome (ok, error, cancelled).",
                ["name", "outcome"],
                registry=reg,
            ),
        )
        self.errors_family = family(
            registry,
            _names.CALL_ERRORS,
            lambda reg: FastCounter(
                _names.CALL_ERRORS,
                "Calls that raised, by monitored name and exception type.",
                ["name", "error"],
                registry=reg,
            ),
        )
        in_flight = family(
            registry,
            _names.CALL_IN_FLIGHT,
            lambda reg: FastUpDown(
                _names.CALL_IN_FLIGHT,
                "Calls running now, by monitored name.",
                ["name"],
                registry=reg,
            ),
        )
        self.name = name
        self.ok, self.ko = duration.labels(name, "ok"), duration.labels(name, "error")
        self.ok_count, self.ko_count = calls.labels(name, "ok"), calls.labels(name, "error")
        self.cancelled = duration.labels(name, "cancelled")
        self.cancelled_count = calls.labels(name, "cancelled")
        self.in_flight = in_flight.labels(name)
        self.errors: dict[str, Any] = {}

    def failed(self, elapsed: float, exc: BaseException) -> None:
        if isinstance(exc, asyncio.CancelledError):  # a caller gave up: not this call's failure
            self.cancelled.observe(elapsed, exemplar())
            self.cancelled_count.inc()
            return
        self.ko.observe(elapsed, exemplar())
        self.ko_count.inc()
        kind = type(exc).__name__
        child = self.errors.get(kind)
        if child is None:
            child = self.errors[kind] = self.errors_family.labels(self.name, kind)
        child.inc()


@overload
def monitor(
    name: str, *, registry: CollectorRegistry | None = None, buckets: Iterable[float] = ...
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
@overload
def monitor(
    name: Callable[P, R],
    *,
    registry: CollectorRegistry | None = None,
    buckets: Iterable[float] = ...,
) -> Callable[P, R]: ...
def monitor(
    name: str | Callable[P, R],
    *,
    registry: CollectorRegistry | None = None,
    buckets: Iterable[float] = _names.LATENCY_BUCKETS,
) -> Callable[[Callable[P, R]], Callable[P, R]] | Callable[P, R]:
    """Record latency (seconds), calls, errors by type and calls in flight for a function.

    ``@monitor("checkout")`` or bare ``@monitor`` (named ``module.qualname``); works on
    ``async def`` and plain functions, and keeps their signatures. A cancelled call is
    recorded with outcome ``cancelled``, not as an error.
    """
    if callable(name):
        label = f"{name.__module__}.{name.__qualname__}"
        return monitor(label, registry=registry, buckets=buckets)(name)
    label = name
    reg = registry if registry is not None else REGISTRY
    bounds = tuple(buckets)

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        sig = _CallSignals(label, reg, bounds)
        ok, ok_count, in_flight = sig.ok, sig.ok_count, sig.in_flight

        if inspect.iscoroutinefunction(fn):
            afn = cast(Callable[P, Awaitable[Any]], fn)

            @functools.wraps(fn)
            async def run_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                in_flight.inc()
                start = _perf()
                try:
                    result = await afn(*args, **kwargs)
                except BaseException as exc:
                    sig.failed(_perf() - start, exc)
                    raise
                finally:
                    in_flight.dec()
                ok.observe(_perf() - start, exemplar())
                ok_count.inc()
                return result

            return cast(Callable[P, R], run_async)

        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            in_flight.inc()
            start = _perf()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                sig.failed(_perf() - start, exc)
                raise
            finally:
                in_flight.dec()
            ok.observe(_perf() - start, exemplar())
            ok_count.inc()
            return result

        return run

    return decorate
