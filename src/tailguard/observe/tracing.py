"""OpenTelemetry tracing: set-up, ``@traced``, tailguard events as span events, exemplars.

::

    from tailguard.observe.tracing import setup_tracing, traced

    setup_tracing("shop")    # OTLP/HTTP if OTEL_EXPORTER_OTLP_ENDPOINT is set, else stdout

    @traced
    async def place_order(cart_id: int) -> Order: ...

``@traced`` makes its span the *current* span while the function runs, so whatever it calls
(another ``@traced`` function, an instrumented client, a cache, a policy) nests under it. The
guide's snippet opened its child with ``tracer.start_span`` inside ``start_as_current_span``:
that child was never current, so everything called inside it hung off the outer span.

``Traced("name")``, a policy (``Pipeline(Traced("payments"), Retry())``), and
``TracedTier(tier)``, a cache tier, put spans around policies and cache tiers, which do not
import OpenTelemetry themselves.

opentelemetry is imported on first use, not with this module: until tracing is set up,
``exemplar()`` costs one attribute test.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast, overload

from tailguard.errors import ConfigurationError
from tailguard.observe._export import ExporterName
from tailguard.observe._export import exporter_for as _exporter
from tailguard.observe._span_events import SpanEvents

if TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Span, Tracer
    from opentelemetry.trace import TracerProvider as AnyTracerProvider

    from tailguard.observe._traced_parts import Traced, TracedTier

__all__ = [
    "SpanEvents",
    "Traced",
    "TracedTier",
    "current_trace_id",
    "exemplar",
    "memory_exporter",
    "setup_tracing",
    "shutdown_tracing",
    "traced",
    "use_tracer_provider",
]

P = ParamSpec("P")
R = TypeVar("R")
Attributes = Mapping[str, str | bool | int | float]

_SCOPE = "tailguard"  # the instrumentation scope of every span started here
_PRIMITIVE = (str, bool, int, float)
_log = logging.getLogger("tailguard.observe.tracing")


class _Api:
    """The opentelemetry-api functions a traced call uses, imported once on first use (about
    30 ms), so that importing ``tailguard.observe`` costs nothing for tracing unused."""

    __slots__ = (
        "Status",
        "StatusCode",
        "attach",
        "detach",
        "get_current_span",
        "get_tracer",
        "set_span_in_context",
    )

    def __init__(self) -> None:
        from opentelemetry import context, trace

        self.attach = context.attach
        self.detach = context.detach
        self.get_current_span = trace.get_current_span
        self.get_tracer = trace.get_tracer
        self.set_span_in_context = trace.set_span_in_context
        self.Status = trace.Status
        self.StatusCode = trace.StatusCode


class _State:
    __slots__ = ("exemplars", "exporter", "parent_based", "provider", "span_events", "tracer")

    def __init__(self) -> None:
        self.exemplars: _Api | None = None  # set while tracing is set up: exemplar() reads it
        self.provider: TracerProvider | None = None  # made by setup_tracing, shut down here
        self.exporter: SpanExporter | None = None
        self.tracer: Tracer | None = None  # None: OpenTelemetry's global provider, looked up
        self.span_events: SpanEvents | None = None
        self.parent_based = False  # the tracer's sampler is ParentBased (setup_tracing's is)


_api: _Api | None = None
_state = _State()


def _load() -> _Api:
    global _api
    if _api is None:
        _api = _Api()
    return _api


def _tracer() -> Tracer:
    tracer = _state.tracer
    if tracer is None:  # a proxy that follows the global provider, even one set later
        tracer = _state.tracer = _load().get_tracer(_SCOPE)
    return tracer


def __getattr__(name: str) -> Any:
    if name in ("Traced", "TracedTier"):  # defined on top of this module's _start and _end
        from tailguard.observe import _traced_parts

        return getattr(_traced_parts, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- set-up -------------------------------------------------------------------------------


def setup_tracing(
    service_name: str,
    *,
    exporter: ExporterName | SpanExporter = "auto",
    endpoint: str | None = None,
    sample_ratio: float = 1.0,
    set_global: bool = True,
    span_events: bool = True,
) -> TracerProvider:
    """Configure OpenTelemetry tracing for this process; returns its ``TracerProvider``.

    - ``exporter``: ``"auto"`` exports over OTLP/HTTP when ``endpoint`` or one of
      ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set, and
      otherwise prints to the console (and logs so, at INFO). ``"otlp"``; ``"console"``, one
      line per span on stdout; ``"memory"``, kept for :func:`memory_exporter` (tests, demos);
      or any ``SpanExporter``. OTLP and custom exporters are batched in the background;
      console and memory export each span as it ends.
    - ``endpoint``: the collector's base URL, e.g. ``http://collector:4318``
      (``/v1/traces`` is added unless there).
    - ``sample_ratio`` (0 to 1): the share of new traces recorded. A span with a parent, local
      or from a ``traceparent`` header, follows its parent's decision
      (``ParentBased(TraceIdRatioBased(sample_ratio))``), so a trace is kept or dropped whole.
    - ``set_global``: also make it OpenTelemetry's global provider, which a process can set
      only once. ``@traced`` and exemplars follow the latest ``setup_tracing`` either way, so
      tests pass ``False`` and call it as often as they like.
    - ``span_events``: add each tailguard event to the current span (see :class:`SpanEvents`).
    """
    if not isinstance(service_name, str) or not service_name:
        raise ConfigurationError("service_name", service_name, "a non-empty string")
    if (
        isinstance(sample_ratio, bool)
        or not isinstance(sample_ratio, int | float)
        or not 0.0 <= sample_ratio <= 1.0
    ):
        raise ConfigurationError("sample_ratio", sample_ratio, "a number from 0 to 1")
    span_exporter, batch = _exporter(exporter, endpoint)

    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
    )
    processor = BatchSpanProcessor if batch else SimpleSpanProcessor
    provider.add_span_processor(processor(span_exporter))
    if set_global:
        from opentelemetry import trace

        trace.set_tracer_provider(provider)  # a second call is refused, with a warning
    _install(provider.get_tracer(_SCOPE), span_events, provider, span_exporter)
    _state.parent_based = True
    return provider


def use_tracer_provider(
    provider: AnyTracerProvider | None = None, *, span_events: bool = True
) -> None:
    """Trace with a provider configured elsewhere (``None``: OpenTelemetry's global one, as
    ``opentelemetry-instrument`` sets it): ``@traced`` spans go to it, :func:`exemplar` reads
    the current trace id, and with ``span_events`` tailguard events become span events."""
    _install(_load().get_tracer(_SCOPE, tracer_provider=provider), span_events)


def shutdown_tracing() -> None:
    """Undo the set-up: stop span events and exemplars and shut down (flushing what is
    buffered) the provider made by :func:`setup_tracing`. ``@traced`` then falls back to
    OpenTelemetry's global provider."""
    provider = _state.provider
    _install(None, span_events=False)
    _state.exemplars = None
    if provider is not None:
        provider.shutdown()


def memory_exporter() -> InMemorySpanExporter:
    """The exporter of ``setup_tracing(..., exporter="memory")``: its ``get_finished_spans()``
    are the spans ended so far, ``clear()`` forgets them."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    if not isinstance(_state.exporter, InMemorySpanExporter):
        raise RuntimeError("no in-memory exporter: call setup_tracing(..., exporter='memory')")
    return _state.exporter


def _install(
    tracer: Tracer | None,
    span_events: bool,
    provider: TracerProvider | None = None,
    exporter: SpanExporter | None = None,
) -> None:
    _state.tracer = tracer
    _state.exemplars = _load()
    _state.parent_based = False
    _state.provider = provider  # a provider replaced without shutdown: it may be the global
    _state.exporter = exporter
    if span_events and _state.span_events is None:
        _state.span_events = SpanEvents()
    elif not span_events and _state.span_events is not None:
        _state.span_events.close()
        _state.span_events = None


# --- @traced ------------------------------------------------------------------------------


@overload
def traced(name: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def traced(
    name: str | None = None,
    *,
    attributes: Attributes | None = None,
    record_args: bool = False,
    tracer_provider: AnyTracerProvider | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def traced(
    name: str | Callable[P, R] | None = None,
    *,
    attributes: Attributes | None = None,
    record_args: bool = False,
    tracer_provider: AnyTracerProvider | None = None,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Run each call of a function (``async def`` or plain) in a span of its own, made current.

    ``@traced`` or ``@traced("name", attributes={...})``. The span is named ``name`` (default:
    the function's qualified name) and carries ``attributes``; with ``record_args`` also the
    arguments, as ``arg.<parameter>`` (off by default: arguments may be personal data).
    An exception is recorded on the span, sets its status to ERROR and is re-raised; a
    cancellation adds a ``cancelled`` event and is no error. ``tracer_provider`` pins a
    provider; by default the one of the latest :func:`setup_tracing`, else the global one.
    """
    if callable(name):
        return _wrap(name, _name_of(name), None, False, None)
    tracer = None if tracer_provider is None else tracer_provider.get_tracer(_SCOPE)
    attrs = dict(attributes) if attributes else None

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        return _wrap(fn, name or _name_of(fn), attrs, record_args, tracer)

    return decorate


def _name_of(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def _wrap(
    fn: Callable[P, R],
    span_name: str,
    attributes: dict[str, str | bool | int | float] | None,
    record_args: bool,
    tracer: Tracer | None,
) -> Callable[P, R]:
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(f"@traced: {span_name} is a generator; its span would end before it ran")
    signature = inspect.signature(fn) if record_args else None

    if inspect.iscoroutinefunction(fn):
        call = cast(Callable[P, Awaitable[Any]], fn)

        @functools.wraps(fn)
        async def traced_async(*args: P.args, **kwargs: P.kwargs) -> Any:
            scope = _start(span_name, attributes, tracer)
            if scope is None:
                return await call(*args, **kwargs)
            if signature is not None:
                _record_args(scope[0], signature, args, kwargs)
            try:
                result = await call(*args, **kwargs)
            except BaseException as exc:
                _end(scope, exc)
                raise
            _end(scope, None)
            return result

        return cast(Callable[P, R], traced_async)

    @functools.wraps(fn)
    def traced_sync(*args: P.args, **kwargs: P.kwargs) -> R:
        scope = _start(span_name, attributes, tracer)
        if scope is None:
            return fn(*args, **kwargs)
        if signature is not None:
            _record_args(scope[0], signature, args, kwargs)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            _end(scope, exc)
            raise
        _end(scope, None)
        return result

    return traced_sync


def _start(
    name: str, attributes: Attributes | None, tracer: Tracer | None
) -> tuple[Span, Token[Context]] | None:
    """Start a span and make it current (what ``start_as_current_span`` does, without its
    generator-based context manager), or ``None`` when no span is needed."""
    api = _api or _load()
    if tracer is None:
        if _state.parent_based:
            parent = api.get_current_span().get_span_context()
            if parent.is_valid and not parent.trace_flags.sampled:
                # ParentBased drops the child of a dropped span: skip making it (4 us here).
                # The parent stays current, so the trace id still propagates, unsampled.
                return None
        tracer = _tracer()
    span = tracer.start_span(name, attributes=attributes)
    return span, api.attach(api.set_span_in_context(span))


def _end(scope: tuple[Span, Token[Context]], exc: BaseException | None) -> None:
    api = _api or _load()
    span, token = scope
    if exc is not None and span.is_recording():
        if isinstance(exc, Exception):
            span.record_exception(exc)
            span.set_status(api.Status(api.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        else:  # cancelled (a hedge's loser, a client gone), or the process is stopping
            span.add_event("cancelled", {"exception.type": type(exc).__name__})
    api.detach(token)
    span.end()


def _record_args(
    span: Span, signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    if not span.is_recording():
        return
    try:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
    except TypeError:
        return  # the call itself raises, and says why
    for key, value in bound.arguments.items():
        if key not in ("self", "cls"):
            shown = value if isinstance(value, _PRIMITIVE) else repr(value)[:256]
            span.set_attribute(f"arg.{key}", shown)


# --- exemplars ----------------------------------------------------------------------------


def current_trace_id() -> str | None:
    """The current span's trace id (32 hex digits) if it is sampled, else ``None``; also
    ``None`` until tracing is set up (:func:`setup_tracing`, :func:`use_tracer_provider`)."""
    api = _state.exemplars
    if api is None:
        return None
    ctx = api.get_current_span().get_span_context()
    if not (ctx.trace_flags.sampled and ctx.is_valid):
        return None
    return format(ctx.trace_id, "032x")


def exemplar() -> dict[str, str] | None:
    """``{"trace_id": ...}`` for ``Histogram.observe(seconds, exemplar=exemplar())``: the
    sampled trace behind an observation, or ``None`` (no exemplar) when there is none."""
    if _state.exemplars is None:  # tracing never set up: one attribute test per call
        return None
    trace_id = current_trace_id()
    return None if trace_id is None else {"trace_id": trace_id}
