"""The event worker's database effects, and the rows that make each of them happen once.

A consumer claims ``(consumer, event_id)`` in ``processed_events`` in the same transaction as its
effect: a redelivered event finds its claim taken and changes nothing. On PostgreSQL a second
worker holding the same event waits on the first one's row, then finds it taken.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from shop.adapters.orm import order_emails, processed_events, product_sales

__all__ = ["Counter", "EffectsRepository"]

Counter = Literal["reserved", "sold", "released"]
"""An inventory counter of ``product_sales``."""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class EffectsRepository:
    """Processed events, inventory counters and confirmation emails of one database."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def _insert(self, table: Table) -> Any:
        # INSERT ... ON CONFLICT: a dialect's own construct (PostgreSQL and SQLite both have it).
        name = self._session.get_bind().dialect.name
        if name == "postgresql":
            return postgresql.insert(table)
        if name == "sqlite":
            return sqlite.insert(table)
        raise NotImplementedError(f"no upsert for the {name} dialect")

    async def claim(self, consumer: str, event_id: str) -> bool:
        """True when ``consumer`` has not yet processed ``event_id`` (it now has, if the
        transaction commits); False when it had."""
        statement = (
            self._insert(processed_events)
            .values(consumer=consumer, event_id=event_id, processed_at=_now())
            .on_conflict_do_nothing()
        )
        result: Any = await self._session.execute(statement)
        return bool(result.rowcount)

    async def count(self, counter: Counter, units: Mapping[int, int]) -> None:
        """Add ``units`` (product id to units) to ``counter``."""
        for product_id, quantity in sorted(units.items()):  # one lock order: no deadlocks
            row = {"product_id": product_id, "reserved": 0, "sold": 0, "released": 0}
            row[counter] = quantity
            insert = self._insert(product_sales).values(**row)
            column = product_sales.c[counter]
            await self._session.execute(
                insert.on_conflict_do_update(
                    index_elements=[product_sales.c.product_id],
                    set_={counter: column + insert.excluded[counter]},
                )
            )

    async def counters(self, product_ids: Iterable[int] | None = None) -> dict[int, dict[str, int]]:
        """Product id to its counters (every product with one when ``product_ids`` is None)."""
        query = select(product_sales)
        if product_ids is not None:
            query = query.where(product_sales.c.product_id.in_(list(product_ids)))
        rows = (await self._session.execute(query)).all()
        return {
            r.product_id: {"reserved": r.reserved, "sold": r.sold, "released": r.released}
            for r in rows
        }

    async def write_email(self, order_id: int, user_id: int, subject: str, body: str) -> None:
        """Write an order's confirmation email (once: a second write of the order changes
        nothing)."""
        await self._session.execute(
            self._insert(order_emails)
            .values(
                order_id=order_id, user_id=user_id, subject=subject, body=body, created_at=_now()
            )
            .on_conflict_do_nothing()
        )

    async def emails(self, order_ids: Iterable[int] | None = None) -> dict[int, str]:
        """Order id to its email's subject."""
        query = select(order_emails.c.order_id, order_emails.c.subject)
        if order_ids is not None:
            query = query.where(order_emails.c.order_id.in_(list(order_ids)))
        return {r.order_id: r.subject for r in (await self._session.execute(query)).all()}

    async def processed(self, consumer: str) -> int:
        """Events ``consumer`` has processed."""
        query = (
            select(func.count())
            .select_from(processed_events)
            .where(processed_events.c.consumer == consumer)
        )
        return int((await self._session.execute(query)).scalar_one())
