"""Every process routes a key to the same shard; Python's hash() (the guide's bug) does not.

Each check runs fresh interpreters with different ``PYTHONHASHSEED`` values.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tailguard.shard import JumpHash, Rendezvous, StableHash

TENANTS = [f"tenant-{i}" for i in range(64)]
PROGRAM = f"""
import json, sys
from tailguard.shard import JumpHash, Rendezvous, StableHash
tenants = {TENANTS!r}
ring = Rendezvous(["a", "b", "c", "d"])
print(json.dumps({{
    "stable": [StableHash(8).shard(t) for t in tenants],
    "jump": [JumpHash(8).shard(t) for t in tenants],
    "rendezvous": [ring.node(t) for t in tenants],
    "builtin": [hash(t) % 8 for t in tenants],
    "heavy": [m for m in ("sqlalchemy", "asyncpg", "aiosqlite") if m in sys.modules],
}}))
"""


def run(seed: str) -> dict[str, list[object]]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, list[object]] = json.loads(out.stdout)
    return result


def test_shards_are_the_same_in_every_process_and_pythons_hash_is_not() -> None:
    first, second = run("1"), run("2")
    ring = Rendezvous(["a", "b", "c", "d"])
    assert first["stable"] == second["stable"] == [StableHash(8).shard(t) for t in TENANTS]
    assert first["jump"] == second["jump"] == [JumpHash(8).shard(t) for t in TENANTS]
    assert first["rendezvous"] == second["rendezvous"] == [ring.node(t) for t in TENANTS]
    # The guide's tenant sharding: hash(tenant) % 8 sends tenants to other shards in another
    # process (64 tenants on 8 shards: the chance that all agree by luck is about 8**-64).
    disagree = [
        t for t, a, b in zip(TENANTS, first["builtin"], second["builtin"], strict=True) if a != b
    ]
    assert len(disagree) > len(TENANTS) // 2, disagree


def test_importing_the_strategies_loads_no_database_driver() -> None:
    assert run("0")["heavy"] == []
