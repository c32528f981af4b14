"""The guide's realistic scenario against the shop: 60% browse, 30% add to cart, 10% purchase,
think time 1-5 s scaled down (0.1-0.5 s) so that it fits in the demo's minutes."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from typing import Any

from lab.load import zipf_products
from lab.stack import Lab, token
from tailguard.loadtest import User, between, run, task

__all__ = ["realistic"]

USERS = 40
SECONDS = 8.0


async def realistic(lab: Lab, *, log: Callable[[str], None]) -> dict[str, Any]:
    """Run the scenario on a shop with every practice on; returns the result JSON."""
    shop = await lab.shop("scenario")
    try:
        ids = itertools.count(1)
        product = zipf_products()

        class RealisticLoadTest(User):
            host = shop.url
            wait_time = between(0.1, 0.5)  # the guide's 1-5 s, scaled down 10x

            async def on_start(self) -> None:
                self.user_id = next(ids)
                self.headers = {"Authorization": f"Bearer {token(self.user_id)}"}

            @task(6)
            async def browse(self) -> None:
                await self.client.get(f"/products/{product()}", name="GET /products/{id}")

            @task(3)
            async def add_to_cart(self) -> None:
                await self.client.post(
                    "/cart/items",
                    json={"product_id": product()},
                    headers=self.headers,
                    name="POST /cart/items",
                )

            @task(1)
            async def purchase(self) -> None:
                await self.client.post(
                    "/cart/items",
                    json={"product_id": product()},
                    headers=self.headers,
                    name="POST /cart/items",
                )
                key = {"Idempotency-Key": uuid.uuid4().hex, **self.headers}
                await self.client.post("/orders", headers=key, name="POST /orders")

        log(f"demo: the guide's realistic scenario: {USERS} users, {SECONDS:g} s ...")
        result = await run(RealisticLoadTest, users=USERS, duration=SECONDS, label=shop.url)
        totals = result.totals
        figures = totals.histogram.figures()
        log(
            f"demo: scenario: {totals.requests} requests, {result.rps:.0f}/s, "
            f"{totals.errors} errors, p50 {figures.get('p50')} ms, p99 {figures.get('p99')} ms"
        )
        for name, stats in sorted(result.actions.items()):
            numbers = stats.histogram.figures()
            log(
                f"        {name:22} {stats.requests:6} requests, p50 {numbers.get('p50')} ms, "
                f"p99 {numbers.get('p99')} ms, {stats.errors} errors"
            )
        return result.to_dict()
    finally:
        await lab.stop(shop)
