"""Cross-instance L1 invalidation over real Redis pub/sub, on RESP2 and RESP3 clients."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from tailguard.cache import MISSING, MemoryTier, RedisTier, TieredCache
from tailguard.cache.invalidation import RedisInvalidation
from tailguard.events import CacheInvalidated, HookRegistry
from tailguard.testing import RecordingHook
from tests.services import KillableRedis


async def eventually(check: Callable[[], bool], seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.002)


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
async def client(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[aioredis.Redis]:
    c = aioredis.Redis.from_url(redis_url, protocol=request.param)
    try:
        yield c
    finally:
        await c.aclose()


async def read_into_l1(cache: TieredCache, key: str) -> object:
    """Read ``key`` until it sits in the cache's L1: a read that overlaps the invalidation of
    the write it reads is (rightly) not kept in L1, so the first read may not stick."""
    l1 = cache.tiers[0]
    assert isinstance(l1, MemoryTier)
    deadline = time.monotonic() + 3.0
    while True:
        value = await cache.get(key)
        if key in l1 or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.002)


def instance(
    client: aioredis.Redis, channel: str, hooks: HookRegistry | None = None
) -> TieredCache:
    return TieredCache(
        [MemoryTier(), RedisTier(client)],
        invalidation=RedisInvalidation(client, channel=channel),
        hooks=hooks,
        tier_recovery=0.1,
    )


async def test_set_and_delete_on_one_instance_evict_the_others_l1(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    channel = f"{redis_prefix}inv"
    registry = HookRegistry()
    rec = RecordingHook(registry, CacheInvalidated)
    a, b = instance(client, channel), instance(client, channel, registry)
    key = f"{redis_prefix}user:1"
    async with a, b:
        await a.set(key, "v1", ttl=60)
        assert await read_into_l1(b, key) == "v1"
        l1 = b.tiers[0]
        assert isinstance(l1, MemoryTier)
        assert key in l1
        await a.set(key, "v2", ttl=60)
        await eventually(lambda: key not in l1)
        assert await b.get(key) == "v2"
        await a.delete(key)
        await eventually(lambda: key not in l1)
        assert await b.get(key) is MISSING
    # one per write of a: set v1, set v2, delete
    assert [e.key for e in rec.of(CacheInvalidated) if e.key != "*"] == [key] * 3


async def test_an_instance_ignores_its_own_writes(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    a = instance(client, f"{redis_prefix}inv")
    key = f"{redis_prefix}k"
    async with a:
        await a.set(key, "mine", ttl=60)
        await asyncio.sleep(0.05)
        l1 = a.tiers[0]
        assert isinstance(l1, MemoryTier)
        assert key in l1  # its own message did not evict what it just wrote


@pytest.mark.slow
async def test_losing_the_connection_flushes_l1_and_listening_resumes(
    killable_redis: KillableRedis,
) -> None:
    client = aioredis.Redis.from_url(killable_redis.url, socket_timeout=1.0)
    channel = f"inv:{uuid.uuid4().hex}"
    a, b = instance(client, channel), instance(client, channel)
    l1 = b.tiers[0]
    assert isinstance(l1, MemoryTier)
    try:
        async with a, b:
            await a.set("k", "v1", ttl=60)
            assert await read_into_l1(b, "k") == "v1"
            assert "k" in l1
            killable_redis.kill()
            await eventually(lambda: "k" not in l1, seconds=5.0)  # flushed, never trusted
            killable_redis.restart()
            assert b.invalidation is not None
            inv = b.invalidation
            await eventually(lambda: inv.connected, seconds=15.0)
            checker = aioredis.Redis.from_url(killable_redis.url)
            try:
                deadline = time.monotonic() + 5.0
                while await checker.get("k2") is None:  # first writes meet dead connections
                    assert time.monotonic() < deadline
                    await a.set("k2", "x", ttl=60)
                    await asyncio.sleep(0.15)
            finally:
                await checker.aclose()
            assert await read_into_l1(b, "k2") == "x"
            assert "k2" in l1
            await a.set("k2", "y", ttl=60)
            await eventually(lambda: "k2" not in l1)
    finally:
        await client.aclose()
