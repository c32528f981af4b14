"""Two shops on one Redis with different SHOP_NAMESPACEs share no key and no invalidation."""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis

from tests.shop.conftest import ShopFactory, sign_in


async def test_namespaces_keep_two_shops_apart_on_one_redis(
    shop: ShopFactory, redis_url: str
) -> None:
    ns = f"t{uuid.uuid4().hex[:12]}"
    client = aioredis.Redis.from_url(redis_url)
    try:
        async with shop(redis_url=redis_url, namespace=ns) as (app, http):
            svc = app.state.services
            assert svc.keys.prefix.startswith(f"{ns}:")
            headers = await sign_in(http, 1)
            assert (await http.get("/products/9")).status_code == 200
            added = await http.post("/cart/items", json={"product_id": 9}, headers=headers)
            assert added.status_code == 201
            keys = {k.decode() async for k in client.scan_iter(match=f"{ns}:*")}
            assert any(k.startswith(f"{ns}:cart:1:") for k in keys), keys
            assert svc.keys.build("product", 9) in keys  # the L2 copy of the product
            session = http.cookies["shop_session"]
            assert f"{ns}:cart:1:{session}" in keys
            assert not await client.exists(f"shop:cart:1:{session}")  # not the default prefix
    finally:
        async for key in client.scan_iter(match=f"{ns}:*"):
            await client.delete(key)
        await client.aclose()
