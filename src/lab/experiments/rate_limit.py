"""Rate limit: one abusive client at 10x the others on the cart; the other users' p99 and
error rate."""

from __future__ import annotations

import asyncio
from typing import Any

from lab.load import closed
from lab.runner import Experiment, figures
from lab.stack import Lab, Shop


async def cart(client: Any, headers: dict[str, str], user_id: int) -> None:
    await client.post(
        "/cart/items",
        json={"product_id": 1 + user_id % 50},
        headers=headers,
        name="POST /cart/items",
    )
    await client.get("/cart", headers=headers, name="GET /cart")


async def polite(client: Any, headers: dict[str, str], user_id: int) -> None:
    await cart(client, headers, user_id)
    await asyncio.sleep(0.2)  # a person's pace (~10 requests/s), against the abuser's none


async def measure(lab: Lab, shop: Shop) -> dict[str, float]:
    others, abuser = await asyncio.gather(
        closed(shop, polite, users=8, duration=2.5, user_ids=range(1, 9)),
        closed(shop, cart, users=20, duration=2.5, user_ids=[999]),
    )
    found = figures(others)
    found["abuser_rps"] = round(abuser.rps, 1)
    found["abuser_429"] = float(abuser.totals.errors_by_kind.get("status_429", 0))
    return found


EXPERIMENT = Experiment(
    practice="rate_limit",
    experiment="cart routes: 8 users at a person's pace, one abuser on 20 connections",
    metric="p99_ms",
    unit="ms",
    lower_is_better=True,
    measure=measure,
    settings={"cart_rate": "20/second"},
)
