"""Balancer: bookkeeping, a breaker per endpoint, events, and the retry specs."""

from __future__ import annotations

import asyncio

import pytest

from tailguard.balance import Balancer, Endpoint, OutlierDetection, RoundRobin, is_idempotent
from tailguard.errors import CircuitOpenError, ConfigurationError
from tailguard.events import CircuitStateChanged, HookRegistry
from tailguard.resilience import BreakerConfig, Retry, RetryBudget
from tailguard.testing import ManualClock, RecordingHook


async def test_use_tracks_in_flight_latency_and_failures() -> None:
    clock = ManualClock()
    balancer = Balancer(
        RoundRobin(["a", "b"]), clock=clock, outlier=OutlierDetection(consecutive_failures=2)
    )
    a = balancer.endpoints[0]
    async with balancer.use() as ep:
        assert ep is a
        assert a.in_flight == 1
        clock.advance(0.25)
    assert a.in_flight == 0
    assert a.latency(clock.now()) == pytest.approx(0.25)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            async with balancer.use(exclude=[balancer.endpoints[1]]):
                raise RuntimeError("boom")
    assert a.ejected(clock.now())


async def test_a_cancelled_request_is_neither_success_nor_failure() -> None:
    balancer = Balancer(RoundRobin(["a"]), breaker=BreakerConfig(failure_threshold=1))
    with pytest.raises(asyncio.CancelledError):
        async with balancer.use() as ep:
            raise asyncio.CancelledError
    assert ep.in_flight == 0
    assert ep.breaker is not None
    assert ep.breaker.state == "closed"


async def test_a_breaker_per_endpoint_skips_the_open_one_and_probes_it_later() -> None:
    clock = ManualClock()
    registry = HookRegistry()
    rec = RecordingHook(registry, CircuitStateChanged)
    balancer = Balancer(
        RoundRobin(["a", "b"]),
        outlier=False,
        breaker=BreakerConfig(failure_threshold=2, recovery_time=10.0),
        clock=clock,
        hooks=registry,
        name="catalog",
    )
    a, b = balancer.endpoints
    for _ in range(2):
        lease = balancer.acquire(exclude=[b])
        balancer.finish(lease, ok=False)
    assert [(e.name, e.new) for e in rec.of(CircuitStateChanged)] == [("catalog:a", "open")]
    assert {balancer.acquire().endpoint.address for _ in range(4)} == {"b"}
    clock.advance(10.0)
    lease = balancer.acquire(exclude=[b])  # the half-open probe
    assert lease.endpoint is a
    balancer.finish(lease, ok=True)
    assert [e.new for e in rec.of(CircuitStateChanged)] == ["open", "half_open", "closed"]


async def test_every_breaker_open_raises_circuit_open() -> None:
    balancer = Balancer(["a"], outlier=False, breaker=BreakerConfig(failure_threshold=1))
    balancer.finish(balancer.acquire(), ok=False)
    with pytest.raises(CircuitOpenError):
        balancer.acquire()


def test_idempotency() -> None:
    assert all(is_idempotent(m) for m in ("GET", "head", "OPTIONS", "PUT", "DELETE", "TRACE"))
    assert not is_idempotent("POST")
    assert not is_idempotent("PATCH", ["Content-Type"])
    assert is_idempotent("POST", ["content-type", "Idempotency-Key"])


def test_retry_specs() -> None:
    assert Balancer(["a"], retry=None).retry is None
    assert Balancer(["a"], retry=1).retry is None
    r = Balancer(["a"], retry=5).retry
    assert r is not None
    assert r.attempts == 5
    assert r.budget is not None
    budget = RetryBudget(0.1)
    r = Balancer(["a"], retry=budget).retry
    assert r is not None
    assert r.budget is budget
    assert r.attempts == 3
    r = Balancer(["a"], retry=Retry(4, delay=0.5, name="cat", budget=budget)).retry
    assert r is not None
    assert (r.attempts, r.backoff.initial, r.name) == (4, 0.5, "cat")
    with pytest.raises(ConfigurationError):
        Balancer(["a"], retry=0)
    assert "PowerOfTwo" in repr(Balancer([Endpoint("a")]))


async def test_an_ejection_and_a_health_flip_are_events() -> None:
    from tailguard.balance import HealthCheck
    from tailguard.events import EndpointEjected, EndpointHealthChanged

    hooks = HookRegistry()
    recorder = RecordingHook(hooks, EndpointEjected, EndpointHealthChanged)
    clock = ManualClock()
    balancer = Balancer(
        RoundRobin(["a", "b"]),
        clock=clock,
        outlier=OutlierDetection(consecutive_failures=2, base_ejection_time=30.0),
        hooks=hooks,
        name="inventory",
    )
    for _ in range(2):
        with pytest.raises(RuntimeError):
            async with balancer.use(exclude=[balancer.endpoints[1]]):
                raise RuntimeError("boom")
    (ejected,) = recorder.of(EndpointEjected)
    assert (ejected.name, ejected.address, ejected.ejections) == ("inventory", "a", 1)
    assert ejected.seconds == pytest.approx(30.0)
    check = HealthCheck(balancer, lambda e: asyncio.sleep(0, False), unhealthy_threshold=1,
                        hooks=hooks)  # fmt: skip
    check.record(balancer.endpoints[1], False)
    check.record(balancer.endpoints[1], False)  # no flip, no second event
    (flip,) = recorder.of(EndpointHealthChanged)
    assert (flip.name, flip.address, flip.healthy) == ("inventory", "b", False)


def test_slow_calls_count_for_the_per_endpoint_breaker() -> None:
    clock = ManualClock()
    config = BreakerConfig(slow_call_duration=0.1, slow_call_rate=0.5, minimum_calls=2, window=4)
    balancer = Balancer(RoundRobin(["a"]), breaker=config, outlier=False, retry=None, clock=clock)
    (a,) = balancer.endpoints
    for _ in range(2):
        lease = balancer.acquire()
        clock.advance(2.0)  # every call takes 2 s: slow, though it succeeds
        balancer.finish(lease, ok=True)
    assert a.breaker is not None
    assert a.breaker.state == "open"
    fast = Balancer(RoundRobin(["b"]), breaker=config, outlier=False, retry=None, clock=clock)
    for _ in range(4):
        lease = fast.acquire()
        clock.advance(0.05)
        fast.finish(lease, ok=True)
    assert fast.endpoints[0].breaker is not None
    assert fast.endpoints[0].breaker.state == "closed"
