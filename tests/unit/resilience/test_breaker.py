"""CircuitBreaker: the state machine (sans-IO) and its async driver, on a ManualClock."""

from __future__ import annotations

import asyncio

import pytest

from tailguard.errors import CircuitOpenError, ConfigurationError
from tailguard.events import CallRejected, CircuitStateChanged, HookRegistry
from tailguard.resilience import BreakerConfig, BreakerState, CircuitBreaker
from tailguard.testing import ManualClock, RecordingHook


class Boom(Exception):
    pass


async def ok() -> str:
    return "ok"


async def fail() -> str:
    raise Boom("down")


def make(clock: ManualClock, **kw: object) -> tuple[CircuitBreaker, RecordingHook]:
    registry = HookRegistry()
    rec = RecordingHook(registry)
    return CircuitBreaker("dep", clock=clock, hooks=registry, **kw), rec  # type: ignore[arg-type]


async def fail_n(breaker: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        with pytest.raises(Boom):
            await breaker.call(fail)


async def test_guide_default_opens_after_five_consecutive_failures_and_recovers_after_60s() -> None:
    clock = ManualClock()
    breaker, rec = make(clock)
    await fail_n(breaker, 4)
    assert breaker.state == "closed"
    await fail_n(breaker, 1)
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError) as info:
        await breaker.call(ok)
    assert info.value.retry_after == pytest.approx(60.0)
    clock.advance(59.0)
    with pytest.raises(CircuitOpenError) as info:
        await breaker.call(ok)
    assert info.value.retry_after == pytest.approx(1.0)
    clock.advance(1.0)
    assert await breaker.call(ok) == "ok"  # the probe passes
    assert breaker.state == "closed"
    changes = [(e.old, e.new) for e in rec.of(CircuitStateChanged)]
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert [e.policy for e in rec.of(CallRejected)] == ["circuit_breaker", "circuit_breaker"]


async def test_a_success_resets_the_consecutive_count() -> None:
    breaker, _ = make(ManualClock())
    for _ in range(3):
        await fail_n(breaker, 4)
        assert await breaker.call(ok) == "ok"
    assert breaker.state == "closed"


async def test_failed_probe_reopens_for_another_recovery_time() -> None:
    clock = ManualClock()
    breaker, _ = make(clock, failure_threshold=1, recovery_time=10.0)
    await fail_n(breaker, 1)
    clock.advance(10.0)
    await fail_n(breaker, 1)  # the probe fails
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError) as info:
        await breaker.call(ok)
    assert info.value.retry_after == pytest.approx(10.0)


async def test_half_open_admits_only_the_configured_probes_and_closes_when_all_pass() -> None:
    clock = ManualClock()
    breaker, _ = make(clock, failure_threshold=1, recovery_time=1.0, half_open_probes=3)
    await fail_n(breaker, 1)
    clock.advance(1.0)
    gate = asyncio.Event()

    async def slow() -> str:
        await gate.wait()
        return "ok"

    probes = [asyncio.create_task(breaker.call(slow)) for _ in range(3)]
    await asyncio.sleep(0)
    with pytest.raises(CircuitOpenError):
        await breaker.call(ok)  # a 4th concurrent call is refused
    assert breaker.state == "half_open"
    gate.set()
    assert await asyncio.gather(*probes) == ["ok"] * 3
    assert breaker.state == "closed"


async def test_cancelled_call_is_neither_success_nor_failure_and_frees_its_probe() -> None:
    clock = ManualClock()
    breaker, _ = make(clock, failure_threshold=2, recovery_time=1.0)
    await fail_n(breaker, 1)

    async def hang() -> str:
        await asyncio.Event().wait()
        return "never"

    task = asyncio.create_task(breaker.call(hang))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await fail_n(breaker, 1)  # 2 consecutive: the cancellation did not reset the count
    assert breaker.state == "open"
    clock.advance(1.0)
    probe = asyncio.create_task(breaker.call(hang))
    await asyncio.sleep(0)
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert breaker.state == "half_open"
    assert await breaker.call(ok) == "ok"  # the cancelled probe gave its slot back
    assert breaker.state == "closed"


async def test_failure_rate_over_count_window_waits_for_minimum_calls() -> None:
    breaker, rec = make(ManualClock(), failure_rate=0.5, window=10, minimum_calls=10)
    await fail_n(breaker, 9)  # 100 % failures but only 9 calls
    assert breaker.state == "closed"
    assert await breaker.call(ok) == "ok"  # 10 calls, 90 % failed
    assert breaker.state == "open"
    opened = rec.of(CircuitStateChanged)[-1]
    assert opened.failure_rate == pytest.approx(0.9)


async def test_failure_rate_window_slides() -> None:
    breaker, _ = make(ManualClock(), failure_rate=0.5, window=4, minimum_calls=4)
    for _ in range(5):  # alternate: never 2 of the last 4... until it is
        assert await breaker.call(ok) == "ok"
    await fail_n(breaker, 1)
    assert breaker.state == "closed"  # window: ok ok ok fail = 25 %
    await fail_n(breaker, 1)
    assert breaker.state == "open"  # ok ok fail fail = 50 %


async def test_time_window_forgets_old_failures() -> None:
    clock = ManualClock()
    breaker, _ = make(
        clock, failure_rate=0.5, window_seconds=10.0, minimum_calls=4, recovery_time=1.0
    )
    await fail_n(breaker, 3)
    clock.advance(11.0)  # those three left the window
    for _ in range(3):
        assert await breaker.call(ok) == "ok"
    await fail_n(breaker, 1)
    assert breaker.state == "closed"  # 1 of 4 in the window


async def test_slow_calls_count_in_rate_mode() -> None:
    clock = ManualClock()
    breaker, rec = make(
        clock, slow_call_duration=0.5, slow_call_rate=0.5, window=4, minimum_calls=4
    )

    async def slow() -> str:
        clock.advance(0.6)
        return "ok"

    assert await breaker.call(ok) == "ok"
    assert await breaker.call(ok) == "ok"
    assert await breaker.call(slow) == "ok"
    assert breaker.state == "closed"
    assert await breaker.call(slow) == "ok"  # 2 of 4 slow
    assert breaker.state == "open"
    assert rec.of(CircuitStateChanged)[-1].slow_call_rate == pytest.approx(0.5)


async def test_slow_success_counts_as_failure_in_consecutive_mode() -> None:
    clock = ManualClock()
    breaker, _ = make(clock, failure_threshold=2, slow_call_duration=1.0)

    async def slow() -> str:
        clock.advance(1.5)
        return "ok"

    await breaker.call(slow)
    await breaker.call(slow)
    assert breaker.state == "open"


async def test_which_exceptions_count_is_configurable() -> None:
    breaker, _ = make(ManualClock(), failure_threshold=2, failure_on=Boom, ignore_on=(KeyError,))

    async def not_found() -> str:
        raise KeyError("404")

    async def bad_input() -> str:
        raise ValueError("400")

    for _ in range(5):
        with pytest.raises(KeyError):
            await breaker.call(not_found)
    await fail_n(breaker, 1)
    with pytest.raises(ValueError, match="400"):
        await breaker.call(bad_input)  # not a failure: counts as a success
    await fail_n(breaker, 1)
    assert breaker.state == "closed"
    await fail_n(breaker, 1)
    assert breaker.state == "open"


async def test_predicate_decides_failures() -> None:
    breaker, _ = make(ManualClock(), failure_threshold=1, failure_on=lambda e: "fatal" in str(e))
    with pytest.raises(Boom):
        await breaker.call(fail)
    assert breaker.state == "closed"

    async def fatal() -> None:
        raise Boom("fatal")

    with pytest.raises(Boom):
        await breaker.call(fatal)
    assert breaker.state == "open"


async def test_outcomes_of_calls_admitted_before_a_transition_are_ignored() -> None:
    clock = ManualClock()
    breaker, _ = make(clock, failure_threshold=1, recovery_time=1.0)
    gate = asyncio.Event()

    async def slow_fail() -> None:
        await gate.wait()
        raise Boom("late")

    late = asyncio.create_task(breaker.call(slow_fail))
    await asyncio.sleep(0)
    await fail_n(breaker, 1)
    clock.advance(1.0)
    assert await breaker.call(ok) == "ok"  # probe passes: closed again
    gate.set()
    with pytest.raises(Boom):
        await late
    assert breaker.state == "closed"  # the stale failure from the old generation was ignored


async def test_context_manager_form_records_outcomes() -> None:
    clock = ManualClock()
    breaker, _ = make(clock, failure_threshold=2)
    for _ in range(2):
        with pytest.raises(Boom):
            async with breaker:
                raise Boom
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError):
        async with breaker:
            pytest.fail("an open breaker must not run the block")


async def test_decorator_keeps_name_and_result() -> None:
    breaker, _ = make(ManualClock())

    @breaker
    async def fetch(user_id: int, *, fields: str = "all") -> str:
        return f"{user_id}:{fields}"

    assert fetch.__name__ == "fetch"
    assert await fetch(7, fields="name") == "7:name"


async def test_reset_and_trip_by_hand() -> None:
    breaker, rec = make(ManualClock())
    breaker.trip()
    assert breaker.state == "open"
    breaker.reset()
    assert breaker.state == "closed"
    assert [(e.old, e.new) for e in rec.of(CircuitStateChanged)] == [
        ("closed", "open"),
        ("open", "closed"),
    ]


@pytest.mark.parametrize(
    ("kw", "setting"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"failure_rate": 1.5}, "failure_rate"),
        ({"minimum_calls": 0}, "minimum_calls"),
        ({"recovery_time": -1}, "recovery_time"),
        ({"half_open_probes": 0}, "half_open_probes"),
        ({"slow_call_duration": 0}, "slow_call_duration"),
        ({"window_seconds": 0}, "window_seconds"),
    ],
)
def test_bad_config_names_the_setting(kw: dict[str, object], setting: str) -> None:
    with pytest.raises(ConfigurationError, match=f"CircuitBreaker.{setting}"):
        BreakerConfig(**kw)  # type: ignore[arg-type]


def test_bad_failure_on_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="failure_on"):
        CircuitBreaker(failure_on="ValueError")  # type: ignore[arg-type]


def test_state_machine_is_usable_without_asyncio() -> None:
    st = BreakerState(BreakerConfig(failure_threshold=1, recovery_time=5.0))
    assert st.permit(0.0)
    st.record(st.generation, 0.0, failed=True, slow=False)
    assert st.state == "open"
    assert not st.permit(4.9)
    assert st.retry_after(4.0) == pytest.approx(1.0)
    assert st.permit(5.0)
    assert st.state == "half_open"
    assert not st.permit(5.0)  # one probe only
