"""Limit parsing, and each algorithm's rule on the in-memory storage with explicit times."""

from __future__ import annotations

import pytest

from tailguard.errors import ConfigurationError, RateLimitExceeded
from tailguard.ratelimit import (
    GCRA,
    FixedWindow,
    MemoryStorage,
    Rate,
    SlidingLog,
    SlidingWindowCounter,
    parse_rates,
)


def test_parse_rates() -> None:
    assert parse_rates("100/minute") == [Rate(100, 60.0)]
    assert parse_rates("10/second; burst=20") == [Rate(10, 1.0, 20)]
    assert parse_rates("5/10 seconds, 1000/day") == [Rate(5, 10.0), Rate(1000, 86400.0)]
    assert parse_rates("3 per hour") == [Rate(3, 3600.0)]
    assert parse_rates("7/m") == [Rate(7, 60.0)]
    assert str(Rate(100, 60.0)) == "100/minute"
    assert str(Rate(10, 1.0, 20)) == "10/second; burst=20"


@pytest.mark.parametrize(
    "bad", ["", "100", "100/fortnight", "x/minute", "10/second; burst=x", "0/second"]
)
def test_bad_limits_name_what_was_wrong(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_rates(bad)


async def test_fixed_window_counts_per_window_and_refusals_leave_no_trace() -> None:
    limiter = FixedWindow("3/minute", storage=MemoryStorage())
    decisions = [await limiter.check("u", now=60.0 + i) for i in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0, 0]
    assert decisions[3].retry_after == pytest.approx(57.0)
    assert (await limiter.check("u", now=120.0)).allowed  # a new window
    assert (await limiter.check("other", now=61.0)).allowed  # keys are independent


async def test_sliding_log_is_exact_over_any_window() -> None:
    limiter = SlidingLog("3/10 seconds")
    times = [0.0, 1.0, 2.0, 3.0, 9.9, 10.0, 10.5, 11.0, 12.0]
    allowed = [(await limiter.check("u", now=t)).allowed for t in times]
    # 0,1,2 fill it; 3 and 9.9 are refused (and leave no trace); 0 leaves at 10, 1 at 11 ...
    assert allowed == [True, True, True, False, False, True, False, True, True]
    refused = await limiter.check("u", now=12.5)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(20.0 - 12.5)  # the admit at 10 leaves at 20


async def test_sliding_window_counter_weights_the_previous_window() -> None:
    limiter = SlidingWindowCounter("10/minute")
    for i in range(10):
        assert (await limiter.check("u", now=30.0 + i)).allowed
    assert not (await limiter.check("u", now=59.0)).allowed
    # 30 s into the next window, half of the previous 10 still count: 5 more fit
    allowed = [(await limiter.check("u", now=90.0)).allowed for _ in range(6)]
    assert allowed == [True] * 5 + [False]


async def test_gcra_allows_the_burst_then_the_rate() -> None:
    limiter = GCRA("10/second; burst=5")
    first = [(await limiter.check("u", now=100.0)) for _ in range(6)]
    assert [d.allowed for d in first] == [True] * 5 + [False]
    assert [d.remaining for d in first[:5]] == [4, 3, 2, 1, 0]
    # retry_after is whole microseconds, 1-2 us past the exact time (see algorithms._after)
    assert 0.1 < first[5].retry_after <= 0.1 + 2e-6
    assert (await limiter.check("u", now=100.1)).allowed  # one emission interval later
    assert not (await limiter.check("u", now=100.1)).allowed


async def test_several_limits_on_one_key_all_must_admit_and_refusal_records_nothing() -> None:
    limiter = GCRA("2/second, 3/minute")
    assert (await limiter.check("u", now=0.0)).allowed
    assert (await limiter.check("u", now=0.0)).allowed
    refused = await limiter.check("u", now=0.0)
    assert not refused.allowed
    assert refused.limit == 2
    assert (await limiter.check("u", now=1.0)).allowed  # third of the minute
    by_minute = await limiter.check("u", now=2.0)
    assert not by_minute.allowed
    assert by_minute.limit == 3
    assert by_minute.retry_after == pytest.approx(18.0, abs=0.01)


async def test_acquire_raises_with_retry_after() -> None:
    limiter = GCRA("1/minute")
    await limiter.acquire("u")
    with pytest.raises(RateLimitExceeded) as info:
        await limiter.acquire("u")
    assert info.value.retry_after is not None
    assert 59 < info.value.retry_after <= 60
    assert "1/minute" in str(info.value)


async def test_cost_must_be_positive_and_prefix_sane() -> None:
    with pytest.raises(ConfigurationError, match="cost"):
        await GCRA("1/second").check("u", cost=0)
    with pytest.raises(ConfigurationError, match="prefix"):
        GCRA("1/second", prefix="a{b}")
