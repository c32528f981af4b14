"""One contract for the cart session stores: in-process, and Redis (the real server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from shop.adapters.sessions import (
    MemorySessionStore,
    RedisSessionStore,
    SessionStore,
    is_session_id,
    new_session_id,
)
from tailguard.errors import BackendUnavailable
from tailguard.testing import ManualClock


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[SessionStore]:
    if request.param == "memory":
        yield MemorySessionStore(ttl=60.0)
        return
    prefix: str = request.getfixturevalue("redis_prefix")
    client = aioredis.Redis.from_url(request.getfixturevalue("redis_url"))
    try:
        yield RedisSessionStore(client, ttl=60.0, prefix=f"{prefix}cart")
    finally:
        await client.aclose()


def test_session_ids_are_256_random_bits() -> None:
    ids = {new_session_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(is_session_id(i) and len(i) == 43 for i in ids)
    assert not is_session_id("x" * 42)
    assert not is_session_id("../" + "x" * 40)


async def test_lines_set_read_remove_and_clear(store: SessionStore) -> None:
    sid = new_session_id()
    assert (await store.load(1, sid)).lines == {}
    await store.set_line(1, sid, 7, 2)
    await store.set_line(1, sid, 9, 1)
    await store.set_line(1, sid, 7, 5)
    assert (await store.load(1, sid)).lines == {7: 5, 9: 1}
    assert await store.remove_line(1, sid, 9)
    assert not await store.remove_line(1, sid, 9)
    assert (await store.load(1, sid)).lines == {7: 5}
    await store.clear(1, sid)
    assert (await store.load(1, sid)).lines == {}


async def test_a_session_belongs_to_its_user(store: SessionStore) -> None:
    sid = new_session_id()
    await store.set_line(1, sid, 7, 2)
    assert (await store.load(2, sid)).lines == {}  # the same id, another user: nothing
    assert not await store.remove_line(2, sid, 7)
    assert (await store.load(1, sid)).lines == {7: 2}


async def test_redis_sessions_slide_their_ttl(redis_url: str, redis_prefix: str) -> None:
    client: Any = aioredis.Redis.from_url(redis_url)
    try:
        store = RedisSessionStore(client, ttl=60.0, prefix=f"{redis_prefix}cart")
        sid = new_session_id()
        await store.set_line(1, sid, 7, 2)
        key = f"{redis_prefix}cart:1:{sid}"
        await client.pexpire(key, 5_000)
        await store.load(1, sid)  # a read is a use: the TTL is back to 60 s
        assert 55_000 < await client.pttl(key) <= 60_000
    finally:
        await client.aclose()


async def test_memory_sessions_expire_after_their_ttl_and_stay_bounded() -> None:
    clock = ManualClock()
    store = MemorySessionStore(ttl=10.0, max_sessions=2, clock=clock.now)
    a, b, c = new_session_id(), new_session_id(), new_session_id()
    await store.set_line(1, a, 1, 1)
    clock.advance(9.0)
    assert (await store.load(1, a)).lines == {1: 1}  # used: slides to t=19
    clock.advance(9.0)
    assert (await store.load(1, a)).lines == {1: 1}
    clock.advance(10.5)
    assert (await store.load(1, a)).lines == {}
    for sid in (a, b, c):
        await store.set_line(1, sid, 1, 1)
    assert (await store.load(1, c)).lines == {1: 1}
    assert (await store.load(1, a)).lines == {}  # the oldest went to make room


async def test_a_dead_redis_is_backend_unavailable() -> None:
    from tests.services import free_port

    client = aioredis.Redis.from_url(
        f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5
    )
    try:
        store = RedisSessionStore(client)
        with pytest.raises(BackendUnavailable, match="redis unavailable"):
            await store.load(1, new_session_id())
        with pytest.raises(BackendUnavailable):
            await store.ping()
    finally:
        await client.aclose()
