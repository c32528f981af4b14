"""The SQL of a reshard: list the users of a shard, copy some users' rows from one shard to
another, compare them (counts and checksums), delete them from the shard they left.

A user's rows are their ``users`` row, their ``orders`` with the ``order_items``, and their
``idempotency`` answers. Outbox rows stay where they were written: the relay of that database
publishes them. PostgreSQL only (sharding is).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shop.adapters.orm import idempotency, order_items, orders, products, users

__all__ = ["Checksum", "checksum", "copy_users", "delete_users", "ensure_catalogue", "user_ids"]


async def user_ids(engine: AsyncEngine) -> list[int]:
    """Every user id on the shard, ascending."""
    async with engine.connect() as connection:
        return [
            int(r[0]) for r in await connection.execute(select(users.c.id).order_by(users.c.id))
        ]


async def ensure_catalogue(primary: AsyncEngine, target: AsyncEngine) -> int:
    """Copy the products (the reference table) to a shard that has none; the rows copied."""
    async with target.connect() as connection:
        present = await connection.scalar(select(func.count()).select_from(products))
    if present:
        return 0
    async with primary.connect() as connection:
        rows = [dict(r._mapping) for r in await connection.execute(select(products))]
    async with target.begin() as connection:
        if rows:
            await connection.execute(insert(products), rows)
    return len(rows)


def _of_users(table: Table, ids: Sequence[int]) -> Any:
    if table is order_items:
        return order_items.c.order_id.in_(select(orders.c.id).where(orders.c.user_id.in_(ids)))
    if table is users:
        return users.c.id.in_(ids)
    return table.c.user_id.in_(ids)


_PARENTS_FIRST = (users, orders, order_items, idempotency)


async def _rows(
    connection: AsyncConnection, table: Table, ids: Sequence[int]
) -> list[dict[str, Any]]:
    query = select(table).where(_of_users(table, ids)).order_by(*table.primary_key.columns)
    return [dict(r._mapping) for r in await connection.execute(query)]


async def copy_users(source: AsyncEngine, target: AsyncEngine, ids: Sequence[int]) -> int:
    """Make ``ids``' rows on ``target`` exactly those on ``source`` (replacing any earlier
    copy), in one transaction on each; the rows written."""
    if not ids:
        return 0
    async with source.connect() as connection:
        # REPEATABLE READ: the four tables from one snapshot, so an order and its items match.
        await connection.execution_options(isolation_level="REPEATABLE READ")
        rows = {table: await _rows(connection, table, ids) for table in _PARENTS_FIRST}
    written = 0
    async with target.begin() as connection:
        await _delete(connection, ids)
        for table in _PARENTS_FIRST:
            if rows[table]:
                await connection.execute(insert(table), rows[table])
                written += len(rows[table])
    return written


async def _delete(connection: AsyncConnection, ids: Sequence[int]) -> None:
    for table in reversed(_PARENTS_FIRST):  # children first
        await connection.execute(delete(table).where(_of_users(table, ids)))


async def delete_users(engine: AsyncEngine, ids: Sequence[int]) -> None:
    """Delete ``ids``' rows from a shard (after they moved away)."""
    if ids:
        async with engine.begin() as connection:
            await _delete(connection, ids)


@dataclass(frozen=True, slots=True)
class Checksum:
    """Row counts and an MD5 over every column of every row, per table, for some users."""

    counts: tuple[int, ...]
    digests: tuple[str, ...]


def _joined(*columns: str) -> str:
    return " || '|' || ".join(columns)


# Every column of each table as text, so any difference changes the digest.
_CANONICAL = {
    users: _joined("id", "email", "name", "password_hash", "created_at"),
    orders: _joined(
        "id",
        "user_id",
        "status",
        "total_cents",
        "coalesce(idempotency_key, '')",
        "coalesce(charge_id, '')",
        "created_at",
    ),
    order_items: _joined("id", "order_id", "product_id", "quantity", "price_cents"),
    idempotency: _joined("user_id", "key", "status_code", "body::text", "created_at"),
}


async def checksum(engine: AsyncEngine, ids: Sequence[int]) -> Checksum:
    """The :class:`Checksum` of ``ids``' rows on a shard."""
    counts: list[int] = []
    digests: list[str] = []
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="REPEATABLE READ")
        for table in _PARENTS_FIRST:
            where = _of_users(table, ids)
            order = ", ".join(c.name for c in table.primary_key.columns)
            query = (
                select(
                    func.count(),
                    text(
                        f"coalesce(md5(string_agg({_CANONICAL[table]}, ',' ORDER BY {order})), '')"
                    ),
                )
                .select_from(table)
                .where(where)
            )
            count, digest = (await connection.execute(query)).one()
            counts.append(int(count))
            digests.append(str(digest))
    return Checksum(tuple(counts), tuple(digests))
