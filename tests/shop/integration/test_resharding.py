"""``shop reshard``: from 2 to 3 PostgreSQL shards while the shop serves, readers asking for
moving and staying users' orders throughout, and a moving user placing orders (refused with a
503 and Retry-After only while frozen). No reader ever misses an order; every row ends on its
user's new shard and nowhere else; the checksums agree.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shop.adapters.db import Databases
from shop.adapters.shardmap import read_map
from shop.config import load_settings
from shop.service_layer.resharding import ReshardError, reshard
from tailguard.shard import JumpHash
from tests.shop.conftest import ShopFactory, fresh_databases, sign_in

pytestmark = [pytest.mark.postgres]

READ_SECONDS_AFTER = 1.0
"""Readers go on this long after the reshard returns (the old copies are deleted by then)."""


@pytest.fixture(scope="module")
def three_databases(database_url: str) -> Iterator[list[str]]:
    """Three fresh databases on the ``database_url`` server, dropped afterwards."""
    with fresh_databases(database_url, "shop_rs", 3) as urls:
        yield urls


async def _ids(url: str, query: str) -> list[int]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return [int(r[0]) for r in await connection.execute(text(query))]
    finally:
        await engine.dispose()


async def test_growing_from_two_to_three_shards_while_serving(
    shop: ShopFactory, three_databases: list[str]
) -> None:
    settings: dict[str, Any] = {
        "database_urls": ",".join(three_databases),
        "shards": 2,
        "shard_refresh": 0.1,
        "secret_key": "r" * 32,
        "cart_rate": "1000/second",
    }
    old, new = JumpHash(2), JumpHash(3)
    moving = [u for u in range(2, 400) if old.shard(u) != new.shard(u)][:5]
    staying = [u for u in range(2, 400) if old.shard(u) == new.shard(u)][:5]
    async with shop(**settings) as (app, client):
        svc = app.state.services
        assert svc.databases.map.shards == 2
        headers = {u: await sign_in(client, u) for u in moving + staying}
        client.cookies.clear()
        seen: dict[int, set[int]] = {}
        for user in moving + staying:
            page = await client.get(f"/users/{user}/orders?limit=100", headers=headers[user])
            seen[user] = {o["id"] for o in page.json()["items"]}
        assert any(seen[u] for u in moving), "no moving user has orders: nothing to check"

        done = asyncio.Event()
        reads = Counter[str]()
        missing: list[str] = []
        codes = Counter[int]()

        async def reader(users: list[int]) -> None:
            stop_at: float | None = None
            while stop_at is None or time.monotonic() < stop_at:
                if done.is_set() and stop_at is None:
                    stop_at = time.monotonic() + READ_SECONDS_AFTER
                for user in users:
                    # What was acknowledged before this read started: it must be there.
                    expected = set(seen[user])
                    page = await client.get(
                        f"/users/{user}/orders?limit=100", headers=headers[user]
                    )
                    assert page.status_code == 200, page.text
                    got = {o["id"] for o in page.json()["items"]}
                    lost = expected - got
                    if len(got) == 100:  # a full page: older orders are on the next one
                        lost = {i for i in lost if i > min(got)}
                    if lost:
                        missing.append(f"user {user} missing {sorted(lost)}")
                    reads["moving" if user in moving else "staying"] += 1
                await asyncio.sleep(0)

        async def writer(user: int) -> None:
            n = 0
            while not done.is_set():
                n += 1
                added = await client.post(
                    "/cart/items", json={"product_id": 5, "quantity": 1}, headers=headers[user]
                )
                assert added.status_code == 201, added.text
                answer = await client.post(
                    "/orders", headers={"Idempotency-Key": f"reshard-{user}-{n}", **headers[user]}
                )
                codes[answer.status_code] += 1
                if answer.status_code == 201:
                    seen[user].add(answer.json()["id"])
                else:
                    assert answer.status_code == 503, answer.text
                    assert int(answer.headers["Retry-After"]) >= 1
                await asyncio.sleep(0.02)

        resharder = Databases.from_settings(load_settings(**settings))
        lines: list[str] = []
        tasks = [
            asyncio.create_task(reader(moving)),
            asyncio.create_task(reader(staying)),
            asyncio.create_task(writer(moving[0])),
        ]
        try:
            report = await reshard(resharder, 3, batch=100, grace=0.5, say=lines.append)
        finally:
            done.set()
            await asyncio.gather(*tasks)
            await resharder.dispose()

        print("\n" + "\n".join(lines))
        print(f"reads {dict(reads)}, writes of a moving user {dict(codes)}")
        assert missing == []
        assert reads["moving"] > 10
        assert reads["staying"] > 10
        assert codes[201] >= 1
        assert set(codes) <= {201, 503}
        assert report.target == 3
        assert report.moved > 0
        assert report.batches_verified >= 1
        assert svc.databases.map.shards == 3
        assert len(svc.shards) == 3
        assert (await read_map(svc.databases.primary)).shards == 3  # type: ignore[union-attr]

        # Every user on its new shard only, the moved ones' rows gone from the old one.
        for index, url in enumerate(three_databases):
            users = await _ids(url, "SELECT id FROM users")
            assert {new.shard(u) for u in users} <= {index}
            owners = await _ids(url, "SELECT DISTINCT user_id FROM orders")
            assert {new.shard(u) for u in owners} <= {index}
        total = 0
        for url in three_databases:
            total += (await _ids(url, "SELECT count(*) FROM users"))[0]
        assert total == 1000

        # After the switch, a moving user's order goes to the new shard.
        user = moving[0]
        await client.post("/cart/items", json={"product_id": 6}, headers=headers[user])
        after = await client.post(
            "/orders", headers={"Idempotency-Key": f"reshard-after-{user}", **headers[user]}
        )
        assert after.status_code == 201, after.text
        order_id = after.json()["id"]
        where = [
            i
            for i, url in enumerate(three_databases)
            if await _ids(url, f"SELECT id FROM orders WHERE id = {order_id}")
        ]
        assert where == [new.shard(user)]

        # Nothing to do the second time; a count beyond the databases is refused.
        databases = Databases.from_settings(load_settings(**settings))
        try:
            again = await reshard(databases, 3, grace=0.1)
            assert again.moved == 0
            with pytest.raises(ReshardError, match=r"expected 1\.\.3"):
                await reshard(databases, 4, grace=0.1)
        finally:
            await databases.dispose()
