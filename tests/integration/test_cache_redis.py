"""TieredCache on real Redis: L2 on the local server, L3 on a real cluster, a dead server, and
a server killed and brought back mid-run."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from tailguard.cache import CacheKey, MemoryTier, RedisTier, TieredCache
from tailguard.events import CacheError, CircuitStateChanged, HookRegistry
from tailguard.testing import RecordingHook
from tests.services import KillableRedis, RedisClusterInfo


async def test_two_instances_share_l2_and_promote_into_their_own_l1(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    a = TieredCache([MemoryTier(), RedisTier(redis_client)])
    b_l1 = MemoryTier()
    b = TieredCache([b_l1, RedisTier(redis_client)])
    key = redis_prefix + CacheKey("api", version="v2").build("user", 1, "profile")
    await a.set(key, {"name": "ada", "tags": []}, ttl=60)
    assert await redis_client.exists(key) == 1
    assert 53 <= await redis_client.ttl(key) <= 60  # 60 s less up to 10 % jitter
    assert await b.get(key) == {"name": "ada", "tags": []}
    assert key in b_l1
    await a.delete(key)
    assert await redis_client.exists(key) == 0


async def test_cluster_as_l3_behind_l2(
    redis_client: aioredis.Redis, redis_prefix: str, redis_cluster: RedisClusterInfo
) -> None:
    rc = RedisCluster.from_url(redis_cluster.url)
    try:
        l3 = RedisTier(rc, name="cluster")
        cache = TieredCache([MemoryTier(), RedisTier(redis_client), l3])
        keys = [f"{redis_prefix}item:{i}" for i in range(30)]
        for i, k in enumerate(keys):
            await l3.set(k, (await _entry(i)))
        assert await cache.get_many(keys) == {k: i for i, k in enumerate(keys)}
        assert await redis_client.exists(*keys) == 30  # promoted into L2
    finally:
        await rc.aclose()


async def _entry(value: object) -> object:
    from tailguard.cache import Entry

    return Entry(value, time.time() + 60)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_dead_redis_costs_one_fast_failure_then_is_skipped() -> None:
    client = aioredis.Redis(host="127.0.0.1", port=closed_port())
    registry = HookRegistry()
    rec = RecordingHook(registry)
    cache = TieredCache([MemoryTier(), RedisTier(client)], hooks=registry)
    loads = 0

    async def load() -> str:
        nonlocal loads
        loads += 1
        return "from the database"

    try:
        for i in range(20):
            assert await cache.get_or_load(f"k{i}", load, ttl=60) == "from the database"
        assert await cache.get("k3") == "from the database"  # L1 still serves
    finally:
        await client.aclose()
    assert loads == 20
    opened = [e for e in rec.of(CircuitStateChanged) if e.new == "open"]
    assert len(opened) == 1
    errors = [e.error for e in rec.of(CacheError)]
    # the first operation fails (refused, or cut by the tier timeout while redis-py retries) ...
    assert errors[0] in {"BackendUnavailable", "DeadlineExceeded"}
    # ... and every later one skips the tier without trying to connect
    assert set(errors[1:]) == {"CircuitOpenError"}


@pytest.mark.slow
async def test_redis_killed_mid_run_then_back_without_a_restart(
    killable_redis: KillableRedis,
) -> None:
    client = aioredis.Redis.from_url(
        killable_redis.url, socket_timeout=0.5, socket_connect_timeout=0.5
    )
    registry = HookRegistry()
    rec = RecordingHook(registry)
    l1 = MemoryTier(max_entries=50)  # small: most reads must go past L1
    cache = TieredCache([l1, RedisTier(client)], hooks=registry, tier_recovery=0.3)

    async def load(i: int) -> int:
        return i

    async def work(rounds: int) -> None:
        for r in range(rounds):
            i = r % 200
            assert await cache.get_or_load(f"k{i}", lambda i=i: load(i), ttl=60) == i

    try:
        await work(400)
        killable_redis.kill()
        await work(400)  # no exception reaches us while Redis is gone
        assert any(e.new == "open" for e in rec.of(CircuitStateChanged))
        killable_redis.restart()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            await asyncio.sleep(0.35)
            await cache.set("probe", "back", ttl=60)
            if await client.get("probe") is not None:
                break
        assert await client.get("probe") is not None  # the tier is used again
        assert rec.of(CircuitStateChanged)[-1].new == "closed"
    finally:
        await client.aclose()


async def test_a_value_too_large_is_the_callers_error_and_leaves_redis_in_use(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    from tailguard.errors import ValueTooLarge

    cache = TieredCache([MemoryTier(), RedisTier(redis_client, max_value_bytes=1000)])
    with pytest.raises(ValueTooLarge, match="over the limit of 1000"):
        await cache.set(f"{redis_prefix}big", "x" * 5000, ttl=60)
    assert await redis_client.exists(f"{redis_prefix}big") == 0
    await cache.set(f"{redis_prefix}ok", 1, ttl=60)  # the tier's breaker did not open
    assert await redis_client.exists(f"{redis_prefix}ok") == 1

    async def load_big() -> str:
        return "y" * 5000

    # from a loader, the value is still returned (only caching it failed)
    assert await cache.get_or_load(f"{redis_prefix}big2", load_big, ttl=60) == "y" * 5000


async def test_an_exhausted_connection_pool_does_not_open_the_breaker(
    redis_url: str, redis_prefix: str
) -> None:
    client = aioredis.Redis.from_url(redis_url, max_connections=2)
    registry = HookRegistry()
    rec = RecordingHook(registry)
    cache = TieredCache([MemoryTier(), RedisTier(client)], hooks=registry)
    try:
        keys = [f"{redis_prefix}p{i}" for i in range(50)]
        results = await asyncio.gather(*(cache.get(k) for k in keys))  # 50 reads, 2 connections
        assert len(results) == 50
        assert "BackendSaturated" in {e.error for e in rec.of(CacheError)}
        assert not [e for e in rec.of(CircuitStateChanged) if e.new == "open"]
    finally:
        await client.aclose()
