"""Eager loading: ``GET /users/{id}/orders?limit=20``, statements per request and latency."""

from __future__ import annotations

from typing import Any

from lab.load import closed
from lab.runner import Experiment, figures
from lab.stack import Lab, Shop


async def orders_page(client: Any, headers: dict[str, str], user_id: int) -> None:
    await client.get(
        f"/users/{user_id}/orders?limit=20", headers=headers, name="GET /users/{id}/orders"
    )


async def measure(lab: Lab, shop: Shop) -> dict[str, float]:
    before = await lab.statements(shop)
    result = await closed(shop, orders_page, users=8, duration=2.0, user_ids=lab.heavy_users)
    statements = await lab.statements(shop) - before
    found = figures(result)
    found["queries_per_request"] = round(statements / max(result.totals.requests, 1), 2)
    return found


EXPERIMENT = Experiment(
    practice="eager_loading",
    experiment="GET /users/{id}/orders?limit=20, 8 users, heavy buyers",
    metric="queries_per_request",
    unit="statements",
    lower_is_better=True,
    measure=measure,
)
