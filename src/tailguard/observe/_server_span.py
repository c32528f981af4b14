"""The server span of one HTTP request, opened by ``GoldenSignals`` while tracing is set up.

It continues the caller's trace (W3C ``traceparent`` from the request headers), is current
while the app runs (so handler spans are its children), and is still current when the
latency is recorded: the observation gets the trace id as its exemplar. Named
``"{method} {route template}"`` as OpenTelemetry's HTTP conventions say, once the route is
known.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, MutableMapping
from typing import TYPE_CHECKING, Any

from tailguard.observe import tracing

if TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.trace import Span

__all__ = ["METHODS", "ServerSpan", "finish", "start"]

# The methods named as they are; any other is "_OTHER" (its span "HTTP {route}"), as the
# OpenTelemetry HTTP conventions say, and "other" in the metrics.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})

ServerSpan = tuple["Span", "Token[Context]"]


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}


def start(scope: MutableMapping[str, Any]) -> ServerSpan:
    """Open the request's span (kind SERVER) and make it current."""
    from opentelemetry import propagate
    from opentelemetry.trace import SpanKind

    api = tracing._load()
    parent = propagate.extract(_headers(scope.get("headers", ())))
    raw = scope.get("method", "GET")
    method = raw if raw in METHODS else "_OTHER"  # a client's token is not a span name
    attributes = {"http.request.method": method, "url.path": scope.get("path", "")}
    if method != raw:
        attributes["http.request.method_original"] = raw
    span = tracing._tracer().start_span(
        "HTTP" if method == "_OTHER" else method,
        context=parent,
        kind=SpanKind.SERVER,
        attributes=attributes,
    )
    return span, api.attach(api.set_span_in_context(span))


def finish(
    server: ServerSpan, method: str, route: str, status: int, error: BaseException | None
) -> None:
    """Name the span after its route, record the outcome, end it and restore the context."""
    api = tracing._load()
    span, token = server
    if span.is_recording():
        span.update_name(f"{method if method in METHODS else 'HTTP'} {route}")
        span.set_attribute("http.route", route)
        if status:
            span.set_attribute("http.response.status_code", status)
        if isinstance(error, asyncio.CancelledError):  # the client went away: not a failure
            span.add_event("cancelled")
        elif error is not None:
            if isinstance(error, Exception):
                span.record_exception(error)
            span.set_status(api.Status(api.StatusCode.ERROR, type(error).__name__))
        elif status >= 500 or status == 0:
            span.set_status(api.Status(api.StatusCode.ERROR, str(status)))
    api.detach(token)
    span.end()
