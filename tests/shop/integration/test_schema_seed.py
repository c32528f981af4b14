"""Migrations and seeding on real databases: a SQLite file in tmp_path, and throwaway
PostgreSQL databases ``shop_test_<hex>`` made on the ``database_url`` server (dropped after).

The schema Alembic builds must be ``orm.metadata`` exactly (tables, columns and their types,
keys, constraint and index names), and the seed must be deterministic, skewed, and safe.
"""

from __future__ import annotations

import asyncio
import hashlib
import statistics
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData, func, insert, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from shop.adapters import orm
from shop.adapters.db import create_engine
from shop.adapters.passwords import DEMO_PASSWORD, verify_password
from shop.adapters.schema import current_revision, head_revision, is_empty, migrate
from shop.adapters.seed import ON_HAND, SeedError, seed
from shop.config import load_settings

UNTIL = datetime(2026, 6, 1)
SMALL = {"users": 50, "products": 20, "orders": 500, "until": UNTIL}


class NewEngine(Protocol):
    def __call__(self, same_as: AsyncEngine | None = None) -> Awaitable[AsyncEngine]: ...


@asynccontextmanager
async def databases(tmp_path: Path, postgres_url: str | None) -> AsyncIterator[NewEngine]:
    """Makes engines on fresh, empty databases: SQLite files in ``tmp_path``, or PostgreSQL
    databases on ``postgres_url``'s server (``same_as``: another engine on that one's)."""
    engines: list[AsyncEngine] = []
    created: list[str] = []
    admin = None
    if postgres_url is not None:
        admin = create_async_engine(postgres_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)

    async def make(same_as: AsyncEngine | None = None) -> AsyncEngine:
        if same_as is not None:
            url = same_as.url.render_as_string(hide_password=False)
        elif admin is None:
            url = f"sqlite+aiosqlite:///{tmp_path / f'shop{len(engines)}.db'}"
        else:
            name = f"shop_test_{uuid.uuid4().hex[:16]}"
            async with admin.connect() as connection:
                await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
            created.append(name)
            url = admin.url.set(database=name).render_as_string(hide_password=False)
        engine = create_engine(load_settings(database_url=url, data_dir=tmp_path, pool_size=2))
        engines.append(engine)
        return engine

    try:
        yield make
    finally:
        for engine in engines:
            await engine.dispose()
        if admin is not None:
            async with admin.connect() as connection:
                for name in created:
                    await connection.exec_driver_sql(
                        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
                    )
            await admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def new_engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[NewEngine]:
    """:func:`databases` on each backend."""
    url = request.getfixturevalue("database_url") if request.param == "postgres" else None
    async with databases(tmp_path, url) as make:
        yield make


async def migrated(new_engine: NewEngine) -> AsyncEngine:
    engine = await new_engine()
    await migrate(engine)
    return engine


# -- what a schema looks like, from the database or from the models ---------------------------


def _family(type_: Any) -> str:
    """The generic kind of a column type (JSON before String: SQLite's JSON is no String)."""
    for family in (sa.JSON, sa.DateTime, sa.Integer, sa.String):
        if isinstance(type_, family):
            return family.__name__
    return type(type_).__name__


def _describe(columns: list[dict[str, Any]], dialect: Any) -> dict[str, tuple[str, str, bool]]:
    return {
        c["name"]: (_family(c["type"]), c["type"].compile(dialect=dialect), c["nullable"])
        for c in columns
    }


def _reflected(connection: Connection) -> dict[str, dict[str, Any]]:
    inspector = inspect(connection)
    tables: dict[str, dict[str, Any]] = {}
    for name in inspector.get_table_names():
        if name == "alembic_version":
            continue
        pk = inspector.get_pk_constraint(name)
        tables[name] = {
            "columns": _describe(inspector.get_columns(name), connection.dialect),
            "pk": (pk["name"], tuple(pk["constrained_columns"])),
            "indexes": {
                i["name"]: tuple(i["column_names"])
                for i in inspector.get_indexes(name)
                if not i.get("duplicates_constraint")  # PostgreSQL's index behind a UNIQUE
            },
            "uniques": {
                u["name"]: tuple(u["column_names"]) for u in inspector.get_unique_constraints(name)
            },
            "fks": {
                fk["name"]: (
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                    (fk.get("options") or {}).get("ondelete"),
                )
                for fk in inspector.get_foreign_keys(name)
            },
        }
    return tables


def _expected(metadata: MetaData, dialect: Any) -> dict[str, dict[str, Any]]:
    tables: dict[str, dict[str, Any]] = {}
    for table in metadata.sorted_tables:
        columns = [{"name": c.name, "type": c.type, "nullable": c.nullable} for c in table.c]
        tables[table.name] = {
            "columns": _describe(columns, dialect),
            "pk": (table.primary_key.name, tuple(c.name for c in table.primary_key.columns)),
            "indexes": {i.name: tuple(c.name for c in i.columns) for i in table.indexes},
            "uniques": {
                u.name: tuple(c.name for c in u.columns)
                for u in table.constraints
                if isinstance(u, sa.UniqueConstraint)
            },
            "fks": {
                fk.name: (
                    tuple(c.name for c in fk.columns),
                    fk.referred_table.name,
                    tuple(e.column.name for e in fk.elements),
                    fk.ondelete,
                )
                for fk in table.foreign_key_constraints
            },
        }
    return tables


async def _schema(engine: AsyncEngine) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    """(reflected, expected from orm.metadata, alembic's diff of the two)."""

    def read(connection: Connection) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, orm.metadata)
        return _reflected(connection), _expected(orm.metadata, connection.dialect), diff

    async with engine.connect() as connection:
        return await connection.run_sync(read)


async def checksum(engine: AsyncEngine) -> str:
    """SHA-256 of every row of every shop table in key order, but ``password_hash`` (salted)."""
    digest = hashlib.sha256()
    async with engine.connect() as connection:
        for table in orm.metadata.sorted_tables:
            columns = [c for c in table.c if c.name != "password_hash"]
            rows = await connection.execute(select(*columns).order_by(*table.primary_key))
            digest.update(table.name.encode())
            for row in rows:
                digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


async def count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(table)) or 0)


# -- migrations --------------------------------------------------------------------------------


async def test_migrate_builds_exactly_the_orm_schema(new_engine: NewEngine) -> None:
    engine = await new_engine()
    assert await current_revision(engine) is None
    assert await is_empty(engine)

    revision = await migrate(engine)

    assert revision == head_revision() == await current_revision(engine)
    reflected, expected, diff = await _schema(engine)
    assert sorted(reflected) == sorted(orm.metadata.tables)
    for name, table in expected.items():
        assert reflected[name] == table, name
    assert diff == []
    assert await is_empty(engine)


async def test_migrate_twice_is_a_noop(new_engine: NewEngine) -> None:
    engine = await migrated(new_engine)
    before = await _schema(engine)

    assert await migrate(engine) == head_revision()

    assert await _schema(engine) == before
    async with engine.connect() as connection:
        versions = (await connection.execute(text("SELECT version_num FROM alembic_version"))).all()
    assert [tuple(v) for v in versions] == [(head_revision(),)]


async def test_instances_migrating_together_migrate_once(new_engine: NewEngine) -> None:
    first = await new_engine()
    second = await new_engine(same_as=first)

    revisions = await asyncio.gather(migrate(first), migrate(second))

    assert revisions == [head_revision()] * 2
    assert (await _schema(first))[2] == []


async def test_migrations_of_several_databases_at_once_do_not_mix(new_engine: NewEngine) -> None:
    # Alembic's running command is process-global: interleaved upgrades must queue.
    engines = [await new_engine() for _ in range(3)]

    revisions = await asyncio.gather(*(migrate(engine) for engine in engines))

    assert revisions == [head_revision()] * 3
    for engine in engines:
        assert await current_revision(engine) == head_revision()
        assert (await _schema(engine))[2] == []


async def test_a_failed_migration_leaves_nothing_behind(new_engine: NewEngine) -> None:
    engine = await new_engine()
    async with engine.begin() as connection:  # a stray table the migration will collide with
        await connection.exec_driver_sql("CREATE TABLE order_items (x INTEGER)")

    with pytest.raises(Exception, match="order_items"):
        await migrate(engine)

    assert await current_revision(engine) is None
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    assert names == ["order_items"]


# -- seeding -----------------------------------------------------------------------------------


async def test_seed_writes_what_it_reports(new_engine: NewEngine) -> None:
    engine = await migrated(new_engine)

    report = await seed(engine, **SMALL)

    assert (report.users, report.products, report.orders) == (50, 20, 500)
    assert report.elapsed > 0
    assert not await is_empty(engine)
    assert await count(engine, orm.users) == 50
    assert await count(engine, orm.products) == 20
    assert await count(engine, orm.inventory) == 20
    assert await count(engine, orm.orders) == 500
    assert await count(engine, orm.order_items) == report.order_items
    assert 500 <= report.order_items <= 5 * 500
    async with engine.connect() as connection:
        first = (await connection.execute(select(orm.users).where(orm.users.c.id == 1))).one()
        hashes = (await connection.execute(select(orm.users.c.password_hash).distinct())).all()
        stock = (
            await connection.execute(select(orm.inventory.c.on_hand, orm.inventory.c.reserved))
        ).all()
        wrong_totals = await connection.scalar(
            select(func.count())
            .select_from(orm.orders)
            .where(
                orm.orders.c.total_cents
                != select(func.sum(orm.order_items.c.price_cents * orm.order_items.c.quantity))
                .where(orm.order_items.c.order_id == orm.orders.c.id)
                .scalar_subquery()
            )
        )
        orders = (await connection.execute(select(orm.orders).order_by(orm.orders.c.id))).all()
    assert first.email == "user1@shop.test"
    assert verify_password(first.password_hash, DEMO_PASSWORD)
    assert len(hashes) == 1
    assert set(stock) == {(ON_HAND, 0)}
    assert wrong_totals == 0
    assert {o.status for o in orders} == {"confirmed"}
    assert all(o.charge_id == f"ch_seed_{o.id}" and o.idempotency_key is None for o in orders)
    times = [o.created_at for o in orders]
    assert times == sorted(times)
    assert UNTIL - timedelta(days=365) <= times[0]
    assert times[-1] < UNTIL


async def test_seed_is_deterministic(new_engine: NewEngine) -> None:
    one, two, other = (
        await migrated(new_engine),
        await migrated(new_engine),
        await migrated(new_engine),
    )

    await seed(one, **SMALL, seed=7)
    await seed(two, **SMALL, seed=7, batch=33)  # batching does not change the rows
    await seed(other, **SMALL, seed=8)

    assert await checksum(one) == await checksum(two)
    assert await checksum(one) != await checksum(other)


@pytest.mark.postgres
async def test_sqlite_and_postgres_get_the_same_rows(database_url: str, tmp_path: Path) -> None:
    sums = []
    for postgres_url in (None, database_url):
        async with databases(tmp_path, postgres_url) as make:
            engine = await migrated(make)
            await seed(engine, **SMALL)
            sums.append(await checksum(engine))
    assert sums[0] == sums[1]


async def test_orders_are_skewed_like_real_ones(new_engine: NewEngine) -> None:
    engine = await migrated(new_engine)
    await seed(engine, **SMALL)

    async with engine.connect() as connection:
        per_user = (
            await connection.execute(
                select(func.count()).select_from(orm.orders).group_by(orm.orders.c.user_id)
            )
        ).scalars()
        sold = dict(
            (
                await connection.execute(
                    select(
                        orm.order_items.c.product_id, func.sum(orm.order_items.c.quantity)
                    ).group_by(orm.order_items.c.product_id)
                )
            ).all()
        )
        counts = sorted(per_user, reverse=True)
    top_tenth = counts[: 50 // 10]
    assert sum(top_tenth) / 500 > 0.25  # uniform buyers would give 0.10
    units = [int(sold.get(product_id, 0)) for product_id in range(1, 21)]
    assert max(units) >= 3 * statistics.median(units)


async def test_inserts_after_seeding_get_fresh_ids(new_engine: NewEngine) -> None:
    engine = await migrated(new_engine)
    report = await seed(engine, **SMALL)

    async with engine.begin() as connection:
        user_id = await connection.scalar(
            insert(orm.users)
            .values(email="new@shop.test", name="New", password_hash="x", created_at=UNTIL)
            .returning(orm.users.c.id)
        )
        product_id = await connection.scalar(
            insert(orm.products)
            .values(sku="NEW", name="New", category="books", price_cents=1, description="")
            .returning(orm.products.c.id)
        )
        order_id = await connection.scalar(
            insert(orm.orders)
            .values(user_id=user_id, status="pending", total_cents=1, created_at=UNTIL)
            .returning(orm.orders.c.id)
        )
        item_id = await connection.scalar(
            insert(orm.order_items)
            .values(order_id=order_id, product_id=product_id, quantity=1, price_cents=1)
            .returning(orm.order_items.c.id)
        )

    assert (user_id, product_id, order_id, item_id) == (51, 21, 501, report.order_items + 1)


async def test_seed_refuses_a_database_with_data_and_loses_nothing(
    new_engine: NewEngine,
) -> None:
    engine = await migrated(new_engine)
    await seed(engine, **SMALL)
    before = await checksum(engine)

    with pytest.raises(SeedError, match="database already has 50 users; seed an empty database"):
        await seed(engine, **SMALL, seed=1)

    assert await checksum(engine) == before


async def test_seed_refuses_any_shop_table_with_rows(new_engine: NewEngine) -> None:
    engine = await migrated(new_engine)
    async with engine.begin() as connection:
        await connection.execute(
            insert(orm.products).values(
                id=1, sku="X", name="X", category="books", price_cents=1, description=""
            )
        )

    with pytest.raises(SeedError, match="already has 1 products"):
        await seed(engine, **SMALL)

    assert await count(engine, orm.users) == 0


async def test_seed_with_replace_starts_over(new_engine: NewEngine) -> None:
    engine = await migrated(new_engine)
    await seed(engine, **SMALL)
    fresh = await migrated(new_engine)
    await seed(fresh, users=30, products=10, orders=100, seed=3, until=UNTIL)

    report = await seed(
        engine, users=30, products=10, orders=100, seed=3, until=UNTIL, replace=True
    )

    assert (report.users, report.products, report.orders) == (30, 10, 100)
    assert await checksum(engine) == await checksum(fresh)


async def test_seed_needs_the_schema(new_engine: NewEngine) -> None:
    engine = await new_engine()

    with pytest.raises(SeedError, match="no shop schema"):
        await seed(engine, **SMALL)


async def test_seed_with_no_orders(new_engine: NewEngine) -> None:
    engine = await migrated(new_engine)

    report = await seed(engine, users=1, products=1, orders=0, until=UNTIL)

    assert (report.orders, report.order_items) == (0, 0)
    assert await count(engine, orm.users) == 1
