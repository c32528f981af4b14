"""Saturation, the signal everyone forgets: how full the things a request waits for are.

* :class:`LoopLag`: a sampler task measuring how late the event loop wakes a sleeper (a
  blocked loop delays every request in the process at once).
* :func:`watch`: pools and limits read at scrape time, so they cost nothing per request: a
  SQLAlchemy engine (checked out, overflow, size, waiters), a redis-py asyncio client (in use,
  idle, max), and a ``Bulkhead`` or ``AdaptiveLimit`` (active, queued, limit).
* Process CPU seconds and resident memory (prometheus_client's process collector).

Watched objects are held weakly: a disposed engine disappears from the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tailguard.errors import ConfigurationError
from tailguard.observe._names import LOOP_LAG
from tailguard.observe._registry import REGISTRY, family

__all__ = ["LoopLag", "watch", "watch_process"]

_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class LoopLag:
    """Samples the event loop's lag every ``interval`` seconds into ``registry``.

    The gauge ``tailguard_event_loop_lag_seconds`` holds the last sample, the histogram
    ``tailguard_event_loop_lag_seconds_hist`` all of them. Use ``async with LoopLag():`` or
    ``start()`` in a running loop and ``await aclose()``.
    """

    def __init__(
        self, *, registry: CollectorRegistry | None = None, interval: float = 0.25
    ) -> None:
        if not interval > 0:
            raise ConfigurationError("LoopLag.interval", interval, "seconds > 0")
        reg = registry if registry is not None else REGISTRY
        self.interval = interval
        self.gauge: Gauge = family(
            reg,
            LOOP_LAG,
            lambda r: Gauge(
                LOOP_LAG, "How late the event loop woke the last sampler, in seconds.", registry=r
            ),
        )
        self.histogram: Histogram = family(
            reg,
            LOOP_LAG + "_hist",
            lambda r: Histogram(
                LOOP_LAG + "_hist",
                "Event loop lag samples, in seconds.",
                buckets=_LAG_BUCKETS,
                registry=r,
            ),
        )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sampling in the running loop (no-op if already started)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="tailguard-loop-lag"
            )

    async def _run(self) -> None:
        interval = self.interval
        while True:
            start = time.perf_counter()
            await asyncio.sleep(interval)
            lag = max(0.0, time.perf_counter() - start - interval)
            self.gauge.set(lag)
            self.histogram.observe(lag)

    async def aclose(self) -> None:
        """Stop sampling."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> LoopLag:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def watch_process(registry: CollectorRegistry | None = None) -> None:
    """Export process CPU seconds, resident memory and open files (Linux ``/proc``) into
    ``registry``; once per registry."""
    reg = registry if registry is not None else REGISTRY
    family(reg, "process", _process_collector)


def _process_collector(reg: CollectorRegistry) -> ProcessCollector | None:
    try:
        return ProcessCollector(registry=reg)
    except ValueError:  # already there: prometheus_client's own registry has one by default
        return None


def _sqlalchemy(pool: Any) -> dict[str, float]:
    out: dict[str, float] = {"checked_out": pool.checkedout()}
    for name, attr in (("size", "size"), ("overflow", "overflow")):
        fn = getattr(pool, attr, None)
        if callable(fn):
            out[name] = max(0, fn())  # overflow() is negative while the pool is filling
    queue = getattr(pool, "_pool", None)
    waiters = getattr(getattr(queue, "_queue", None), "_getters", None)  # asyncio pools
    if waiters is None:
        waiters = getattr(getattr(queue, "not_empty", None), "_waiters", None)  # thread pools
    if waiters is not None:
        out["waiters"] = len(waiters)
    return out


def _redis(pool: Any) -> dict[str, float]:
    return {
        "in_use": len(getattr(pool, "_in_use_connections", ())),
        "idle": len(getattr(pool, "_available_connections", ())),
        "max": getattr(pool, "max_connections", 0),
    }


def _limit(limit: Any) -> dict[str, float]:
    return {"active": limit.active, "queued": limit.queued, "limit": limit.max_concurrent}


_KINDS: dict[str, tuple[str, str]] = {
    "db_pool": ("tailguard_db_pool", "SQLAlchemy pool {} (connections)."),
    "redis_pool": ("tailguard_redis_pool", "redis-py pool connections {}."),
    "limit": ("tailguard_limit", "Bulkhead or adaptive limit: calls {}."),
    "statements": ("tailguard_db_statements", "Statements sent to the database ({})."),
}
# Kinds whose one field is a running count, exported as a counter (``..._total``).
_COUNTERS = {"statements"}


class _Saturation(Collector):
    """Reads every watched object at scrape time."""

    def __init__(self) -> None:
        # (kind, name) -> (weak reference to the object, reader)
        self.watched: dict[
            tuple[str, str], tuple[Callable[[], Any], Callable[[Any], dict[str, float]]]
        ] = {}

    def collect(self) -> Iterator[Metric]:
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        for (kind, name), (ref, read) in list(self.watched.items()):
            obj = ref()
            if obj is None:
                del self.watched[(kind, name)]
                continue
            prefix, text = _KINDS[kind]
            for field, value in read(obj).items():
                metric = prefix if kind in _COUNTERS else f"{prefix}_{field}"
                fam = families.get(metric)
                if fam is None:
                    make = CounterMetricFamily if kind in _COUNTERS else GaugeMetricFamily
                    fam = families[metric] = make(metric, text.format(field), labels=["name"])
                fam.add_metric([name], value)
        yield from families.values()


def watch(obj: Any, name: str, *, registry: CollectorRegistry | None = None) -> None:
    """Report ``obj``'s saturation under ``name`` at every scrape of ``registry``.

    ``obj``: a SQLAlchemy ``Engine``/``AsyncEngine``/``Pool``, a redis-py (asyncio) client or
    connection pool, a ``Bulkhead``/``AdaptiveLimit``, or a ``QueryCounter`` (its running
    total as the counter ``tailguard_db_statements_total{name}``: database statements per
    request is its rate over the request rate's). Watching the same name again replaces the
    earlier object.
    """
    reg = registry if registry is not None else REGISTRY
    collector: _Saturation = family(reg, "saturation", _register)
    kind, target, read = _classify(obj)
    collector.watched[(kind, name)] = (weakref.ref(target), read)


def _register(reg: CollectorRegistry) -> _Saturation:
    collector = _Saturation()
    reg.register(collector)
    return collector


def _classify(obj: Any) -> tuple[str, Any, Callable[[Any], dict[str, float]]]:
    if hasattr(obj, "active") and hasattr(obj, "queued") and hasattr(obj, "max_concurrent"):
        return "limit", obj, _limit
    if isinstance(getattr(obj, "total", None), int) and callable(getattr(obj, "scope", None)):
        return "statements", obj, lambda counter: {"total": counter.total}
    engine = getattr(obj, "sync_engine", obj)  # AsyncEngine -> Engine
    if callable(getattr(getattr(engine, "pool", None), "checkedout", None)):
        # The engine, not its pool: dispose() replaces the pool and the engine goes on.
        return "db_pool", engine, lambda e: _sqlalchemy(e.pool)
    if callable(getattr(obj, "checkedout", None)):
        return "db_pool", obj, _sqlalchemy
    pool = getattr(obj, "connection_pool", obj)
    if hasattr(pool, "_in_use_connections"):
        return "redis_pool", pool, _redis
    raise ConfigurationError(
        "watch(obj)",
        type(obj).__name__,
        "a SQLAlchemy engine or pool, a redis client or pool, a bulkhead or a QueryCounter",
    )
