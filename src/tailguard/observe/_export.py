"""Span exporters for ``setup_tracing``: OTLP over HTTP, one line per span on the console, or
in memory for tests and demos."""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING, Literal

from tailguard.errors import ConfigurationError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ["ExporterName", "exporter_for"]

ExporterName = Literal["auto", "otlp", "console", "memory"]
_log = logging.getLogger("tailguard.observe.tracing")


def exporter_for(
    choice: ExporterName | SpanExporter, endpoint: str | None
) -> tuple[SpanExporter, bool]:
    """The exporter chosen, and whether to batch it: ``"auto"`` is OTLP when an endpoint is
    configured, else the console."""
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    if isinstance(choice, SpanExporter):
        return choice, not isinstance(choice, InMemorySpanExporter | ConsoleSpanExporter)
    if endpoint is not None and choice not in ("auto", "otlp"):
        raise ConfigurationError("endpoint", endpoint, f"no endpoint with exporter={choice!r}")
    if choice == "auto":
        if not (
            endpoint
            or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        ):
            _log.info(
                "tracing: no OTLP endpoint, printing spans to stdout "
                "(set OTEL_EXPORTER_OTLP_ENDPOINT or pass endpoint= to send them elsewhere)"
            )
            choice = "console"
        else:
            choice = "otlp"
    if choice == "otlp":
        return _otlp(endpoint), True
    if choice == "console":
        return ConsoleSpanExporter(out=sys.stdout, formatter=_one_line), False
    if choice == "memory":
        return InMemorySpanExporter(), False
    raise ConfigurationError(
        "exporter", choice, "'auto', 'otlp', 'console', 'memory' or a SpanExporter"
    )


def _otlp(endpoint: str | None) -> SpanExporter:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        need = "opentelemetry-exporter-otlp-proto-http installed (the 'observe' extra)"
        raise ConfigurationError("exporter", "otlp", need) from exc
    if endpoint is None:
        return OTLPSpanExporter()  # from the OTEL_EXPORTER_OTLP_* variables
    if not endpoint.startswith(("http://", "https://")):
        raise ConfigurationError("endpoint", endpoint, "an http:// or https:// URL")
    base = endpoint.rstrip("/")
    return OTLPSpanExporter(endpoint=base if base.endswith("/v1/traces") else f"{base}/v1/traces")


def _one_line(span: ReadableSpan) -> str:
    ctx = span.get_span_context()
    ids = "" if ctx is None else f" trace={ctx.trace_id:032x} span={ctx.span_id:016x}"
    parent = "" if span.parent is None else f" parent={span.parent.span_id:016x}"
    ms = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
    events = "".join(f" +{event.name}" for event in span.events)
    status = span.status.status_code.name
    return f"span {span.name!r} {ms:.3f} ms {status}{ids}{parent}{events}\n"
