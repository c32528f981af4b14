"""The guide's N+1 example on real PostgreSQL: orders, then one customer query per order, is
flagged; ``selectinload`` (2 statements) and ``joinedload`` (1 statement) are not; nor is a
bulk insert, which SQLAlchemy sends in ``insertmanyvalues`` batches of one execution.

Each test builds the example in its own schema (``tg_nplus1_<hex>``, first on the search path),
dropped afterwards.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import ForeignKey, String, select, text
from sqlalchemy.ext.asyncio import AsyncAttrs, AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    joinedload,
    mapped_column,
    relationship,
    selectinload,
)

from tailguard.observe.pytest_plugin import QueryCounterFactory
from tailguard.observe.queries import NPlusOneDetected, QueryCounter, QueryStats


class Base(AsyncAttrs, DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    total_cents: Mapped[int]
    customer: Mapped[Customer] = relationship()


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)  # SERIAL: ids come back by RETURNING
    name: Mapped[str] = mapped_column(String(30))


Rows = list[tuple[int, str]]
ListOrders = Callable[[AsyncSession], Awaitable[Rows]]


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The example's tables in a fresh schema: 10 customers, 50 orders (5 each)."""
    schema = f"tg_nplus1_{uuid.uuid4().hex}"
    # search_path rather than schema_translate_map, so statements read as in the guide
    engine = create_async_engine(
        database_url, connect_args={"server_settings": {"search_path": schema}}
    )
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            await conn.run_sync(Base.metadata.create_all)
        async with AsyncSession(engine) as session:
            session.add_all(Customer(id=i, name=f"customer {i}") for i in range(1, 11))
            await session.flush()
            session.add_all(
                Order(id=i, customer_id=i % 10 + 1, total_cents=100 * i) for i in range(1, 51)
            )
            await session.commit()
        yield engine
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await engine.dispose()


async def naive(session: AsyncSession) -> Rows:
    """The guide's bug: the orders, then one customer query per order."""
    orders = (await session.scalars(select(Order).order_by(Order.id))).all()
    rows = []
    for order in orders:
        query = select(Customer).where(Customer.id == order.customer_id)
        customer = (await session.execute(query)).scalar_one()
        rows.append((order.id, customer.name))
    return rows


async def lazy(session: AsyncSession) -> Rows:
    """The ORM twin of the bug: a lazy load per order (the identity map spares repeats)."""
    orders = (await session.scalars(select(Order).order_by(Order.id))).all()
    return [(order.id, (await order.awaitable_attrs.customer).name) for order in orders]


async def selectin(session: AsyncSession) -> Rows:
    query = select(Order).options(selectinload(Order.customer)).order_by(Order.id)
    return [(order.id, order.customer.name) for order in (await session.scalars(query)).all()]


async def joined(session: AsyncSession) -> Rows:
    query = select(Order).options(joinedload(Order.customer)).order_by(Order.id)
    return [(order.id, order.customer.name) for order in (await session.scalars(query)).all()]


EXPECTED: Rows = [(i, f"customer {i % 10 + 1}") for i in range(1, 51)]


async def serve(engine: AsyncEngine, counter: QueryCounter, list_orders: ListOrders) -> QueryStats:
    """One request: a scope around a session that lists the orders with their customers."""
    async with counter.scope("GET /orders") as stats, AsyncSession(engine) as session:
        assert await list_orders(session) == EXPECTED
    return stats


async def test_naive_loop_is_flagged(engine: AsyncEngine, caplog: pytest.LogCaptureFixture) -> None:
    with QueryCounter(engine) as counter, caplog.at_level(logging.WARNING):
        stats = await serve(engine, counter, naive)
    assert stats.count == 51
    [finding] = stats.n_plus_one
    assert (finding.count, finding.distinct, finding.scope) == (50, 10, "GET /orders")
    assert finding.shape == (
        "SELECT customers.id, customers.name FROM customers WHERE customers.id = ?::INTEGER"
    )
    [record] = caplog.records
    assert record.name == "tailguard.observe.queries"
    assert "N+1 queries in 'GET /orders': 50 x SELECT" in record.getMessage()

    with (
        QueryCounter(engine, on_n_plus_one="raise") as counter,
        pytest.raises(NPlusOneDetected, match="50 x SELECT"),
    ):
        await serve(engine, counter, naive)


async def test_lazy_loading_is_flagged(engine: AsyncEngine) -> None:
    with QueryCounter(engine, on_n_plus_one="ignore") as counter:
        stats = await serve(engine, counter, lazy)
    assert stats.count == 11
    [finding] = stats.n_plus_one
    assert (finding.count, finding.distinct) == (10, 10)


async def test_selectinload_takes_two_statements(
    engine: AsyncEngine,
    query_counter: QueryCounterFactory,
) -> None:
    counter = query_counter(engine)  # the whole test fails on any N+1
    stats = await serve(engine, counter, selectin)
    assert stats.count == 2
    assert stats.n_plus_one == []
    in_list = "SELECT customers.id, customers.name FROM customers WHERE customers.id IN (...)"
    assert stats.by_shape[in_list].count == 1


async def test_joinedload_takes_one_statement(
    engine: AsyncEngine,
    query_counter: QueryCounterFactory,
) -> None:
    counter = query_counter(engine)
    stats = await serve(engine, counter, joined)
    assert stats.count == 1
    assert stats.n_plus_one == []
    assert counter.total == 1


async def test_bulk_insert_is_one_execution(
    engine: AsyncEngine, query_counter: QueryCounterFactory
) -> None:
    """5,000 rows in one flush: asyncpg gets 5 insertmanyvalues batches of 1,000 rows, all of
    one execution, so one statement and no finding, even counting writes."""
    counter = query_counter(engine, statements="all")
    async with counter.scope("bulk import") as stats, AsyncSession(engine) as session:
        session.add_all(Item(name=f"item {i}") for i in range(5000))
        await session.commit()
    [insert] = [stats.by_shape[s] for s in stats.by_shape if s.startswith("INSERT INTO items")]
    assert (insert.count, stats.count, stats.n_plus_one) == (1, 1, [])
    async with AsyncSession(engine) as session:
        assert len((await session.scalars(select(Item.id))).all()) == 5000
