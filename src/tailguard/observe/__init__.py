"""tailguard.observe: the four golden signals, tracing, profiling, N+1 and leak detection, SLOs.

Metrics live in a ``prometheus_client`` registry; tracing in OpenTelemetry. Both are imported
by the modules that use them, never by the capabilities: those emit events through
``tailguard.events.hooks``, which this package turns into metrics and span events.

The SQLAlchemy-based names (``QueryCounter``, the leak checks) and ``SLO`` (PyYAML) are
loaded on first use, so that metrics alone do not import an ORM.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tailguard.observe._names import LATENCY_BUCKETS
from tailguard.observe._registry import REGISTRY
from tailguard.observe.event_metrics import EventMetrics
from tailguard.observe.profiling import profile_performance
from tailguard.observe.saturation import LoopLag, watch, watch_process
from tailguard.observe.signals import GoldenSignals, metrics_app, monitor, route_template
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

if TYPE_CHECKING:
    from tailguard.observe.leaks import (
        ConnectionLeak,
        ConnectionWatch,
        SoakReport,
        assert_no_leaks,
        checked_out,
        redis_in_use,
        soak,
    )
    from tailguard.observe.queries import (
        NPlusOne,
        NPlusOneDetected,
        QueryCounter,
        QueryCounterMiddleware,
        QueryStats,
    )
    from tailguard.observe.slo import SLO, BurnRateAlert
    from tailguard.observe.tracing import Traced, TracedTier

_LAZY = {
    "ConnectionLeak": "leaks",
    "ConnectionWatch": "leaks",
    "SoakReport": "leaks",
    "assert_no_leaks": "leaks",
    "checked_out": "leaks",
    "redis_in_use": "leaks",
    "soak": "leaks",
    "NPlusOne": "queries",
    "NPlusOneDetected": "queries",
    "QueryCounter": "queries",
    "QueryCounterMiddleware": "queries",
    "QueryStats": "queries",
    "SLO": "slo",
    "BurnRateAlert": "slo",
    "Traced": "tracing",
    "TracedTier": "tracing",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tailguard.observe' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"tailguard.observe.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "LATENCY_BUCKETS",
    "REGISTRY",
    "SLO",
    "BurnRateAlert",
    "ConnectionLeak",
    "ConnectionWatch",
    "EventMetrics",
    "GoldenSignals",
    "LoopLag",
    "NPlusOne",
    "NPlusOneDetected",
    "QueryCounter",
    "QueryCounterMiddleware",
    "QueryStats",
    "SoakReport",
    "SpanEvents",
    "Traced",
    "TracedTier",
    "assert_no_leaks",
    "checked_out",
    "current_trace_id",
    "exemplar",
    "memory_exporter",
    "metrics_app",
    "monitor",
    "profile_performance",
    "redis_in_use",
    "route_template",
    "setup_tracing",
    "shutdown_tracing",
    "soak",
    "traced",
    "use_tracer_provider",
    "watch",
    "watch_process",
]
