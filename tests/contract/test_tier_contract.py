"""One contract for every cache tier: memory, Redis and a real 3-master Redis Cluster."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from tailguard.cache import Entry, MemoryTier, RedisTier, Tier
from tests.services import backend_client


@pytest.fixture(params=["memory", "redis", "cluster"])
async def tier_and_prefix(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Tier, str]]:
    if request.param == "memory":
        yield MemoryTier(), "k:"
        return
    # The redis_prefix fixture cleans the local server's keys; the cluster is the session's own.
    prefix = (
        request.getfixturevalue("redis_prefix")
        if request.param == "redis"
        else f"tgtest:{uuid.uuid4().hex}:"
    )
    async with backend_client(request, request.param) as client:
        yield RedisTier(client, name=request.param), prefix


def fresh(value: object, ttl: float = 60.0) -> Entry:
    return Entry(value, time.time() + ttl, delta=0.25)


async def test_set_then_get_round_trips_every_kind_of_value(
    tier_and_prefix: tuple[Tier, str],
) -> None:
    tier, p = tier_and_prefix
    values = [0, "", [], None, False, {"a": [1, 2.5, "x"]}, "ünïcode", 2**40]
    for i, value in enumerate(values):
        await tier.set(f"{p}{i}", fresh(value))
    for i, value in enumerate(values):
        found = await tier.get(f"{p}{i}")
        assert found is not None, value
        assert found.value == value


async def test_a_miss_is_none(tier_and_prefix: tuple[Tier, str]) -> None:
    tier, p = tier_and_prefix
    assert await tier.get(f"{p}absent") is None


async def test_expiry_and_metadata_survive_the_round_trip(
    tier_and_prefix: tuple[Tier, str],
) -> None:
    tier, p = tier_and_prefix
    e = Entry("v", time.time() + 30.0, delta=0.125, negative=True)
    await tier.set(f"{p}meta", e)
    found = await tier.get(f"{p}meta")
    assert found is not None
    assert found.expires_at == pytest.approx(e.expires_at, abs=1e-6)
    assert found.delta == pytest.approx(0.125)
    assert found.negative


async def test_an_expired_entry_is_a_miss(tier_and_prefix: tuple[Tier, str]) -> None:
    tier, p = tier_and_prefix
    await tier.set(f"{p}old", Entry("v", time.time() + 0.05))
    await tier.set(f"{p}past", Entry("v", time.time() - 1.0))
    assert await tier.get(f"{p}past") is None
    await asyncio.sleep(0.06)
    assert await tier.get(f"{p}old") is None


async def test_delete_and_overwrite(tier_and_prefix: tuple[Tier, str]) -> None:
    tier, p = tier_and_prefix
    await tier.set(f"{p}k", fresh("a"))
    await tier.set(f"{p}k", fresh("b"))
    found = await tier.get(f"{p}k")
    assert found is not None
    assert found.value == "b"
    await tier.delete(f"{p}k")
    assert await tier.get(f"{p}k") is None
    await tier.delete(f"{p}never-there")  # no error


async def test_get_many_keeps_order_across_slots(tier_and_prefix: tuple[Tier, str]) -> None:
    tier, p = tier_and_prefix
    keys = [f"{p}user:{i}" for i in range(20)]  # spread over the cluster's slots
    for i, k in enumerate(keys[::2]):
        await tier.set(k, fresh(i))
    found = await tier.get_many(keys)
    assert len(found) == 20
    assert [e.value if e else None for e in found[::2]] == list(range(10))
    assert all(e is None for e in found[1::2])
    assert await tier.get_many([]) == []
