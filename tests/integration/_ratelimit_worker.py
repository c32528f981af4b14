"""One process of the rate-limit hammer test: ``python -m tests.integration._ratelimit_worker
URL ALGORITHM KEY START SECONDS`` runs 50 tasks checking KEY until START + SECONDS (wall
clock) and prints how many checks were admitted."""

from __future__ import annotations

import asyncio
import sys
import time

import redis.asyncio as aioredis

from tailguard.ratelimit import GCRA, RedisStorage, SlidingLog


async def main(url: str, algorithm: str, key: str, start: float, seconds: float) -> None:
    client = aioredis.Redis.from_url(url)
    kind = {"gcra": GCRA, "sliding_log": SlidingLog}[algorithm]
    limiter = kind("1000/minute", storage=RedisStorage(client), prefix=key)
    admitted = 0

    async def hammer() -> None:
        nonlocal admitted
        while time.time() < start + seconds:
            if (await limiter.check("one-key")).allowed:
                admitted += 1

    await asyncio.sleep(max(0.0, start - time.time()))
    await asyncio.gather(*(hammer() for _ in range(50)))
    await client.aclose()
    print(admitted)


if __name__ == "__main__":
    url, algorithm, key, start, seconds = sys.argv[1:6]
    asyncio.run(main(url, algorithm, key, float(start), float(seconds)))
