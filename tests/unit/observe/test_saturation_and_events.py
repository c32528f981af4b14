"""Saturation read at scrape time, event-loop lag, and hook events turned into metrics."""

from __future__ import annotations

import asyncio
import gc
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from tailguard.cache import MemoryTier, TieredCache
from tailguard.errors import BulkheadFullError, ConfigurationError
from tailguard.events import HookRegistry, RetryScheduled
from tailguard.observe import EventMetrics, LoopLag, watch, watch_process
from tailguard.ratelimit import GCRA
from tailguard.resilience import Bulkhead, CircuitBreaker, Retry
from tailguard.testing import ManualClock, no_backoff


def value(registry: CollectorRegistry, metric: str, /, **labels: str) -> float | None:
    return registry.get_sample_value(metric, labels)


async def test_a_bulkhead_is_read_at_scrape_time_and_forgotten_when_gone() -> None:
    registry = CollectorRegistry()
    bulkhead = Bulkhead(max_concurrent=1, max_queue=5, name="payments")
    watch(bulkhead, "payments", registry=registry)
    release = asyncio.Event()

    async def hold() -> None:
        await release.wait()

    tasks = [asyncio.create_task(bulkhead.call(hold)) for _ in range(3)]
    await asyncio.sleep(0.01)
    assert value(registry, "tailguard_limit_active", name="payments") == 1
    assert value(registry, "tailguard_limit_queued", name="payments") == 2
    assert value(registry, "tailguard_limit_limit", name="payments") == 1
    release.set()
    await asyncio.gather(*tasks)
    assert value(registry, "tailguard_limit_queued", name="payments") == 0
    del bulkhead, tasks
    gc.collect()
    assert value(registry, "tailguard_limit_active", name="payments") is None


def test_watch_refuses_what_it_cannot_read() -> None:
    with pytest.raises(ConfigurationError, match="watch"):
        watch(object(), "x", registry=CollectorRegistry())


def test_process_cpu_and_memory() -> None:
    registry = CollectorRegistry()
    watch_process(registry)
    watch_process(registry)  # once per registry
    rss = value(registry, "process_resident_memory_bytes")
    assert rss is not None
    assert rss > 10_000_000
    assert value(registry, "process_cpu_seconds_total") is not None


async def test_loop_lag_sees_a_blocked_loop() -> None:
    registry = CollectorRegistry()
    async with LoopLag(registry=registry, interval=0.01):
        await asyncio.sleep(0.03)
        time.sleep(0.1)  # noqa: ASYNC251 - blocks the loop on purpose: the sampler wakes late
        await asyncio.sleep(0.03)
    histogram_count = value(registry, "tailguard_event_loop_lag_seconds_hist_count")
    assert histogram_count is not None
    assert histogram_count >= 2
    over = value(registry, "tailguard_event_loop_lag_seconds_hist_bucket", le="0.05")
    assert over is not None
    assert histogram_count - over >= 1  # one sample above 50 ms


def test_loop_lag_interval_must_be_positive() -> None:
    with pytest.raises(ConfigurationError, match="interval"):
        LoopLag(interval=0)


async def test_breaker_retry_bulkhead_cache_and_limiter_events_become_metrics() -> None:
    registry = CollectorRegistry()
    hooks = HookRegistry()
    with EventMetrics(registry=registry, hooks=hooks):
        clock = ManualClock()
        breaker = CircuitBreaker("pg", failure_threshold=2, clock=clock, hooks=hooks)

        async def fail() -> None:
            raise ConnectionError("down")

        for _ in range(2):
            with pytest.raises(ConnectionError):
                await breaker.call(fail)
        assert value(registry, "tailguard_circuit_state", name="pg") == 2
        assert value(registry, "tailguard_circuit_transitions_total",
                     name="pg", old="closed", new="open") == 1  # fmt: skip

        attempts = 0

        async def flaky() -> int:
            nonlocal attempts
            attempts += 1
            if attempts < 3:
                raise ConnectionError("again")
            return attempts

        with no_backoff():
            assert await Retry(attempts=3, name="inventory", hooks=hooks).call(flaky) == 3
        assert value(registry, "tailguard_retries_total", name="inventory") == 2

        bulkhead = Bulkhead(max_concurrent=1, max_queue=0, name="pay", hooks=hooks)
        async with bulkhead:
            with pytest.raises(BulkheadFullError):
                await bulkhead.acquire()
        assert value(registry, "tailguard_rejections_total",
                     name="pay", policy="bulkhead", reason="full") == 1  # fmt: skip
    # Closed: nothing more is recorded.
    assert not hooks.active


async def test_cache_and_rate_limit_events_on_the_global_hooks() -> None:
    registry = CollectorRegistry()
    with EventMetrics(registry=registry):
        cache = TieredCache([MemoryTier()], name="products")

        async def load() -> str:
            return "p"

        await cache.get_or_load("p:1", load, ttl=60)
        await cache.get_or_load("p:1", load, ttl=60)
        limiter = GCRA("1/minute", name="login")
        await limiter.check("ip")
        await limiter.check("ip")
        await limiter.check("ip")
    assert value(registry, "tailguard_cache_misses_total", name="products") == 1
    assert value(registry, "tailguard_cache_hits_total", name="products", tier="memory") == 1
    assert value(registry, "tailguard_cache_loads_total", name="products", outcome="ok") == 1
    assert value(registry, "tailguard_rate_limited_total", name="login", limit="1/minute") == 2


def test_two_event_metrics_on_one_registry_count_each_event_once() -> None:
    registry = CollectorRegistry()
    hooks = HookRegistry()
    first = EventMetrics(registry=registry, hooks=hooks)
    second = EventMetrics(registry=registry, hooks=hooks)
    hooks.emit(RetryScheduled("inventory", attempt=1, delay=0.1, error="ConnectionError"))
    assert value(registry, "tailguard_retries_total", name="inventory") == 1
    first.close()
    hooks.emit(RetryScheduled("inventory", attempt=2, delay=0.2, error="ConnectionError"))
    assert value(registry, "tailguard_retries_total", name="inventory") == 2  # still recording
    second.close()
    assert not hooks.active


def test_watch_process_on_prometheus_clients_own_registry() -> None:
    import prometheus_client

    watch_process(prometheus_client.REGISTRY)  # it has a process collector already: no error
    assert prometheus_client.REGISTRY.get_sample_value("process_resident_memory_bytes")


def test_an_engine_is_still_watched_after_dispose(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    registry = CollectorRegistry()
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    watch(engine, "main", registry=registry)
    with engine.connect() as conn:
        conn.execute(text("select 1"))
        assert value(registry, "tailguard_db_pool_checked_out", name="main") == 1
    engine.dispose()  # a new pool, the same engine
    with engine.connect() as conn:
        conn.execute(text("select 1"))
        assert value(registry, "tailguard_db_pool_checked_out", name="main") == 1
    engine.dispose()


def test_a_query_counter_is_exported_as_a_running_counter(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    from tailguard.observe import QueryCounter

    registry = CollectorRegistry()
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with QueryCounter(engine, on_n_plus_one="ignore") as counter:
        watch(counter, "main", registry=registry)
        assert value(registry, "tailguard_db_statements_total", name="main") == 0
        with engine.connect() as conn:
            for _ in range(3):
                conn.execute(text("select 1"))
        assert value(registry, "tailguard_db_statements_total", name="main") == 3
    engine.dispose()
