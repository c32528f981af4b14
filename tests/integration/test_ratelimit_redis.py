"""RedisStorage details on a real server: the local refusal layer and NOSCRIPT recovery."""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis

from tailguard.ratelimit import GCRA, RedisStorage


async def evalsha_calls(redis_client: aioredis.Redis) -> int:
    stats = await redis_client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_a_refused_key_is_refused_locally_until_its_retry_time(
    redis_client: aioredis.Redis,
) -> None:
    limiter = GCRA(
        "1/minute", storage=RedisStorage(redis_client), prefix=f"tgtest:{uuid.uuid4().hex}"
    )
    assert (await limiter.check("k")).allowed
    first = await limiter.check("k")
    assert not first.allowed
    before = await evalsha_calls(redis_client)
    later = [await limiter.check("k") for _ in range(10)]
    assert await evalsha_calls(redis_client) == before  # no round trip for a known refusal
    assert all(not d.allowed for d in later)
    assert later[-1].retry_after <= first.retry_after
    assert (await limiter.check("other")).allowed  # other keys still go to Redis


async def test_local_refusal_can_be_turned_off(redis_client: aioredis.Redis) -> None:
    storage = RedisStorage(redis_client, local_reject=False)
    limiter = GCRA("1/minute", storage=storage, prefix=f"tgtest:{uuid.uuid4().hex}")
    await limiter.check("k")
    await limiter.check("k")
    before = await evalsha_calls(redis_client)
    await limiter.check("k")
    assert await evalsha_calls(redis_client) == before + 1


async def test_a_flushed_script_cache_is_reloaded(redis_client: aioredis.Redis) -> None:
    limiter = GCRA(
        "5/minute", storage=RedisStorage(redis_client), prefix=f"tgtest:{uuid.uuid4().hex}"
    )
    assert (await limiter.check("k")).allowed
    await redis_client.script_flush()  # the server forgets every script: NOSCRIPT next time
    decision = await limiter.check("k")
    assert decision.allowed
    assert decision.remaining == 3
