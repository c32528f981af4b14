"""ConcurrencyLimit on memory, Redis and a real 3-master cluster."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from tailguard.errors import RateLimitExceeded
from tailguard.ratelimit import ConcurrencyLimit, MemoryStorage, RedisStorage
from tailguard.ratelimit.storage.base import SlotStorage
from tests.services import backend_client


@pytest.fixture(params=["memory", "redis", "cluster"])
async def storage(request: pytest.FixtureRequest) -> AsyncIterator[SlotStorage]:
    if request.param == "memory":
        yield MemoryStorage()
        return
    async with backend_client(request, request.param) as client:
        yield RedisStorage(client)


def limiter(storage: SlotStorage, limit: int = 2, lease: float = 30.0) -> ConcurrencyLimit:
    return ConcurrencyLimit(
        limit, lease=lease, storage=storage, prefix=f"tgtest:{uuid.uuid4().hex}"
    )


async def test_holds_at_most_the_limit_and_releases(storage: SlotStorage) -> None:
    lim = limiter(storage)
    a = await lim.acquire("k")
    b = await lim.acquire("k")
    assert (a.in_flight, b.in_flight) == (1, 2)
    with pytest.raises(RateLimitExceeded) as info:
        await lim.acquire("k")
    assert info.value.retry_after is not None
    assert 0 < info.value.retry_after <= 30
    assert await lim.try_acquire("other") is not None  # keys are independent
    await lim.release(a)
    c = await lim.acquire("k")
    assert c.in_flight == 2


async def test_a_lease_of_a_dead_holder_expires(storage: SlotStorage) -> None:
    lim = limiter(storage, limit=1, lease=10.0)
    t = 5_000_000.0
    assert await lim.try_acquire("k", now=t) is not None  # never released: the holder "died"
    assert await lim.try_acquire("k", now=t + 9.0) is None
    assert await lim.try_acquire("k", now=t + 10.5) is not None


async def test_slots_come_back_on_exception_and_cancellation(storage: SlotStorage) -> None:
    lim = limiter(storage, limit=1)
    with pytest.raises(KeyError):
        async with lim.hold("k"):
            raise KeyError("boom")
    gate = asyncio.Event()

    async def holder() -> None:
        async with lim.hold("k"):
            await gate.wait()

    task = asyncio.create_task(holder())
    await asyncio.sleep(0.05)
    assert await lim.try_acquire("k") is None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    lease = await lim.try_acquire("k")
    assert lease is not None
