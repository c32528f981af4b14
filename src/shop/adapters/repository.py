"""Repositories over one SQLAlchemy ``AsyncSession``: the only place the shop writes SQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from shop.adapters.orm import (
    idempotency,
    inventory,
    order_items,
    orders,
    product_sales,
    products,
    users,
)
from shop.domain.model import Inventory, Order, OrderItem, OrderStatus, Product, User

__all__ = ["IdempotencyRepository", "OrderRepository", "ProductRepository", "UserRepository"]

T = TypeVar("T")


class _Tracking:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.seen: set[Any] = set()

    def _track(self, obj: T) -> T:
        if obj is not None:
            self.seen.add(obj)
        return obj


class UserRepository(_Tracking):
    """Users by id or email."""

    async def get(self, user_id: int) -> User | None:
        """The user, or None."""
        return self._track(await self.session.get(User, user_id))

    async def by_email(self, email: str) -> User | None:
        """The user with this email (case-insensitive), or None."""
        result = await self.session.execute(select(User).where(users.c.email == email.lower()))
        return self._track(result.scalar_one_or_none())

    def add(self, user: User) -> None:
        """Stage a new user."""
        self.session.add(self._track(user))


class ProductRepository(_Tracking):
    """The catalogue and its stock."""

    async def get(self, product_id: int) -> Product | None:
        """The product, or None."""
        return self._track(await self.session.get(Product, product_id))

    async def page(self, *, category: str | None, after: int, limit: int) -> list[Product]:
        """Up to ``limit`` products with id > ``after``, in id order (keyset pagination)."""
        query = select(Product).where(products.c.id > after)
        if category is not None:
            query = query.where(products.c.category == category)
        result = await self.session.execute(query.order_by(products.c.id).limit(limit))
        return list(result.scalars())

    async def page_by_ids(self, product_ids: Sequence[int]) -> list[Product]:
        """The products of ``product_ids`` that exist, in one query (any order)."""
        if not product_ids:
            return []
        result = await self.session.execute(
            select(Product).where(products.c.id.in_(list(product_ids)))
        )
        return list(result.scalars())

    async def prices(self, product_ids: Sequence[int]) -> dict[int, int]:
        """Product id to price in cents, for the ids that exist."""
        if not product_ids:
            return {}
        result = await self.session.execute(
            select(products.c.id, products.c.price_cents).where(products.c.id.in_(product_ids))
        )
        return {row.id: row.price_cents for row in result}

    async def popular(self, limit: int) -> list[int]:
        """The ids of the best-selling products (units sold, as the event worker counts them
        in ``product_sales``; the seed counts its orders), most sold first. One table in the
        primary database, however the orders are sharded."""
        result = await self.session.execute(
            select(product_sales.c.product_id)
            .where(product_sales.c.sold > 0)
            .order_by(product_sales.c.sold.desc(), product_sales.c.product_id)
            .limit(limit)
        )
        return [row[0] for row in result]

    async def stock(self, product_id: int) -> Inventory | None:
        """The product's stock row, or None."""
        return await self.session.get(Inventory, product_id)

    async def reserve(self, lines: Mapping[int, int]) -> dict[int, int]:
        """Reserve ``lines`` (product id to units) atomically per row; returns the shortfalls
        (product id to units missing), empty when everything was reserved.

        Each row changes only if enough is available (one conditional UPDATE, so two concurrent
        orders cannot both take the last unit); on a shortfall the caller rolls back.
        """
        shortfalls: dict[int, int] = {}
        for product_id, quantity in sorted(lines.items()):  # one lock order: no deadlocks
            result = await self.session.execute(
                update(inventory)
                .where(inventory.c.product_id == product_id)
                .where(inventory.c.on_hand - inventory.c.reserved >= quantity)
                .values(reserved=inventory.c.reserved + quantity)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                row = await self.session.execute(
                    select(inventory.c.on_hand - inventory.c.reserved).where(
                        inventory.c.product_id == product_id
                    )
                )
                available = row.scalar_one_or_none() or 0
                shortfalls[product_id] = quantity - max(available, 0)
        return shortfalls

    async def release(self, lines: Mapping[int, int]) -> None:
        """Give back reserved units (an order that will not be charged)."""
        for product_id, quantity in sorted(lines.items()):
            await self.session.execute(
                update(inventory)
                .where(inventory.c.product_id == product_id)
                .values(reserved=inventory.c.reserved - quantity)
            )

    async def commit_stock(self, lines: Mapping[int, int]) -> None:
        """Turn reserved units into sold ones (a confirmed order)."""
        for product_id, quantity in sorted(lines.items()):
            await self.session.execute(
                update(inventory)
                .where(inventory.c.product_id == product_id)
                .values(
                    reserved=inventory.c.reserved - quantity,
                    on_hand=inventory.c.on_hand - quantity,
                )
            )


class OrderRepository(_Tracking):
    """Orders with their items."""

    async def get(self, order_id: int) -> Order | None:
        """The order with its items, or None."""
        result = await self.session.execute(
            select(Order)
            .where(orders.c.id == order_id)
            .options(selectinload(Order.items).joinedload(OrderItem.product))  # type: ignore[arg-type]
        )
        return self._track(result.scalar_one_or_none())

    async def by_key(self, user_id: int, key: str) -> Order | None:
        """The user's order placed with this Idempotency-Key, or None."""
        result = await self.session.execute(
            select(Order)
            .where(orders.c.user_id == user_id, orders.c.idempotency_key == key)
            .options(selectinload(Order.items).joinedload(OrderItem.product))  # type: ignore[arg-type]
        )
        return self._track(result.scalar_one_or_none())

    def add(self, order: Order) -> None:
        """Stage a new order and its items."""
        self.session.add(self._track(order))

    async def remove(self, order: Order) -> None:
        """Delete an order that was never charged, with its items."""
        await self.session.execute(delete(order_items).where(order_items.c.order_id == order.id))
        await self.session.execute(delete(orders).where(orders.c.id == order.id))

    async def for_user(
        self, user_id: int, *, before: int | None, limit: int, eager: bool
    ) -> list[Order]:
        """The user's confirmed orders with id < ``before``, newest first, items and products
        loaded.

        ``eager``: two queries whatever the page size (orders, then items joined to their
        products). Not eager, the naive twin: the ORM's lazy loads, one query per order for
        its items and one per product not yet loaded (N+1).
        """
        query = (
            select(Order)
            .where(orders.c.user_id == user_id, orders.c.status == OrderStatus.CONFIRMED.value)
            .order_by(orders.c.id.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(orders.c.id < before)
        if eager:
            query = query.options(
                selectinload(Order.items).joinedload(OrderItem.product)  # type: ignore[arg-type]
            )
        result = await self.session.execute(query)
        found = list(result.scalars())
        if not eager:
            await self.session.run_sync(_touch_items, found)
        return found

    async def daily(self, since: datetime) -> list[tuple[str, int, int]]:
        """Confirmed orders per day since ``since`` (naive UTC): (ISO day, orders, revenue in
        cents), oldest first."""
        day = func.date(orders.c.created_at)
        result = await self.session.execute(
            select(day, func.count(), func.sum(orders.c.total_cents))
            .where(orders.c.status == OrderStatus.CONFIRMED.value, orders.c.created_at >= since)
            .group_by(day)
            .order_by(day)
        )
        return [(str(d), int(n), int(total or 0)) for d, n, total in result]

    async def recent_count(self, user_id: int) -> int:
        """How many confirmed orders the user has."""
        result = await self.session.execute(
            select(func.count())
            .select_from(orders)
            .where(orders.c.user_id == user_id, orders.c.status == OrderStatus.CONFIRMED.value)
        )
        return int(result.scalar_one())


def _touch_items(_session: Any, found: list[Order]) -> None:
    # Runs in the sync greenlet, where attribute access may emit SQL: the lazy loads.
    for order in found:
        for item in order.items:
            _ = item.product


class IdempotencyRepository:
    """The first final answer to each (user, Idempotency-Key)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: int, key: str) -> tuple[int, dict[str, Any]] | None:
        """(status code, body) of the first answer, or None."""
        result = await self.session.execute(
            select(idempotency.c.status_code, idempotency.c.body).where(
                idempotency.c.user_id == user_id, idempotency.c.key == key
            )
        )
        row = result.one_or_none()
        return None if row is None else (int(row.status_code), dict(row.body))

    async def save(self, user_id: int, key: str, status_code: int, body: dict[str, Any]) -> None:
        """Record the answer (the caller commits)."""
        await self.session.execute(
            insert(idempotency).values(
                user_id=user_id,
                key=key,
                status_code=status_code,
                body=body,
                created_at=datetime.now(UTC).replace(tzinfo=None),
            )
        )
