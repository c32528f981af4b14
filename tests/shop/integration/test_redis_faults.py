"""The shop when its Redis dies and comes back (sessions, L2 cache, rate limits, invalidation).

Reads keep working from the L1 or the database; the cart, which lives only in Redis, answers
503 with Retry-After; nothing answers 500; and once Redis is back the cart works again without
restarting the app.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.services import KillableRedis
from tests.shop.conftest import ShopFactory, sign_in

pytestmark = [pytest.mark.slow, pytest.mark.redis]

RECOVERY_SECONDS = 10.0
"""How long the cart may take to work again once Redis answers (polled, not timed)."""


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.request.url, response.text)
    assert int(response.headers["Retry-After"]) >= 1
    assert "redis" in response.json()["detail"]


async def test_reads_survive_a_dead_redis_and_carts_come_back(
    shop: ShopFactory, killable_redis: KillableRedis
) -> None:
    async with shop(redis_url=killable_redis.url) as (app, client):
        assert app.state.services.sessions.shared  # the carts are in Redis
        headers = await sign_in(client, 1)
        added = await client.post(
            "/cart/items", json={"product_id": 3, "quantity": 2}, headers=headers
        )
        assert added.status_code == 201, added.text
        product = await client.get("/products/5")
        profile = await client.get("/users/1", headers=headers)
        assert product.status_code == 200
        assert profile.status_code == 200

        killable_redis.kill()

        # Read before: from the L1 (or the database behind it).
        again = await client.get("/products/5")
        assert again.status_code == 200
        assert again.json() == product.json()
        assert (await client.get("/users/1", headers=headers)).json() == profile.json()
        # Never read: from the database.
        fresh = await client.get("/products/77")
        assert fresh.status_code == 200
        assert fresh.json()["id"] == 77
        # The cart lives only in Redis: 503 with Retry-After, not 500.
        assert_unavailable(await client.get("/cart", headers=headers))
        assert_unavailable(
            await client.post("/cart/items", json={"product_id": 4, "quantity": 1}, headers=headers)
        )
        assert_unavailable(await client.delete("/cart/items/3", headers=headers))
        assert_unavailable(
            await client.post("/orders", headers={"Idempotency-Key": "redis-down-1", **headers})
        )
        # Everything else answers, and nothing answers 500.
        sampled = {
            "products page": await client.get("/products?limit=5"),
            "category page": await client.get("/products?category=books&limit=3"),
            "dashboard": await client.get("/users/1/dashboard", headers=headers),
            "orders": await client.get("/users/1/orders?limit=3", headers=headers),
            "sign in": await client.post(
                "/auth/token", data={"username": "user2@shop.test", "password": "demo"}
            ),
            "profile edit": await client.patch(
                "/users/1", json={"name": "Redis Down"}, headers=headers
            ),
            "healthz": await client.get("/healthz"),
        }
        ready = await client.get("/readyz")
        statuses = {name: r.status_code for name, r in sampled.items()}
        print(f"\nwith Redis dead: {statuses}, readyz {ready.status_code}")
        assert statuses == dict.fromkeys(sampled, 200), statuses
        # Ready (degraded): Redis is shared, so no other instance would do better.
        assert ready.status_code == 200
        assert ready.json()["degraded"] == ["redis", "sessions"]
        assert ready.json()["dependencies"]["redis"].startswith("down")
        assert ready.json()["dependencies"]["sessions"].startswith("down")
        dashboard = sampled["dashboard"].json()
        assert dashboard["user"]["id"] == 1
        assert dashboard["recommendations"]
        assert (await client.get("/users/1", headers=headers)).json()["name"] == "Redis Down"

        killable_redis.restart()

        # Back, without restarting the app: the cart works again (it was lost with Redis).
        deadline = time.monotonic() + RECOVERY_SECONDS
        polls = 0
        while True:
            polls += 1
            added = await client.post(
                "/cart/items", json={"product_id": 4, "quantity": 1}, headers=headers
            )
            if added.status_code == 201 or time.monotonic() > deadline:
                break
            assert_unavailable(added)
            await asyncio.sleep(0.2)
        assert added.status_code == 201, added.text
        cart = await client.get("/cart", headers=headers)
        assert cart.status_code == 200, cart.text
        assert {(i["product_id"], i["quantity"]) for i in cart.json()["items"]} == {(4, 1)}
        ordered = await client.post(
            "/orders", headers={"Idempotency-Key": "redis-back-1", **headers}
        )
        assert ordered.status_code == 201, ordered.text
        print(f"Redis back: the cart worked again after {polls} poll(s)")
