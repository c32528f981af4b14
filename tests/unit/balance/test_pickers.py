"""Pickers: deterministic sequences, skipping unusable endpoints, consistency of IPHash."""

from __future__ import annotations

import math
import random

import pytest

from tailguard.balance import (
    Endpoint,
    IPHash,
    LeastConnections,
    PowerOfTwo,
    RoundRobin,
    Weighted,
)
from tailguard.balance._endpoint import PENALTY
from tailguard.errors import CircuitOpenError, ConfigurationError
from tailguard.resilience import BreakerConfig


def names(picker: object, n: int, **kw: object) -> str:
    return " ".join(picker.pick(now=0.0, **kw).address for _ in range(n))  # type: ignore[attr-defined]


def test_round_robin_goes_in_turn_and_skips_ejected() -> None:
    rr = RoundRobin(["a", "b", "c"])
    assert names(rr, 6) == "a b c a b c"
    rr.endpoints[1].ejected_until = 10.0
    assert {rr.pick(now=5.0).address for _ in range(4)} == {"a", "c"}
    assert {rr.pick(now=10.0).address for _ in range(3)} == {"a", "b", "c"}  # back at 10 s


def test_exclude_skips_endpoints_a_retry_already_tried() -> None:
    rr = RoundRobin(["a", "b"])
    a = rr.endpoints[0]
    assert {rr.pick(now=0.0, exclude=[a]).address for _ in range(3)} == {"b"}
    # Everything excluded: better the same endpoint again than no attempt.
    assert rr.pick(now=0.0, exclude=rr.endpoints).address in {"a", "b"}


def test_unusable_endpoints_are_panic_fallbacks_and_open_breakers_raise() -> None:
    rr = RoundRobin([Endpoint("a", breaker=BreakerConfig(recovery_time=5.0)), Endpoint("b")])
    a, b = rr.endpoints
    b.healthy = False
    assert rr.pick(now=0.0) is a  # b marked down
    a.healthy = False
    assert rr.pick(now=0.0) in (a, b)  # all down: panic mode, still an answer
    assert a.breaker is not None
    a.breaker.trip(0.0)
    assert rr.pick(now=1.0) is b  # a's breaker open: only b, even unhealthy
    b.breaker = a.breaker
    with pytest.raises(CircuitOpenError) as info:
        rr.pick(now=1.0)
    assert info.value.retry_after == pytest.approx(4.0)
    assert rr.pick(now=5.0) in (a, b)  # half-open admits a probe


def test_least_connections_prefers_fewest_in_flight_per_weight() -> None:
    lc = LeastConnections([Endpoint("a"), Endpoint("b", weight=2), Endpoint("c")])
    a, b, c = lc.endpoints
    assert names(lc, 3) == "a b c"  # all idle: in turn
    for ep, n in ((a, 1), (b, 1), (c, 0)):
        ep.in_flight = n
    assert lc.pick(now=0.0) is c
    c.in_flight = 1
    assert lc.pick(now=0.0) is b  # 1/2 beats 1/1
    lc.start(b)
    lc.start(b)
    assert b.in_flight == 3
    lc.finish(b, latency=0.01, now=1.0)
    assert b.in_flight == 2


def test_weighted_is_nginx_smooth_weighted_round_robin() -> None:
    w = Weighted([Endpoint("a", weight=5), Endpoint("b", weight=1), Endpoint("c", weight=1)])
    assert names(w, 7) == "a a b a c a a"
    assert names(w, 7) == "a a b a c a a"  # and again, period 7
    counts = {"a": 0, "b": 0, "c": 0}
    for _ in range(700):
        counts[w.pick(now=0.0).address] += 1
    assert counts == {"a": 500, "b": 100, "c": 100}


def _ips(n: int) -> list[str]:
    rng = random.Random(7)
    return [".".join(str(rng.randrange(256)) for _ in range(4)) for _ in range(n)]


def test_ip_hash_is_consistent_removing_one_of_n_moves_about_one_nth() -> None:
    addresses = [f"http://10.0.0.{i}:8000" for i in range(1, 6)]
    ips = _ips(10_000)
    before = IPHash(addresses)
    first = {ip: before.pick(now=0.0, key=ip).address for ip in ips}
    # Same key, same endpoint, every time and in a fresh picker (a stable hash).
    assert all(IPHash(addresses).pick(now=0.0, key=ip).address == first[ip] for ip in ips[:200])
    share = {a: sum(1 for v in first.values() if v == a) / len(ips) for a in addresses}
    assert all(0.12 < s < 0.28 for s in share.values()), share
    after = IPHash(addresses[:2] + addresses[3:])
    moved = [ip for ip in ips if after.pick(now=0.0, key=ip).address != first[ip]]
    assert 0.12 < len(moved) / len(ips) < 0.28  # about 1/5, not most
    assert all(first[ip] == addresses[2] for ip in moved)  # only the removed endpoint's


def test_ip_hash_skips_an_ejected_endpoint_for_its_keys_only() -> None:
    picker = IPHash(["a", "b", "c", "d"])
    ips = _ips(2_000)
    first = {ip: picker.pick(now=0.0, key=ip) for ip in ips}
    c = picker.endpoints[2]
    c.ejected_until = 10.0
    moved = [ip for ip in ips if picker.pick(now=1.0, key=ip) is not first[ip]]
    assert moved
    assert all(first[ip] is c for ip in moved)
    assert all(picker.pick(now=11.0, key=ip) is first[ip] for ip in ips)  # back after 10 s
    home = picker.pick(now=0.0, key="1.2.3.4")
    assert picker.pick(now=0.0, key="1.2.3.4", exclude=[home]) is not home  # a retry moves on


def test_ip_hash_add_remove_and_no_key() -> None:
    picker = IPHash(["a", "b"], replicas=50)
    assert names(picker, 4) == "a b a b"  # no key: round robin
    picker.add("c")
    assert {e.address for e in picker.endpoints} == {"a", "b", "c"}
    assert picker.remove("c").address == "c"
    with pytest.raises(KeyError):
        picker.remove("zzz")


def test_power_of_two_is_deterministic_with_a_seed_and_avoids_the_slow_endpoint() -> None:
    seq1 = names(PowerOfTwo(["a", "b", "c", "d"], seed=3), 20)
    assert seq1 == names(PowerOfTwo(["a", "b", "c", "d"], seed=3), 20)
    p2c = PowerOfTwo(["a", "b", "c", "d"], rng=random.Random(1))
    for ep in p2c.endpoints:
        ep.observe(0.010, now=0.0)
    p2c.endpoints[3].observe(0.100, now=0.0)  # d is 10x slower
    picks = [p2c.pick(now=0.0).address for _ in range(1000)]
    # Two distinct endpoints are drawn, so the 10x slower one always meets a faster one.
    assert picks.count("d") == 0
    assert min(picks.count(x) for x in "abc") > 250


def test_power_of_two_cost_is_peak_ewma_times_in_flight_plus_one() -> None:
    a, b = Endpoint("a", decay=10.0), Endpoint("b", decay=10.0)
    p2c = PowerOfTwo([a, b], seed=0)
    assert a.load(0.0) == 0.0
    p2c.start(a)
    assert a.load(0.0) == PENALTY + 1  # in flight, never measured: avoid it
    p2c.finish(a, latency=0.020, now=1.0)
    b.observe(0.010, now=1.0)
    b.in_flight = 2
    assert b.load(1.0) == pytest.approx(0.030)  # 10 ms x 3
    assert a.load(1.0) == pytest.approx(0.020)
    assert p2c.pick(now=1.0) is a


def test_peak_ewma_jumps_up_at_once_and_decays_with_time() -> None:
    e = Endpoint("a", decay=10.0)
    e.observe(0.010, now=0.0)
    e.observe(0.100, now=0.1)
    assert e.latency(0.1) == pytest.approx(0.100)  # a peak replaces the average at once
    e.observe(0.010, now=10.1)  # one decay time later: weight e^-1 on the old value
    assert e.latency(10.1) == pytest.approx(0.100 * 0.36788 + 0.010 * 0.63212, rel=1e-3)
    assert e.latency(40.1) < e.latency(10.1) / 10  # idle: decays towards zero, tried again


def test_a_failure_never_makes_an_endpoint_look_faster() -> None:
    rr = RoundRobin(["a"])
    a = rr.endpoints[0]
    rr.start(a)
    rr.finish(a, latency=0.050, now=0.0)
    rr.start(a)
    rr.finish(a, latency=0.0001, now=0.0, ok=False)  # a fast refusal
    assert a.latency(0.0) == pytest.approx(0.050)


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        RoundRobin([])
    with pytest.raises(ConfigurationError):
        RoundRobin(["a", "a"])
    with pytest.raises(ConfigurationError):
        Endpoint("a", weight=0)
    with pytest.raises(ConfigurationError):
        Endpoint("a", decay=0)
    with pytest.raises(ConfigurationError):
        IPHash(["a"], replicas=0)


def test_an_infinite_or_nan_weight_is_refused() -> None:
    for weight in (math.inf, math.nan, -1.0):
        with pytest.raises(ConfigurationError):
            Endpoint("a", weight=weight)


def test_replace_keeps_the_endpoint_and_its_state_for_an_address_it_had() -> None:
    from tailguard.balance import Balancer
    from tailguard.balance.health import OutlierDetection
    from tailguard.testing import ManualClock

    clock = ManualClock()
    balancer = Balancer(
        RoundRobin(["a", "b", "c"]),
        retry=None,
        clock=clock,
        outlier=OutlierDetection(consecutive_failures=1, base_ejection_time=30.0),
    )
    picker = balancer.picker
    a = picker.endpoints[0]
    balancer.finish(balancer.acquire(), ok=False)  # a is ejected
    assert a.ejected(clock.now())
    for _ in range(1000):  # service discovery refreshes the same addresses
        picker.replace(["a", "b", "c"])
        for _ in range(3):
            balancer.finish(balancer.acquire(), ok=True)
    assert picker.endpoints[0] is a
    assert a.ejected(clock.now())  # still out: a refresh is no way back in
    assert balancer.outlier is not None
    assert len(balancer.outlier._stats) <= 3
    picker.replace([Endpoint("a", weight=3.0), "d"])
    assert picker.endpoints[0] is a
    assert a.weight == 3.0
    for _ in range(3):
        balancer.finish(balancer.acquire(), ok=True)
    assert set(balancer.outlier._stats) <= set(picker.endpoints)


def test_power_of_two_draws_from_all_endpoints_as_choose_would_from_the_candidates() -> None:
    """``pick`` draws its pair from every endpoint before building the candidate list; when
    all are usable that is the draw ``choose`` makes over the candidates."""
    fast = PowerOfTwo(["a", "b", "c", "d"], seed=7)
    slow = PowerOfTwo(["a", "b", "c", "d"], seed=7)
    for i, (e, f) in enumerate(zip(fast.endpoints, slow.endpoints, strict=True)):
        e.observe(0.010 * (i + 1), now=0.0)
        f.observe(0.010 * (i + 1), now=0.0)
    for k in range(200):
        now = 0.01 * k
        got = fast.pick(now=now)
        want = slow.choose(slow.candidates(now), now, None)
        assert got.address == want.address
        fast.start(got)  # loads move with the picks, so later draws compare other loads
        slow.start(want)


def test_power_of_two_never_picks_an_unusable_endpoint_and_spreads_over_the_rest() -> None:
    broken = Endpoint("e", breaker=BreakerConfig(failure_threshold=1, recovery_time=60.0))
    assert broken.breaker is not None
    broken.breaker.record(broken.breaker.generation, 0.0, True, False)  # open until 60 s
    p2c = PowerOfTwo(["a", "b", "c", "d", broken], seed=11)
    p2c.endpoints[1].ejected_until = 10.0
    p2c.endpoints[3].healthy = False
    assert not broken.admits(0.0)
    picks = [p2c.pick(now=0.0).address for _ in range(3000)]
    assert set(picks) == {"a", "c"}  # equal loads (none measured): ties go to the first drawn
    assert min(picks.count("a"), picks.count("c")) > 1200  # each usable pair equally likely
    assert p2c.pick(now=0.0, exclude=[p2c.endpoints[0]]).address == "c"
