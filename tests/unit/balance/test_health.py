"""Outlier ejection (Envoy's rules) and active health checks, on a manual clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tailguard.balance import Endpoint, HealthCheck, OutlierDetection, RoundRobin
from tailguard.errors import ConfigurationError
from tailguard.testing import ManualClock


def fail(od: OutlierDetection, ep: Endpoint, eps: list[Endpoint], n: int, now: float) -> bool:
    return any([od.record(ep, ok=False, now=now, endpoints=eps) for _ in range(n)])


def test_consecutive_failures_eject_and_a_success_resets_the_count() -> None:
    eps = [Endpoint(x) for x in "abcd"]
    od = OutlierDetection(consecutive_failures=3, base_ejection_time=30.0)
    a = eps[0]
    assert not fail(od, a, eps, 2, now=0.0)
    od.record(a, ok=True, now=0.0, endpoints=eps)
    assert not fail(od, a, eps, 2, now=0.0)
    assert od.record(a, ok=False, now=1.0, endpoints=eps)
    assert a.ejected(1.0)
    assert a.ejected_until == 31.0
    assert not a.available(30.9)
    assert a.available(31.0)


def test_ejection_time_grows_with_repeats_and_is_capped() -> None:
    eps = [Endpoint(x) for x in "abcd"]
    od = OutlierDetection(consecutive_failures=1, base_ejection_time=10.0, max_ejection_time=25.0)
    a = eps[0]
    durations = []
    now = 0.0
    for _ in range(4):
        assert od.record(a, ok=False, now=now, endpoints=eps)
        durations.append(a.ejected_until - now)
        now = a.ejected_until
    assert durations == [10.0, 20.0, 25.0, 25.0]


def test_a_healthy_interval_takes_one_off_the_multiplier() -> None:
    eps = [Endpoint(x) for x in "abcd"]
    od = OutlierDetection(consecutive_failures=1, base_ejection_time=10.0, interval=5.0)
    a = eps[0]
    od.record(a, ok=False, now=0.0, endpoints=eps)
    od.record(a, ok=False, now=10.0, endpoints=eps)  # back at 10, ejected again: 20 s
    assert a.ejections == 2
    assert a.ejected_until == 30.0
    od.record(a, ok=True, now=36.0, endpoints=eps)  # an interval back in, no ejection
    assert a.ejections == 1
    od.record(a, ok=False, now=37.0, endpoints=eps)
    assert a.ejected_until == 37.0 + 20.0


def test_never_more_than_the_fraction_and_never_all() -> None:
    eps = [Endpoint(x) for x in "abcd"]
    od = OutlierDetection(consecutive_failures=1, max_ejection_fraction=0.5)
    assert [od.record(e, ok=False, now=0.0, endpoints=eps) for e in eps] == [
        True,
        True,
        False,
        False,
    ]
    assert od.max_ejected(4) == 2
    assert od.max_ejected(10) == 5
    assert OutlierDetection(max_ejection_fraction=0.1).max_ejected(4) == 1  # at least one
    assert OutlierDetection(max_ejection_fraction=1.0).max_ejected(3) == 2  # never all
    assert OutlierDetection().max_ejected(1) == 0
    # When the first ones come back, the others may go.
    assert od.record(eps[2], ok=False, now=30.0, endpoints=eps)


def test_failure_rate_over_an_interval_with_a_minimum_of_requests() -> None:
    eps = [Endpoint(x) for x in "abc"]
    od = OutlierDetection(
        consecutive_failures=None, failure_rate=0.5, minimum_requests=10, interval=10.0
    )
    a = eps[0]
    for i in range(9):  # alternate: 50 % failures but under the minimum
        assert not od.record(a, ok=i % 2 == 1, now=1.0, endpoints=eps)
    assert od.record(a, ok=False, now=2.0, endpoints=eps)  # 10 requests, 5+ failures
    b = eps[1]
    for _ in range(9):
        od.record(b, ok=False, now=1.0, endpoints=eps)
    for _ in range(20):  # a new interval starts clean
        assert not od.record(b, ok=True, now=12.0, endpoints=eps)


def test_outcomes_of_requests_started_before_an_ejection_are_ignored() -> None:
    eps = [Endpoint(x) for x in "ab"]
    od = OutlierDetection(consecutive_failures=1, base_ejection_time=10.0)
    od.record(eps[0], ok=False, now=0.0, endpoints=eps)
    assert not od.record(eps[0], ok=False, now=1.0, endpoints=eps)
    assert eps[0].ejections == 1


def test_outlier_configuration_errors() -> None:
    for kwargs in (
        {"consecutive_failures": 0},
        {"failure_rate": 0.0},
        {"minimum_requests": 0},
        {"interval": 0.0},
        {"base_ejection_time": 0.0},
        {"base_ejection_time": 10.0, "max_ejection_time": 5.0},
        {"max_ejection_fraction": 1.5},
    ):
        with pytest.raises(ConfigurationError):
            OutlierDetection(**kwargs)  # type: ignore[arg-type]


def test_health_check_thresholds() -> None:
    picker = RoundRobin(["a", "b"])
    a = picker.endpoints[0]
    hc = HealthCheck(
        picker, lambda e: asyncio.sleep(0, True), unhealthy_threshold=2, healthy_threshold=3
    )
    hc.record(a, False)
    assert a.healthy
    hc.record(a, False)
    assert not a.healthy
    assert not a.available(0.0)
    hc.record(a, True)
    hc.record(a, True)
    assert not a.healthy
    hc.record(a, True)
    assert a.healthy


async def test_health_check_rounds_count_exceptions_and_timeouts_as_failures() -> None:
    eps = [Endpoint(x) for x in "abc"]

    async def check(ep: Endpoint) -> bool:
        if ep.address == "b":
            raise ConnectionError("refused")
        if ep.address == "c":
            await asyncio.sleep(10)
        return True

    hc = HealthCheck(eps, check, timeout=0.01, unhealthy_threshold=1)
    await hc.check_once()
    assert [e.healthy for e in eps] == [True, False, False]


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop run until ``condition()`` holds (a bounded number of passes)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def test_health_check_loop_runs_every_interval_on_the_injected_clock() -> None:
    clock = ManualClock()
    eps = [Endpoint("a")]
    results = iter([False, False, True, True])
    calls = []

    async def check(ep: Endpoint) -> bool:
        calls.append(clock.now())
        return next(results)

    async with HealthCheck(
        eps, check, interval=5.0, unhealthy_threshold=2, healthy_threshold=2, clock=clock
    ):
        for _ in range(3):
            await until(lambda: clock.sleepers > 0)
            clock.advance(5.0)
        await until(lambda: len(calls) == 4)
    assert calls == [0.0, 5.0, 10.0, 15.0]
    assert eps[0].healthy


def test_health_check_configuration_errors() -> None:
    async def ok(ep: Endpoint) -> bool:
        return True

    for kwargs in (
        {"interval": 0.0},
        {"timeout": 0.0},
        {"unhealthy_threshold": 0},
        {"healthy_threshold": 0},
    ):
        with pytest.raises(ConfigurationError):
            HealthCheck([Endpoint("a")], ok, **kwargs)  # type: ignore[arg-type]


def test_the_multiplier_decays_by_every_healthy_interval_since_the_ejection() -> None:
    eps = [Endpoint(x) for x in "abcd"]
    od = OutlierDetection(
        consecutive_failures=1, base_ejection_time=30.0, max_ejection_time=300.0, interval=10.0
    )
    a = eps[0]
    od.record(a, ok=False, now=0.0, endpoints=eps)
    od.record(a, ok=False, now=30.0, endpoints=eps)  # back at 30, out again until 90
    assert a.ejections == 2
    od.record(a, ok=True, now=10_000.0, endpoints=eps)  # hours later: every interval counts
    assert a.ejections == 0
    assert od.record(a, ok=False, now=10_001.0, endpoints=eps)
    assert a.ejected_until - 10_001.0 == 30.0  # a first ejection again
    od.record(a, ok=False, now=10_031.0, endpoints=eps)  # out until 10_091
    od.record(a, ok=True, now=10_111.0, endpoints=eps)  # two whole intervals, one is not enough
    assert a.ejections == 0


async def test_closing_a_health_check_marks_its_endpoints_up_again() -> None:
    from tailguard.events import EndpointHealthChanged, HookRegistry
    from tailguard.testing import RecordingHook

    hooks = HookRegistry()
    recorder = RecordingHook(hooks, EndpointHealthChanged)
    picker = RoundRobin(["a", "b"])
    b = picker.endpoints[1]

    async def check(ep: Endpoint) -> bool:
        return ep is not b

    elsewhere = Endpoint("c")  # marked down by something else
    elsewhere.healthy = False
    async with HealthCheck(picker, check, unhealthy_threshold=1, hooks=hooks) as hc:
        await until(lambda: not b.healthy)
        assert hc._counts
    assert b.healthy
    assert not hc._counts
    assert [(e.address, e.healthy) for e in recorder.of(EndpointHealthChanged)] == [
        ("b", False),
        ("b", True),
    ]
    assert {picker.pick(now=0.0).address for _ in range(4)} == {"a", "b"}
    assert not elsewhere.healthy  # never touches what it did not mark


async def test_closing_a_health_check_keeps_the_callers_cancellation() -> None:
    picker = RoundRobin(["a"])
    entered = asyncio.Event()

    async def check(ep: Endpoint) -> bool:
        entered.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)  # a check that takes a moment to clean up
            raise
        return True

    after: list[str] = []

    async def worker() -> None:
        hc = HealthCheck(picker, check, interval=1.0, timeout=5.0)
        await hc.__aenter__()
        await entered.wait()
        await hc.aclose()  # cancelled while this waits for the check to clean up
        after.append("kept running")

    task = asyncio.create_task(worker())
    await entered.wait()
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert after == []


async def test_health_check_forgets_endpoints_that_went_away() -> None:
    picker = RoundRobin(["a", "b", "c"])

    async def check(ep: Endpoint) -> bool:
        return ep.address != "c"

    hc = HealthCheck(picker, check, unhealthy_threshold=1)
    for i in range(50):
        picker.replace(["a", "b", f"n{i}"])
        await hc.check_once()
    assert len(hc._counts) == 3
    assert len(hc._marked) == 0
