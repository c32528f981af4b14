"""``reshard``: move users between shards while the shop serves, with no reader ever missing
a user's orders.

1. Plan with ``tailguard.shard.movement``: JumpHash from ``n`` to ``m`` shards moves only the
   users whose shard changes (growing by one moves ``1 / (n + 1)`` of them, all to the new one).
2. Copy the moving users' rows to their new shard in batches. Readers and writers still use the
   old map; the copies are not read by anyone yet.
3. Freeze: the map says which users move; instances refuse their writes (503 with
   Retry-After) from the next map read on, and the reshard waits ``grace`` seconds, longer than
   an instance takes to read the map and finish a write in flight.
4. Copy the moving users again (what they wrote before the freeze) and verify each batch:
   counts and checksums of every table equal on both sides. A mismatch unfreezes and stops
   (the old shards still hold everything).
5. Switch: the map names ``m`` shards, unfrozen. Readers go to the new shard, which has every
   row; ``grace`` later no instance reads the old copies any more, and they are deleted.

Readers never wait: before the switch they read the old shard, which keeps every row until
after it.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from shop.adapters.db import Databases, ShardMap
from shop.adapters.resharding import (
    checksum,
    copy_users,
    delete_users,
    ensure_catalogue,
    user_ids,
)
from shop.adapters.schema import migrate, stride_sequences
from shop.adapters.shardmap import read_map, write_map
from tailguard.shard import JumpHash, moves

__all__ = ["ReshardError", "ReshardReport", "reshard"]


class ReshardError(RuntimeError):
    """The reshard could not go on; the message says why and what state it left."""


@dataclass
class ReshardReport:
    """What a reshard did. Times in seconds."""

    source: int
    target: int
    users: int
    moved: int = 0
    plan: dict[tuple[int, int], int] = field(default_factory=dict)
    rows_copied: int = 0
    batches_verified: int = 0
    frozen_for: float = 0.0
    elapsed: float = 0.0

    def __str__(self) -> str:
        pairs = ", ".join(f"{a}->{b}: {n}" for (a, b), n in sorted(self.plan.items()))
        return (
            f"resharded {self.source} -> {self.target} shards: {self.moved} of {self.users} "
            f"users moved ({pairs or 'none'}), {self.rows_copied} rows copied, "
            f"{self.batches_verified} batches verified, writes of moving users refused for "
            f"{self.frozen_for:.1f} s, {self.elapsed:.1f} s in all"
        )


async def reshard(
    databases: Databases,
    to: int,
    *,
    batch: int = 500,
    grace: float = 2.0,
    say: Callable[[str], None] = lambda _line: None,
) -> ReshardReport:
    """Move users from the shard count in use to ``to`` (at most the databases configured).
    ``grace`` is how long each map change is given to reach every instance, in seconds: more
    than SHOP_SHARD_REFRESH plus the longest write (an order's charge)."""
    started = time.monotonic()
    if batch < 1:
        raise ReshardError(f"batch must be >= 1, got {batch}")
    for engine in databases.distinct():
        await migrate(engine)
    current = await read_map(databases.primary) or databases.map
    if current.frozen is not None:
        raise ReshardError(
            f"a reshard {current.frozen[0]} -> {current.frozen[1]} did not finish (the map is "
            "frozen); run it again with the same --to, or restore the map"
        )
    if not 1 <= to <= len(databases.engines):
        raise ReshardError(
            f"--to {to}: expected 1..{len(databases.engines)} (the databases in SHOP_DATABASE_URLS)"
        )
    source = current.shards
    old, new = JumpHash(source), JumpHash(to)
    ids: list[int] = []
    for engine in databases.engines[:source]:
        ids += await user_ids(engine)
    report = ReshardReport(source, to, len(ids))
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for move in moves(old, new, ids):
        groups[(int(move.source), int(move.target))].append(int(move.key))
    report.plan = {pair: len(users) for pair, users in sorted(groups.items())}
    report.moved = sum(report.plan.values())
    say(f"plan: {report.moved} of {len(ids)} users move: {report.plan}")
    if to == source:
        return report
    for _, target in groups:
        await ensure_catalogue(databases.primary, databases.engines[target])

    async def copy_all() -> None:
        for (a, b), users in sorted(groups.items()):
            for start in range(0, len(users), batch):
                chunk = users[start : start + batch]
                report.rows_copied += await copy_users(
                    databases.engines[a], databases.engines[b], chunk
                )

    await copy_all()
    say(f"copied {report.rows_copied} rows; freezing the moving users' writes")
    frozen = ShardMap(source, current.epoch + 1, (source, to))
    await write_map(databases.primary, frozen)
    frozen_at = time.monotonic()
    try:
        await asyncio.sleep(grace)
        await copy_all()
        for (a, b), users in sorted(groups.items()):
            for start in range(0, len(users), batch):
                chunk = users[start : start + batch]
                there = await checksum(databases.engines[a], chunk)
                here = await checksum(databases.engines[b], chunk)
                if there != here:
                    raise ReshardError(
                        f"users {chunk[0]}..{chunk[-1]} differ between shard {a} and shard {b} "
                        f"after the copy ({there} vs {here}); nothing switched"
                    )
                report.batches_verified += 1
        databases.apply(ShardMap(to))  # the sequences of the shards in use from now on
        await stride_sequences(databases)
    except BaseException:
        await write_map(databases.primary, ShardMap(source, frozen.epoch + 1))
        databases.apply(ShardMap(source))
        raise
    await write_map(databases.primary, ShardMap(to, frozen.epoch + 1))
    report.frozen_for = time.monotonic() - frozen_at
    say(f"verified {report.batches_verified} batches; switched to {to} shards")
    await asyncio.sleep(grace)  # every instance reads the new shards before the old rows go
    for (a, _b), users in sorted(groups.items()):
        for start in range(0, len(users), batch):
            await delete_users(databases.engines[a], users[start : start + batch])
    report.elapsed = time.monotonic() - started
    say(str(report))
    return report
