"""tailguard.cache: read paths against a floor and against peers, stampedes, invalidation,
memory and hit ratio, in one process and one run.

Six sections, each a table, then the targets:

1. **L1 hit**, ns per call. Every case is a zero-argument ``async def run()`` whose body is
   the one line a user would write: ``return await cache.get(key)`` through the public
   ``TieredCache([MemoryTier()])``, against the floor ``return await floor(key)`` (``async def
   floor(k): return d.get(k)``: awaiting an async function around ``dict.get``), cashews
   ``Cache()`` set up with ``"mem://"`` and aiocache ``SimpleMemoryCache()``, each on its
   defaults. The key is stored beforehand; every case is checked to return the value.
2. **L1 miss, L2 hit**, ns per call, against a bare ``await client.get(key)`` on the same
   pooled ``redis.asyncio`` client (hiredis). The case the target judges is the one a
   deployment pays: ``TieredCache([MemoryTier(), RedisTier(client)])`` with the key removed
   from the L1 first, so every call misses L1, reads Redis, decodes and promotes the value
   back to L1 (the ``remove`` is a synchronous dict operation, well under 1 % of a round trip).
   Timing it this way, rather than only through a cache without L1, keeps the promotion in
   the bill. ``TieredCache([RedisTier(client)])`` (no L1 at all) is shown beside it.
3. **Stampede**: 1,000 concurrent ``get_or_load`` of one cold key, the loader sleeping 20 ms
   and counting its calls, a few rounds with fresh keys and a fresh cache each round. Three
   set-ups: L1 only (the in-process single flight by itself); L1 + Redis L2 on the shared
   client (redis-py's default pool: 100 connections, more raise ``MaxConnectionsError``); and
   L1 + Redis L2 on a ``BlockingConnectionPool`` of 100 (callers wait for a connection).
   Tier errors are counted through a private ``HookRegistry`` (``CacheError`` events).
4. **Invalidation latency**: caches A and B, each ``MemoryTier`` + ``RedisTier`` +
   ``RedisInvalidation`` on one channel, own clients. For each key: ``a.set``; wait until B has
   applied the invalidation that set published (B's ``CacheInvalidated`` event, from a
   private ``HookRegistry``: otherwise it could land after B's read and evict the copy we are
   about to time); ``b.get`` until the key is in B's L1; then the clock runs from just before
   ``await a.delete(key)`` until a tight ``await asyncio.sleep(0)`` loop sees the key gone
   from B's L1 (at most 1 s). The timestamp of B's eviction event and ``a.delete``'s own
   duration (Redis ``DEL`` + ``PUBLISH``) are shown too.
5. **Memory**: ``tracemalloc`` starts, a ``MemoryTier(max_entries=2_000_000, max_bytes=...)``
   is made and filled with small entries (``user:<i>`` -> ``{"id": i, "name": "user-<i>"}``),
   and the traced memory then held is compared with the bound, along with ``tier.bytes``
   (the tier's own estimate) and ``len(tier)``. One change from a plain fill, to keep a
   traced fill of a million entries under a minute: the tier is given a ``sizer`` returning
   numbers computed beforehand with the default ``approx_size`` on identical values. The tier's state and its
   ``bytes`` are exactly those of the default sizer; what tracemalloc no longer pays for is
   ``approx_size``'s own temporary objects, which roughly doubled the traced fill (already
   several times slower than an untraced one: tracemalloc pays for every allocation).
6. **Hit ratio** on Zipf traces (``random.Random`` seeded, so reproducible): ``MemoryTier``
   (S3-FIFO) against ``cachetools.LRUCache`` of the same capacity, each fed the same trace as
   a read-through cache (look up; on a miss, store). Hits are counted over the whole trace,
   cold start included.

Sections 1 and 2 use the method of ``bench/_harness.py`` (interleaved repetitions, median
and min). Sections 2 to 4 need Redis: ``$TAILGUARD_REDIS_URL`` or ``redis://127.0.0.1:6379/0``,
loopback only; keys live under a fresh ``tgbench:<uuid>:`` prefix and are deleted at the end.
Without a reachable loopback Redis, 2 and 4 are skipped and 3 keeps only its L1-only row.

Run it with ``make bench`` (every benchmark), or just this one::

    .venv/bin/python -m bench cache              # ~2 min, most of it the memory section
    .venv/bin/python -m bench cache --quick      # a smoke test, ~20 s
    .venv/bin/python -m bench cache --markdown   # tables for docs/BENCHMARKS.md

The targets printed after the tables are goals, not assertions: the script exits 0 whatever
they say, and ``main()`` returns the results as a dict.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import itertools
import logging
import math
import random
import sys
import time
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiocache
import cachetools
import cashews
import redis.asyncio as aioredis

from bench._harness import (
    Case,
    Settings,
    Stats,
    Target,
    eprint,
    header,
    measure,
    parse_args,
    ratio,
    render_table,
)
from bench._redis import connect, delete_prefix, redis_url
from tailguard.cache import Entry, MemoryTier, RedisTier, TieredCache
from tailguard.cache.invalidation import RedisInvalidation
from tailguard.cache.tiers.memory import approx_size
from tailguard.events import CacheError, CacheInvalidated, HookRegistry

__all__ = ["main"]

OURS, FLOOR, PEERS, BARE = "tailguard", "floor", "peer", "bare"
TTL = 3600.0  # seconds: nothing expires during a run
VALUE = {"id": 1, "name": "user-1"}
MIB = 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    """The sizes of the non-timed sections, full run or ``--quick``."""

    storm_callers: int = 1000
    storm_rounds: int = 5
    storm_loader_seconds: float = 0.02
    invalidation_keys: int = 500
    memory_entries: int = 1_000_000
    memory_bounds: tuple[int, ...] = (256 * MIB, 64 * MIB)
    memory_max_seconds: float = 90.0  # per fill; the fill stops early (and says so) past it
    zipf_keys: int = 100_000
    zipf_requests: int = 300_000
    zipf_alphas: tuple[float, ...] = (0.8, 1.0, 1.2)
    zipf_capacities: tuple[float, ...] = (0.01, 0.10)
    zipf_seed: int = 20261127


QUICK = Plan(
    storm_rounds=3,
    invalidation_keys=100,
    memory_entries=100_000,
    memory_bounds=(256 * MIB, 32 * MIB),
    zipf_requests=100_000,
)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100) of ``values``; NaN if there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


async def wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    """Pass the loop (then sleep 0.1 ms at a time) until ``condition()``, at most ``seconds``."""
    deadline = time.perf_counter() + seconds
    for spin in range(1_000_000):
        if condition():
            return True
        if time.perf_counter() > deadline:
            break
        await asyncio.sleep(0 if spin < 1000 else 0.0001)
    return condition()


# -- 1. L1 hit ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Spec:
    key: str
    group: str
    label: str
    run: Callable[[], Awaitable[object]]
    expect: Callable[[object], bool]


async def l1_specs(prefix: str) -> list[Spec]:
    key = f"{prefix}l1"
    d = {key: VALUE}

    async def floor(k: str) -> object:
        return d.get(k)

    async def floor_run() -> object:
        return await floor(key)

    ours = TieredCache([MemoryTier()], name="bench-l1")
    await ours.set(key, VALUE, ttl=TTL)

    async def ours_run() -> object:
        return await ours.get(key)

    cashews_cache = cashews.Cache()
    cashews_cache.setup("mem://")
    await cashews_cache.set(key, VALUE, expire=TTL)

    async def cashews_run() -> object:
        return await cashews_cache.get(key)

    aio = aiocache.SimpleMemoryCache()
    await aio.set(key, VALUE, ttl=int(TTL))

    async def aiocache_run() -> object:
        return await aio.get(key)

    def is_value(result: object) -> bool:
        return result == VALUE

    return [
        Spec(
            "floor",
            FLOOR,
            "await floor(key)  # async def floor(k): return d.get(k)",
            floor_run,
            is_value,
        ),
        Spec("ours", OURS, "await TieredCache([MemoryTier()]).get(key)", ours_run, is_value),
        Spec(
            "cashews",
            PEERS,
            'await cashews Cache().setup("mem://").get(key)',
            cashews_run,
            is_value,
        ),
        Spec(
            "aiocache", PEERS, "await aiocache SimpleMemoryCache().get(key)", aiocache_run, is_value
        ),
    ]


# -- 2. L1 miss, L2 hit -----------------------------------------------------------------------------


async def l2_specs(client: Any, prefix: str) -> list[Spec]:
    key = f"{prefix}l2"
    l1 = MemoryTier()
    promoting = TieredCache([l1, RedisTier(client)], name="bench-l2")
    await promoting.set(key, VALUE, ttl=TTL)
    no_l1 = TieredCache([RedisTier(client)], name="bench-l2-only")

    async def bare_run() -> object:
        return await client.get(key)

    async def miss_run() -> object:
        l1.remove(key)
        return await promoting.get(key)

    async def no_l1_run() -> object:
        return await no_l1.get(key)

    def promoted(result: object) -> bool:
        return result == VALUE and key in l1

    return [
        Spec(
            "bare_get",
            BARE,
            "await client.get(key)  # redis.asyncio + hiredis",
            bare_run,
            lambda result: isinstance(result, bytes),
        ),
        Spec(
            "l1_miss",
            OURS,
            "l1.remove(key); await TieredCache([MemoryTier(), RedisTier(client)]).get(key)",
            miss_run,
            promoted,
        ),
        Spec(
            "no_l1",
            OURS,
            "await TieredCache([RedisTier(client)]).get(key)",
            no_l1_run,
            lambda result: result == VALUE,
        ),
    ]


async def verify(specs: Sequence[Spec]) -> None:
    """Run every case once: it must return what it should (the stored value, a hit)."""
    for spec in specs:
        result = await spec.run()
        if not spec.expect(result):
            raise RuntimeError(f"{spec.label}: returned {result!r}")


async def time_specs(specs: Sequence[Spec], settings: Settings, section: str) -> dict[str, Stats]:
    await verify(specs)
    cases = [Case(s.key, s.group, s.run, s.label) for s in specs]
    eprint(f"cache: {section}: timing {len(cases)} cases x {settings.reps} repetitions ...")
    return await measure(
        cases, reps=settings.reps, sample_seconds=settings.sample_seconds, progress=None
    )


# -- 3. stampede ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class StormResult:
    label: str
    loader_calls: tuple[int, ...]  # per round
    tier_errors: tuple[int, ...]  # CacheError events per round (breaker rejections included)
    logged: int  # warnings tailguard.cache logged (held back from stderr while storming)
    seconds: tuple[float, ...]  # per round, first caller started to last caller answered
    all_answered: bool  # every caller of every round got the loader's value


class _CountingFilter(logging.Filter):
    """Counts the records of a logger and holds them back (1,000 callers, 1 line each)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        self.count += 1
        return False


async def storm(
    label: str, make_cache: Callable[[HookRegistry], TieredCache], prefix: str, plan: Plan
) -> StormResult:
    calls_per_round: list[int] = []
    errors_per_round: list[int] = []
    seconds: list[float] = []
    answered = True
    held = _CountingFilter()
    logger = logging.getLogger("tailguard.cache")
    logger.addFilter(held)
    try:
        for round_ in range(plan.storm_rounds):
            hooks = HookRegistry()
            errors = 0

            def on_error(_: CacheError) -> None:
                nonlocal errors
                errors += 1

            hooks.subscribe(on_error, CacheError)
            cache = make_cache(hooks)
            key = f"{prefix}storm:{uuid.uuid4().hex}"
            calls = 0
            loaded = {"id": round_, "name": f"storm-{round_}"}

            async def loader(loaded: dict[str, object] = loaded) -> dict[str, object]:
                nonlocal calls
                calls += 1
                await asyncio.sleep(plan.storm_loader_seconds)
                return loaded

            started = time.perf_counter()
            try:
                results = await asyncio.wait_for(
                    asyncio.gather(
                        *(
                            cache.get_or_load(key, loader, ttl=TTL)
                            for _ in range(plan.storm_callers)
                        )
                    ),
                    timeout=10.0,
                )
                answered = answered and all(r == loaded for r in results)
            except TimeoutError:
                answered = False
            seconds.append(time.perf_counter() - started)
            calls_per_round.append(calls)
            errors_per_round.append(errors)
            await cache.aclose()
    finally:
        logger.removeFilter(held)
    return StormResult(
        label,
        tuple(calls_per_round),
        tuple(errors_per_round),
        held.count,
        tuple(seconds),
        answered,
    )


async def storms(client: Any | None, url: str, prefix: str, plan: Plan) -> list[StormResult]:
    eprint(
        f"cache: stampede: {plan.storm_callers} concurrent get_or_load x "
        f"{plan.storm_rounds} rounds ..."
    )
    out = [
        await storm(
            "L1 only: TieredCache([MemoryTier()])",
            lambda hooks: TieredCache([MemoryTier()], name="bench-storm", hooks=hooks),
            prefix,
            plan,
        )
    ]
    if client is None:
        return out
    out.append(
        await storm(
            "L1 + Redis L2, shared client (redis-py default pool: 100 connections)",
            lambda hooks: TieredCache(
                [MemoryTier(), RedisTier(client)], name="bench-storm", hooks=hooks
            ),
            prefix,
            plan,
        )
    )
    blocking = aioredis.Redis.from_pool(
        aioredis.BlockingConnectionPool.from_url(url, max_connections=100)
    )
    try:
        out.append(
            await storm(
                "L1 + Redis L2, BlockingConnectionPool(max_connections=100)",
                lambda hooks: TieredCache(
                    [MemoryTier(), RedisTier(blocking)], name="bench-storm", hooks=hooks
                ),
                prefix,
                plan,
            )
        )
    finally:
        await blocking.aclose()
    return out


# -- 4. invalidation latency ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class InvalidationResult:
    keys: int
    gone_ms: tuple[float, ...]  # delete started -> polled gone from B's L1
    evicted_ms: tuple[float, ...]  # delete started -> B's eviction event
    delete_ms: tuple[float, ...]  # a.delete() itself
    not_cached: int  # keys B never got into its L1 (skipped)
    late: int  # keys still in B's L1 after 1 s (counted as 1,000 ms)
    flushes: int  # whole-L1 flushes B made during the run (a listener reconnect)

    def p99_gone(self) -> float:
        return percentile(self.gone_ms, 99)


async def invalidation_latency(url: str, prefix: str, plan: Plan) -> InvalidationResult:
    eprint(f"cache: invalidation: {plan.invalidation_keys} keys ...")
    channel = f"{prefix}invalidate"
    client_a = aioredis.Redis.from_url(url)
    client_b = aioredis.Redis.from_url(url)
    inv_a = RedisInvalidation(client_a, channel=channel)
    inv_b = RedisInvalidation(client_b, channel=channel)
    hooks_b = HookRegistry()
    evicted: dict[str, int] = {}  # key -> perf_counter_ns when B evicted it
    flushes = 0

    def on_invalidated(event: CacheInvalidated) -> None:
        nonlocal flushes
        if event.key == "*":
            flushes += 1
        else:
            evicted[event.key] = time.perf_counter_ns()

    hooks_b.subscribe(on_invalidated, CacheInvalidated)
    a = TieredCache([MemoryTier(), RedisTier(client_a)], name="bench-a", invalidation=inv_a)
    l1_b = MemoryTier()
    b = TieredCache([l1_b, RedisTier(client_b)], name="bench-b", invalidation=inv_b, hooks=hooks_b)
    gone: list[float] = []
    evicted_at: list[float] = []
    deletes: list[float] = []
    not_cached = late = 0
    clock = time.perf_counter_ns
    try:
        async with a, b:
            if not (inv_a.connected and inv_b.connected):
                raise RuntimeError("the invalidation listeners did not subscribe within 5 s")
            flushes = 0  # the flush on subscribing is expected
            for i in range(plan.invalidation_keys):
                key = f"{prefix}inv:{i}"
                await a.set(key, VALUE, ttl=60)
                # B must have applied the invalidation a.set published before it caches the
                # key, or that late message could be what evicts the copy we time.
                await wait_until(lambda key=key: key in evicted, 1.0)
                evicted.pop(key, None)
                for _ in range(100):
                    await b.get(key)
                    if key in l1_b:
                        break
                    await asyncio.sleep(0.001)
                else:
                    not_cached += 1
                    continue
                start = clock()
                await a.delete(key)
                deleted = clock()
                deadline = start + 1_000_000_000
                for _ in range(10_000_000):
                    if key not in l1_b or clock() > deadline:
                        break
                    await asyncio.sleep(0)
                seen = clock()
                deletes.append((deleted - start) / 1e6)
                if key in l1_b:
                    late += 1
                    gone.append(1000.0)
                    continue
                gone.append((seen - start) / 1e6)
                if key in evicted:
                    evicted_at.append((evicted.pop(key) - start) / 1e6)
    finally:
        await client_a.aclose()
        await client_b.aclose()
    return InvalidationResult(
        plan.invalidation_keys,
        tuple(gone),
        tuple(evicted_at),
        tuple(deletes),
        not_cached,
        late,
        flushes,
    )


# -- 5. memory -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class MemoryResult:
    max_bytes: int
    filled: int  # entries stored (all of them unless the time bound cut the fill short)
    held: int  # len(tier)
    estimate: int  # tier.bytes
    traced: int  # tracemalloc current after the fill
    peak: int  # tracemalloc peak during the fill
    seconds: float

    @property
    def traced_ratio(self) -> float:
        return self.traced / self.max_bytes


def user(i: int) -> dict[str, object]:
    return {"id": i, "name": f"user-{i}"}


def fill_memory(max_bytes: int, sizes: Sequence[int], plan: Plan) -> MemoryResult:
    """Fill a fresh tier under tracemalloc with ``len(sizes)`` entries (see the docstring)."""
    remaining = iter(sizes)

    def presized(_: object) -> int:
        return next(remaining)  # approx_size of this very value, computed beforehand

    expires_at = time.time() + TTL
    gc.collect()
    started = time.perf_counter()
    deadline = started + plan.memory_max_seconds
    tracemalloc.start()
    try:
        tier = MemoryTier(max_entries=2_000_000, max_bytes=max_bytes, sizer=presized)
        filled = 0
        for block in range(0, len(sizes), 10_000):
            for i in range(block, min(block + 10_000, len(sizes))):
                tier.store(f"user:{i}", Entry(user(i), expires_at))
            filled = min(block + 10_000, len(sizes))
            if time.perf_counter() > deadline:
                break
        traced, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if filled == len(sizes) and next(remaining, None) is not None:
        raise RuntimeError("the tier did not size each stored value exactly once")
    seconds = time.perf_counter() - started
    result = MemoryResult(max_bytes, filled, len(tier), tier.bytes, traced, peak, seconds)
    del tier
    gc.collect()
    return result


def memory(plan: Plan) -> list[MemoryResult]:
    n = plan.memory_entries
    eprint(f"cache: memory: sizing {n:,} values with approx_size (untraced) ...")
    sizes = [approx_size(user(i)) for i in range(n)]
    sample = random.Random(plan.zipf_seed).sample(range(n), min(n, 1000))
    if any(approx_size(user(i)) != sizes[i] for i in sample):
        raise RuntimeError("approx_size is not deterministic on equal values")
    out = []
    for bound in plan.memory_bounds:
        eprint(f"cache: memory: {n:,} entries into max_bytes={bound / MIB:g} MiB (traced) ...")
        out.append(fill_memory(bound, sizes, plan))
    return out


# -- 6. hit ratio ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class HitRow:
    alpha: float
    capacity: int
    ours: float
    lru: float

    @property
    def gain_pp(self) -> float:
        return (self.ours - self.lru) * 100


def zipf_trace(alpha: float, plan: Plan) -> list[str]:
    """``zipf_requests`` keys drawn with P(rank r) ~ 1/r**alpha; ranks mapped to keys by a
    seeded shuffle, so that popularity has nothing to do with insertion order."""
    rng = random.Random(f"{plan.zipf_seed}:{alpha}")
    keys = [f"key:{i}" for i in range(plan.zipf_keys)]
    rng.shuffle(keys)
    cum = list(itertools.accumulate(1.0 / r**alpha for r in range(1, plan.zipf_keys + 1)))
    return rng.choices(keys, cum_weights=cum, k=plan.zipf_requests)


def ours_hit_ratio(trace: Sequence[str], capacity: int) -> float:
    tier = MemoryTier(max_entries=capacity, max_bytes=1 << 40)
    entry = Entry(1, math.inf)
    lookup, store = tier.lookup, tier.store
    hits = 0
    for key in trace:
        if lookup(key, 0.0) is not None:
            hits += 1
        else:
            store(key, entry)
    return hits / len(trace)


def lru_hit_ratio(trace: Sequence[str], capacity: int) -> float:
    cache: cachetools.LRUCache[str, int] = cachetools.LRUCache(maxsize=capacity)
    get = cache.get  # a hit moves the key to the front
    hits = 0
    for key in trace:
        if get(key) is not None:
            hits += 1
        else:
            cache[key] = 1
    return hits / len(trace)


def hit_ratios(plan: Plan) -> list[HitRow]:
    eprint(
        f"cache: hit ratio: {plan.zipf_requests:,} requests over {plan.zipf_keys:,} keys, "
        f"alpha {plan.zipf_alphas} ..."
    )
    rows = []
    for alpha in plan.zipf_alphas:
        trace = zipf_trace(alpha, plan)
        for fraction in plan.zipf_capacities:
            capacity = max(1, round(plan.zipf_keys * fraction))
            rows.append(
                HitRow(
                    alpha, capacity, ours_hit_ratio(trace, capacity), lru_hit_ratio(trace, capacity)
                )
            )
    return rows


# -- Redis ----------------------------------------------------------------------------------------


# -- the run ---------------------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class Measured:
    l1_specs: list[Spec]
    l1: dict[str, Stats]
    l2_specs: list[Spec] = dataclasses.field(default_factory=list)
    l2: dict[str, Stats] = dataclasses.field(default_factory=dict)
    storms: list[StormResult] = dataclasses.field(default_factory=list)
    invalidation: InvalidationResult | None = None
    memory: list[MemoryResult] = dataclasses.field(default_factory=list)
    hits: list[HitRow] = dataclasses.field(default_factory=list)
    redis_skipped: str = ""
    started: float = dataclasses.field(default_factory=time.perf_counter)


async def run_async(settings: Settings, plan: Plan) -> Measured:
    prefix = f"tgbench:{uuid.uuid4().hex}:"
    specs = await l1_specs(prefix)
    measured = Measured(specs, await time_specs(specs, settings, "L1 hit"))
    url = redis_url()
    client, why = await connect(url)
    if client is None:
        measured.redis_skipped = f"Redis at {url} unusable ({why})"
        eprint(f"cache: {measured.redis_skipped}: skipping the Redis sections")
        measured.storms = await storms(None, url, prefix, plan)
        return measured
    try:
        measured.l2_specs = await l2_specs(client, prefix)
        measured.l2 = await time_specs(measured.l2_specs, settings, "L1 miss, L2 hit")
        measured.storms = await storms(client, url, prefix, plan)
        measured.invalidation = await invalidation_latency(url, prefix, plan)
    finally:
        deleted = await delete_prefix(client, prefix)
        eprint(f"cache: deleted {deleted} Redis keys under {prefix}")
        await client.aclose()
    return measured


# -- report ----------------------------------------------------------------------------------------


def on_min(stats: dict[str, Stats], a: str, b: str) -> str:
    return f"; on minimums {ratio(stats[a].best, stats[b].best):.2f}"


def targets(m: Measured) -> list[Target]:
    """The issue's goals; timed ones judged on medians, with the ratio of the minimums too."""
    l1 = {k: s.median for k, s in m.l1.items()}
    goals = [
        Target(
            "1. L1 hit: TieredCache.get / floor",
            ratio(l1["ours"], l1["floor"]),
            "<=",
            3.0,
            f"{l1['ours']:.0f} ns vs {l1['floor']:.0f} ns" + on_min(m.l1, "ours", "floor"),
        ),
        Target(
            "1. L1 hit: cashews / ours",
            ratio(l1["cashews"], l1["ours"]),
            ">=",
            8.0,
            f"{l1['cashews']:.0f} ns vs {l1['ours']:.0f} ns" + on_min(m.l1, "cashews", "ours"),
        ),
        Target(
            "1. L1 hit: aiocache / ours",
            ratio(l1["aiocache"], l1["ours"]),
            ">=",
            8.0,
            f"{l1['aiocache']:.0f} ns vs {l1['ours']:.0f} ns" + on_min(m.l1, "aiocache", "ours"),
        ),
    ]
    if m.l2:
        l2 = {k: s.median for k, s in m.l2.items()}
        goals.append(
            Target(
                "2. L1 miss, L2 hit: TieredCache.get / bare GET",
                ratio(l2["l1_miss"], l2["bare_get"]),
                "<=",
                1.3,
                f"{l2['l1_miss']:.0f} ns vs {l2['bare_get']:.0f} ns"
                + on_min(m.l2, "l1_miss", "bare_get")
                + f"; without L1 {ratio(l2['no_l1'], l2['bare_get']):.2f}",
            )
        )
    for s in m.storms:
        goals.append(
            Target(
                f"3. stampede, {s.label}: most loader calls in a round",
                max(s.loader_calls),
                "==",
                1.0,
                f"per round {', '.join(map(str, s.loader_calls))}"
                + ("" if s.all_answered else "; NOT every caller got the value"),
            )
        )
    if m.invalidation is not None:
        inv = m.invalidation
        goals.append(
            Target(
                "4. invalidation: p99 ms from a.delete() to gone from B's L1",
                inv.p99_gone(),
                "<",
                5.0,
                f"p50 {percentile(inv.gone_ms, 50):.2f} ms, max {max(inv.gone_ms, default=0):.2f}"
                f" ms, {len(inv.gone_ms)} keys",
            )
        )
    for r in m.memory:
        goals.append(
            Target(
                f"5. memory: traced MiB with max_bytes={r.max_bytes / MIB:g} MiB",
                r.traced / MIB,
                "<=",
                r.max_bytes / MIB,
                f"traced/max_bytes {r.traced_ratio:.2f}; {r.held:,} entries held",
            )
        )
    if m.hits:
        worst = min(m.hits, key=lambda h: h.gain_pp)
        goals.append(
            Target(
                "6. hit ratio: least (ours - LRU) over the rows, percentage points",
                worst.gain_pp,
                ">=",
                0.0,
                f"alpha {worst.alpha:g}, capacity {worst.capacity:,}: "
                f"{worst.ours:.2%} vs {worst.lru:.2%}",
            )
        )
    return goals


def timed_table(
    specs: Sequence[Spec], stats: dict[str, Stats], base: str, *, markdown: bool
) -> str:
    floor = stats[base].median
    rows = [
        [
            spec.group,
            f"`{spec.label}`" if markdown else spec.label,
            f"{stats[spec.key].median:,.0f}",
            f"{stats[spec.key].best:,.0f}",
            f"{stats[spec.key].median / floor:.2f}x",
        ]
        for spec in specs
    ]
    return render_table(
        ["group", "case", "ns/call", "min", f"x {base}"],
        rows,
        markdown=markdown,
        align=["<", "<", ">", ">", ">"],
    )


def storm_table(results: Sequence[StormResult], plan: Plan, *, markdown: bool) -> str:
    rows = [
        [
            s.label,
            ", ".join(map(str, s.loader_calls)),
            ", ".join(map(str, s.tier_errors)),
            str(s.logged),
            f"{sorted(s.seconds)[len(s.seconds) // 2] * 1000:,.0f}",
            "yes" if s.all_answered else "NO",
        ]
        for s in results
    ]
    return render_table(
        [
            f"set-up ({plan.storm_callers} callers, loader {plan.storm_loader_seconds * 1000:g} ms)",
            "loader calls / round",
            "tier errors / round",
            "warnings",
            "ms / round",
            "all answered",
        ],
        rows,
        markdown=markdown,
        align=["<", ">", ">", ">", ">", "<"],
    )


def invalidation_table(inv: InvalidationResult, *, markdown: bool) -> str:
    def row(label: str, values: Sequence[float]) -> list[str]:
        return [
            label,
            str(len(values)),
            f"{percentile(values, 50):.3f}",
            f"{percentile(values, 99):.3f}",
            f"{max(values, default=math.nan):.3f}",
        ]

    after = [g - d for g, d in zip(inv.gone_ms, inv.delete_ms, strict=True) if g < 1000.0]
    return render_table(
        ["interval", "keys", "p50 ms", "p99 ms", "max ms"],
        [
            row("a.delete() called -> key gone from B's L1 (polled): the target", inv.gone_ms),
            row("a.delete() called -> B's eviction ran (CacheInvalidated event)", inv.evicted_ms),
            row("a.delete() called -> it returned (Redis DEL + PUBLISH)", inv.delete_ms),
            row("a.delete() returned -> key gone from B's L1 (pub/sub leg)", after),
        ],
        markdown=markdown,
        align=["<", ">", ">", ">", ">"],
    )


def memory_table(results: Sequence[MemoryResult], *, markdown: bool) -> str:
    rows = [
        [
            f"{r.max_bytes / MIB:g}",
            f"{r.filled:,}",
            f"{r.held:,}",
            f"{r.estimate / MIB:.1f}",
            f"{r.traced / MIB:.1f}",
            f"{r.peak / MIB:.1f}",
            f"{r.traced_ratio:.2f}",
            f"{r.traced / max(1, r.held):,.0f}",
            f"{r.estimate / max(1, r.held):,.0f}",
            f"{r.seconds:.1f}",
        ]
        for r in results
    ]
    return render_table(
        [
            "max_bytes MiB",
            "stored",
            "len(tier)",
            "tier.bytes MiB",
            "traced MiB",
            "peak MiB",
            "traced/max",
            "traced B/entry",
            "estimate B/entry",
            "fill s",
        ],
        rows,
        markdown=markdown,
        align=[">"] * 10,
    )


def hits_table(rows: Sequence[HitRow], plan: Plan, *, markdown: bool) -> str:
    return render_table(
        ["alpha", "capacity", "MemoryTier (S3-FIFO)", "cachetools LRUCache", "ours - LRU (pp)"],
        [
            [
                f"{h.alpha:g}",
                f"{h.capacity:,} ({h.capacity / plan.zipf_keys:.0%})",
                f"{h.ours:.2%}",
                f"{h.lru:.2%}",
                f"{h.gain_pp:+.2f}",
            ]
            for h in rows
        ],
        markdown=markdown,
        align=[">", ">", ">", ">", ">"],
    )


def results(settings: Settings, plan: Plan, m: Measured, goals: list[Target]) -> dict[str, Any]:
    def timed(specs: Sequence[Spec], stats: dict[str, Stats], base: str) -> dict[str, Any]:
        return {
            s.key: {
                "label": s.label,
                "group": s.group,
                "calls_per_sample": stats[s.key].calls,
                "median_ns": stats[s.key].median,
                "min_ns": stats[s.key].best,
                f"x_{base}": stats[s.key].median / stats[base].median,
            }
            for s in specs
        }

    inv = m.invalidation
    return {
        "benchmark": "cache",
        "python": sys.version,
        "settings": dataclasses.asdict(settings),
        "plan": dataclasses.asdict(plan),
        "redis_skipped": m.redis_skipped,
        "l1_hit": timed(m.l1_specs, m.l1, "floor"),
        "l2_hit": timed(m.l2_specs, m.l2, "bare_get") if m.l2 else {},
        "stampede": [dataclasses.asdict(s) for s in m.storms],
        "invalidation": None
        if inv is None
        else {
            "keys": inv.keys,
            "p50_ms": percentile(inv.gone_ms, 50),
            "p99_ms": percentile(inv.gone_ms, 99),
            "max_ms": max(inv.gone_ms, default=math.nan),
            "evicted_p50_ms": percentile(inv.evicted_ms, 50),
            "delete_p50_ms": percentile(inv.delete_ms, 50),
            "not_cached": inv.not_cached,
            "late": inv.late,
            "flushes": inv.flushes,
        },
        "memory": [{**dataclasses.asdict(r), "traced_ratio": r.traced_ratio} for r in m.memory],
        "hit_ratio": [{**dataclasses.asdict(h), "gain_pp": h.gain_pp} for h in m.hits],
        "seconds": time.perf_counter() - m.started,
        "targets": [t.as_dict() for t in goals],
    }


def report(settings: Settings, plan: Plan, m: Measured, goals: list[Target]) -> None:
    md = settings.markdown
    title = "tailguard.cache: read paths, stampede, invalidation, memory, hit ratio"
    lines = header(title, settings)
    if md:
        print("\n".join([f"### {lines[0]}", "", *(f"{line}  " for line in lines[1:]), ""]))
    else:
        print("\n".join([*lines, ""]))

    def section(heading: str, body: str) -> None:
        print(f"#### {heading}\n" if md else f"{heading}\n")
        print(body)
        print()

    section(
        "1. L1 hit, ns per call (key stored beforehand)",
        timed_table(m.l1_specs, m.l1, "floor", markdown=md),
    )
    if m.redis_skipped:
        print(f"Sections 2 and 4 skipped, and 3 without Redis: {m.redis_skipped}\n")
    if m.l2:
        section(
            "2. L1 miss, L2 hit, ns per call (same pooled redis.asyncio client, hiredis)",
            timed_table(m.l2_specs, m.l2, "bare_get", markdown=md),
        )
    section(
        "3. Stampede: concurrent get_or_load of one cold key, fresh key and cache each round",
        storm_table(m.storms, plan, markdown=md),
    )
    if m.invalidation is not None:
        inv = m.invalidation
        extra = (
            f"{inv.not_cached} key(s) never reached B's L1 (skipped), "
            f"{inv.late} still there after 1 s, {inv.flushes} whole-L1 flush(es) during the run"
        )
        section(
            f"4. Invalidation latency, A -> B over pub/sub ({inv.keys} keys)",
            invalidation_table(inv, markdown=md) + f"\n\n{extra}",
        )
    section(
        f"5. Memory: MemoryTier(max_entries=2_000_000) filled with {plan.memory_entries:,} "
        "small entries, traced by tracemalloc",
        memory_table(m.memory, markdown=md),
    )
    section(
        f"6. Hit ratio on Zipf traces: {plan.zipf_requests:,} requests over "
        f"{plan.zipf_keys:,} keys (seed {plan.zipf_seed})",
        hits_table(m.hits, plan, markdown=md),
    )
    if md:
        print("\n".join(f"- {t.line()}" for t in goals))
    else:
        print("Targets:")
        print("\n".join(f"  {t.line()}" for t in goals))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the tables and the targets; return the results."""
    settings = parse_args(
        argv,
        prog="python -m bench cache",
        description="tailguard.cache: L1/L2 read cost, stampede, invalidation, memory, hit ratio.",
    )
    plan = QUICK if settings.quick else Plan()
    measured = asyncio.run(run_async(settings, plan))
    measured.memory = memory(plan)
    measured.hits = hit_ratios(plan)
    goals = targets(measured)
    report(settings, plan, measured, goals)
    return results(settings, plan, measured, goals)


if __name__ == "__main__":
    main()
