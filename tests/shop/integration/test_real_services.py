"""The shop on the real services: PostgreSQL (a throwaway ``shop_it_<hex>`` database for this
module, dropped afterwards) and the machine's Redis (sessions, L2 cache, rate limits and the
invalidation bus), one instance or two sharing both, as behind a load balancer.

The shop's Redis keys have no per-run namespace (``shop:v1:...``, ``shop:cart:...``): the tests
only assert values written in this run after an eviction, and use fresh session ids, so what
another run left in the same Redis cannot make them pass or fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from shop.adapters import orm
from shop.entrypoints.auth import COOKIE
from shop.service_layer.views import product_key, profile_key
from tests.shop.conftest import ShopFactory, settle, sign_in

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

PROPAGATION_SECONDS = 5.0
"""How long a change may take to reach the other instance (polled, not timed)."""


@pytest.fixture
def real(shop_database: str, redis_url: str) -> dict[str, Any]:
    """Settings for a shop on the real services; every instance shares the secret. Each runs
    the event worker in process (on the Redis stream), as no ``shop worker`` runs here."""
    return {
        "database_url": shop_database,
        "redis_url": redis_url,
        "secret_key": "x" * 32,
        "events_worker": "embedded",
    }


@contextlib.asynccontextmanager
async def two_instances(
    shop: ShopFactory, tmp_path: Path, settings: dict[str, Any]
) -> AsyncIterator[tuple[tuple[Any, httpx.AsyncClient], tuple[Any, httpx.AsyncClient]]]:
    """Instances A and B on the same database and Redis (their own data dirs and parts)."""
    async with (
        shop(data_dir=tmp_path / "a", **settings) as a,
        shop(data_dir=tmp_path / "b", **settings) as b,
    ):
        yield a, b


def fresh_session(client: httpx.AsyncClient) -> None:
    """Forget the session cookie: the next request uses its token's session."""
    client.cookies.clear()


async def read_into_l1(app: Any, client: httpx.AsyncClient, path: str, key: str, **kw: Any) -> Any:
    """GET ``path`` until ``key`` sits in the instance's L1 (a read overlapping an eviction is
    rightly not kept there); returns the last body."""
    l1 = app.state.services.cache.tiers[0]
    for _ in range(50):
        response = await client.get(path, **kw)
        assert response.status_code == 200, response.text
        if key in l1:
            return response.json()
        await asyncio.sleep(0.02)
    raise AssertionError(f"{key} never stayed in the L1")


async def eventually(read: Callable[[], Awaitable[Any]], expected: Any) -> tuple[Any, int]:
    """Poll ``read()`` until it returns ``expected`` or PROPAGATION_SECONDS pass."""
    deadline = time.monotonic() + PROPAGATION_SECONDS
    polls = 0
    while True:
        polls += 1
        value = await read()
        if value == expected or time.monotonic() > deadline:
            return value, polls
        await asyncio.sleep(0.02)


async def test_migrated_and_seeded_on_postgres(shop: ShopFactory, real: dict[str, Any]) -> None:
    async with shop(**real) as (app, client):
        assert app.state.services.extras["engine"].dialect.name == "postgresql"
        headers = await sign_in(client, 1)
        profile = await client.get("/users/1", headers=headers)
        assert profile.status_code == 200
        assert profile.json()["email"] == "user1@shop.test"
        page = await client.get("/products?limit=5")
        assert [p["id"] for p in page.json()["items"]] == [1, 2, 3, 4, 5]
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        dependencies = ready.json()["dependencies"]
        assert dependencies["database"] == dependencies["redis"] == "ok"
        assert dependencies["sessions"] == "ok"


async def test_full_order_flow(shop: ShopFactory, real: dict[str, Any]) -> None:
    async with shop(**real) as (app, client):
        engine = app.state.services.extras["engine"]
        headers = await sign_in(client, 2)
        lines = {10: 2, 11: 1}
        for product_id, quantity in lines.items():
            added = await client.post(
                "/cart/items",
                json={"product_id": product_id, "quantity": quantity},
                headers=headers,
            )
            assert added.status_code == 201, added.text
        cart = await client.get("/cart", headers=headers)
        assert {(i["product_id"], i["quantity"]) for i in cart.json()["items"]} == set(
            lines.items()
        )
        prices = {
            pid: (await client.get(f"/products/{pid}")).json()["price_cents"] for pid in lines
        }
        stock_before = await stock(engine, list(lines))

        key = {"Idempotency-Key": f"real-flow-{uuid.uuid4().hex}", **headers}
        placed = await client.post("/orders", headers=key)
        assert placed.status_code == 201, placed.text
        order = placed.json()
        assert order["status"] == "confirmed"
        assert order["total_cents"] == sum(prices[p] * q for p, q in lines.items())
        replay = await client.post("/orders", headers=key)
        assert replay.status_code == 201
        assert replay.json() == order
        assert replay.headers["Idempotent-Replayed"] == "true"

        assert (await client.get("/cart", headers=headers)).json()["items"] == []
        history = await client.get("/users/2/orders?limit=1", headers=headers)
        assert history.json()["items"][0]["id"] == order["id"]
        assert {
            i["product_id"]: i["quantity"] for i in history.json()["items"][0]["items"]
        } == lines
        await settle(app)  # the event worker turns the reservation into sold stock
        stock_after = await stock(engine, list(lines))
        for pid, quantity in lines.items():
            assert stock_after[pid] == (stock_before[pid][0] - quantity, 0)
        payments = app.state.services.extras["servers"]["payments"].url
        async with httpx.AsyncClient() as http:
            ledger = (await http.get(f"{payments}/charges")).json()["charges"]
        charge = next(c for c in ledger if c["id"] == order["charge_id"])
        assert charge["status"] == "succeeded"
        assert charge["amount_cents"] == order["total_cents"]


async def stock(engine: Any, product_ids: list[int]) -> dict[int, tuple[int, int]]:
    """product id to (on_hand, reserved), from the database."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(
                orm.inventory.c.product_id, orm.inventory.c.on_hand, orm.inventory.c.reserved
            ).where(orm.inventory.c.product_id.in_(product_ids))
        )
        return {int(pid): (int(on_hand), int(res)) for pid, on_hand, res in rows}


async def test_last_units_never_oversell(shop: ShopFactory, real: dict[str, Any]) -> None:
    product_id, units, buyers = 42, 3, range(11, 21)
    async with shop(**real) as (app, client):
        engine = app.state.services.extras["engine"]
        async with engine.begin() as connection:
            await connection.execute(
                update(orm.inventory)
                .where(orm.inventory.c.product_id == product_id)
                .values(on_hand=units, reserved=0)
            )
        sessions = []
        for user_id in buyers:
            headers = await sign_in(client, user_id)
            fresh_session(client)
            added = await client.post(
                "/cart/items", json={"product_id": product_id, "quantity": 1}, headers=headers
            )
            assert added.status_code == 201, added.text
            sessions.append(headers)

        answers = await asyncio.gather(
            *(
                client.post("/orders", headers={"Idempotency-Key": f"last-{uuid.uuid4().hex}", **h})
                for h in sessions
            )
        )
        codes = sorted(a.status_code for a in answers)
        print(f"\n{len(sessions)} concurrent orders for the last {units} units: {codes}")
        assert codes == [201] * units + [409] * (len(sessions) - units), [a.text for a in answers]
        for answer in answers:
            if answer.status_code == 409:
                assert answer.json()["shortfalls"] == {str(product_id): 1}
        await settle(app)  # reserved at once; taken from the stock by the event worker
        assert (await stock(engine, [product_id]))[product_id] == (0, 0)


async def test_price_change_reaches_the_other_instance(
    shop: ShopFactory, real: dict[str, Any], tmp_path: Path
) -> None:
    product_id = 33
    async with two_instances(shop, tmp_path, real) as ((app_a, a), (app_b, b)):
        before = await read_into_l1(
            app_b, b, f"/products/{product_id}", product_key(app_b.state.services, product_id)
        )
        new_price = random.choice([p for p in range(1000, 99_999) if p != before["price_cents"]])
        changed = await a.patch(
            f"/admin/products/{product_id}",
            json={"price_cents": new_price},
            headers={"X-Admin-Token": app_a.state.admin_token},
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["price_cents"] == new_price

        async def price_on_b() -> int:
            response = await b.get(f"/products/{product_id}")
            assert response.status_code == 200
            price: int = response.json()["price_cents"]
            return price

        seen, polls = await eventually(price_on_b, new_price)
        print(f"\nprice change on A seen on B after {polls} poll(s)")
        assert seen == new_price


async def test_profile_edit_reaches_the_other_instance(
    shop: ShopFactory, real: dict[str, Any], tmp_path: Path
) -> None:
    user_id = 5
    async with two_instances(shop, tmp_path, real) as ((_, a), (app_b, b)):
        headers = await sign_in(a, user_id)  # the same secret: the token works on B too
        await read_into_l1(
            app_b,
            b,
            f"/users/{user_id}",
            profile_key(app_b.state.services, user_id),
            headers=headers,
        )
        name = f"Renamed {uuid.uuid4().hex[:8]}"
        edited = await a.patch(f"/users/{user_id}", json={"name": name}, headers=headers)
        assert edited.status_code == 200, edited.text

        async def name_on_b() -> str:
            response = await b.get(f"/users/{user_id}", headers=headers)
            assert response.status_code == 200
            value: str = response.json()["name"]
            return value

        seen, polls = await eventually(name_on_b, name)
        print(f"\nprofile edit on A seen on B after {polls} poll(s)")
        assert seen == name


async def test_cart_follows_its_session_across_instances(
    shop: ShopFactory, real: dict[str, Any], tmp_path: Path
) -> None:
    async with two_instances(shop, tmp_path, real) as ((_, a), (_, b)):
        headers = await sign_in(a, 7)
        cookie = a.cookies[COOKIE]
        assert b.cookies.get(COOKIE) is None
        added = await a.post("/cart/items", json={"product_id": 20, "quantity": 3}, headers=headers)
        assert added.status_code == 201, added.text

        # The same token and cookie, sent to B: the same cart, from Redis.
        both = {**headers, "Cookie": f"{COOKIE}={cookie}"}
        on_b = await b.get("/cart", headers=both)
        assert on_b.status_code == 200, on_b.text
        assert on_b.json()["items"] == [{"product_id": 20, "quantity": 3}]
        more = await b.post("/cart/items", json={"product_id": 21, "quantity": 1}, headers=both)
        assert more.status_code == 201, more.text
        on_a = await a.get("/cart", headers=headers)
        assert on_a.json()["items"] == [
            {"product_id": 20, "quantity": 3},
            {"product_id": 21, "quantity": 1},
        ]
        # The token alone names the same session (its sid), so B agrees without the cookie.
        token_only = await b.get("/cart", headers=headers)
        assert token_only.json() == on_a.json()
        # Another user's token with this cookie does not reach this cart.
        other = await sign_in(b, 8)
        fresh_session(b)
        stolen = await b.get("/cart", headers={**other, "Cookie": f"{COOKIE}={cookie}"})
        assert stolen.status_code == 200
        assert stolen.json()["items"] == []
