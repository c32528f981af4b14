"""Rate limit: one abusive client at 10x the others on the cart; the other users' p99 and
error rate."""

from __future__ import annotations

import asyncio
from typing import Any

from lab.load import closed, opened
from lab.runner import Experiment, figures
from lab.stack import Lab, Shop

ABUSE_RATE = 3000.0  # requests/s: about 10x the sixteen others together


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
    await asyncio.sleep(0.1)  # a brisk person's pace (~18 requests/s), under the limit


async def add(client: Any, headers: dict[str, str], user_id: int) -> None:
    await client.post(
        "/cart/items",
        json={"product_id": 1 + user_id % 50},
        headers=headers,
        name="POST /cart/items",
    )


async def measure(lab: Lab, shop: Shop) -> dict[str, float]:
    # The abuser at a fixed rate, 10x the others together (an open loop: it does not slow
    # down when answered 429, as a closed loop would speed up).
    others, abuser = await asyncio.gather(
        closed(shop, polite, users=16, duration=2.5, user_ids=range(1, 17)),
        opened(shop, add, rate=ABUSE_RATE, duration=2.5, user_ids=[999]),
    )
    found = figures(others)
    found["abuser_rps"] = round(abuser.rps, 1)
    found["abuser_429"] = float(abuser.totals.errors_by_kind.get("status_429", 0))
    return found


EXPERIMENT = Experiment(
    practice="rate_limit",
    experiment="cart routes: 16 users at ~18/s each, one abuser at 3,000/s",
    metric="p99_ms",
    unit="ms",
    lower_is_better=True,
    measure=measure,
    rounds=2,
    settings={"cart_rate": "50/second"},
)
