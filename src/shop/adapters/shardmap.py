"""The shard map in the primary database: read by every instance, written by a reshard."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from shop.adapters.db import ShardMap
from shop.adapters.orm import shard_map

__all__ = ["read_map", "write_map"]


async def read_map(primary: AsyncEngine) -> ShardMap | None:
    """The stored map, or None (no reshard yet, or a database not migrated)."""
    async with primary.connect() as connection:
        exists = await connection.run_sync(lambda sync: inspect(sync).has_table(shard_map.name))
        if not exists:
            return None
        row = (await connection.execute(select(shard_map).where(shard_map.c.id == 1))).first()
    if row is None:
        return None
    frozen = (
        None
        if row.frozen_from is None or row.frozen_to is None
        else (int(row.frozen_from), int(row.frozen_to))
    )
    return ShardMap(int(row.shards), int(row.epoch), frozen)


async def write_map(primary: AsyncEngine, new: ShardMap) -> None:
    """Store ``new`` (creating the row the first time)."""
    values = {
        "shards": new.shards,
        "epoch": new.epoch,
        "frozen_from": new.frozen[0] if new.frozen else None,
        "frozen_to": new.frozen[1] if new.frozen else None,
        "updated_at": datetime.now(UTC).replace(tzinfo=None),
    }
    async with primary.begin() as connection:
        changed = await connection.execute(
            update(shard_map).where(shard_map.c.id == 1).values(**values)
        )
        if not changed.rowcount:
            await connection.execute(insert(shard_map).values(id=1, **values))
