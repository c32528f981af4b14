"""Timeout: the shared coarse timer, the deadline ContextVar, nesting and cancellation."""

from __future__ import annotations

import asyncio
import time

import pytest

from tailguard.errors import DeadlineExceeded, TailguardError
from tailguard.events import HookRegistry, TimeoutExpired
from tailguard.resilience import Timeout, current_deadline, time_remaining
from tailguard.resilience.timeout import RESOLUTION, _wheel_for
from tailguard.testing import ManualClock, RecordingHook


async def hang() -> None:
    await asyncio.Event().wait()


async def test_real_clock_deadline_raises_deadline_exceeded_never_early() -> None:
    registry = HookRegistry()
    rec = RecordingHook(registry)
    timeout = Timeout(0.05, name="profile", hooks=registry)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as info:
        await timeout.call(hang)
    assert time.monotonic() - started >= 0.05
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, TailguardError)
    assert "profile" in str(info.value)
    assert rec.of(TimeoutExpired) == [TimeoutExpired("profile", 0.05)]


async def test_fast_calls_leave_nothing_behind_on_the_shared_timer() -> None:
    timeout = Timeout(10.0)

    async def quick(x: int) -> int:
        return x

    for i in range(1000):
        assert await timeout.call(quick, i) == i
    wheel = _wheel_for(asyncio.get_running_loop())
    assert sum(len(b) for b in wheel.buckets.values()) == 0
    assert len(wheel.buckets) <= 10.0 / RESOLUTION  # at most one bucket per tick


async def test_many_concurrent_deadlines_share_few_loop_timers() -> None:
    loop = asyncio.get_running_loop()
    timeout = Timeout(0.02)
    scheduled: list[float] = []
    original = loop.call_later

    def spy(delay: float, *args: object) -> asyncio.TimerHandle:
        scheduled.append(delay)
        return original(delay, *args)  # type: ignore[arg-type]

    loop.call_later = spy  # type: ignore[method-assign]
    try:
        results = await asyncio.gather(
            *(timeout.call(hang) for _ in range(500)), return_exceptions=True
        )
    finally:
        del loop.call_later  # type: ignore[method-assign]
    assert all(isinstance(r, DeadlineExceeded) for r in results)
    assert len(scheduled) < 50  # 500 deadlines, a handful of 1 ms ticks


async def test_deadline_is_visible_to_inner_code_and_nested_takes_the_tighter() -> None:
    clock = ManualClock()
    seen: list[float | None] = []

    async def inner() -> None:
        seen.append(time_remaining())

    assert time_remaining() is None
    await Timeout(5.0, clock=clock).call(inner)
    await Timeout(5.0, clock=clock).call(Timeout(2.0, clock=clock).call, inner)
    await Timeout(2.0, clock=clock).call(Timeout(5.0, clock=clock).call, inner)
    assert seen == [5.0, 2.0, 2.0]
    assert current_deadline() is None


async def test_looser_inner_timeout_lets_the_outer_fire() -> None:
    outer = Timeout(0.02, name="outer")
    inner = Timeout(10.0, name="inner")
    with pytest.raises(DeadlineExceeded, match="outer"):
        await outer.call(inner.call, hang)


async def test_tighter_inner_timeout_fires_inside_the_outer() -> None:
    outer = Timeout(10.0, name="outer")
    inner = Timeout(0.02, name="inner")

    async def body() -> str:
        with pytest.raises(DeadlineExceeded, match="inner"):
            await inner.call(hang)
        return "outer carries on"

    assert await outer.call(body) == "outer carries on"


async def test_manual_clock_timeout_fires_when_time_is_advanced() -> None:
    clock = ManualClock()
    task = asyncio.create_task(Timeout(30.0, clock=clock).call(hang))
    await asyncio.sleep(0)
    clock.advance(29.0)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(1.0)
    with pytest.raises(DeadlineExceeded):
        await task


async def test_external_cancellation_is_not_turned_into_a_timeout() -> None:
    task = asyncio.create_task(Timeout(10.0).call(hang))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_external_cancel_racing_the_deadline_stays_a_cancellation() -> None:
    clock = ManualClock()
    task = asyncio.create_task(Timeout(1.0, clock=clock).call(hang))
    await asyncio.sleep(0)
    clock.advance(1.0)  # the watcher is now due and will cancel the task ...
    task.cancel()  # ... and so does somebody else
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_context_manager_form() -> None:
    clock = ManualClock()
    async with Timeout(3.0, clock=clock) as deadline:
        assert deadline.remaining() == 3.0
        assert time_remaining() == 3.0
        async with Timeout(9.0, clock=clock):
            assert time_remaining() == 3.0  # governed by the outer
    assert time_remaining() is None
    with pytest.raises(DeadlineExceeded):
        async with Timeout(0.02):
            await hang()


async def test_function_result_and_exceptions_pass_through() -> None:
    timeout = Timeout(1.0)

    async def boom() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        await timeout.call(boom)

    @timeout
    async def add(a: int, b: int = 1) -> int:
        return a + b

    assert await add(1, b=2) == 3


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), "1", True])
def test_bad_seconds_are_refused(seconds: object) -> None:
    with pytest.raises(ValueError, match=r"Timeout\.seconds"):
        Timeout(seconds)  # type: ignore[arg-type]
