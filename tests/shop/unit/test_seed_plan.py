"""The seed's planning, without a database: which rows a seed makes, the same every time."""

from __future__ import annotations

import random
import statistics
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import create_async_engine

from shop.adapters.seed import (
    CATEGORIES,
    ON_HAND,
    plan_orders,
    plan_products,
    plan_users,
    seed,
    zipf_cum_weights,
)
from shop.domain.model import MAX_QUANTITY

UNTIL = datetime(2026, 6, 1)
YEAR = timedelta(days=365)


def orders_for(
    rng_seed: int = 1, *, users: int = 100, products: int = 50, count: int = 2000
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(rng_seed)
    prices = [row["price_cents"] for row in plan_products(rng, products)[0]]
    pairs = list(plan_orders(rng, users=users, prices=prices, count=count, until=UNTIL))
    return [order for order, _ in pairs], [item for _, items in pairs for item in items]


def test_zipf_cum_weights_accumulate_rank_weights() -> None:
    weights = zipf_cum_weights(4, 1.0)

    assert weights == pytest.approx([1, 1.5, 1.5 + 1 / 3, 1.5 + 1 / 3 + 0.25])
    assert zipf_cum_weights(0, 1.1) == []


def test_users_are_numbered_and_share_the_hash() -> None:
    rows = plan_users(random.Random(1), 3, password_hash="h", until=UNTIL)

    assert [r["id"] for r in rows] == [1, 2, 3]
    assert [r["email"] for r in rows] == ["user1@shop.test", "user2@shop.test", "user3@shop.test"]
    assert {r["password_hash"] for r in rows} == {"h"}
    assert all(r["name"].count(" ") == 1 for r in rows)
    signed_up = [r["created_at"] for r in rows]
    assert signed_up == sorted(signed_up)
    assert all(UNTIL - 2 * YEAR <= t < UNTIL - YEAR for t in signed_up)


def test_products_have_skus_categories_prices_and_stock() -> None:
    products, stock = plan_products(random.Random(1), 1000)

    assert [p["id"] for p in products] == list(range(1, 1001))
    assert products[0]["sku"] == "SKU-000001"
    assert products[-1]["sku"] == "SKU-001000"
    assert {p["category"] for p in products} == set(CATEGORIES)
    prices = [p["price_cents"] for p in products]
    assert all(199 <= price <= 99_999 and price % 100 == 99 for price in prices)
    assert 1_500 <= statistics.median(prices) <= 4_000  # lognormal: most are cheap...
    assert max(prices) >= 10 * statistics.median(prices)  # ...and a few are dear
    assert stock == [{"product_id": n, "on_hand": ON_HAND, "reserved": 0} for n in range(1, 1001)]


def test_orders_are_numbered_complete_and_add_up() -> None:
    orders, items = orders_for()

    assert [o["id"] for o in orders] == list(range(1, 2001))
    assert [i["id"] for i in items] == list(range(1, len(items) + 1))
    lines: dict[int, list[dict[str, Any]]] = {}
    for item in items:
        lines.setdefault(item["order_id"], []).append(item)
    for order in orders:
        own = lines[order["id"]]
        assert 1 <= len(own) <= 5
        products = [i["product_id"] for i in own]
        assert products == sorted(set(products))  # distinct, in product order
        assert order["total_cents"] == sum(i["price_cents"] * i["quantity"] for i in own)
        assert order["status"] == "confirmed"
        assert order["charge_id"] == f"ch_seed_{order['id']}"
        assert order["idempotency_key"] is None
        assert 1 <= order["user_id"] <= 100
    assert all(1 <= i["quantity"] <= MAX_QUANTITY for i in items)
    assert all(1 <= i["product_id"] <= 50 for i in items)


def test_order_lines_are_at_the_product_price() -> None:
    rng = random.Random(3)
    products, _ = plan_products(rng, 10)
    prices = [p["price_cents"] for p in products]
    pairs = plan_orders(rng, users=5, prices=prices, count=200, until=UNTIL)

    for _, items in pairs:
        for item in items:
            assert item["price_cents"] == prices[item["product_id"] - 1]


def test_orders_spread_over_the_year_before_until_in_id_order() -> None:
    orders, _ = orders_for()
    times = [o["created_at"] for o in orders]

    assert times == sorted(times)
    assert UNTIL - YEAR <= times[0] < UNTIL - YEAR + timedelta(days=30)
    assert UNTIL - timedelta(days=30) < times[-1] < UNTIL
    assert all(t.microsecond == 0 for t in times)


def test_the_same_seed_plans_the_same_rows() -> None:
    assert orders_for(5) == orders_for(5)
    assert orders_for(5) != orders_for(6)


def test_buyers_and_products_are_skewed() -> None:
    orders, items = orders_for(count=5000)

    per_user = sorted(Counter(o["user_id"] for o in orders).values(), reverse=True)
    assert sum(per_user[:10]) / len(orders) > 0.3  # the top 10% of 100 buyers; uniform: 0.1
    sold = Counter[int]()
    for item in items:
        sold[item["product_id"]] += item["quantity"]
    units = [sold[n] for n in range(1, 51)]
    assert max(units) >= 5 * statistics.median(units)


def test_popularity_is_shuffled_over_the_ids() -> None:
    # The heaviest buyer and the best seller are not simply id 1 (as an unshuffled rank would be).
    firsts = set()
    for rng_seed in range(5):
        orders, items = orders_for(rng_seed)
        top_user = Counter(o["user_id"] for o in orders).most_common(1)[0][0]
        top_product = Counter(i["product_id"] for i in items).most_common(1)[0][0]
        firsts.add((top_user, top_product))
    assert len(firsts) > 1


def test_orders_are_built_lazily_but_drawn_at_once() -> None:
    rng = random.Random(9)
    pairs = plan_orders(rng, users=10, prices=[100] * 5, count=50, until=UNTIL)
    after_planning = rng.random()  # draws made after the call do not change the orders

    rng_again = random.Random(9)
    again = list(plan_orders(rng_again, users=10, prices=[100] * 5, count=50, until=UNTIL))

    assert list(pairs) == again
    assert rng_again.random() == after_planning


@settings(max_examples=50, deadline=None)
@given(
    users=st.integers(1, 30),
    products=st.integers(1, 30),
    count=st.integers(0, 60),
    seed_=st.integers(0, 2**32),
)
def test_any_plan_keeps_its_invariants(users: int, products: int, count: int, seed_: int) -> None:
    orders, items = orders_for(seed_, users=users, products=products, count=count)

    assert len(orders) == count
    assert count <= len(items) <= 5 * count
    assert {o["user_id"] for o in orders} <= set(range(1, users + 1))
    assert {i["product_id"] for i in items} <= set(range(1, products + 1))
    assert {i["order_id"] for i in items} == {o["id"] for o in orders}


@pytest.mark.parametrize(
    ("argument", "value"),
    [("users", 0), ("products", 0), ("orders", -1), ("batch", 0)],
)
async def test_seed_names_a_bad_argument(argument: str, value: int) -> None:
    engine = create_async_engine("sqlite+aiosqlite://")  # never connected: checked first
    try:
        with pytest.raises(ValueError, match=rf"^{argument} must be >= \d+, got {value}$"):
            await seed(engine, **{argument: value})
    finally:
        await engine.dispose()
