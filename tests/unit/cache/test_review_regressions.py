"""Regressions for defects found in review of the cache; each failed before its fix."""

from __future__ import annotations

import asyncio
import gc
import random
import weakref
from collections.abc import Sequence

import httpx
import pytest

from tailguard.cache import Entry, HttpCaching, MemoryTier, TieredCache
from tailguard.cache.stampede import SingleFlight


class Big:
    def __init__(self, n: int) -> None:
        self.payload = bytes(n)


def test_removed_values_are_released_at_once() -> None:
    tier = MemoryTier(max_bytes=50_000_000)
    refs = []
    for i in range(50):
        value = Big(100_000)
        refs.append(weakref.ref(value))
        tier.store(f"k{i}", Entry(value, 1e12))
        del value
        tier.remove(f"k{i}")
    gc.collect()
    assert sum(r() is not None for r in refs) == 0


def test_s3fifo_still_protects_hot_keys_when_bytes_bind() -> None:
    rng = random.Random(3)
    hot = [f"hot{i}" for i in range(50)]

    def ratio(tier: MemoryTier) -> float:
        hits = 0
        for n in range(20_000):
            k = rng.choice(hot) if rng.random() < 0.8 else f"cold{n}"
            if tier.lookup(k, 0.0) is not None:
                hits += 1
            else:
                tier.store(k, Entry("v" * 100, 1e12))
        return hits / 20_000

    by_entries = ratio(MemoryTier(max_entries=100))
    probe = MemoryTier()
    probe.store("x", Entry("v" * 100, 1e12))
    by_bytes = ratio(MemoryTier(max_bytes=probe.bytes * 100))
    assert by_bytes >= by_entries - 0.05


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_get_or_load_counts_l1_hits_for_eviction() -> None:
    clock = Clock()
    l1 = MemoryTier(max_entries=20, clock=clock)
    cache = TieredCache([l1], clock=clock, jitter=0, early_refresh=None)
    loads = 0

    async def load() -> str:
        nonlocal loads
        loads += 1
        return "hot"

    for i in range(200):
        assert await cache.get_or_load("hot", load, ttl=1e6) == "hot"
        await cache.set(f"cold{i}", i, ttl=1e6)
    assert loads == 1


class SlowLower(MemoryTier):
    local = False

    def __init__(self, clock: Clock) -> None:
        super().__init__(name="lower", clock=clock)
        self.gate = asyncio.Event()

    async def get(self, key: str) -> Entry | None:
        entry = self.peek(key, self._now())
        await self.gate.wait()
        return entry

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        return [await self.get(k) for k in keys]


@pytest.mark.parametrize("change", ["delete", "set"])
async def test_a_local_write_stops_a_read_in_flight_from_filling_l1(change: str) -> None:
    clock = Clock()
    l1, l2 = MemoryTier(clock=clock), SlowLower(clock)
    cache = TieredCache([l1, l2], clock=clock, jitter=0)
    l2.store("k", Entry("old", clock.now + 60))
    reader = asyncio.create_task(cache.get("k"))
    await asyncio.sleep(0)
    l2.gate.set()
    if change == "delete":
        await cache.delete("k")
    else:
        await cache.set("k", "new", ttl=60)
    assert await reader == "old"  # it read before the write: fine to return
    found = l1.lookup("k", clock.now)
    assert found is None or found.value == "new"  # but it must not leave "old" in L1


async def test_cancelling_leader_and_followers_together_runs_nothing_again() -> None:
    flight = SingleFlight()
    calls = 0

    async def fn() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.2)
        return "v"

    tasks = [asyncio.create_task(flight.run("k", fn)) for _ in range(3)]
    await asyncio.sleep(0.01)
    for t in tasks:
        t.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    assert calls == 1
    assert "k" not in flight


async def test_cached_default_keys_tell_types_names_and_modules_apart() -> None:
    cache = TieredCache([MemoryTier()])

    @cache.cached(ttl=60)
    async def echo(x: object = None, y: object = None) -> tuple[object, object]:
        return (x, y)

    assert await echo(1) == (1, None)
    assert await echo("1") == ("1", None)
    assert await echo(True) == (True, None)
    assert await echo("True") == ("True", None)
    assert await echo(y=1) == (None, 1)
    assert await echo(None, 1) == (None, 1)
    assert await echo("x" * 5000) == ("x" * 5000, None)  # long arguments are hashed


def asgi_app(headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> object:
    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers})  # type: ignore[operator]
        for i, chunk in enumerate(chunks):
            more = i < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})  # type: ignore[operator]

    return app


async def test_a_weak_etag_set_by_the_app_matches_weakly() -> None:
    app = HttpCaching(asgi_app([(b"etag", b'W/"v1"')], [b"body"]))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        for inm in ('W/"v1"', '"v1"'):
            r = await c.get("/", headers={"if-none-match": inm})
            assert r.status_code == 304, inm


async def test_streamed_bodies_are_not_held_back() -> None:
    sent: list[dict[str, object]] = []
    gate = asyncio.Event()

    async def app(scope: object, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"event 1", "more_body": True})  # type: ignore[operator]
        await gate.wait()
        await send({"type": "http.response.body", "body": b"", "more_body": False})  # type: ignore[operator]

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def receive() -> dict[str, object]:
        return {"type": "http.request"}

    scope = {"type": "http", "method": "GET", "headers": [], "path": "/"}
    task = asyncio.create_task(HttpCaching(app)(scope, receive, send))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    gate.set()
    await task


async def test_responses_that_set_cookies_are_private() -> None:
    app = HttpCaching(asgi_app([(b"set-cookie", b"s=1")], [b"x"]), s_maxage=300)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/")
        assert r.headers["cache-control"] == "private, max-age=60"
        r = await c.get("/", headers={"authorization": "Bearer t"})
        assert r.headers["cache-control"] == "private, max-age=60"


class CountingLower(SlowLower):
    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.reads = 0

    async def get(self, key: str) -> Entry | None:
        self.reads += 1
        return await super().get(key)


async def test_concurrent_misses_make_one_shared_tier_read_and_one_load() -> None:
    # Found by bench/cache.py: replies from Redis arriving after the load had finished made
    # late callers load again, and a thousand concurrent reads exhausted the client's pool.
    clock = Clock()
    l1, l2 = MemoryTier(clock=clock), CountingLower(clock)
    cache = TieredCache([l1, l2], clock=clock, jitter=0)
    loads = 0

    async def load() -> str:
        nonlocal loads
        loads += 1
        return "v"

    tasks = [asyncio.create_task(cache.get_or_load("k", load, ttl=60)) for _ in range(200)]
    await asyncio.sleep(0)
    l2.gate.set()
    assert await asyncio.gather(*tasks) == ["v"] * 200
    assert (l2.reads, loads) == (1, 1)


@pytest.mark.slow
def test_the_byte_bound_holds_for_what_python_really_allocates() -> None:
    # Found by bench/cache.py: the ghost FIFO kept up to max_entries evicted keys outside the
    # byte bound. Now it holds hashes, as many as there are live entries, and is counted.
    import tracemalloc

    bound = 8 * 1024 * 1024
    tracemalloc.start()
    try:
        tier = MemoryTier(max_entries=1_000_000, max_bytes=bound)
        for i in range(60_000):
            tier.store(f"user:{i}", Entry({"id": i, "name": f"user-{i}"}, 1e12))
        traced, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert tier.bytes <= bound
    assert len(tier._ghost) <= len(tier)
    assert traced <= bound
