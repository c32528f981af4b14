"""One process of the cross-instance storm test: ``python -m tests.integration._storm_worker
URL KEY START LEASE`` runs 50 concurrent ``get_or_load`` of KEY at wall-clock time START."""

from __future__ import annotations

import asyncio
import json
import sys
import time

import redis.asyncio as aioredis

from tailguard.cache import MemoryTier, RedisTier, TieredCache


async def main(url: str, key: str, start: float, lease: float | None) -> None:
    client = aioredis.Redis.from_url(url)
    cache = TieredCache([MemoryTier(), RedisTier(client)], lease=lease, jitter=0.0)

    async def load() -> str:
        await client.incr(key + ":loads")
        await asyncio.sleep(0.3)
        return "the value"

    await asyncio.sleep(max(0.0, start - time.time()))
    values = await asyncio.gather(*(cache.get_or_load(key, load, ttl=60) for _ in range(50)))
    await client.aclose()
    print(json.dumps(sorted(set(values))))


if __name__ == "__main__":
    url, key, start, lease = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    asyncio.run(main(url, key, start, None if lease == "none" else float(lease)))
