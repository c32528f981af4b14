"""Fallback and Hedge."""

from __future__ import annotations

import asyncio

import pytest

from tailguard.errors import ConfigurationError
from tailguard.events import FallbackUsed, HedgeFired, HookRegistry
from tailguard.resilience import Fallback, Hedge, RetryBudget
from tailguard.testing import ManualClock, RecordingHook


async def boom() -> list[str]:
    raise ConnectionError("down")


async def test_fallback_value_and_event() -> None:
    registry = HookRegistry()
    rec = RecordingHook(registry)
    fallback: Fallback[list[str]] = Fallback([], name="recs", hooks=registry)
    assert await fallback.call(boom) == []
    assert rec.of(FallbackUsed) == [FallbackUsed("recs", "ConnectionError")]


async def test_falsy_fallback_value_is_still_a_value() -> None:
    assert await Fallback(0).call(boom) == 0  # type: ignore[arg-type]


async def test_fallback_handler_sync_and_async_sees_the_exception() -> None:
    seen: list[BaseException] = []

    def sync_handler(exc: BaseException) -> list[str]:
        seen.append(exc)
        return ["cached"]

    async def async_handler(exc: BaseException) -> list[str]:
        return [type(exc).__name__]

    assert await Fallback(handler=sync_handler).call(boom) == ["cached"]
    assert isinstance(seen[0], ConnectionError)
    assert await Fallback(handler=async_handler).call(boom) == ["ConnectionError"]


async def test_fallback_only_for_matching_errors_and_never_for_cancellation() -> None:
    fallback = Fallback("default", on=ConnectionError)

    async def other() -> str:
        raise KeyError("x")

    with pytest.raises(KeyError):
        await fallback.call(other)

    async def cancelled() -> str:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await Fallback("default", on=BaseException).call(cancelled)


async def test_fallback_decorator() -> None:
    @Fallback("anonymous")
    async def name_of(user_id: int) -> str:
        raise ConnectionError(user_id)

    assert await name_of(3) == "anonymous"


def test_fallback_needs_exactly_one_of_value_and_handler() -> None:
    with pytest.raises(ConfigurationError, match="exactly one"):
        Fallback()
    with pytest.raises(ConfigurationError, match="exactly one"):
        Fallback(1, handler=lambda e: 2)


class Backend:
    """Each call takes the next latency from ``latencies`` (seconds, real time)."""

    def __init__(self, *latencies: float) -> None:
        self.latencies = list(latencies)
        self.started = 0
        self.cancelled = 0

    async def __call__(self) -> int:
        n = self.started
        self.started += 1
        try:
            await asyncio.sleep(self.latencies[min(n, len(self.latencies) - 1)])
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return n


async def test_hedge_fires_after_the_delay_first_answer_wins_loser_cancelled() -> None:
    registry = HookRegistry()
    rec = RecordingHook(registry)
    backend = Backend(5.0, 0.0)
    hedge = Hedge(0.01, hooks=registry)
    assert await asyncio.wait_for(hedge.call(backend), 2.0) == 1  # the hedge answered
    assert backend.started == 2
    assert backend.cancelled == 1  # the slow first attempt was cancelled
    assert [e.attempt for e in rec.of(HedgeFired)] == [1]


async def test_fast_calls_are_not_hedged() -> None:
    backend = Backend(0.0)
    hedge = Hedge(1.0)
    for _ in range(5):
        assert await hedge.call(backend) >= 0
    assert backend.started == 5


async def test_hedges_draw_from_the_retry_budget() -> None:
    clock = ManualClock()
    budget = RetryBudget(ratio=0.0, min_per_second=0.0, window=1.0, clock=clock)  # nothing
    backend = Backend(0.05, 0.0)
    hedge = Hedge(0.001, budget=budget)
    assert await hedge.call(backend) == 0  # no budget: the slow attempt is awaited
    assert backend.started == 1


async def test_first_failure_waits_for_the_hedge() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(0.05)
            raise ConnectionError("slow failure")
        return "hedge ok"

    assert await Hedge(0.01).call(flaky) == "hedge ok"


async def test_a_failure_before_the_delay_raises_at_once_without_a_hedge() -> None:
    registry = HookRegistry()
    rec = RecordingHook(registry)
    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        await Hedge(0.05, hooks=registry).call(down)
    await asyncio.sleep(0.08)
    assert calls == 1
    assert not rec.of(HedgeFired)


async def test_the_caller_task_is_left_clean_after_a_hedge_wins() -> None:
    backend = Backend(5.0, 0.0)
    assert await Hedge(0.005).call(backend) == 1
    current = asyncio.current_task()
    assert current is not None
    assert current.cancelling() == 0  # the inline attempt's cancellation was absorbed
    await asyncio.sleep(0.01)  # and does not strike later


async def test_all_attempts_failing_raises() -> None:
    async def down() -> None:
        await asyncio.sleep(0.02)
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        await Hedge(0.005, max_hedges=2).call(down)


async def test_percentile_delay_follows_recent_latency() -> None:
    hedge = Hedge(percentile=90.0, min_samples=10)
    assert hedge.current_delay() is None
    for i in range(100):
        hedge._observe(i / 1000)
    assert hedge.current_delay() == pytest.approx(0.090)


async def test_cancelling_a_hedged_call_cancels_every_attempt() -> None:
    backend = Backend(5.0, 5.0)
    task = asyncio.create_task(Hedge(0.001).call(backend))
    await asyncio.sleep(0.02)
    assert backend.started == 2
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert backend.cancelled == 2


@pytest.mark.parametrize(
    ("kw", "setting"),
    [
        ({"delay": -1.0}, "delay"),
        ({"percentile": 100.0}, "percentile"),
        ({"max_hedges": -1}, "max_hedges"),
    ],
)
def test_hedge_bad_config(kw: dict[str, float], setting: str) -> None:
    with pytest.raises(ConfigurationError, match=f"Hedge.{setting}"):
        Hedge(**kw)  # type: ignore[arg-type]
