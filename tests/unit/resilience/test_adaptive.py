"""AdaptiveLimit and its algorithms (sans-IO, fed explicit samples)."""

from __future__ import annotations

import asyncio

import pytest

from tailguard.errors import BulkheadFullError, ConfigurationError, DeadlineExceeded
from tailguard.events import HookRegistry, LimitChanged
from tailguard.resilience import AIMD, AdaptiveLimit, Gradient2
from tailguard.testing import ManualClock, RecordingHook


def test_aimd_grows_when_used_and_backs_off_on_drops() -> None:
    aimd = AIMD(increase=1.0, backoff_ratio=0.5)
    assert aimd.update(10, rtt=0.01, inflight=8, dropped=False) == 11
    assert aimd.update(10, rtt=0.01, inflight=2, dropped=False) == 10  # limit not in use
    assert aimd.update(10, rtt=0.01, inflight=8, dropped=True) == 5
    assert AIMD(timeout=0.1).update(10, rtt=0.2, inflight=8, dropped=False) == 9


def test_gradient2_shrinks_when_latency_rises_and_grows_when_it_is_steady() -> None:
    g = Gradient2()
    limit = 20.0
    for _ in range(200):  # steady 10 ms, limit in use: grows
        limit = g.update(limit, rtt=0.010, inflight=int(limit), dropped=False)
    assert limit > 40
    grown = limit
    for _ in range(30):  # latency triples: queueing, so it shrinks
        limit = g.update(limit, rtt=0.030, inflight=int(limit), dropped=False)
    assert limit < grown * 0.6


def test_gradient2_ignores_app_limited_samples() -> None:
    g = Gradient2()
    assert g.update(50.0, rtt=1.0, inflight=3, dropped=False) == 50.0


async def test_limit_moves_with_samples_and_emits_events() -> None:
    registry = HookRegistry()
    rec = RecordingHook(registry)
    limiter = AdaptiveLimit(AIMD(), initial=4, min_limit=2, max_limit=6, hooks=registry)
    for _ in range(10):
        limiter.sample(0.01, inflight=limiter.max_concurrent, dropped=False)
    assert limiter.max_concurrent == 6  # clamped at max_limit
    for _ in range(20):
        limiter.sample(0.01, inflight=1, dropped=True)
    assert limiter.max_concurrent == 2  # clamped at min_limit
    changes = rec.of(LimitChanged)
    assert changes[0] == LimitChanged("adaptive_limit", 4, 5)
    assert changes[-1].new == 2


async def test_adaptive_limit_enforces_its_current_limit() -> None:
    limiter = AdaptiveLimit(AIMD(), initial=2, max_queue=0)
    gate = asyncio.Event()

    async def work() -> None:
        await gate.wait()

    tasks = [asyncio.create_task(limiter.call(work)) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(BulkheadFullError):
        await limiter.call(work)
    gate.set()
    await asyncio.gather(*tasks)
    assert limiter.active == 0


async def test_raising_the_limit_admits_waiters() -> None:
    limiter = AdaptiveLimit(AIMD(), initial=1, max_queue=5)
    gate = asyncio.Event()

    async def work() -> None:
        await gate.wait()

    tasks = [asyncio.create_task(limiter.call(work)) for _ in range(3)]
    await asyncio.sleep(0)
    assert (limiter.active, limiter.queued) == (1, 2)
    limiter.sample(0.001, inflight=1, dropped=False)  # 1 -> 2
    assert (limiter.active, limiter.queued) == (2, 1)
    gate.set()
    await asyncio.gather(*tasks)


async def test_timeouts_count_as_drops_other_errors_are_not_samples() -> None:
    clock = ManualClock()
    limiter = AdaptiveLimit(AIMD(backoff_ratio=0.5), initial=10, clock=clock)

    async def times_out() -> None:
        raise DeadlineExceeded("db", 1.0)

    async def bad_request() -> None:
        raise ValueError("400")

    with pytest.raises(ValueError, match="400"):
        await limiter.call(bad_request)
    assert limiter.max_concurrent == 10
    with pytest.raises(DeadlineExceeded):
        await limiter.call(times_out)
    assert limiter.max_concurrent == 5


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="min_limit"):
        AdaptiveLimit(initial=5, min_limit=10)
    with pytest.raises(ConfigurationError, match="backoff_ratio"):
        AIMD(backoff_ratio=1.5)
