"""Pipeline: composition order, one deadline over all attempts, flattening, decorators."""

from __future__ import annotations

import asyncio

import pytest

from tailguard.errors import CircuitOpenError, ConfigurationError, DeadlineExceeded
from tailguard.resilience import (
    Bulkhead,
    CircuitBreaker,
    Fallback,
    Pipeline,
    Retry,
    RetryBudget,
    Timeout,
    time_remaining,
)
from tailguard.testing import ManualClock, no_backoff


async def test_the_guide_pipeline_runs_a_call_and_passes_arguments() -> None:
    guard = Pipeline(
        Timeout(1.0),
        Retry(attempts=3, budget=RetryBudget()),
        CircuitBreaker(),
        Bulkhead(max_concurrent=100, max_queue=50),
    )

    async def fetch_profile(user_id: int, *, fields: str = "all") -> dict[str, object]:
        return {"id": user_id, "fields": fields}

    assert await guard.call(fetch_profile, 42, fields="name") == {"id": 42, "fields": "name"}

    @guard
    async def fetch(user_id: int) -> int:
        return user_id

    assert await fetch(7) == 7
    assert fetch.__name__ == "fetch"


async def test_outermost_first_and_each_attempt_goes_through_the_inner_policies() -> None:
    order: list[str] = []

    class Tap:
        def __init__(self, name: str) -> None:
            self.name = name

        async def call(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            order.append(self.name)
            return await fn(*args, **kwargs)

    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionError
        return "ok"

    guard = Pipeline(Tap("outer"), Retry(attempts=3), Tap("inner"))
    with no_backoff():
        assert await guard.call(flaky) == "ok"
    assert order == ["outer", "inner", "inner", "inner"]


async def test_one_deadline_covers_every_attempt() -> None:
    clock = ManualClock()
    remaining: list[float | None] = []

    async def slow_failure() -> None:
        remaining.append(time_remaining())
        raise ConnectionError

    guard = Pipeline(
        Timeout(10.0, clock=clock), Retry(attempts=5, delay=3.0, jitter="none", clock=clock)
    )
    task = asyncio.create_task(guard.call(slow_failure))
    for step in (3.0, 6.0):
        for _ in range(5):
            await asyncio.sleep(0)
        clock.advance(step)
    with pytest.raises(ConnectionError):
        await task
    # attempts at t=0, 3, 9; the next wait (12 s) cannot fit in what is left of 10 s
    assert remaining == [10.0, 7.0, 1.0]


async def test_timeout_cuts_through_retry_backoff() -> None:
    guard = Pipeline(Timeout(0.05), Retry(attempts=10, delay=1.0, max_delay=1.0, jitter="none"))
    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError

    # the deadline leaves no room for a 1 s wait: Retry gives up at once with the real error
    with pytest.raises(ConnectionError):
        await guard.call(down)
    assert calls == 1

    async def hang() -> None:
        await asyncio.Event().wait()

    with pytest.raises(DeadlineExceeded):
        await guard.call(hang)


async def test_breaker_inside_retry_opens_and_retry_stops_at_the_open_breaker() -> None:
    breaker = CircuitBreaker(failure_threshold=2)
    guard = Pipeline(Retry(attempts=5), breaker)
    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError

    with no_backoff(), pytest.raises(CircuitOpenError):
        await guard.call(down)
    assert calls == 2
    assert breaker.state == "open"


async def test_fallback_outermost_catches_everything_inside() -> None:
    guard = Pipeline(Fallback("cached"), Timeout(0.02), Retry(attempts=2))

    async def hang() -> str:
        await asyncio.Event().wait()
        return "never"

    assert await guard.call(hang) == "cached"


def test_nested_pipelines_flatten_and_empty_is_refused() -> None:
    t, r, b = Timeout(1.0), Retry(), Bulkhead()
    assert Pipeline(t, Pipeline(r, b)).policies == (t, r, b)
    with pytest.raises(ConfigurationError, match="at least one policy"):
        Pipeline()
    with pytest.raises(ConfigurationError, match="Pipeline policy"):
        Pipeline(object())  # type: ignore[arg-type]
    assert "Timeout(1" in repr(Pipeline(t))
