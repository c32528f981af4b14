"""The shop's routes end to end on the embedded defaults (SQLite, in-process parts)."""

from __future__ import annotations

from tests.shop.conftest import ShopFactory, sign_in


async def test_sign_in_read_profile_order_and_replay(shop: ShopFactory) -> None:
    async with shop() as (_, client):
        headers = await sign_in(client, 1)
        profile = await client.get("/users/1", headers=headers)
        assert profile.status_code == 200
        assert profile.json()["email"] == "user1@shop.test"
        added = await client.post(
            "/cart/items", json={"product_id": 3, "quantity": 2}, headers=headers
        )
        assert added.status_code == 201, added.text
        key = {"Idempotency-Key": "smoke-order-1", **headers}
        first = await client.post("/orders", headers=key)
        assert first.status_code == 201, first.text
        body = first.json()
        assert body["status"] == "confirmed"
        assert body["total_cents"] > 0
        again = await client.post("/orders", headers=key)
        assert again.status_code == 201
        assert again.json() == body
        assert again.headers["idempotent-replayed"] == "true"
        orders = await client.get("/users/1/orders?limit=1", headers=headers)
        assert orders.json()["items"][0]["id"] == body["id"]
