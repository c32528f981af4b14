"""Core: the error tree, the clocks, the hook registry."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tailguard import ManualClock, MonotonicClock
from tailguard._clock import Clock
from tailguard.errors import (
    BackendUnavailable,
    BulkheadFullError,
    CircuitOpenError,
    ConfigurationError,
    DeadlineExceeded,
    RateLimitExceeded,
    Rejected,
    TailguardError,
)
from tailguard.events import CallRejected, CircuitStateChanged, Event, HookRegistry


def test_every_rejection_carries_retry_after_and_is_a_tailguard_error() -> None:
    rejections: list[Rejected] = [
        CircuitOpenError("db", retry_after=3.0),
        BulkheadFullError("pool", max_concurrent=1, max_queue=0, retry_after=0.5),
        RateLimitExceeded("user:1", limit="10/second", retry_after=0.1),
    ]
    for err in rejections:
        assert isinstance(err, TailguardError)
        assert err.retry_after is not None
    assert "retry after 3.000s" in str(rejections[0])
    assert "10/second" in str(rejections[2])
    assert CircuitOpenError("db").retry_after is None


def test_backend_errors_keep_their_cause_and_config_errors_name_the_setting() -> None:
    def connect() -> None:
        try:
            raise OSError("connection refused")
        except OSError as exc:
            raise BackendUnavailable("redis", "127.0.0.1:6379") from exc

    with pytest.raises(BackendUnavailable) as info:
        connect()
    assert isinstance(info.value.__cause__, OSError)
    assert str(info.value) == "redis unavailable: 127.0.0.1:6379"
    err2 = ConfigurationError("Retry.attempts", 0, "an int >= 1")
    assert isinstance(err2, ValueError)
    assert str(err2) == "Retry.attempts=0: expected an int >= 1"
    assert isinstance(DeadlineExceeded("x", 1.0), TimeoutError)


async def test_manual_clock_wakes_sleepers_in_order_only_when_advanced() -> None:
    clock = ManualClock(start=100.0)
    assert isinstance(clock, Clock)
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(f"{name}@{clock.now():g}")

    tasks = [asyncio.create_task(sleeper("b", 2.0)), asyncio.create_task(sleeper("a", 1.0))]
    await asyncio.sleep(0)
    assert clock.sleepers == 2
    clock.advance(1.5)
    await asyncio.sleep(0)
    assert woke == ["a@101.5"]
    clock.set(105.0)
    await asyncio.gather(*tasks)
    assert woke == ["a@101.5", "b@105"]
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="earlier"):
        clock.set(1.0)


async def test_monotonic_clock_is_a_clock() -> None:
    clock = MonotonicClock()
    assert isinstance(clock, Clock)
    before = clock.now()
    await clock.sleep(0)
    assert clock.now() >= before


def test_hooks_receive_matching_events_and_can_unsubscribe() -> None:
    registry = HookRegistry()
    assert not registry
    breakers: list[Event] = []
    everything: list[Event] = []
    off = registry.subscribe(breakers.append, CircuitStateChanged)
    registry.subscribe(everything.append)
    opened = CircuitStateChanged("db", "closed", "open", 0.6)
    rejected = CallRejected("db", "circuit_breaker", "open", 60.0)
    registry.emit(opened)
    registry.emit(rejected)
    assert breakers == [opened]
    assert everything == [opened, rejected]
    off()
    registry.emit(opened)
    assert breakers == [opened]
    assert len(registry) == 1
    with pytest.raises(TypeError, match="not an Event"):
        registry.subscribe(print, int)  # type: ignore[arg-type]


def test_a_failing_hook_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = HookRegistry()
    got: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("hook bug")

    registry.subscribe(broken)
    registry.subscribe(got.append)
    with caplog.at_level(logging.ERROR, logger="tailguard.events"):
        registry.emit(CallRejected("x", "bulkhead", "full"))
    assert len(got) == 1
    assert "hook bug" in caplog.text


def test_events_are_frozen() -> None:
    event = CallRejected("x", "bulkhead", "full")
    with pytest.raises(AttributeError):
        event.name = "y"  # type: ignore[misc]
