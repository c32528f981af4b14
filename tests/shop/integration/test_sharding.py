"""Users and their orders sharded over 4 PostgreSQL databases of the local server (by user id,
JumpHash), the catalogue in the first: each row on its user's shard and nowhere else, sign-in
and orders for users of every shard, ids unique across shards, the cross-shard stats, and a
shard that stops answering.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shop.adapters.schema import ID_STRIDE
from shop.adapters.seed import ON_HAND
from tailguard.shard import JumpHash
from tests.shop.conftest import ShopFactory, fresh_databases, pg_admin, settle, sign_in

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SHARDS = 4


@pytest.fixture(scope="module")
def shard_urls(database_url: str) -> Iterator[list[str]]:
    """Four fresh databases on the ``database_url`` server, dropped afterwards."""
    with fresh_databases(database_url, "shop_sh", SHARDS) as urls:
        yield urls


@pytest.fixture
def sharded(shard_urls: list[str], redis_url: str) -> dict[str, Any]:
    return {
        "database_urls": ",".join(shard_urls),
        "redis_url": redis_url,
        "namespace": f"sh{uuid.uuid4().hex[:10]}",
        "secret_key": "s" * 32,
        "events_worker": "embedded",
    }


async def _column(url: str, query: str) -> list[Any]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return [row[0] for row in await connection.execute(text(query))]
    finally:
        await engine.dispose()


async def test_each_users_rows_live_on_their_shard_only(
    shop: ShopFactory, sharded: dict[str, Any], shard_urls: list[str]
) -> None:
    strategy = JumpHash(SHARDS)
    async with shop(**sharded) as (app, _client):
        assert app.state.services.databases.sharded
        total_users = 0
        for index, url in enumerate(shard_urls):
            users = await _column(url, "SELECT id FROM users")
            owners = await _column(url, "SELECT DISTINCT user_id FROM orders")
            products = await _column(url, "SELECT count(*) FROM products")
            stock = await _column(url, "SELECT count(*) FROM inventory")
            assert users, f"shard {index} has no users"
            assert {strategy.shard(u) for u in users} == {index}
            assert {strategy.shard(u) for u in owners} <= {index}
            assert products == [500]  # the catalogue's copy on every shard
            assert stock == ([500] if index == 0 else [0])  # stock only in the primary
            total_users += len(users)
        assert total_users == 1000


async def test_sign_in_and_orders_for_users_of_every_shard(
    shop: ShopFactory, sharded: dict[str, Any], shard_urls: list[str]
) -> None:
    strategy = JumpHash(SHARDS)
    # The first seeded user of each shard.
    users = {}
    for user_id in range(1, 100):
        users.setdefault(strategy.shard(user_id), user_id)
    assert len(users) == SHARDS
    async with shop(**sharded) as (app, client):
        placed: dict[int, dict[str, Any]] = {}
        for shard, user_id in sorted(users.items()):
            headers = await sign_in(client, user_id)
            client.cookies.clear()
            added = await client.post(
                "/cart/items", json={"product_id": 7, "quantity": 1}, headers=headers
            )
            assert added.status_code == 201, added.text
            key = {"Idempotency-Key": f"shard-{shard}-{uuid.uuid4().hex}", **headers}
            answer = await client.post("/orders", headers=key)
            assert answer.status_code == 201, answer.text
            placed[shard] = answer.json()
            page = await client.get(f"/users/{user_id}/orders?limit=1", headers=headers)
            assert page.json()["items"][0]["id"] == answer.json()["id"]
            assert page.json()["items"][0]["items"][0]["name"]  # the shard's product copy
            board = await client.get(f"/users/{user_id}/dashboard", headers=headers)
            assert board.status_code == 200
            assert board.json()["recent_orders"][0]["id"] == answer.json()["id"]
        ids = [o["id"] for o in placed.values()]
        assert len(set(ids)) == SHARDS
        for shard, order in placed.items():
            assert order["id"] % ID_STRIDE == shard + 1  # each shard numbers its own residue
            where = [
                i
                for i, url in enumerate(shard_urls)
                if await _column(url, f"SELECT id FROM orders WHERE id = {order['id']}")
            ]
            assert where == [shard]
        await settle(app)  # the worker takes the sold units from the primary's stock
        stock = await _column(
            shard_urls[0], "SELECT on_hand || '/' || reserved FROM inventory WHERE product_id = 7"
        )
        assert stock == [f"{ON_HAND - SHARDS}/0"]


async def test_stats_sum_every_shard_and_say_which_answered(
    shop: ShopFactory, sharded: dict[str, Any], shard_urls: list[str], database_url: str
) -> None:
    async with shop(**sharded, admin_token="a" * 16) as (app, client):
        token = {"X-Admin-Token": "a" * 16}
        assert (await client.get("/admin/stats")).status_code == 403
        answer = await client.get("/admin/stats", headers=token)
        assert answer.status_code == 200, answer.text
        stats = answer.json()
        assert stats["complete"]
        assert stats["shards"] == {"total": SHARDS, "answered": [0, 1, 2, 3], "failed": {}}
        expected = 0
        for url in shard_urls:
            expected += (
                await _column(
                    url,
                    "SELECT count(*) FROM orders WHERE status = 'confirmed' "
                    f"AND created_at >= '{stats['since']}'",
                )
            )[0]
        assert stats["orders"] == expected > 0
        assert sum(d["orders"] for d in stats["days"]) == expected

        # Shard 2 stops taking connections: the others still answer, and the stats say so.
        victim = make_url(shard_urls[2]).database
        server = make_url(database_url)
        engine = app.state.services.databases.shards[2]
        await pg_admin(server, f'ALTER DATABASE "{victim}" ALLOW_CONNECTIONS false')
        await pg_admin(
            server,
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{victim}'",
        )
        await engine.dispose()
        try:
            partial = (await client.get("/admin/stats", headers=token)).json()
        finally:
            await pg_admin(server, f'ALTER DATABASE "{victim}" ALLOW_CONNECTIONS true')
        assert not partial["complete"]
        assert partial["shards"]["answered"] == [0, 1, 3]
        assert list(partial["shards"]["failed"]) == ["2"]
        missing = (
            await _column(
                shard_urls[2],
                "SELECT count(*) FROM orders WHERE status = 'confirmed' "
                f"AND created_at >= '{stats['since']}'",
            )
        )[0]
        assert partial["orders"] == expected - missing
        again = (await client.get("/admin/stats", headers=token)).json()
        assert again["complete"]
        assert again["orders"] == expected
        print(
            f"\nstats across {SHARDS} shards: {expected} orders; with shard 2 refusing "
            f"connections: {partial['orders']} from shards {partial['shards']['answered']}"
        )


async def test_one_shard_url_is_no_sharding(shop: ShopFactory, shop_database: str) -> None:
    async with shop(database_urls=shop_database) as (app, client):
        databases = app.state.services.databases
        assert not databases.sharded
        assert databases.shards == [databases.primary]
        assert (await client.get("/products/3")).status_code == 200
        assert await _column(shop_database, "SELECT count(*) FROM inventory") == [500]
