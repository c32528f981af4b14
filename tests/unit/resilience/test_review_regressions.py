"""Regressions for defects found in review; each test failed before its fix."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref

import pytest

from tailguard.errors import CircuitOpenError, ConfigurationError, DeadlineExceeded
from tailguard.events import CallRejected, HookRegistry, RetryGaveUp
from tailguard.resilience import (
    AdaptiveLimit,
    CircuitBreaker,
    Gradient2,
    Hedge,
    Pipeline,
    Retry,
    RetryBudget,
    Timeout,
    time_remaining,
)
from tailguard.resilience.timeout import _wheel_for, _wheels
from tailguard.testing import ManualClock, RecordingHook


async def test_a_task_created_inside_a_timeout_keeps_its_own_deadline() -> None:
    child_result: list[str] = []

    async def background() -> None:
        assert time_remaining() is None  # the parent's deadline is not the child's
        try:
            await Timeout(0.05).call(asyncio.sleep, 5.0)
        except DeadlineExceeded:
            child_result.append("timed out")

    async def handler() -> asyncio.Task[None]:
        return asyncio.create_task(background())

    child = await Timeout(0.01).call(handler)
    started = time.monotonic()
    await asyncio.wait_for(child, 2.0)
    assert child_result == ["timed out"]
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("form", ["call", "async with"])
async def test_a_swallowed_deadline_leaves_no_pending_cancel_and_no_entry(form: str) -> None:
    async def stubborn() -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            return "swallowed"
        return "slept"

    timeout = Timeout(0.01)
    if form == "call":
        assert await timeout.call(stubborn) == "swallowed"
    else:
        async with timeout:
            assert await stubborn() == "swallowed"
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
    assert not _wheel_for(asyncio.get_running_loop()).fired
    await asyncio.sleep(0.02)  # and nothing strikes later


async def test_time_window_forgets_everything_when_the_breaker_moves() -> None:
    clock = ManualClock()  # starts at 0: the case where stale buckets used to count again
    breaker = CircuitBreaker(
        failure_rate=0.5, window_seconds=60, minimum_calls=3, recovery_time=1, clock=clock
    )

    async def fail() -> None:
        raise ConnectionError

    async def ok() -> str:
        return "ok"

    for _ in range(3):
        with pytest.raises(ConnectionError):
            await breaker.call(fail)
    clock.advance(1)
    await breaker.call(ok)  # the probe closes it
    await breaker.call(ok)
    assert breaker.state == "closed"


async def test_gradient2_survives_a_zero_latency_sample() -> None:
    limiter = AdaptiveLimit(Gradient2(), clock=ManualClock())

    async def instant() -> str:
        return "value"

    assert await limiter.call(instant) == "value"


async def test_a_slow_call_rate_alone_still_opens_on_failures() -> None:
    breaker = CircuitBreaker(slow_call_duration=1.0, slow_call_rate=0.5, window=10, minimum_calls=5)

    async def fail() -> None:
        raise ConnectionError

    for _ in range(5):
        with pytest.raises(ConnectionError):
            await breaker.call(fail)
    assert breaker.state == "open"
    with pytest.raises(ConfigurationError, match="slow_call_duration"):
        CircuitBreaker(slow_call_rate=0.5)


async def test_a_window_smaller_than_minimum_calls_can_still_open() -> None:
    breaker = CircuitBreaker(failure_rate=0.5, window=5)  # minimum_calls defaults to 10

    async def fail() -> None:
        raise ConnectionError

    for _ in range(5):
        with pytest.raises(ConnectionError):
            await breaker.call(fail)
    with pytest.raises(CircuitOpenError):
        await breaker.call(fail)


def test_unsubscribing_twice_removes_only_its_own_subscription() -> None:
    registry = HookRegistry()
    seen: list[object] = []
    off_a = registry.subscribe(seen.append, CallRejected)
    registry.subscribe(seen.append, CallRejected)
    off_a()
    off_a()
    assert len(registry) == 1
    registry.emit(CallRejected("x", "bulkhead", "full"))
    assert len(seen) == 1


async def test_retry_counts_the_first_attempt_against_the_deadline() -> None:
    registry = HookRegistry()
    rec = RecordingHook(registry)
    attempts = 0

    async def slow_failure() -> None:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0.06)
        raise ConnectionError("slow and broken")

    guard = Pipeline(Timeout(0.1), Retry(3, delay=0.005, hooks=registry))
    with pytest.raises(ConnectionError):
        await guard.call(slow_failure)
    assert attempts == 1  # a second 60 ms attempt could not fit in what was left of 100 ms
    assert rec.of(RetryGaveUp)[0].reason == "deadline"


async def test_a_losing_hedges_error_is_retrieved(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    n = 0

    async def attempt() -> str:
        nonlocal n
        n += 1
        me = n
        if me == 1:
            await asyncio.sleep(10)
            return "primary"
        if me == 2:
            await clock.sleep(1)
            return "hedge-1"
        await clock.sleep(2)
        raise ValueError("hedge-2 failed")

    async def driver() -> None:
        await asyncio.sleep(0.05)
        clock.advance(5)  # both hedges finish in the same loop step

    task = asyncio.create_task(driver())
    assert await Hedge(0.01, max_hedges=2).call(attempt) == "hedge-1"
    await task
    gc.collect()
    await asyncio.sleep(0)
    assert "never retrieved" not in caplog.text


def test_closed_loops_are_not_kept_alive_by_the_shared_timer() -> None:
    timeout = Timeout(1.0)

    async def once() -> None:
        await timeout.call(asyncio.sleep, 0)

    closed = []
    for _ in range(5):
        loop = asyncio.new_event_loop()
        loop.run_until_complete(once())
        assert loop in _wheels
        loop.close()
        closed.append(weakref.ref(loop))
    del loop
    gc.collect()
    # The loops this test closed are gone, and with them their wheels. (Counting every key of
    # _wheels instead would also count loops that other tests' objects still hold.)
    assert [ref() for ref in closed] == [None] * 5


def test_budget_and_manual_clock_tolerate_float_sums() -> None:
    clock = ManualClock()
    budget = RetryBudget(ratio=0.57, min_per_second=0, window=10, clock=clock)
    for _ in range(100):
        budget.deposit()
    assert sum(budget.try_withdraw() for _ in range(100)) == 57
    for _ in range(10):
        clock.advance(0.1)
    assert clock.now() == pytest.approx(1.0)


async def test_manual_clock_wakes_a_sleeper_after_ten_tenths() -> None:
    clock = ManualClock()
    task = asyncio.create_task(clock.sleep(1.0))
    await asyncio.sleep(0)
    for _ in range(10):
        clock.advance(0.1)
    await asyncio.wait_for(task, 1.0)
