"""Retry budget: payments failing every charge (breaker off in both, to see the retries
alone); calls to payments per order attempt (the amplification)."""

from __future__ import annotations

from lab.load import action_figures, checkout, opened
from lab.runner import Experiment
from lab.stack import Lab, Shop


async def measure(lab: Lab, shop: Shop) -> dict[str, float]:
    assert lab.payments is not None
    await lab.behave(lab.payments, failure_rate=1.0)
    before = (await lab.stats(lab.payments))["requests"]
    result = await opened(shop, checkout, rate=60.0, duration=3.0, user_ids=range(100, 400))
    calls = (await lab.stats(lab.payments))["requests"] - before
    found = action_figures(result, "POST /orders")
    attempts = max(found["requests"], 1.0)
    found["calls_per_order"] = round(calls / attempts, 3)
    found["payment_calls"] = float(calls)
    return found


EXPERIMENT = Experiment(
    practice="retry_budget",
    experiment="POST /orders at 60/s, payments failing 100%, no breaker",
    metric="calls_per_order",
    unit="calls",
    lower_is_better=True,
    measure=measure,
    naive_off="breaker",
)
