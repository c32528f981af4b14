"""Arrival schedules and execution segments: the slices of a load add up to the whole load."""

from __future__ import annotations

import math

import pytest

from tailguard.errors import ConfigurationError
from tailguard.loadtest.profiles import ArrivalRate, Ramp
from tailguard.loadtest.segment import Segment


def arrivals_before(profile: ArrivalRate | Ramp, t: float) -> int:
    i = 0
    while profile.at(i) < t:
        i += 1
    return i


def test_a_constant_rate_is_evenly_spaced() -> None:
    rate = ArrivalRate(200)
    assert [rate.at(i) for i in range(3)] == [0.0, 0.005, 0.01]
    assert rate.duration is None
    with pytest.raises(ConfigurationError, match="rate"):
        ArrivalRate(0)


def test_a_ramp_follows_its_stages() -> None:
    ramp = Ramp([(10, 100), (30, 100), (10, 0)])
    assert ramp.duration == 50
    assert ramp.peak == 100
    # the area under the rate: 500 up, 3000 flat, 500 down
    assert arrivals_before(ramp, 10.0) == pytest.approx(500, abs=1)
    assert arrivals_before(ramp, 40.0) == pytest.approx(3500, abs=1)
    assert arrivals_before(ramp, 50.0 + 1e-9) == pytest.approx(4000, abs=1)
    assert math.isinf(ramp.at(4001))
    times = [ramp.at(i) for i in range(4000)]
    assert times == sorted(times)
    # 0 -> 100/s over 10 s: arrival n at sqrt(n / 5) seconds
    assert ramp.at(125) == pytest.approx(5.0)
    with pytest.raises(ConfigurationError, match="ramp"):
        Ramp([(0, 100)])
    with pytest.raises(ConfigurationError, match="ramp"):
        Ramp([(10, 0)])


@pytest.mark.parametrize("text", ["0/2", "3/2", "a/b", "1", "1/0", ""])
def test_bad_segments_are_refused(text: str) -> None:
    with pytest.raises(ConfigurationError, match="segment"):
        Segment.parse(text)


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_segments_partition_users_requests_and_arrivals(n: int) -> None:
    segments = [Segment(i, n) for i in range(1, n + 1)]
    users = [u for s in segments for u in s.users(50)]
    assert users == list(range(50))
    assert sum(s.requests(1001) for s in segments) == 1001
    ramp = Ramp([(2, 300), (2, 300)])
    whole = sorted(ramp.at(i) for i in range(900))
    parts = sorted(
        t
        for s in segments
        for t in (s.profile(ramp).at(i) for i in range(1000))
        if not math.isinf(t)
    )
    assert parts[:900] == whole
    assert str(segments[-1]) == f"{n}/{n}"


def test_workers_are_finer_segments() -> None:
    assert Segment(2, 3).split(2) == [Segment(3, 6), Segment(4, 6)]
    assert [u for s in Segment(2, 3).split(4) for u in s.users(30)] == list(Segment(2, 3).users(30))
