"""Demo data for the shop: users, a catalogue with stock, and a year of skewed orders.

The rows are planned by pure functions over one ``random.Random(seed)`` (:func:`plan_users`,
:func:`plan_products`, :func:`plan_orders`), so a seed always gives the same rows, and written
by :func:`seed` with Core ``insert(table)`` executemany in batches, in one transaction.
The only column that differs between processes is ``password_hash``: argon2 salts it, and
every user shares the one hash of ``DEMO_PASSWORD``.

The skew is the one a cache and a load test should meet: buyers follow a Zipf law (a few
heavy buyers), products a steeper one (s = 1.1: a few best sellers), popularity ranks are
shuffled over the ids, and order ids follow ``created_at`` as they would in production.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, func, insert, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shop.adapters import orm
from shop.adapters.passwords import demo_hash
from shop.domain.model import OrderStatus

if TYPE_CHECKING:
    from shop.adapters.db import Databases

__all__ = [
    "CATEGORIES",
    "ON_HAND",
    "SeedError",
    "SeedReport",
    "plan_orders",
    "plan_products",
    "plan_users",
    "seed",
    "zipf_cum_weights",
]

Row = dict[str, Any]

CATEGORIES: tuple[str, ...] = (
    "books", "electronics", "home", "garden", "toys",
    "sports", "beauty", "grocery", "fashion", "automotive",
)  # fmt: skip
"""The catalogue's categories, in the order products are drawn from them (uniformly)."""
ON_HAND = 1_000_000
"""Units in stock per product: enough that a load test never runs out."""
PRICE_MIN, PRICE_MAX = 199, 99_999  # cents
PRICE_MEDIAN, PRICE_SIGMA = 2_500, 1.0  # cents, and the spread of log(price)
USER_SKEW = 0.8  # Zipf exponent over buyers: the top 10% place about half the orders
PRODUCT_SKEW = 1.1  # Zipf exponent over products
LINES_CUM = (45, 70, 85, 95, 100)  # cumulative weights of 1..5 distinct products per order
QUANTITY_CUM = (80, 95, 100)  # cumulative weights of 1..3 units per line
HISTORY = timedelta(days=365)  # orders are spread over this span before ``until``

_NOUNS = {
    "books": ("Novel", "Cookbook", "Atlas", "Notebook"),
    "electronics": ("Headphones", "Charger", "Speaker", "Keyboard"),
    "home": ("Lamp", "Kettle", "Blanket", "Mug"),
    "garden": ("Trowel", "Planter", "Hose", "Seed Kit"),
    "toys": ("Puzzle", "Robot", "Kite", "Board Game"),
    "sports": ("Ball", "Yoga Mat", "Bottle", "Racket"),
    "beauty": ("Soap", "Lotion", "Brush", "Perfume"),
    "grocery": ("Coffee", "Tea", "Olive Oil", "Chocolate"),
    "fashion": ("Scarf", "Jacket", "Sneakers", "Hat"),
    "automotive": ("Wiper", "Jump Starter", "Floor Mat", "Tyre Gauge"),
}
_ADJECTIVES = ("Classic", "Compact", "Deluxe", "Eco", "Everyday", "Premium", "Smart", "Travel")
_FIRST = (
    "Ada", "Ben", "Chloe", "Dev", "Elena", "Femi", "Grace", "Hiro",
    "Ines", "Jonas", "Kira", "Liam", "Maya", "Noah", "Olga", "Rosa",
)  # fmt: skip
_LAST = (
    "Adams", "Berg", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Haddad",
    "Jensen", "Kim", "Lopez", "Nowak", "Okafor", "Patel", "Rossi", "Silva",
)  # fmt: skip


class SeedError(Exception):
    """The database cannot be seeded as asked (it has data, or no schema)."""


@dataclass(frozen=True, slots=True)
class SeedReport:
    """What :func:`seed` wrote, and how long it took."""

    users: int
    products: int  # one inventory row each
    orders: int
    order_items: int
    elapsed: float  # seconds, planning and writing


def zipf_cum_weights(n: int, s: float) -> list[float]:
    """Cumulative Zipf weights ``1/k**s`` for ranks ``k = 1..n``, for ``Random.choices``."""
    return list(itertools.accumulate(k**-s for k in range(1, n + 1)))


def _created_at(rng: random.Random, count: int, start: datetime, span: timedelta) -> list[datetime]:
    """``count`` whole-second instants in ``[start, start + span)``, ascending."""
    seconds = int(span.total_seconds())
    offsets = sorted(int(rng.random() * seconds) for _ in range(count))
    return [start + timedelta(seconds=offset) for offset in offsets]


def plan_users(rng: random.Random, count: int, *, password_hash: str, until: datetime) -> list[Row]:
    """Users 1..count: ``user{N}@shop.test``, a made-up name, signed up in the year before the
    orders' (``until - 2 * HISTORY`` to ``until - HISTORY``), in id order."""
    signed_up = _created_at(rng, count, until - 2 * HISTORY, HISTORY)
    return [
        {
            "id": n,
            "email": f"user{n}@shop.test",
            "name": f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
            "password_hash": password_hash,
            "created_at": signed_up[n - 1],
        }
        for n in range(1, count + 1)
    ]


def _price(rng: random.Random) -> int:
    """A lognormal price in cents around PRICE_MEDIAN, ending in 99, within the bounds."""
    raw = int(rng.lognormvariate(math.log(PRICE_MEDIAN), PRICE_SIGMA))
    return max(PRICE_MIN, min(PRICE_MAX, raw // 100 * 100 + 99))


def plan_products(rng: random.Random, count: int) -> tuple[list[Row], list[Row]]:
    """Products 1..count (``SKU-000001``, a category, a lognormal price) and their inventory
    rows (ON_HAND units, none reserved)."""
    products: list[Row] = []
    for n in range(1, count + 1):
        category = rng.choice(CATEGORIES)
        name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS[category])}"
        products.append(
            {
                "id": n,
                "sku": f"SKU-{n:06d}",
                "name": name,
                "category": category,
                "price_cents": _price(rng),
                "description": f"{name}, from the {category} aisle.",
            }
        )
    stock = [{"product_id": n, "on_hand": ON_HAND, "reserved": 0} for n in range(1, count + 1)]
    return products, stock


def plan_orders(
    rng: random.Random, *, users: int, prices: Sequence[int], count: int, until: datetime
) -> Iterator[tuple[Row, list[Row]]]:
    """Orders 1..count with their items (ids 1..), as ``(order, items)`` pairs in id order.

    ``prices[i]`` is product ``i + 1``'s price in cents. Every random draw happens here, before
    the first pair is made: the rows are built lazily (memory stays flat) yet do not depend on
    how the caller batches them. Each order: a Zipf-chosen buyer among ``1..users``, 1-5
    distinct Zipf-chosen products (a product drawn twice adds to its line), 1-3 units a line,
    status confirmed, ``charge_id`` ``ch_seed_{id}``, ``total_cents`` the sum of its lines,
    ``created_at`` in ``[until - HISTORY, until)`` rising with the id.
    """
    buyers = list(range(1, users + 1))
    rng.shuffle(buyers)  # popularity rank -> user id
    catalogue = list(range(1, len(prices) + 1))
    rng.shuffle(catalogue)
    chosen_buyers = rng.choices(buyers, cum_weights=zipf_cum_weights(users, USER_SKEW), k=count)
    lines = rng.choices(range(1, 6), cum_weights=LINES_CUM, k=count)
    draws = sum(lines)
    chosen_products = rng.choices(
        catalogue, cum_weights=zipf_cum_weights(len(prices), PRODUCT_SKEW), k=draws
    )
    quantities = rng.choices(range(1, 4), cum_weights=QUANTITY_CUM, k=draws)
    placed = _created_at(rng, count, until - HISTORY, HISTORY)
    confirmed = OrderStatus.CONFIRMED.value
    return _build_orders(
        chosen_buyers, lines, chosen_products, quantities, placed, prices, confirmed
    )


def _build_orders(
    buyers: list[int],
    lines: list[int],
    products: list[int],
    quantities: list[int],
    placed: list[datetime],
    prices: Sequence[int],
    status: str,
) -> Iterator[tuple[Row, list[Row]]]:
    item_id = 0
    draw = 0
    for index, buyer in enumerate(buyers):
        order_id = index + 1
        basket: dict[int, int] = {}
        for _ in range(lines[index]):
            product_id = products[draw]
            basket[product_id] = basket.get(product_id, 0) + quantities[draw]
            draw += 1
        items: list[Row] = []
        total = 0
        for product_id in sorted(basket):  # as Order.from_cart orders its lines
            item_id += 1
            price = prices[product_id - 1]
            quantity = basket[product_id]
            total += price * quantity
            items.append(
                {
                    "id": item_id,
                    "order_id": order_id,
                    "product_id": product_id,
                    "quantity": quantity,
                    "price_cents": price,
                }
            )
        order = {
            "id": order_id,
            "user_id": buyer,
            "status": status,
            "total_cents": total,
            "idempotency_key": None,
            "charge_id": f"ch_seed_{order_id}",
            "created_at": placed[index],
        }
        yield order, items


def _check(**minimums: tuple[int, int]) -> None:
    for name, (value, least) in minimums.items():
        if value < least:
            raise ValueError(f"{name} must be >= {least}, got {value}")


def _naive_utc(until: datetime | None) -> datetime:
    """``until`` as the naive UTC the DateTime columns hold; default: today's midnight UTC."""
    if until is None:
        return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    if until.tzinfo is not None:
        return until.astimezone(UTC).replace(tzinfo=None)
    return until


async def seed(
    engine: AsyncEngine | Databases,
    *,
    users: int = 1000,
    products: int = 500,
    orders: int = 20000,
    seed: int = 42,
    batch: int = 5000,
    replace: bool = False,
    until: datetime | None = None,
) -> SeedReport:
    """Fill a migrated, empty database with demo data; the same ``seed`` gives the same rows.

    Ids are explicit, from 1 in every table; on PostgreSQL the id sequences are then moved
    past them, so later inserts get fresh ids. ``batch`` is the rows (for orders: the orders,
    with their items) per executemany. ``until`` (naive UTC, or aware) ends the year of orders;
    by default today's midnight UTC, so a seed gives the same rows all day; pass it to get the
    same rows any day. A database with rows in any shop table raises :class:`SeedError`, unless
    ``replace`` is true: then every shop table is emptied first, in the same transaction.

    Given :class:`~shop.adapters.db.Databases` with several shards, each user and their orders
    go to the user's shard, the catalogue and its stock to the primary, and a copy of the
    products (a reference table: the order lines' names and foreign keys) to every shard. The
    sales counters (``product_sales``, which the event worker keeps from then on) are those of
    the seeded orders.
    """
    _check(users=(users, 1), products=(products, 1), orders=(orders, 0), batch=(batch, 1))
    started = time.perf_counter()
    end = _naive_utc(until)
    rng = random.Random(seed)
    user_rows = plan_users(rng, users, password_hash=demo_hash(), until=end)
    product_rows, stock_rows = plan_products(rng, products)
    prices = [row["price_cents"] for row in product_rows]
    planned = plan_orders(rng, users=users, prices=prices, count=orders, until=end)
    primary, shards, shard_of = _targets(engine)
    items = 0
    sold: dict[int, int] = {}
    async with contextlib.AsyncExitStack() as stack:
        main = await stack.enter_async_context(primary.begin())
        conns = [
            main if shard is primary else await stack.enter_async_context(shard.begin())
            for shard in shards
        ]
        distinct = [main] + [c for c in conns if c is not main]
        for connection in distinct:
            await _make_room(connection, replace=replace)
        for index, connection in enumerate(conns):
            mine = [row for row in user_rows if shard_of(row["id"]) == index]
            await _insert(connection, orm.users, mine, batch)
            if connection is not main:
                await _insert(connection, orm.products, product_rows, batch)
        await _insert(main, orm.products, product_rows, batch)
        await _insert(main, orm.inventory, stock_rows, batch)
        while chunk := list(itertools.islice(planned, batch)):
            by_shard: dict[int, tuple[list[Row], list[Row]]] = {}
            for order, order_items in chunk:
                rows = by_shard.setdefault(shard_of(order["user_id"]), ([], []))
                rows[0].append(order)
                rows[1].extend(order_items)
                for item in order_items:
                    sold[item["product_id"]] = sold.get(item["product_id"], 0) + item["quantity"]
            for index, (order_rows, item_rows) in sorted(by_shard.items()):
                await conns[index].execute(insert(orm.orders), order_rows)
                if item_rows:
                    await conns[index].execute(insert(orm.order_items), item_rows)
                items += len(item_rows)
        sales = [
            {"product_id": pid, "reserved": n, "sold": n, "released": 0}
            for pid, n in sorted(sold.items())
        ]
        await _insert(main, orm.product_sales, sales, batch)
        for connection in distinct:
            if connection.dialect.name == "postgresql":
                await _reset_sequences(connection)
    return SeedReport(users, products, orders, items, time.perf_counter() - started)


def _targets(
    engine: AsyncEngine | Databases,
) -> tuple[AsyncEngine, list[AsyncEngine], Callable[[int], int]]:
    if isinstance(engine, AsyncEngine):
        return engine, [engine], lambda _user_id: 0
    return engine.primary, engine.shards, engine.shard_of


async def _insert(connection: AsyncConnection, table: Table, rows: list[Row], batch: int) -> None:
    for start in range(0, len(rows), batch):
        await connection.execute(insert(table), rows[start : start + batch])


async def _make_room(connection: AsyncConnection, *, replace: bool) -> None:
    """Check there is a schema and no data; with ``replace``, delete the data instead."""
    if not await connection.run_sync(lambda sync: inspect(sync).has_table(orm.users.name)):
        raise SeedError(
            "the database has no shop schema; run shop.adapters.schema.migrate(engine) first"
        )
    # Parents first; the shard map is configuration, not data: kept, and no reason to refuse.
    tables = [t for t in orm.metadata.sorted_tables if t is not orm.shard_map]
    if replace:
        if connection.dialect.name == "postgresql":
            names = ", ".join(table.name for table in tables)
            await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
        else:
            for table in reversed(tables):
                await connection.execute(table.delete())
        return
    for table in sorted(tables, key=lambda table: table is not orm.users):  # users first
        count = await connection.scalar(select(func.count()).select_from(table))
        if count:
            raise SeedError(
                f"database already has {count} {table.name}; seed an empty database "
                "(or pass replace=True to delete every row first)"
            )


async def _reset_sequences(connection: AsyncConnection) -> None:
    """Move each id sequence past the explicit ids: the next insert gets ``max(id) + 1``."""
    for table in orm.metadata.sorted_tables:
        column = table.autoincrement_column
        if column is None:
            continue
        await connection.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                f"coalesce(max({column.name}), 0) + 1, false) FROM {table.name}"
            )
        )
