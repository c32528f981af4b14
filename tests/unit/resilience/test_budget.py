"""RetryBudget: the arithmetic, the sliding window, and a simulated outage."""

from __future__ import annotations

import asyncio

import pytest

from tailguard.errors import ConfigurationError
from tailguard.resilience import Retry, RetryBudget
from tailguard.testing import ManualClock, no_backoff


def test_allows_ratio_of_requests_plus_the_floor() -> None:
    clock = ManualClock()
    budget = RetryBudget(ratio=0.2, min_per_second=1.0, window=10.0, clock=clock)
    for _ in range(100):
        budget.deposit()
    assert budget.balance() == pytest.approx(0.2 * 100 + 1.0 * 10)
    granted = 0
    while budget.try_withdraw():
        granted += 1
    assert granted == 30
    assert not budget.try_withdraw()


def test_old_traffic_and_retries_leave_the_window() -> None:
    clock = ManualClock()
    budget = RetryBudget(ratio=0.5, min_per_second=0.0, window=10.0, clock=clock)
    for _ in range(10):
        budget.deposit()
    assert sum(budget.try_withdraw() for _ in range(10)) == 5
    clock.advance(5.0)
    assert not budget.try_withdraw()
    for _ in range(4):
        budget.deposit()
    assert sum(budget.try_withdraw() for _ in range(10)) == 2
    clock.advance(5.5)  # the first 10 deposits and 5 withdrawals are gone
    assert budget.balance() == pytest.approx(0.5 * 4 - 2)
    clock.advance(100.0)
    assert budget.balance() == 0.0


def test_defaults_are_finagles() -> None:
    budget = RetryBudget()
    assert (budget.ratio, budget.min_per_second, budget.window) == (0.2, 10.0, 10.0)


@pytest.mark.parametrize(
    ("kw", "setting"),
    [
        ({"ratio": 1.5}, "ratio"),
        ({"min_per_second": -1}, "min_per_second"),
        ({"window": 0}, "window"),
    ],
)
def test_bad_config_names_the_setting(kw: dict[str, float], setting: str) -> None:
    with pytest.raises(ConfigurationError, match=f"RetryBudget.{setting}"):
        RetryBudget(**kw)


async def outage(policy: Retry, callers: int) -> int:
    """``callers`` concurrent calls to a dependency that always fails; returns its call count."""
    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        raise ConnectionError("dependency down")

    with no_backoff():
        results = await asyncio.gather(
            *(policy.call(down) for _ in range(callers)), return_exceptions=True
        )
    assert all(isinstance(r, ConnectionError) for r in results)
    return calls


async def test_outage_budget_caps_amplification_where_plain_retry_triples_load() -> None:
    callers = 1000
    plain = await outage(Retry(attempts=3), callers)
    budgeted = await outage(Retry(attempts=3, budget=RetryBudget()), callers)
    assert plain == 3 * callers
    assert budgeted <= 1.3 * callers
    assert budgeted > callers  # the floor and the 20 % still allow some retries
