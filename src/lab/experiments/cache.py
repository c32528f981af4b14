"""Tiered cache: product and profile reads over Zipf-popular keys, requests/s, p99 and database
statements per request."""

from __future__ import annotations

import random
from typing import Any

from lab.load import closed, zipf_products
from lab.runner import Experiment, figures
from lab.stack import Lab, Shop

_product = zipf_products()


async def read(client: Any, headers: dict[str, str], user_id: int) -> None:
    if random.random() < 0.8:
        await client.get(f"/products/{_product()}", name="GET /products/{id}")
    else:
        await client.get(f"/users/{user_id}", headers=headers, name="GET /users/{id}")


async def measure(lab: Lab, shop: Shop) -> dict[str, float]:
    before = await lab.statements(shop)
    result = await closed(shop, read, users=16, duration=2.0, user_ids=range(1, 201))
    found = figures(result)
    found["queries_per_request"] = round(
        (await lab.statements(shop) - before) / max(result.totals.requests, 1), 3
    )
    return found


EXPERIMENT = Experiment(
    practice="cache",
    experiment="GET /products/{id} (80%, Zipf 1.1 over 500) and GET /users/{id}, 16 users",
    metric="rps",
    unit="requests/s",
    lower_is_better=False,
    measure=measure,
)
