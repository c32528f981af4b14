"""Cross-instance stampede protection: 4 processes x 50 concurrent misses of one cold key;
two instances in one process for what waiters do when the lease holder finds nothing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from tailguard.cache import Entry, MemoryTier, RedisTier, TieredCache

ROOT = Path(__file__).resolve().parents[2]


def storm(url: str, key: str, lease: str) -> list[list[str]]:
    start = time.time() + 1.5  # every process imports first, then all start together
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.integration._storm_worker", url, key, str(start), lease],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    return results


@pytest.mark.slow
def test_with_a_lease_four_processes_make_one_loader_call(
    redis_url: str, redis_prefix: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        key = f"{redis_prefix}cold"
        assert storm(redis_url, key, "2.0") == [["the value"]] * 4
        assert int(client.get(key + ":loads") or 0) == 1

        control = f"{redis_prefix}control"
        assert storm(redis_url, control, "none") == [["the value"]] * 4
        # without the lease each process loads once (single flight works only in-process)
        assert int(client.get(control + ":loads") or 0) > 1
    finally:
        client.close()


class WatchedTier(RedisTier):
    """A RedisTier that counts its reads: a waiter's first is its miss, the next its polls."""

    def __init__(self, client: aioredis.Redis) -> None:
        super().__init__(client)
        self.reads = 0
        self.polling = asyncio.Event()

    async def get(self, key: str) -> Entry | None:
        self.reads += 1
        if self.reads > 1:
            self.polling.set()
        return await super().get(key)


async def test_waiters_answer_none_at_once_when_the_holder_finds_nothing(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    key = f"{redis_prefix}user:404"
    # 30 s of lease and of patience: a waiter that sat it out would hit the 5 s wait_for below.
    holder = TieredCache([MemoryTier(), RedisTier(redis_client)], lease=30.0, jitter=0.0)
    watched = WatchedTier(redis_client)
    waiter = TieredCache([MemoryTier(), watched], lease=30.0, jitter=0.0)
    loading, finish = asyncio.Event(), asyncio.Event()
    waiter_loads = 0

    async def find_nothing() -> None:  # the database says "no such user"
        loading.set()
        await finish.wait()

    async def load_on_the_waiter() -> str:
        nonlocal waiter_loads
        waiter_loads += 1
        return "loaded by the waiter"

    held = asyncio.create_task(holder.get_or_load(key, find_nothing, ttl=60))
    await loading.wait()  # the holder has the lease and is loading
    waiting = asyncio.create_task(waiter.get_or_load(key, load_on_the_waiter, ttl=60))
    await watched.polling.wait()  # the waiter found the lease taken and polls
    finish.set()
    assert await held is None
    assert await asyncio.wait_for(waiting, timeout=5) is None  # the holder's answer, shared
    assert waiter_loads == 0  # it did not wait out lease_wait and load itself
    assert await redis_client.exists(key) == 0  # None is still not cached anywhere
    assert watched.reads < 100  # a few polls, not 30 s worth (600 or so)

    # The "found nothing" marker is no negative cache: the next miss takes the lease and loads.
    assert await waiter.get_or_load(key, load_on_the_waiter, ttl=60) == "loaded by the waiter"
    assert waiter_loads == 1
