"""TieredCache over memory tiers (a second MemoryTier stands in as a lower level here; the
Redis levels have their own tests in tests/integration/test_cache_redis.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from tailguard.cache import MISSING, CacheKey, Entry, MemoryTier, TieredCache
from tailguard.errors import ConfigurationError
from tailguard.events import CacheCoalesced, CacheHit, CacheLoad, CacheMiss, HookRegistry
from tailguard.testing import ManualClock, RecordingHook


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class LowerTier(MemoryTier):
    """A second memory level that reports as remote, to exercise promotion and breakers."""

    local = False

    def __init__(self, clock: Clock) -> None:
        super().__init__(name="lower", clock=clock)
        self.gets = 0

    async def get(self, key: str) -> Entry | None:
        self.gets += 1
        return await super().get(key)

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        self.gets += 1
        return await super().get_many(keys)


def make(**kw: object) -> tuple[TieredCache, MemoryTier, LowerTier, Clock, RecordingHook]:
    clock = Clock()
    l1, l2 = MemoryTier(clock=clock), LowerTier(clock)
    registry = HookRegistry()
    rec = RecordingHook(registry)
    cache = TieredCache([l1, l2], clock=clock, hooks=registry, jitter=0.0, **kw)  # type: ignore[arg-type]
    return cache, l1, l2, clock, rec


async def test_falsy_values_are_hits_and_missing_is_the_miss() -> None:
    cache, *_ = make()
    for i, value in enumerate([0, "", [], None, False]):
        await cache.set(f"k{i}", value, ttl=10)
        assert await cache.get(f"k{i}") == value
        assert await cache.get(f"k{i}") is not MISSING
    assert await cache.get("absent") is MISSING
    assert await cache.get("absent", default="d") == "d"
    assert not MISSING
    assert repr(MISSING) == "MISSING"


async def test_hit_in_a_lower_tier_is_promoted_with_the_time_it_has_left() -> None:
    cache, l1, l2, clock, rec = make()
    l2.store("k", Entry("v", clock.now + 30))
    clock.now += 10
    assert await cache.get("k") == "v"
    promoted = l1.lookup("k", clock.now)
    assert promoted is not None
    assert promoted.expires_at == clock.now + 20  # never outlives the copy it came from
    assert [e.tier for e in rec.of(CacheHit)] == ["lower"]
    assert await cache.get("k") == "v"
    assert l2.gets == 1  # the second read was an L1 hit
    assert [e.tier for e in rec.of(CacheHit)] == ["lower", "memory"]


async def test_write_through_delete_and_expiry() -> None:
    cache, l1, l2, clock, rec = make()
    await cache.set("k", {"a": 1}, ttl=5)
    assert "k" in l1
    assert "k" in l2
    clock.now += 5
    assert await cache.get("k") is MISSING
    assert rec.of(CacheMiss)[-1].key == "k"
    await cache.set("k", 1, ttl=5)
    await cache.delete("k")
    assert "k" not in l1
    assert "k" not in l2


async def test_get_many_reads_each_tier_once_and_promotes() -> None:
    cache, l1, l2, clock, _ = make()
    await cache.set("a", 1, ttl=10)
    l2.store("b", Entry(2, clock.now + 10))
    found = await cache.get_many(["a", "b", "c", "a"])
    assert found == {"a": 1, "b": 2}
    assert l2.gets == 1
    assert "b" in l1


async def test_ttl_jitter_only_shortens_and_spreads() -> None:
    clock = Clock()
    l1 = MemoryTier(clock=clock)
    cache = TieredCache([l1], clock=clock, jitter=0.2)
    for i in range(200):
        await cache.set(f"k{i}", i, ttl=100)
    expiries = [l1.lookup(f"k{i}", clock.now).expires_at - clock.now for i in range(200)]  # type: ignore[union-attr]
    assert all(80 <= e <= 100 for e in expiries)
    assert max(expiries) - min(expiries) > 10


async def test_single_flight_many_concurrent_misses_make_one_loader_call() -> None:
    cache, _, _, _, rec = make()
    calls = 0
    gate = asyncio.Event()

    async def load() -> dict[str, int]:
        nonlocal calls
        calls += 1
        await gate.wait()
        return {"id": 7}

    key = CacheKey("api").build("user", 7)
    tasks = [asyncio.create_task(cache.get_or_load(key, load, ttl=60)) for _ in range(1000)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks)
    assert calls == 1
    assert all(r == {"id": 7} for r in results)
    assert len(rec.of(CacheCoalesced)) == 999
    assert len(rec.of(CacheLoad)) == 1
    assert await cache.get_or_load(key, load, ttl=60) == {"id": 7}
    assert calls == 1


async def test_a_failing_loader_stores_nothing_and_fails_every_waiter() -> None:
    cache, l1, _, _, rec = make()
    gate = asyncio.Event()

    async def broken() -> int:
        await gate.wait()
        raise ConnectionError("db down")

    tasks = [asyncio.create_task(cache.get_or_load("k", broken, ttl=60)) for _ in range(10)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert "k" not in l1
    assert rec.of(CacheLoad)[0].ok is False

    async def fine() -> int:
        return 5

    assert await cache.get_or_load("k", fine, ttl=60) == 5  # nothing stuck in flight


async def test_a_cancelled_leader_hands_the_load_to_a_waiter() -> None:
    cache, *_ = make()
    calls = 0

    async def load() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return "loaded"

    leader = asyncio.create_task(cache.get_or_load("k", load, ttl=60))
    await asyncio.sleep(0)
    follower = asyncio.create_task(cache.get_or_load("k", load, ttl=60))
    await asyncio.sleep(0)
    leader.cancel()
    assert await follower == "loaded"
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert calls == 2


async def test_negative_caching_has_its_own_ttl() -> None:
    cache, l1, _, clock, _ = make(negative_ttl=5)
    calls = 0

    async def find_user() -> None:
        nonlocal calls
        calls += 1
        return None

    assert await cache.get_or_load("user:404", find_user, ttl=300) is None
    assert await cache.get_or_load("user:404", find_user, ttl=300) is None
    assert calls == 1
    found = l1.lookup("user:404", clock.now)
    assert found is not None
    assert found.negative
    clock.now += 5
    assert await cache.get_or_load("user:404", find_user, ttl=300) is None
    assert calls == 2


async def test_none_is_not_cached_without_negative_ttl() -> None:
    cache, *_ = make()
    calls = 0

    async def find() -> None:
        nonlocal calls
        calls += 1

    await cache.get_or_load("k", find, ttl=10)
    await cache.get_or_load("k", find, ttl=10)
    assert calls == 2


async def test_cached_decorator_keeps_the_signature_and_reads_through() -> None:
    cache, *_ = make()
    calls: list[tuple[int, str]] = []

    @cache.cached(ttl=60)
    async def profile(user_id: int, *, fields: str = "all") -> dict[str, object]:
        calls.append((user_id, fields))
        return {"id": user_id, "fields": fields}

    assert await profile(1) == {"id": 1, "fields": "all"}
    assert await profile(1) == {"id": 1, "fields": "all"}
    assert await profile(1, fields="name") == {"id": 1, "fields": "name"}
    assert calls == [(1, "all"), (1, "name")]
    assert profile.__name__ == "profile"

    @cache.cached(ttl=60, key=lambda user_id: f"custom:{user_id}")
    async def other(user_id: int) -> int:
        return user_id * 2

    assert await other(4) == 8
    assert await cache.get("custom:4") == 8


async def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="at least one tier"):
        TieredCache([])
    with pytest.raises(ConfigurationError, match="Tier objects"):
        TieredCache([object()])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="jitter"):
        TieredCache([MemoryTier()], jitter=1.5)
    cache = TieredCache([MemoryTier()])
    with pytest.raises(ConfigurationError, match="ttl"):
        await cache.set("k", 1, ttl=0)
    with pytest.raises(ConfigurationError, match="MISSING"):
        await cache.set("k", MISSING, ttl=1)


async def settle(cache: TieredCache) -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_stale_while_revalidate_serves_stale_once_and_refreshes_in_background() -> None:
    cache, _l1, _l2, clock, _rec = make(stale_while_revalidate=30)
    await cache.set("k", "old", ttl=10)
    clock.now += 15  # stale, within the 30 s window
    assert await cache.get("k") is MISSING  # a plain get wants fresh values only
    loads = 0

    async def load() -> str:
        nonlocal loads
        loads += 1
        return "new"

    results = await asyncio.gather(*(cache.get_or_load("k", load, ttl=10) for _ in range(50)))
    assert set(results) == {"old"}  # served at once, nobody waited for the load
    await settle(cache)
    assert loads == 1  # one background refresh for fifty stale reads
    assert await cache.get("k") == "new"
    clock.now += 10 + 30  # past the stale window too: a plain miss, loaded in the foreground
    assert await cache.get_or_load("k", load, ttl=10) == "new"
    assert loads == 2


async def test_stale_entries_in_redis_like_lower_tiers_are_served_too() -> None:
    cache, _l1, l2, clock, _ = make(stale_while_revalidate=30)
    l2.store("k", Entry("from l2", clock.now + 10, stale_until=clock.now + 40))
    clock.now += 20

    async def load() -> str:
        return "fresh"

    assert await cache.get_or_load("k", load, ttl=10) == "from l2"
    await settle(cache)
    assert await cache.get("k") == "fresh"


async def test_xfetch_refreshes_a_hot_key_early_in_the_background() -> None:
    draws = iter([0.0, 0.999])
    cache, l1, _, clock, _ = make()
    cache._rand = lambda: next(draws)  # one draw per hit
    l1.store("k", Entry("old", clock.now + 10, delta=5.0))
    loads = 0

    async def load() -> str:
        nonlocal loads
        loads += 1
        return "recomputed"

    # rand 0.0: now - 5 * ln(1) = now, far from the expiry: no refresh
    assert await cache.get_or_load("k", load, ttl=60) == "old"
    await settle(cache)
    assert loads == 0
    # rand 0.999: now - 5 * ln(0.001) = now + 34.5 >= expiry: refresh early, serve the old value
    assert await cache.get_or_load("k", load, ttl=60) == "old"
    await settle(cache)
    assert loads == 1
    assert await cache.get("k") == "recomputed"


async def test_early_refresh_can_be_turned_off() -> None:
    cache, l1, _, clock, _ = make(early_refresh=None)
    cache._rand = lambda: 0.999999
    l1.store("k", Entry("old", clock.now + 1, delta=100.0))

    async def load() -> str:
        raise AssertionError("must not load")

    assert await cache.get_or_load("k", load, ttl=60) == "old"
    await settle(cache)
    await cache.aclose()


def test_a_lease_needs_a_tier_that_can_lease() -> None:
    with pytest.raises(ConfigurationError, match="lease"):
        TieredCache([MemoryTier()], lease=1.0)
    with pytest.raises(ConfigurationError, match="lease"):
        TieredCache([MemoryTier()], lease=0)


async def test_single_flight_can_be_turned_off_for_the_naive_twin() -> None:
    cache, *_ = make(single_flight=False)
    calls = 0

    async def load() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return 1

    await asyncio.gather(*(cache.get_or_load("k", load, ttl=60) for _ in range(10)))
    assert calls == 10


async def test_tiers_of_one_name_keep_their_own_breakers() -> None:
    clock = Clock()

    class Dead(LowerTier):
        async def get(self, key: str) -> Entry | None:
            raise ConnectionError("down")

    dead, alive = Dead(clock), LowerTier(clock)  # both named "lower"
    alive.store("k", Entry("from the live tier", clock.now + 60))
    cache = TieredCache([MemoryTier(clock=clock), dead, alive], clock=clock, jitter=0)
    assert await cache.get("k") == "from the live tier"
    cache.tiers[0].remove("k")  # type: ignore[attr-defined]
    assert await cache.get("k") == "from the live tier"  # the dead tier's open breaker is its own


@pytest.mark.parametrize("why", ["stale", "early"])
async def test_a_failing_background_refresh_backs_off_until_a_load_works(why: str) -> None:
    clock = ManualClock(1_000.0)
    l1 = MemoryTier(clock=clock.now)
    cache = TieredCache(
        [l1], clock=clock.now, jitter=0.0, stale_while_revalidate=3_600, rand=lambda: 0.999
    )
    if why == "stale":
        l1.store("k", Entry("old", clock.now() + 10, stale_until=clock.now() + 3_600))
        clock.advance(15)  # stale: every read wants a background refresh
    else:
        l1.store("k", Entry("old", clock.now() + 3_000, delta=1_000.0))  # XFetch always due
    loads = 0
    failing = True

    async def load() -> str:
        nonlocal loads
        loads += 1
        if failing:
            raise ConnectionError("db down")
        return "new"

    async def read() -> object:
        value = await cache.get_or_load("k", load, ttl=10)
        await settle(cache)
        return value

    for _ in range(5):  # five reads within the first 1 s backoff: one refresh
        assert await read() == "old"
        clock.advance(0.1)
    assert loads == 1
    clock.advance(0.5)  # 1 s after the failure: the next read may try again
    assert await read() == "old"
    assert loads == 2
    clock.advance(1.9)  # the second failure in a row holds refreshes off for 2 s
    assert await read() == "old"
    assert loads == 2
    clock.advance(0.1)
    assert await read() == "old"
    assert loads == 3
    clock.advance(4)  # past the third backoff (4 s): this refresh works
    failing = False
    assert await read() == "old"
    assert loads == 4
    assert await cache.get("k") == "new"

    # a success resets the backoff: after the next failure it is 1 s again, not 8 s
    failing = True
    l1.store("k", Entry("old", clock.now() - 1, stale_until=clock.now() + 3_600))
    assert await read() == "old"
    assert loads == 5
    assert await read() == "old"
    assert loads == 5
    clock.advance(1)
    assert await read() == "old"
    assert loads == 6
    await cache.aclose()
