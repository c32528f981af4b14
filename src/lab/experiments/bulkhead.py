"""Bulkhead: payments stalled (3 s a charge) under checkout load, while other users browse;
the browse routes' p99 (isolation) and what the checkouts got."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from lab.load import action_figures, checkout, closed, opened
from lab.runner import Experiment
from lab.stack import Lab, Shop


async def browse(client: Any, headers: dict[str, str], user_id: int) -> None:
    await client.get(f"/products/{random.randint(1, 500)}", name="GET /products/{id}")
    await client.get(
        f"/users/{user_id}/orders?limit=5", headers=headers, name="GET /users/{id}/orders"
    )


async def measure(lab: Lab, shop: Shop) -> dict[str, float]:
    assert lab.payments is not None
    await lab.behave(lab.payments, latency_median=3.0, latency_p99=3.0)
    buyers, browsers = await asyncio.gather(
        opened(shop, checkout, rate=40.0, duration=2.5, user_ids=range(100, 400)),
        closed(shop, browse, users=8, duration=2.5, user_ids=range(1, 9)),
    )
    browse_ms = browsers.totals.histogram.figures()
    found = {
        "browse_p99_ms": float(browse_ms.get("p99", 0.0)),
        "browse_p50_ms": float(browse_ms.get("p50", 0.0)),
        "browse_rps": round(browsers.rps, 1),
    }
    for key, value in action_figures(buyers, "POST /orders").items():
        found[f"checkout_{key}"] = value
    return found


EXPERIMENT = Experiment(
    practice="bulkhead",
    experiment="payments stalled 3 s under 40 checkouts/s (open model); 8 users browse",
    metric="browse_p99_ms",
    unit="ms",
    lower_is_better=True,
    measure=measure,
    settings={"payment_concurrency": 8, "payment_queue": 8, "payment_timeout": 5.0},
)
