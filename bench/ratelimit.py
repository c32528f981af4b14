"""tailguard.ratelimit: checks per second over Redis and in memory, and Redis memory per key,
against a GET floor, the usual sorted-set recipe and the ``limits`` library, in one process
and one run.

Three sections, each a table, then the targets:

1. **Redis checks per second**, one ``redis.asyncio.Redis`` client (hiredis, redis-py's
   default pool) for everything, in two modes: *sequential* (one coroutine awaiting checks
   back to back) and *50 tasks* (``TASKS`` coroutines gathered, sharing the client and
   sharing the ``n`` calls of a sample; checks/s is then ``n`` over the wall time). The cases:

   * the floor, ``await client.get(key)`` on a stored key;
   * ours, ``await limiter.check(key)`` for ``GCRA``, ``SlidingWindowCounter``,
     ``FixedWindow`` and ``SlidingLog`` over ``RedisStorage(client)`` (one ``EVALSHA``);
   * the guide's sliding window: a sorted set, ``client.pipeline(transaction=True)`` with
     ``ZREMRANGEBYSCORE key 0 now-window; ZADD key {now: now}; ZCARD key; EXPIRE key window``
     per check (``MULTI``/``EXEC``), admitted when the count is within the limit;
   * ``limits``: ``await MovingWindowRateLimiter(storage).hit(item, key)`` and the same with
     ``SlidingWindowCounterRateLimiter``, on ``limits.aio.storage.RedisStorage`` with
     ``implementation="redispy"`` and ``connection_pool=client.connection_pool``: the same
     pool as every other case (a Lua script per hit too).

   Two load levels. **Admitted** (the targets): ``1000000/minute``, so every check is admitted
   and writes. The logs (our sorted set, the guide's, ``limits``' list) keep every admitted
   request of the run: Redis' costs there are O(log n) or O(1) in the log's length, so that
   growth is left in. **Saturated**: ``1000/minute`` on a key filled to its limit beforehand,
   so nearly every check is refused (GCRA admits one every 60 ms, the windows as they slide)
   and the scripts take their read-only path. Our rows there run on
   ``RedisStorage(client, local_reject=False)``, a round trip per check like ``limits``;
   one more row shows GCRA on the default storage, which remembers a refusal and refuses the
   key again in process, without a round trip, until its ``retry_after``. That row runs at
   ``1000/hour``: at ``1000/minute`` a check comes back every 60 ms, and between two samples
   of a case (the other cases run in between) enough come back that each sample would open
   with a burst of round trips, so its figure would depend on the sample's length; in a
   sustained flood it is one or two round trips per 60 ms either way. The guide's recipe
   has no refusal path (it adds every request to the set), so it has no saturated row.
2. **Redis memory per key**: 1,000 checks at ``1000/minute`` on one 20-character key
   (``user:1234567890abcde``; all are admitted), then ``MEMORY USAGE key SAMPLES 0`` summed
   over the state keys of that limiter and key: ``state_keys(limiter, key)`` for ours, the
   guide's one sorted set, and for ``limits`` whatever a ``SCAN`` of that storage's own key
   prefix finds. ``MEMORY USAGE`` counts the key's name too, and this run's names carry a
   ``tgbench:<uuid>`` prefix (40 characters, against 5 for our default ``tg:rl`` and
   6 for ``limits``' ``LIMITS``). So each value is also measured once renamed (``RENAMENX``,
   which leaves the value as it is; then back) to a name under the run's prefix exactly as
   long as the one the library's defaults would give it: only a name's length counts. The
   target is judged on that figure. The guide has no default name, so only its figure as
   named in the run is given.
3. **In memory**, checks per second, sequential, one coroutine: our ``MemoryStorage`` for the
   four algorithms against ``limits.aio.storage.MemoryStorage`` with the matching strategy
   (``FixedWindowRateLimiter``, ``SlidingWindowCounterRateLimiter``,
   ``MovingWindowRateLimiter`` for the log; ``limits`` has no GCRA, so ours is compared with
   its fixed window, the cheapest it has). Every case is ``await
   check(next(keys))`` with its own fresh storage and key iterator, beside a floor ``await
   floor(next(keys))`` (``async def floor(k): return k``). Three workloads:

   * *one key*, ``1000000/minute``, all admitted; the key is renewed every 1,000 checks.
     Without that, a log on a single key keeps every check of the run, and ``limits``' in
     memory moving window inserts each one at the front of a Python list (O(length)), so
     its cost would grow with the run's length rather than measure a check. With it, every
     log holds at most 1,000 entries, as in section 2;
   * *10,000 keys* in a seeded random order (a precomputed sequence of 200,000 draws,
     cycled), ``1000000/minute``, all admitted. Not round-robin: ``limits``' expiry task
     walks its keys in insertion order, holding each key's lock across a thread hop, and a
     round-robin caller (same order) falls in step with it and waits for that hop on nearly
     every check: that measured the convoy (a median over 100 us a check on a small VM),
     not the check;
   * *saturated*: one key at ``1000/minute`` filled to its limit beforehand.

   ``limits``' in-memory storage runs an expiry task in the background (for the moving
   window a thread hop per key, for the counters a walk over every key); it shares the
   event loop with the timed coroutine, as it would in production.

Sections 1 and 3 use the method of ``bench/_harness.py`` (interleaved repetitions, median and
min ns per check, shown as checks/s: ``1e9 / ns``). Every case is run once before timing and
must answer as its load level says (admitted, or refused). Sections 1 and 2 need Redis:
``$TAILGUARD_REDIS_URL`` or ``redis://127.0.0.1:6379/0``, loopback only; keys live under a
fresh ``tgbench:<uuid>`` prefix and are deleted at the end. Without a reachable loopback
Redis, they are skipped.

Run it with ``make bench`` (every benchmark), or just this one::

    .venv/bin/python -m bench ratelimit              # ~2 min
    .venv/bin/python -m bench ratelimit --quick      # a smoke test, ~20 s
    .venv/bin/python -m bench ratelimit --markdown   # tables for docs/BENCHMARKS.md

The targets printed after the tables are goals, not assertions: the script exits 0 whatever
they say, and ``main()`` returns the results as a dict.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from importlib import metadata
from typing import Any

import limits
import limits.aio.storage
import limits.aio.strategies
from redis.utils import HIREDIS_AVAILABLE

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
from tailguard.ratelimit import (
    GCRA,
    Decision,
    FixedWindow,
    MemoryStorage,
    RedisStorage,
    SlidingLog,
    SlidingWindowCounter,
)
from tailguard.ratelimit.algorithms import Algorithm
from tailguard.ratelimit.storage.base import state_keys

__all__ = ["main"]

OURS, FLOOR, GUIDE, PEERS = "tailguard", "floor", "guide", "limits"
ADMIT = "1000000/minute"  # every check admitted
TIGHT = "1000/minute"  # saturated: filled to the limit first, then nearly every check refused
TIGHT_LIMIT = 1000
LOCAL = "1000/hour"  # the local-reject row: a GCRA check comes back every 3.6 s, not 60 ms
WINDOW = 60  # seconds, the period of both rates
TASKS = 50
MEMORY_KEY = "user:1234567890abcde"  # 20 characters
SEQ, CONC = "seq", f"x{TASKS}"

ALGORITHMS: tuple[tuple[str, type[Algorithm]], ...] = (
    ("gcra", GCRA),
    ("swc", SlidingWindowCounter),
    ("fw", FixedWindow),
    ("sl", SlidingLog),
)
# Ours -> the limits strategy it is compared with (limits has no GCRA: its fixed window).
PEER_OF = {"gcra": "fw", "swc": "swc", "fw": "fw", "sl": "mw"}
PEER_STRATEGIES: dict[str, tuple[str, type[limits.aio.strategies.RateLimiter]]] = {
    "fw": ("FixedWindowRateLimiter", limits.aio.strategies.FixedWindowRateLimiter),
    "swc": (
        "SlidingWindowCounterRateLimiter",
        limits.aio.strategies.SlidingWindowCounterRateLimiter,
    ),
    "mw": ("MovingWindowRateLimiter", limits.aio.strategies.MovingWindowRateLimiter),
}


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    """The sizes of the untimed parts, full run or ``--quick`` (the same: they are small)."""

    many_keys: int = 10_000
    many_draws: int = 200_000
    seed: int = 20261127
    renew_every: int = 1_000
    memory_hits: int = 1_000


@dataclasses.dataclass(frozen=True, slots=True)
class Spec:
    key: str
    group: str
    label: str
    run: Callable[[], Awaitable[object]]
    expect: Callable[[object], bool]


def admitted(result: object) -> bool:
    return result is True or (isinstance(result, Decision) and result.allowed)


def refused(result: object) -> bool:
    return result is False or (isinstance(result, Decision) and not result.allowed)


def check_run(limiter: Algorithm, key: str) -> Callable[[], Awaitable[Decision]]:
    async def run() -> Decision:
        return await limiter.check(key)

    return run


def hit_run(
    strategy: limits.aio.strategies.RateLimiter, item: limits.RateLimitItem, key: str
) -> Callable[[], Awaitable[bool]]:
    async def run() -> bool:
        return await strategy.hit(item, key)

    return run


def guide_run(client: Any, key: str, limit: int, window: int) -> Callable[[], Awaitable[bool]]:
    """The guide's snippet, as is: four commands in a MULTI/EXEC pipeline per check."""

    async def run() -> bool:
        now = time.time()
        pipe = client.pipeline(transaction=True)
        pipe.zremrangebyscore(key, 0, now - window)
        pipe.zadd(key, {now: now})
        pipe.zcard(key)
        pipe.expire(key, window)
        _, _, count, _ = await pipe.execute()
        return bool(count <= limit)

    return run


async def verify(specs: Sequence[Spec]) -> None:
    """Run every case once: it must answer as its load level says."""
    for spec in specs:
        result = await spec.run()
        if not spec.expect(result):
            raise RuntimeError(f"{spec.label}: returned {result!r}")


async def fill(spec: Spec) -> None:
    """Check ``spec``'s key until it refuses (the saturated limit, plus what GCRA got back
    meanwhile: a check every 60 ms), at most twice the limit; then it must refuse again."""
    for _ in range(2 * TIGHT_LIMIT):
        if refused(await spec.run()):
            break
    await verify([spec])


# -- Redis ----------------------------------------------------------------------------------------


def limits_redis(url: str, client: Any, key_prefix: str) -> limits.aio.storage.RedisStorage:
    """``limits``' async Redis storage on redis-py, on ``client``'s own connection pool."""
    return limits.aio.storage.RedisStorage(
        "async+" + url,
        implementation="redispy",
        key_prefix=key_prefix,
        connection_pool=client.connection_pool,
    )


def no_local_reject(client: Any) -> tuple[RedisStorage, str]:
    """``RedisStorage(client, local_reject=False)``, or the default storage (and why) when this
    version of tailguard has no such option."""
    try:
        return RedisStorage(client, local_reject=False), ""  # type: ignore[call-arg]
    except TypeError as exc:
        return RedisStorage(client), f"local_reject unavailable ({exc})"


async def redis_specs(client: Any, url: str, prefix: str) -> tuple[list[Spec], str]:
    """The Redis cases (admitted, then saturated, each filled first), and a note if any."""
    floor_key = f"{prefix}:floor"
    await client.set(floor_key, b"1")

    async def get_run() -> object:
        return await client.get(floor_key)

    storage = RedisStorage(client)
    round_trip, note = no_local_reject(client)
    peers = limits_redis(url, client, f"{prefix}:limits")
    admit_item, tight_item = limits.parse(ADMIT), limits.parse(TIGHT)
    ours_prefix = f"{prefix}:ours"
    specs = [
        Spec(
            "get",
            FLOOR,
            "await client.get(key)  # redis.asyncio + hiredis",
            get_run,
            lambda result: result == b"1",
        )
    ]
    for name, cls in ALGORITHMS:
        limiter = cls(ADMIT, storage=storage, prefix=ours_prefix)
        specs.append(
            Spec(
                name,
                OURS,
                f'await {cls.__name__}("{ADMIT}").check(key)',
                check_run(limiter, "admit"),
                admitted,
            )
        )
    specs.append(
        Spec(
            "guide",
            GUIDE,
            "guide's ZSET: pipeline(transaction=True) ZREMRANGEBYSCORE+ZADD+ZCARD+EXPIRE",
            guide_run(client, f"{prefix}:guide:admit", 1_000_000, WINDOW),
            admitted,
        )
    )
    for peer in ("mw", "swc"):
        title, strategy_cls = PEER_STRATEGIES[peer]
        specs.append(
            Spec(
                f"limits_{peer}",
                PEERS,
                f"await limits {title}(RedisStorage).hit({ADMIT})",
                hit_run(strategy_cls(peers), admit_item, "admit"),
                admitted,
            )
        )
    # Saturated: fill each to its limit, then it must refuse.
    saturated: list[tuple[str, str, str, Callable[[], Awaitable[object]]]] = []
    for name, cls in ALGORITHMS:
        limiter = cls(TIGHT, storage=round_trip, prefix=ours_prefix)
        saturated.append(
            (
                f"{name}_full",
                OURS,
                f'await {cls.__name__}("{TIGHT}").check(key), full'
                + ("" if note else ", local_reject=False"),
                check_run(limiter, "full"),
            )
        )
    gcra_local = GCRA(LOCAL, storage=storage, prefix=ours_prefix)
    saturated.append(
        (
            "gcra_full_local",
            OURS,
            f'await GCRA("{LOCAL}").check(key), full, default storage (local reject)',
            check_run(gcra_local, "full-local"),
        )
    )
    for peer in ("mw", "swc"):
        title, strategy_cls = PEER_STRATEGIES[peer]
        saturated.append(
            (
                f"limits_{peer}_full",
                PEERS,
                f"await limits {title}(RedisStorage).hit({TIGHT}), full",
                hit_run(strategy_cls(peers), tight_item, "full"),
            )
        )
    await verify(specs)
    for key, group, label, run in saturated:
        spec = Spec(key, group, label, run, refused)
        await fill(spec)
        specs.append(spec)
    return specs, note


async def time_redis(specs: Sequence[Spec], settings: Settings) -> dict[str, Stats]:
    cases = [
        Case(f"{s.key}@{mode}", s.group, s.run, s.label, tasks)
        for s in specs
        for mode, tasks in ((SEQ, 1), (CONC, TASKS))
    ]
    eprint(f"ratelimit: Redis: timing {len(cases)} cases x {settings.reps} repetitions ...")
    return await measure(
        cases, reps=settings.reps, sample_seconds=settings.sample_seconds, progress=None
    )


@dataclasses.dataclass(frozen=True, slots=True)
class MemoryRow:
    key: str
    group: str
    label: str
    admitted: int  # of the plan's checks
    keys: tuple[str, ...]  # the state keys, as named in this run
    bytes: int  # MEMORY USAGE ... SAMPLES 0, summed over them
    default_names: tuple[str, ...]  # what a deployment on the defaults calls them (() unknown)
    default_bytes: int | None  # the same values renamed to names of those lengths

    @property
    def name_chars(self) -> int:
        return sum(len(k) for k in self.keys)

    @property
    def default_chars(self) -> int:
        return sum(len(k) for k in self.default_names)


async def usage(client: Any, keys: Sequence[str]) -> int:
    return sum([int(await client.memory_usage(k, samples=0) or 0) for k in keys])


async def usage_renamed(
    client: Any, prefix: str, keys: Sequence[str], names: Sequence[str]
) -> int | None:
    """``MEMORY USAGE`` of ``keys`` once renamed (``RENAMENX``: the value is not touched) to
    names under ``prefix`` as long as ``names``: the bytes a deployment naming them so pays
    (only the length of a name counts). None if a name is too short to be one of ours."""
    if not names or len(names) != len(keys):
        return None
    total = 0
    short = f"tgb:{uuid.uuid4().hex[:6]}"  # this run's prefix is longer than a default name
    for i, (key, name) in enumerate(zip(keys, names, strict=True)):
        probe = f"{short}:r{i}:"
        if len(name) < len(probe):
            return None
        probe += "x" * (len(name) - len(probe))
        if not await client.renamenx(key, probe):
            raise RuntimeError(f"could not rename {key} to {probe}")
        total += int(await client.memory_usage(probe, samples=0) or 0)
        await client.renamenx(probe, key)
    return total


async def redis_memory(client: Any, url: str, prefix: str, plan: Plan) -> list[MemoryRow]:
    eprint(f"ratelimit: memory: {plan.memory_hits} checks at {TIGHT} per limiter ...")
    key = MEMORY_KEY
    rows = []
    for name, cls in ALGORITHMS:
        limiter = cls(TIGHT, storage=RedisStorage(client), prefix=f"{prefix}:m")
        allowed = sum([(await limiter.check(key)).allowed for _ in range(plan.memory_hits)])
        keys = state_keys(limiter, key)
        defaults = state_keys(cls(TIGHT), key)  # the default prefix
        rows.append(
            MemoryRow(
                name,
                OURS,
                cls.__name__,
                allowed,
                tuple(keys),
                await usage(client, keys),
                tuple(defaults),
                await usage_renamed(client, prefix, keys, defaults),
            )
        )
    guide_key = f"{prefix}:g:{key}"
    run = guide_run(client, guide_key, TIGHT_LIMIT, WINDOW)
    allowed = sum([await run() for _ in range(plan.memory_hits)])
    rows.append(
        MemoryRow(
            "guide",
            GUIDE,
            "guide's ZSET",
            allowed,
            (guide_key,),
            await usage(client, [guide_key]),
            (),
            None,
        )
    )
    item = limits.parse(TIGHT)
    default_prefix = limits.aio.storage.RedisStorage.PREFIX
    for peer in ("mw", "swc"):
        title, strategy_cls = PEER_STRATEGIES[peer]
        key_prefix = f"{prefix}:l{peer}"
        strategy = strategy_cls(limits_redis(url, client, key_prefix))
        allowed = sum([await strategy.hit(item, key) for _ in range(plan.memory_hits)])
        found = sorted(
            [k.decode() async for k in client.scan_iter(match=f"{key_prefix}:*", count=1000)]
        )
        defaults = [default_prefix + k.removeprefix(key_prefix) for k in found]
        rows.append(
            MemoryRow(
                f"limits_{peer}",
                PEERS,
                f"limits {title}",
                allowed,
                tuple(found),
                await usage(client, found),
                tuple(defaults),
                await usage_renamed(client, prefix, found, defaults),
            )
        )
    return rows


# -- in memory ------------------------------------------------------------------------------------


WORKLOADS = ("one", "many", "full")


def key_iterator(workload: str, plan: Plan) -> Iterator[str]:
    if workload == "one":  # one hot key, renewed every plan.renew_every checks
        return itertools.chain.from_iterable(
            itertools.repeat(f"hot:{i}", plan.renew_every) for i in itertools.count()
        )
    if workload == "many":
        rng = random.Random(plan.seed)
        keys = [f"user:{i}" for i in range(plan.many_keys)]
        return itertools.cycle(rng.choices(keys, k=plan.many_draws))
    return itertools.repeat("full")


async def memory_specs(workload: str, plan: Plan) -> list[Spec]:
    rate = TIGHT if workload == "full" else ADMIT
    expect = refused if workload == "full" else admitted
    specs = []

    async def floor(k: str) -> str:
        return k

    def floor_run(keys: Iterator[str]) -> Callable[[], Awaitable[object]]:
        async def run() -> object:
            return await floor(next(keys))

        return run

    specs.append(
        Spec(
            "floor",
            FLOOR,
            "await floor(next(keys))  # async def floor(k): return k",
            floor_run(key_iterator(workload, plan)),
            lambda result: isinstance(result, str),
        )
    )

    def ours_run(limiter: Algorithm, keys: Iterator[str]) -> Callable[[], Awaitable[object]]:
        async def run() -> object:
            return await limiter.check(next(keys))

        return run

    def peer_run(
        strategy: limits.aio.strategies.RateLimiter,
        item: limits.RateLimitItem,
        keys: Iterator[str],
    ) -> Callable[[], Awaitable[object]]:
        async def run() -> object:
            return await strategy.hit(item, next(keys))

        return run

    for name, cls in ALGORITHMS:
        limiter = cls(rate, storage=MemoryStorage())
        specs.append(
            Spec(
                name,
                OURS,
                f'await {cls.__name__}("{rate}", storage=MemoryStorage()).check(key)',
                ours_run(limiter, key_iterator(workload, plan)),
                expect,
            )
        )
    item = limits.parse(rate)
    for peer in ("fw", "swc", "mw"):
        title, strategy_cls = PEER_STRATEGIES[peer]
        strategy = strategy_cls(limits.aio.storage.MemoryStorage())
        specs.append(
            Spec(
                f"limits_{peer}",
                PEERS,
                f"await limits {title}(MemoryStorage()).hit({rate}, key)",
                peer_run(strategy, item, key_iterator(workload, plan)),
                expect,
            )
        )
    if workload == "full":
        await verify(specs[:1])
        for spec in specs[1:]:
            await fill(spec)
    else:
        await verify(specs)
    return specs


async def time_memory(by_workload: dict[str, list[Spec]], settings: Settings) -> dict[str, Stats]:
    cases = []
    for workload, specs in by_workload.items():
        cases += [Case(f"{s.key}@{workload}", s.group, s.run, s.label) for s in specs]
    eprint(f"ratelimit: in memory: timing {len(cases)} cases x {settings.reps} repetitions ...")
    return await measure(
        cases, reps=settings.reps, sample_seconds=settings.sample_seconds, progress=None
    )


# -- the run ---------------------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class Measured:
    redis_specs: list[Spec] = dataclasses.field(default_factory=list)
    redis: dict[str, Stats] = dataclasses.field(default_factory=dict)
    redis_note: str = ""
    redis_skipped: str = ""
    server: str = ""
    memory: list[MemoryRow] = dataclasses.field(default_factory=list)
    mem_specs: dict[str, list[Spec]] = dataclasses.field(default_factory=dict)
    mem: dict[str, Stats] = dataclasses.field(default_factory=dict)
    deleted: int = 0
    started: float = dataclasses.field(default_factory=time.perf_counter)


async def run_async(settings: Settings, plan: Plan) -> Measured:
    measured = Measured()
    prefix = f"tgbench:{uuid.uuid4().hex}"
    url = redis_url()
    client, why = await connect(url)
    if client is None:
        measured.redis_skipped = f"Redis at {url} unusable ({why})"
        eprint(f"ratelimit: {measured.redis_skipped}: skipping the Redis sections")
    else:
        try:
            info = await client.info("server")
            measured.server = f"Redis {info.get('redis_version', '?')}"
            measured.redis_specs, measured.redis_note = await redis_specs(client, url, prefix)
            measured.redis = await time_redis(measured.redis_specs, settings)
            measured.memory = await redis_memory(client, url, prefix, plan)
        finally:
            measured.deleted = await delete_prefix(client, prefix)
            eprint(f"ratelimit: deleted {measured.deleted} Redis keys under {prefix}")
            await client.aclose()
    measured.mem_specs = {w: await memory_specs(w, plan) for w in WORKLOADS}
    measured.mem = await time_memory(measured.mem_specs, settings)
    return measured


# -- report ----------------------------------------------------------------------------------------


def per_second(ns: float) -> float:
    return 1e9 / ns if ns > 0 else float("inf")


def targets(m: Measured) -> list[Target]:
    """The goals; timed ones judged on medians, with the ratio of the minimums too. Time
    ratios: ``a / b`` of ns per check is ``b / a`` of checks per second."""
    goals = []
    if m.redis:
        r = m.redis

        def t(key: str, mode: str) -> Stats:
            return r[f"{key}@{mode}"]

        for mode, words in ((SEQ, "sequential"), (CONC, f"{TASKS} tasks")):
            for key, name in (("gcra", "GCRA"), ("swc", "SlidingWindowCounter")):
                ours, floor, guide = t(key, mode), t("get", mode), t("guide", mode)
                goals.append(
                    Target(
                        f"1. Redis {words}: GET checks/s / {name} checks/s",
                        ratio(ours.median, floor.median),
                        "<=",
                        1.25,
                        f"{per_second(ours.median):,.0f} vs {per_second(floor.median):,.0f}/s"
                        f"; on minimums {ratio(ours.best, floor.best):.2f}",
                    )
                )
                goals.append(
                    Target(
                        f"1. Redis {words}: {name} checks/s / guide's pipeline checks/s",
                        ratio(guide.median, ours.median),
                        ">=",
                        1.5,
                        f"{per_second(ours.median):,.0f} vs {per_second(guide.median):,.0f}/s"
                        f"; on minimums {ratio(guide.best, ours.best):.2f}",
                    )
                )
            ours, peer = t("sl", mode), t("limits_mw", mode)
            goals.append(
                Target(
                    f"1. Redis {words}: SlidingLog checks/s / limits moving window checks/s",
                    ratio(peer.median, ours.median),
                    ">=",
                    1.0,
                    f"{per_second(ours.median):,.0f} vs {per_second(peer.median):,.0f}/s"
                    f"; on minimums {ratio(peer.best, ours.best):.2f}",
                )
            )
    for row in m.memory:
        if row.key in ("gcra", "swc"):
            named = row.default_bytes is not None
            goals.append(
                Target(
                    f"2. Redis bytes per key, {row.label}, {MEMORY_KEY}"
                    + (", default prefix" if named else ", this run's names"),
                    row.default_bytes if row.default_bytes is not None else row.bytes,
                    "<",
                    128,
                    f"names {row.default_chars if named else row.name_chars} characters"
                    + (f"; {row.bytes} bytes as named in this run" if named else ""),
                )
            )
    if m.mem:
        for workload, words in (("one", "one key"), ("many", f"{10_000:,} keys")):
            for key, name in (
                ("gcra", "GCRA"),
                ("swc", "SlidingWindowCounter"),
                ("fw", "FixedWindow"),
                ("sl", "SlidingLog"),
            ):
                peer = f"limits_{PEER_OF[key]}"
                ours, theirs = m.mem[f"{key}@{workload}"], m.mem[f"{peer}@{workload}"]
                goals.append(
                    Target(
                        f"3. in memory, {words}: {name} checks/s / limits "
                        f"{PEER_STRATEGIES[PEER_OF[key]][0]} checks/s",
                        ratio(theirs.median, ours.median),
                        ">=",
                        2.0,
                        f"{per_second(ours.median):,.0f} vs {per_second(theirs.median):,.0f}/s"
                        f"; on minimums {ratio(theirs.best, ours.best):.2f}",
                    )
                )
    return goals


def redis_table(m: Measured, *, markdown: bool) -> str:
    rows = []
    for spec in m.redis_specs:
        cells = [spec.group, f"`{spec.label}`" if markdown else spec.label]
        for mode in (SEQ, CONC):
            s, floor = m.redis[f"{spec.key}@{mode}"], m.redis[f"get@{mode}"]
            cells += [
                f"{per_second(s.median):,.0f}",
                f"{per_second(s.best):,.0f}",
                f"{s.median / floor.median:.2f}x",
            ]
        rows.append(cells)
    return render_table(
        [
            "group",
            "case",
            "seq checks/s",
            "(best)",
            "x GET time",
            f"{TASKS} tasks checks/s",
            "(best)",
            "x GET time",
        ],
        rows,
        markdown=markdown,
        align=["<", "<", ">", ">", ">", ">", ">", ">"],
    )


def memory_table(rows: Sequence[MemoryRow], *, markdown: bool) -> str:
    return render_table(
        [
            "group",
            "limiter",
            "admitted",
            "keys",
            "name chars (run)",
            "bytes (run)",
            "name chars (defaults)",
            "bytes (defaults)",
        ],
        [
            [
                r.group,
                r.label,
                f"{r.admitted:,}",
                str(len(r.keys)),
                str(r.name_chars),
                f"{r.bytes:,}",
                str(r.default_chars) if r.default_names else "-",
                f"{r.default_bytes:,}" if r.default_bytes is not None else "-",
            ]
            for r in rows
        ],
        markdown=markdown,
        align=["<", "<", ">", ">", ">", ">", ">", ">"],
    )


def mem_table(m: Measured, plan: Plan, *, markdown: bool) -> str:
    first = m.mem_specs[WORKLOADS[0]]
    rows = []
    for spec in first:
        label = spec.label.replace(f'"{ADMIT}"', "rate").replace(f"({ADMIT}, key)", "(rate, key)")
        cells = [spec.group, f"`{label}`" if markdown else label]
        for workload in WORKLOADS:
            s = m.mem[f"{spec.key}@{workload}"]
            cells += [f"{per_second(s.median):,.0f}", f"{s.median:,.0f} ({s.best:,.0f})"]
        rows.append(cells)
    return render_table(
        [
            "group",
            "case (rate as per workload)",
            "one key checks/s",
            "ns (min)",
            f"{plan.many_keys:,} keys checks/s",
            "ns (min)",
            "saturated checks/s",
            "ns (min)",
        ],
        rows,
        markdown=markdown,
        align=["<", "<", ">", ">", ">", ">", ">", ">"],
    )


def pairs_table(m: Measured, *, markdown: bool) -> str:
    rows = []
    for key, cls in ALGORITHMS:
        peer = PEER_OF[key]
        cells = [cls.__name__, f"limits {PEER_STRATEGIES[peer][0]}"]
        for workload in WORKLOADS:
            ours, theirs = m.mem[f"{key}@{workload}"], m.mem[f"limits_{peer}@{workload}"]
            cells.append(
                f"{ratio(theirs.median, ours.median):.2f}x ({ratio(theirs.best, ours.best):.2f}x)"
            )
        rows.append(cells)
    return render_table(
        ["ours", "peer", "one key", "10,000 keys", "saturated"],
        rows,
        markdown=markdown,
        align=["<", "<", ">", ">", ">"],
    )


def results(settings: Settings, plan: Plan, m: Measured, goals: list[Target]) -> dict[str, Any]:
    def timed(specs: Sequence[Spec], stats: dict[str, Stats], modes: Sequence[str]) -> Any:
        return {
            f"{s.key}@{mode}": {
                "label": s.label,
                "group": s.group,
                "calls_per_sample": stats[f"{s.key}@{mode}"].calls,
                "median_ns": stats[f"{s.key}@{mode}"].median,
                "min_ns": stats[f"{s.key}@{mode}"].best,
                "checks_per_second": per_second(stats[f"{s.key}@{mode}"].median),
                "best_checks_per_second": per_second(stats[f"{s.key}@{mode}"].best),
            }
            for s in specs
            for mode in modes
        }

    in_memory: dict[str, Any] = {}
    for workload, specs in m.mem_specs.items():
        in_memory.update(timed(specs, m.mem, [workload]))
    return {
        "benchmark": "ratelimit",
        "python": sys.version,
        "settings": dataclasses.asdict(settings),
        "plan": dataclasses.asdict(plan),
        "server": m.server,
        "redis_skipped": m.redis_skipped,
        "redis_note": m.redis_note,
        "redis": timed(m.redis_specs, m.redis, (SEQ, CONC)) if m.redis else {},
        "memory": [
            {
                **dataclasses.asdict(r),
                "keys": list(r.keys),
                "default_names": list(r.default_names),
                "name_chars": r.name_chars,
                "default_chars": r.default_chars,
            }
            for r in m.memory
        ],
        "in_memory": in_memory,
        "redis_keys_deleted": m.deleted,
        "seconds": time.perf_counter() - m.started,
        "targets": [t.as_dict() for t in goals],
    }


def versions(m: Measured) -> str:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "?"

    hiredis = f"hiredis {version('hiredis')}" if HIREDIS_AVAILABLE else "no hiredis"
    server = f", {m.server}" if m.server else ""
    return f"redis-py {version('redis')} ({hiredis}), limits {version('limits')}{server}"


def report(settings: Settings, plan: Plan, m: Measured, goals: list[Target]) -> None:
    md = settings.markdown
    title = "tailguard.ratelimit: checks/s over Redis and in memory, Redis bytes per key"
    lines = header(title, settings)
    lines.insert(2, versions(m))
    if md:
        print("\n".join([f"### {lines[0]}", "", *(f"{line}  " for line in lines[1:]), ""]))
    else:
        print("\n".join([*lines, ""]))

    def section(heading: str, body: str) -> None:
        print(f"#### {heading}\n" if md else f"{heading}\n")
        print(body)
        print()

    if m.redis_skipped:
        print(f"Sections 1 and 2 skipped: {m.redis_skipped}\n")
    if m.redis:
        note = f"\n\nNote: {m.redis_note}" if m.redis_note else ""
        section(
            f"1. Redis checks/s, one client (default pool): sequential and {TASKS} tasks; "
            f"admitted at {ADMIT}, then saturated at {TIGHT} (full: nearly all refused)",
            redis_table(m, markdown=md) + note,
        )
    if m.memory:
        section(
            f"2. Redis bytes per key after {plan.memory_hits:,} checks at {TIGHT} on "
            f'"{MEMORY_KEY}" (MEMORY USAGE SAMPLES 0, key names included)',
            memory_table(m.memory, markdown=md)
            + "\n\n(run): as named in this run, under tgbench:<uuid>; (defaults): the same values "
            "renamed to names as long as\nthe defaults give (prefix tg:rl for ours, "
            "LIMITS for limits; the guide has none).",
        )
    section(
        f"3. In memory, checks/s, sequential: one key ({ADMIT}, renewed every "
        f"{plan.renew_every:,} checks), {plan.many_keys:,} keys in random order ({ADMIT}), "
        f"saturated one key ({TIGHT}, full)",
        mem_table(m, plan, markdown=md)
        + "\n\n"
        + "Speed of ours over limits' matching strategy, median (min); limits has no GCRA:\n\n"
        + pairs_table(m, markdown=md),
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
        prog="python -m bench ratelimit",
        description="tailguard.ratelimit: checks/s over Redis and in memory, bytes per key.",
    )
    plan = Plan()
    measured = asyncio.run(run_async(settings, plan))
    goals = targets(measured)
    report(settings, plan, measured, goals)
    return results(settings, plan, measured, goals)


if __name__ == "__main__":
    main()
