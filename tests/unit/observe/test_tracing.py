"""Tracing: nesting, errors, sampling, tailguard events as span events, exemplars, set-up.

Every test makes its own provider with ``set_global=False``: OpenTelemetry lets a process set
its global provider once, and the suite must not depend on which test ran first.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry import context, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.openmetrics.exposition import generate_latest

from tailguard.cache import MemoryTier, TieredCache
from tailguard.errors import ConfigurationError
from tailguard.events import CircuitStateChanged, Event, HookRegistry, hooks
from tailguard.observe import tracing
from tailguard.observe._span_events import event_attributes
from tailguard.observe.tracing import (
    SpanEvents,
    current_trace_id,
    exemplar,
    memory_exporter,
    setup_tracing,
    shutdown_tracing,
    traced,
    use_tracer_provider,
)
from tailguard.resilience import Retry
from tailguard.testing import no_backoff


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    shutdown_tracing()


@pytest.fixture
def spans() -> InMemorySpanExporter:
    setup_tracing("test", exporter="memory", set_global=False, span_events=False)
    return memory_exporter()


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {s.name: s for s in exporter.get_finished_spans()}


def parent_id(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def span_id(span: ReadableSpan) -> int:
    ctx = span.get_span_context()
    assert ctx is not None
    return ctx.span_id


# --- nesting ------------------------------------------------------------------------------


def spans_tracer(exporter: InMemorySpanExporter) -> trace.Tracer:
    """A plain OpenTelemetry tracer of another provider, exporting to ``exporter``."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("plain")


async def test_nested_calls_are_children(spans: InMemorySpanExporter) -> None:
    plain = spans_tracer(spans)  # any tracer nests under the current span

    @traced("child")
    def child() -> int:
        with plain.start_as_current_span("grandchild"):
            return 7

    @traced("parent")
    async def parent() -> int:
        await asyncio.sleep(0)
        return child()

    @traced("root")
    async def root() -> int:
        return await parent()

    assert await root() == 7
    got = by_name(spans)
    assert parent_id(got["root"]) is None
    assert parent_id(got["parent"]) == span_id(got["root"])
    assert parent_id(got["child"]) == span_id(got["parent"])
    assert parent_id(got["grandchild"]) == span_id(got["child"])
    assert len({s.context.trace_id for s in got.values() if s.context is not None}) == 1


async def test_concurrent_tasks_nest_under_their_own_parent(spans: InMemorySpanExporter) -> None:
    @traced("leaf")
    async def leaf() -> None:
        await asyncio.sleep(0)

    @traced("fan_out")
    async def fan_out() -> None:
        await asyncio.gather(leaf(), leaf())

    await asyncio.gather(fan_out(), fan_out())
    got = spans.get_finished_spans()
    parents = {span_id(s) for s in got if s.name == "fan_out"}
    leaves = [s for s in got if s.name == "leaf"]
    assert len(leaves) == 4
    assert {parent_id(s) for s in leaves} == parents
    for s in leaves:
        (fan,) = (p for p in got if p.name == "fan_out" and span_id(p) == parent_id(s))
        assert fan.context is not None
        assert s.context is not None
        assert fan.context.trace_id == s.context.trace_id


def test_the_guides_start_span_bug_parents_to_the_outer_span(spans: InMemorySpanExporter) -> None:
    # The guide's shape: tracer.start_span inside start_as_current_span. The child is never
    # current, so what runs inside it (here "grandchild") hangs off the outer span instead.
    # @traced makes its span current, which is why it does not have this bug.
    tracer = spans_tracer(spans)
    with tracer.start_as_current_span("outer"):
        child = tracer.start_span("child")
        with tracer.start_as_current_span("grandchild"):
            pass
        child.end()
    got = by_name(spans)
    assert parent_id(got["child"]) == span_id(got["outer"])
    assert parent_id(got["grandchild"]) == span_id(got["outer"])  # not the child's
    assert parent_id(got["grandchild"]) != span_id(got["child"])


def test_decorator_keeps_the_function(spans: InMemorySpanExporter) -> None:
    async def fetch(user_id: int, *, fields: str = "all") -> str:
        return fields

    wrapped = traced(fetch)
    assert inspect.iscoroutinefunction(wrapped)
    assert wrapped.__name__ == "fetch"
    assert inspect.signature(wrapped) == inspect.signature(fetch)
    assert asyncio.run(wrapped(1, fields="name")) == "name"


def test_name_attributes_and_recorded_arguments(spans: InMemorySpanExporter) -> None:
    @traced("lookup", attributes={"db.system": "sqlite"}, record_args=True)
    def lookup(user_id: int, tags: list[str], active: bool = True) -> None:
        pass

    lookup(42, ["a"])
    span = by_name(spans)["lookup"]
    assert span.attributes == {
        "db.system": "sqlite",
        "arg.user_id": 42,
        "arg.tags": "['a']",
        "arg.active": True,
    }


def test_generators_are_refused() -> None:
    def numbers() -> Iterator[int]:
        yield 1

    with pytest.raises(TypeError, match="generator"):
        traced(numbers)


def test_tracer_provider_pins_the_spans_to_a_provider(spans: InMemorySpanExporter) -> None:
    own = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(own))

    @traced(tracer_provider=provider)
    def pinned() -> None:
        pass

    pinned()
    assert [s.name for s in own.get_finished_spans()] == [pinned.__qualname__]
    assert spans.get_finished_spans() == ()


# --- errors -------------------------------------------------------------------------------


async def test_exception_is_recorded_with_status_error(spans: InMemorySpanExporter) -> None:
    @traced("boom")
    async def boom() -> None:
        raise KeyError("user 7")

    @traced("boom_sync")
    def boom_sync() -> None:
        raise ValueError("bad")

    with pytest.raises(KeyError):
        await boom()
    with pytest.raises(ValueError, match="bad"):
        boom_sync()
    for name, kind in [("boom", "KeyError"), ("boom_sync", "ValueError")]:
        span = by_name(spans)[name]
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description is not None
        assert span.status.description.startswith(kind)
        (event,) = span.events
        assert event.name == "exception"
        assert event.attributes is not None
        assert event.attributes["exception.type"] == kind


async def test_cancellation_is_not_an_error(spans: InMemorySpanExporter) -> None:
    @traced("slow")
    async def slow() -> None:
        await asyncio.sleep(10)

    task = asyncio.create_task(slow())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    span = by_name(spans)["slow"]
    assert span.status.status_code is StatusCode.UNSET
    assert [e.name for e in span.events] == ["cancelled"]


# --- sampling -----------------------------------------------------------------------------


def test_ratio_zero_records_nothing_and_has_no_trace_id() -> None:
    setup_tracing("test", exporter="memory", sample_ratio=0.0, set_global=False)
    seen: list[str | None] = []
    trace_ids: list[int] = []

    @traced
    def inner() -> None:
        seen.append(current_trace_id())
        trace_ids.append(trace.get_current_span().get_span_context().trace_id)

    @traced
    def outer() -> None:
        seen.append(current_trace_id())
        trace_ids.append(trace.get_current_span().get_span_context().trace_id)
        inner()

    outer()
    assert seen == [None, None]
    assert trace_ids[0] == trace_ids[1] != 0  # one unsampled trace, still propagated
    assert exemplar() is None
    assert memory_exporter().get_finished_spans() == ()


TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def traceparent(sampled: bool) -> context.Context:
    flags = "01" if sampled else "00"
    header = f"00-{TRACE_ID}-b7ad6b7169203331-{flags}"
    return TraceContextTextMapPropagator().extract({"traceparent": header})


def test_a_sampled_parent_is_followed_whatever_the_ratio() -> None:
    setup_tracing("test", exporter="memory", sample_ratio=0.0, set_global=False)

    @traced("handler")
    def handler() -> str | None:
        return current_trace_id()

    token = context.attach(traceparent(sampled=True))
    try:
        assert handler() == TRACE_ID
    finally:
        context.detach(token)
    (span,) = memory_exporter().get_finished_spans()
    assert span.parent is not None
    assert span.parent.span_id == 0xB7AD6B7169203331
    assert span.parent.is_remote


def test_an_unsampled_parent_is_followed_whatever_the_ratio() -> None:
    setup_tracing("test", exporter="memory", sample_ratio=1.0, set_global=False)

    @traced
    def inner() -> None:
        pass

    @traced
    def handler() -> str | None:
        inner()
        return current_trace_id()

    token = context.attach(traceparent(sampled=False))
    try:
        assert handler() is None
    finally:
        context.detach(token)
    assert memory_exporter().get_finished_spans() == ()


# --- tailguard events as span events -------------------------------------------------------


async def test_retry_events_land_on_the_calling_span(spans: InMemorySpanExporter) -> None:
    registry = HookRegistry()
    calls = 0

    @traced("attempt")
    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("reset")
        return "ok"

    retry = Retry(attempts=3, name="payments", hooks=registry)

    @traced("checkout")
    async def checkout() -> str:
        return await retry.call(flaky)

    with SpanEvents(registry=registry), no_backoff():
        assert await checkout() == "ok"
    got = spans.get_finished_spans()
    outer = next(s for s in got if s.name == "checkout")
    attempts = [s for s in got if s.name == "attempt"]
    assert [s.status.status_code for s in attempts] == [StatusCode.ERROR, StatusCode.UNSET]
    assert all(parent_id(s) == span_id(outer) for s in attempts)
    (event,) = outer.events
    assert event.name == "RetryScheduled"
    assert event.attributes is not None
    assert dict(event.attributes) == {
        "name": "payments",
        "attempt": 1,
        "delay": event.attributes["delay"],
        "error": "ConnectionError",
    }
    assert all(e.name == "exception" for s in attempts for e in s.events)
    assert len(registry) == 0  # the with block unsubscribed


async def test_cache_hits_and_misses_land_on_the_calling_span(
    spans: InMemorySpanExporter,
) -> None:
    registry = HookRegistry()
    cache = TieredCache([MemoryTier()], name="profiles", hooks=registry, early_refresh=None)

    async def load() -> dict[str, int]:
        return {"id": 42}

    @traced("profile")
    async def profile() -> dict[str, int]:
        return await cache.get_or_load("user:42", load, ttl=60)

    with SpanEvents(registry=registry):
        assert await profile() == {"id": 42}
        assert await profile() == {"id": 42}
    first, second = spans.get_finished_spans()
    assert [e.name for e in first.events] == ["CacheMiss", "CacheLoad"]
    (hit,) = second.events
    assert hit.name == "CacheHit"
    assert hit.attributes == {"name": "profiles", "tier": "memory", "key": "user:42"}
    load_event = first.events[1]
    assert load_event.attributes is not None
    assert load_event.attributes["ok"] is True


def test_events_without_a_recording_span_are_dropped(spans: InMemorySpanExporter) -> None:
    registry = HookRegistry()
    with SpanEvents(CircuitStateChanged, registry=registry):
        registry.emit(CircuitStateChanged("db", "closed", "open"))  # no current span at all
    assert spans.get_finished_spans() == ()
    assert not registry.active


def test_event_attributes_skip_none_and_stringify_the_rest() -> None:
    @dataclass(frozen=True, slots=True)
    class Odd(Event):
        shards: tuple[int, ...]
        note: str | None = None

    assert event_attributes(CircuitStateChanged("db", "closed", "open", failure_rate=0.5)) == {
        "name": "db",
        "old": "closed",
        "new": "open",
        "failure_rate": 0.5,
    }
    assert event_attributes(Odd("x", (1, 2))) == {"name": "x", "shards": "(1, 2)"}


def test_setup_subscribes_span_events_once_and_shutdown_unsubscribes() -> None:
    before = len(hooks)
    setup_tracing("test", exporter="memory", set_global=False)
    setup_tracing("test", exporter="memory", set_global=False)
    assert len(hooks) == before + 1
    setup_tracing("test", exporter="memory", set_global=False, span_events=False)
    assert len(hooks) == before
    setup_tracing("test", exporter="memory", set_global=False)
    shutdown_tracing()
    assert len(hooks) == before


# --- exemplars ------------------------------------------------------------------------------


def test_exemplar_is_the_current_sampled_trace(spans: InMemorySpanExporter) -> None:
    registry = CollectorRegistry()
    latency = Histogram("latency_seconds", "Latency.", buckets=(0.1, 1.0), registry=registry)

    @traced("request")
    def request() -> str | None:
        latency.observe(0.05, exemplar=exemplar())
        return current_trace_id()

    trace_id = request()
    (span,) = spans.get_finished_spans()
    assert span.context is not None
    assert trace_id == f"{span.context.trace_id:032x}"
    assert exemplar() is None  # no current span out here
    text = generate_latest(registry).decode()
    assert f'latency_seconds_bucket{{le="0.1"}} 1.0 # {{trace_id="{trace_id}"}} 0.05' in text


def test_no_exemplar_until_tracing_is_set_up() -> None:
    tracer = TracerProvider().get_tracer("elsewhere")
    with tracer.start_as_current_span("unknown to tailguard"):
        assert exemplar() is None
        assert current_trace_id() is None
        use_tracer_provider(TracerProvider(), span_events=False)
        assert current_trace_id() is not None


def test_use_tracer_provider_routes_traced_spans() -> None:
    own = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(own))
    use_tracer_provider(provider, span_events=False)

    @traced("job")
    def job() -> str | None:
        return current_trace_id()

    assert job() is not None
    assert [s.name for s in own.get_finished_spans()] == ["job"]


# --- set-up -------------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [-0.1, 1.5, float("nan"), True, "0.5"])
def test_sample_ratio_is_validated(ratio: object) -> None:
    with pytest.raises(ConfigurationError, match="sample_ratio"):
        setup_tracing("test", exporter="memory", sample_ratio=ratio, set_global=False)  # type: ignore[arg-type]


def test_exporter_and_endpoint_are_validated() -> None:
    with pytest.raises(ConfigurationError, match="exporter"):
        setup_tracing("test", exporter="jaeger", set_global=False)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="endpoint"):
        setup_tracing("test", exporter="console", endpoint="http://c:4318", set_global=False)
    with pytest.raises(ConfigurationError, match="endpoint"):
        setup_tracing("test", exporter="otlp", endpoint="c:4318", set_global=False)
    with pytest.raises(ConfigurationError, match="service_name"):
        setup_tracing("", exporter="memory", set_global=False)


def test_auto_without_an_endpoint_prints_to_the_console(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    with caplog.at_level(logging.INFO, logger="tailguard.observe.tracing"):
        setup_tracing("test", set_global=False, span_events=False)
    (record,) = caplog.records
    assert record.levelno == logging.INFO
    assert "stdout" in record.getMessage()
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in record.getMessage()
    with pytest.raises(RuntimeError, match="in-memory"):
        memory_exporter()

    @traced("work")
    def work() -> str | None:
        return current_trace_id()

    trace_id = work()
    assert trace_id is not None
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("span 'work' ")
    assert f"trace={trace_id}" in line
    exporter, batch = tracing._exporter("auto", None)
    assert type(exporter).__name__ == "ConsoleSpanExporter"
    assert not batch


@pytest.mark.parametrize(
    ("endpoint", "env", "url"),
    [
        ("http://collector:4318", None, "http://collector:4318/v1/traces"),
        ("http://collector:4318/v1/traces", None, "http://collector:4318/v1/traces"),
        (None, "http://env-collector:4318", "http://env-collector:4318/v1/traces"),
    ],
)
def test_auto_with_an_endpoint_batches_to_otlp(
    monkeypatch: pytest.MonkeyPatch, endpoint: str | None, env: str | None, url: str
) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    if env is None:
        monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    else:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", env)
    exporter, batch = tracing._exporter("auto", endpoint)
    assert isinstance(exporter, OTLPSpanExporter)
    assert batch
    assert exporter._endpoint == url
    exporter.shutdown()


def test_console_prints_a_line_per_span(capsys: pytest.CaptureFixture[str]) -> None:
    setup_tracing("test", exporter="console", set_global=False, span_events=False)

    @traced("inner")
    def inner() -> None:
        pass

    @traced("outer")
    def outer() -> None:
        inner()

    outer()
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == ["'inner'", "'outer'"]
    assert "parent=" in lines[0]
    assert "parent=" not in lines[1]


def test_opentelemetry_is_imported_only_when_tracing_is_used() -> None:
    code = (
        "import sys, tailguard.observe.tracing as t\n"
        "assert t.exemplar() is None and t.current_trace_id() is None\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_setup_returns_a_provider_with_the_service_name() -> None:
    provider = setup_tracing("shop", exporter="memory", sample_ratio=0.25, set_global=False)
    assert provider.resource.attributes["service.name"] == "shop"
    assert "0.25" in provider.sampler.get_description()
