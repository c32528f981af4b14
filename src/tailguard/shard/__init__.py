"""Sharding: which shard a key lives on, what a resize moves, and queries across shards.

::

    from tailguard.shard import JumpHash, ShardRouter, StableHash, movement

    StableHash(8).shard("tenant-42")        # an int in [0, 8), the same in every process
    router = ShardRouter(JumpHash(4), engines)
    async with router.session(user_id) as session: ...
    gathered = await router.gather(count_orders, timeout=0.5)   # every shard, concurrently
    movement(JumpHash(4), JumpHash(5), range(100_000)).fraction  # ~0.2 of the keys move

Strategies (``strategies.py`` first) are sans-IO and deterministic across processes:
``Modulo`` (int ids), ``StableHash`` (a BLAKE2b digest, never Python's salted ``hash()``),
``JumpHash`` (Lamping & Veach), ``Rendezvous`` (named, weighted nodes) and ``ByMonth``
(one shard per UTC month). Only ``ShardRouter.session`` imports SQLAlchemy, on first use.
"""

from tailguard._digest import Key, digest64
from tailguard.shard.gathered import Gathered, ShardError
from tailguard.shard.months import ByMonth
from tailguard.shard.movement import Move, Movement, movement, moves
from tailguard.shard.rendezvous import Rendezvous
from tailguard.shard.router import ShardRouter
from tailguard.shard.strategies import JumpHash, Modulo, StableHash, Strategy, jump

__all__ = [
    "ByMonth",
    "Gathered",
    "JumpHash",
    "Key",
    "Modulo",
    "Move",
    "Movement",
    "Rendezvous",
    "ShardError",
    "ShardRouter",
    "StableHash",
    "Strategy",
    "digest64",
    "jump",
    "movement",
    "moves",
]
