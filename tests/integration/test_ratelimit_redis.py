"""RedisStorage details on a real server: the local refusal layer and NOSCRIPT recovery."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from tailguard.ratelimit import GCRA, RedisStorage
from tests.services import KillableRedis


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


async def test_a_plain_client_gets_the_pre_encoded_path_and_the_same_decisions(
    redis_client: aioredis.Redis,
) -> None:
    prefix = f"tgtest:{uuid.uuid4().hex}"
    fast = RedisStorage(redis_client, local_reject=False)
    assert fast._pool is not None  # the path under test
    limiter = GCRA("3/minute; burst=2", storage=fast, prefix=prefix)
    # The same limiter through the client's own EVALSHA (explicit server time) agrees.
    decisions = [await limiter.check("k", cost=c) for c in (1, 1, 1, 2)]
    assert [d.allowed for d in decisions] == [True, True, False, False]
    assert [d.remaining for d in decisions] == [1, 0, 0, 0]
    assert 19.9 < decisions[2].retry_after <= 20.0001
    assert 39.9 < decisions[3].retry_after <= 40.0001
    subclass = type("Sub", (aioredis.Redis,), {})
    assert RedisStorage(subclass(connection_pool=redis_client.connection_pool))._pool is None


async def test_a_check_cancelled_mid_reply_does_not_shift_the_next_replies(
    redis_client: aioredis.Redis,
) -> None:
    storage = RedisStorage(redis_client, local_reject=False)
    limiter = GCRA("100/minute", storage=storage, prefix=f"tgtest:{uuid.uuid4().hex}")
    assert (await limiter.check("k")).remaining == 99
    admin = aioredis.Redis.from_url(_url(redis_client))
    try:
        await admin.client_pause(300)  # the next check is sent, and its reply held back
        task = asyncio.create_task(limiter.check("k"))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await admin.aclose()
    # The cancelled check may or may not have run on the server, but no reply of it is read
    # as the answer to a later check.
    remaining = [(await limiter.check("k")).remaining for _ in range(3)]
    assert remaining[1:] == [remaining[0] - 1, remaining[0] - 2]
    assert remaining[0] in (97, 98)


async def test_checks_go_on_after_the_server_restarts(killable_redis: KillableRedis) -> None:
    client = aioredis.Redis.from_url(killable_redis.url)
    try:
        limiter = GCRA("100/minute", storage=RedisStorage(client), prefix="tgtest:restart")
        assert (await limiter.check("k")).allowed
        killable_redis.kill()
        killable_redis.restart()  # pooled connections are now dead, and the scripts gone
        decision = await limiter.check("k")  # one retry on a fresh connection, then NOSCRIPT
        assert decision.allowed
        assert decision.remaining == 99  # the restarted server kept nothing
    finally:
        await client.aclose()


def _url(client: aioredis.Redis) -> str:
    kw = client.connection_pool.connection_kwargs
    return f"redis://{kw['host']}:{kw['port']}/{kw.get('db', 0)}"
