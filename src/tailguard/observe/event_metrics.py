"""Events to metrics: the hook registry's events as prometheus_client series.

The capabilities emit events (``tailguard.events``) and import no metrics library;
:class:`EventMetrics` subscribes and counts them. Every label comes from a name given in code
(a policy, cache, tier or limiter name), never from a key, so the series stay bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tailguard.events import (
    CacheCoalesced,
    CacheError,
    CacheHit,
    CacheInvalidated,
    CacheLoad,
    CacheMiss,
    CallRejected,
    CircuitStateChanged,
    EndpointEjected,
    EndpointHealthChanged,
    Event,
    FallbackUsed,
    HedgeFired,
    HookRegistry,
    LimitChanged,
    RateLimited,
    RetryGaveUp,
    RetryScheduled,
    TimeoutExpired,
)
from tailguard.events import hooks as global_hooks
from tailguard.observe import _names
from tailguard.observe._registry import REGISTRY, family

__all__ = ["BREAKER_STATES", "EventMetrics"]

BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
"""The value of ``tailguard_circuit_state`` for each breaker state."""

_P = "tailguard_"
# metric -> (kind, help, labels)
_SPECS: dict[str, tuple[type, str, tuple[str, ...]]] = {
    "circuit_state": (Gauge, "Breaker state: 0 closed, 1 half-open, 2 open.", ("name",)),
    "circuit_transitions": (Counter, "Breaker state changes.", ("name", "old", "new")),
    "rejections": (Counter, "Calls refused without running.", ("name", "policy", "reason")),
    "retries": (Counter, "Retries scheduled.", ("name",)),
    "retry_gave_up": (Counter, "Calls a retry policy gave up on.", ("name", "reason")),
    "timeouts": (Counter, "Calls cut off by their deadline.", ("name",)),
    "hedges": (Counter, "Hedged attempts fired.", ("name",)),
    "fallbacks": (Counter, "Fallbacks used instead of a failed call.", ("name",)),
    "adaptive_limit": (Gauge, "The current limit of an adaptive concurrency limit.", ("name",)),
    "cache_hits": (Counter, "Cache hits, by tier.", ("name", "tier")),
    "cache_misses": (Counter, "Cache misses (in every tier).", ("name",)),
    "cache_errors": (Counter, "Cache tier failures.", ("name", "tier", "operation")),
    "cache_loads": (Counter, "Loader runs on a miss.", ("name", "outcome")),
    "cache_load_seconds": (Histogram, "Loader latency on a miss, in seconds.", ("name",)),
    "cache_coalesced": (Counter, "Misses that joined a load already in flight.", ("name",)),
    "cache_invalidations": (Counter, "Keys evicted by an invalidation.", ("name", "tier")),
    "rate_limited": (Counter, "Requests a rate limiter refused.", ("name", "limit")),
    "endpoint_ejections": (Counter, "Endpoints a balancer ejected.", ("name", "address")),
    "endpoint_healthy": (Gauge, "Active health check: 1 healthy, 0 not.", ("name", "address")),
}


def _make(metric: str) -> Callable[[CollectorRegistry], Any]:
    kind, text, labels = _SPECS[metric]

    def make(reg: CollectorRegistry) -> Any:
        if kind is Histogram:
            return Histogram(
                _P + metric, text, labels, buckets=_names.LATENCY_BUCKETS, registry=reg
            )
        return kind(_P + metric, text, labels, registry=reg)

    return make


# (id(hooks), id(registry)) -> [unsubscribe, how many EventMetrics share it]
_subscriptions: dict[tuple[int, int], list[Any]] = {}


class EventMetrics:
    """Subscribes to ``hooks`` (the global registry by default) and records every event in
    ``registry``. ``close()`` (or leaving ``with``) unsubscribes."""

    def __init__(
        self, *, registry: CollectorRegistry | None = None, hooks: HookRegistry | None = None
    ) -> None:
        reg = registry if registry is not None else REGISTRY
        self._m = {name: family(reg, _P + name, _make(name)) for name in _SPECS}
        self._children: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._handlers: dict[type[Event], Callable[[Any], None]] = {
            CircuitStateChanged: self._circuit,
            CallRejected: lambda e: self._inc("rejections", e.name, e.policy, e.reason),
            RetryScheduled: lambda e: self._inc("retries", e.name),
            RetryGaveUp: lambda e: self._inc("retry_gave_up", e.name, e.reason),
            TimeoutExpired: lambda e: self._inc("timeouts", e.name),
            HedgeFired: lambda e: self._inc("hedges", e.name),
            FallbackUsed: lambda e: self._inc("fallbacks", e.name),
            LimitChanged: lambda e: self._child("adaptive_limit", e.name).set(e.new),
            CacheHit: lambda e: self._inc("cache_hits", e.name, e.tier),
            CacheMiss: lambda e: self._inc("cache_misses", e.name),
            CacheError: lambda e: self._inc("cache_errors", e.name, e.tier, e.operation),
            CacheLoad: self._load,
            CacheCoalesced: lambda e: self._inc("cache_coalesced", e.name),
            CacheInvalidated: lambda e: self._inc("cache_invalidations", e.name, e.tier),
            RateLimited: lambda e: self._inc("rate_limited", e.name, e.limit),
            EndpointEjected: lambda e: self._inc("endpoint_ejections", e.name, e.address),
            EndpointHealthChanged: lambda e: self._child("endpoint_healthy", e.name, e.address).set(
                1 if e.healthy else 0
            ),
        }
        source = hooks if hooks is not None else global_hooks
        # One subscription per (hooks, registry): a second EventMetrics on the same pair (two
        # apps in one process, a library and its user) must not count every event twice.
        key = (id(source), id(reg))
        shared = _subscriptions.get(key)
        if shared is None:
            shared = _subscriptions[key] = [source.subscribe(self, *self._handlers), 0]
        shared[1] += 1
        self._key: tuple[int, int] | None = key

    def __call__(self, event: Event) -> None:
        self._handlers[type(event)](event)

    def _child(self, metric: str, *labels: str) -> Any:
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._m[metric].labels(*labels)
        return child

    def _inc(self, metric: str, *labels: str) -> None:
        self._child(metric, *labels).inc()

    def _circuit(self, e: CircuitStateChanged) -> None:
        self._child("circuit_state", e.name).set(BREAKER_STATES.get(e.new, -1))
        self._inc("circuit_transitions", e.name, e.old, e.new)

    def _load(self, e: CacheLoad) -> None:
        self._inc("cache_loads", e.name, "ok" if e.ok else "error")
        self._child("cache_load_seconds", e.name).observe(e.seconds)

    def close(self) -> None:
        """Stop recording events (once the last EventMetrics on this pair is closed)."""
        key, self._key = self._key, None
        shared = _subscriptions.get(key) if key is not None else None
        if shared is not None:
            shared[1] -= 1
            if shared[1] == 0:
                del _subscriptions[key]  # type: ignore[arg-type]
                shared[0]()

    def __enter__(self) -> EventMetrics:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
