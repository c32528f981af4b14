"""Circuit breaker: payments hanging on every charge for a while; the checkout p99 once the
breaker has had time to open (the first 2 s are a warm-up), and the time to recover after."""

from __future__ import annotations

import time
import uuid

from lab.load import action_figures, checkout, opened
from lab.runner import Experiment
from lab.stack import Lab, Shop, token

WARMUP = 1.5  # seconds of failing checkouts before the measured part
RATE = 30.0  # checkouts a second


async def dead_payments(lab: Lab) -> None:
    assert lab.payments is not None
    await lab.behave(lab.payments, timeout_rate=1.0, hang=5.0)


async def measure(lab: Lab, shop: Shop) -> dict[str, float]:
    assert lab.payments is not None
    assert lab.http is not None
    await dead_payments(lab)
    # The open model: the same arrivals for both variants (a closed loop would send more
    # requests to the shop that fails faster, and measure its database instead).
    await opened(shop, checkout, rate=RATE, duration=WARMUP, user_ids=range(100, 400))
    result = await opened(shop, checkout, rate=RATE, duration=2.5, user_ids=range(100, 400))
    found = action_figures(result, "POST /orders")
    # Recovery: payments healthy again; how long until a checkout is confirmed?
    await lab.behave(lab.payments, timeout_rate=0.0)
    headers = {"Authorization": f"Bearer {token(7)}"}
    started = time.monotonic()
    recovered = float("nan")
    while time.monotonic() - started < 15.0:
        async with lab.http.post(
            f"{shop.url}/cart/items", json={"product_id": 3}, headers=headers
        ) as added:
            await added.read()
        async with lab.http.post(
            f"{shop.url}/orders", headers={"Idempotency-Key": uuid.uuid4().hex, **headers}
        ) as placed:
            await placed.read()
            if placed.status == 201:
                recovered = time.monotonic() - started
                break
    found["recovery_s"] = round(recovered, 2)
    return found


EXPERIMENT = Experiment(
    practice="breaker",
    experiment="POST /orders at 30/s, payments hanging (timeouts) on every charge",
    metric="p99_ms",
    unit="ms",
    lower_is_better=True,
    measure=measure,
    settings={"payment_timeout": 2.0},
)
