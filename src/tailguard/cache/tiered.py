"""``TieredCache``: read-through, write-through levels (L1 memory, L2 Redis, L3 Redis Cluster).

A read tries each tier in turn and promotes a hit to the tiers above it, with the time the hit
has left (a promoted copy never outlives the original). A write goes to every tier. Remote tiers
sit behind their own circuit breaker and timeout: a dead Redis costs one fast failure, then is
skipped until its breaker half-opens, and the cache keeps answering from L1 and the loader.

``MISSING`` is the miss: every other value, ``0``, ``""``, ``[]`` and ``None`` included, is a
hit (the guide's ``if value:`` treats falsy values as misses). With ``negative_ttl`` set, a
loader answering ``None`` ("not found") is cached for that shorter time.

``get_or_load`` makes one loader call for N concurrent misses of one key in this process
(single flight); the callers that waited are told so by a ``CacheCoalesced`` event.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any, ParamSpec, TypeVar, cast

from tailguard.cache._missing import MISSING
from tailguard.cache.invalidation import Invalidation
from tailguard.cache.keys import CacheKey
from tailguard.cache.stampede import RefreshBackoff, SingleFlight, xfetch_due
from tailguard.cache.tiers.base import Entry, Leasing, Observing, Tier
from tailguard.cache.tiers.memory import MemoryTier
from tailguard.errors import BackendSaturated, CacheValueError, ConfigurationError, Rejected
from tailguard.events import (
    CacheCoalesced,
    CacheError,
    CacheHit,
    CacheInvalidated,
    CacheLoad,
    CacheMiss,
    HookRegistry,
)
from tailguard.events import hooks as default_hooks
from tailguard.resilience import CircuitBreaker, Pipeline, Timeout

__all__ = ["MISSING", "TieredCache"]

P = ParamSpec("P")
T = TypeVar("T")

_log = logging.getLogger("tailguard.cache")


def _guard_for(
    cache: str,
    tier: Tier,
    timeout: float | None,
    failures: int,
    recovery: float,
    hooks: HookRegistry,
) -> Pipeline:
    breaker = CircuitBreaker(
        f"{cache}:{tier.name}",
        failure_threshold=failures,
        recovery_time=recovery,
        # A value too large, or our own pool running dry, says nothing of the server's health.
        ignore_on=(CacheValueError, BackendSaturated),
        hooks=hooks,
    )
    if timeout is None:
        return Pipeline(breaker)
    return Pipeline(breaker, Timeout(timeout, name=f"{cache}:{tier.name}", hooks=hooks))


def _memory_l1(tier: Tier) -> MemoryTier | None:
    """``tier`` if it is a ``MemoryTier``, or the one it observes (``TracedTier``), else None."""
    while isinstance(tier, Observing):
        tier = tier.observed
    return tier if isinstance(tier, MemoryTier) else None


class TieredCache:
    """Cache levels tried in order: ``TieredCache([MemoryTier(), RedisTier(redis)])``.

    ``jitter`` (0..1): every TTL is shortened by up to that fraction at random, so that keys
    written together do not expire together. ``negative_ttl`` (seconds): how long a ``None``
    from a loader is cached (None: not cached). ``tier_timeout`` (seconds): the most one
    remote tier operation may take before it counts as a failure for that tier's breaker;
    ``tier_failures`` in a row (default: one, so a dead Redis costs one failure) open it, and
    ``tier_recovery`` seconds later it lets a probe through.
    ``stale_while_revalidate`` (seconds): how long past its TTL a value may still be served by
    ``get_or_load`` while one background load refreshes it. ``early_refresh`` (XFetch's beta;
    None: off): a hit is refreshed in the background, before it expires, when
    ``now - delta * beta * ln(rand()) >= expires_at``, ``delta`` being how long its load took,
    so hot keys are recomputed by one caller before they expire instead of by all after.
    A background refresh (either kind) that fails is not tried again for that key for 1 s,
    doubling with each failure in a row up to 60 s (``clock`` seconds); the stale value is
    served meanwhile, and a load that works ends the backoff.
    ``single_flight`` (default on): concurrent misses of one key in this process share one
    read of the shared tiers and one loader call; off, each miss loads (the naive twin).
    ``invalidation`` (a :class:`~tailguard.cache.invalidation.RedisInvalidation`) evicts from
    this instance's L1 what other instances set or delete; ``await cache.start()`` (or
    ``async with cache:``) starts it.
    ``lease`` (seconds; None: off) makes one instance in the fleet load a missing key: the
    first to take a lease in the first Redis tier loads, the others poll that tier for up to
    ``lease_wait`` seconds (default: ``lease``) and load themselves only if nothing arrives.
    A holder whose loader answers ``None`` and caches nothing (no ``negative_ttl``) says so
    in the lease's place, and the instances waiting on it answer ``None`` at once too.
    ``clock`` is wall-clock seconds (``time.time``), shared by every instance.
    """

    def __init__(
        self,
        tiers: Sequence[Tier],
        *,
        name: str = "cache",
        jitter: float = 0.1,
        negative_ttl: float | None = None,
        tier_timeout: float | None = 0.5,
        tier_failures: int = 1,
        tier_recovery: float = 5.0,
        stale_while_revalidate: float = 0.0,
        early_refresh: float | None = 1.0,
        single_flight: bool = True,
        invalidation: Invalidation | None = None,
        lease: float | None = None,
        lease_wait: float | None = None,
        hooks: HookRegistry | None = None,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if not tiers:
            raise ConfigurationError("TieredCache.tiers", tiers, "at least one tier")
        for tier in tiers:
            if not isinstance(tier, Tier):
                raise ConfigurationError("TieredCache.tiers", tier, "Tier objects")
        if not 0 <= jitter < 1:
            raise ConfigurationError("TieredCache.jitter", jitter, "a fraction 0 <= jitter < 1")
        if stale_while_revalidate < 0:
            raise ConfigurationError(
                "TieredCache.stale_while_revalidate", stale_while_revalidate, "seconds >= 0"
            )
        if early_refresh is not None and early_refresh <= 0:
            raise ConfigurationError("TieredCache.early_refresh", early_refresh, "None or > 0")
        if lease is not None and lease <= 0:
            raise ConfigurationError("TieredCache.lease", lease, "None or seconds > 0")
        if negative_ttl is not None and negative_ttl <= 0:
            raise ConfigurationError(
                "TieredCache.negative_ttl", negative_ttl, "None or seconds > 0"
            )
        self.name = name
        self.tiers: tuple[Tier, ...] = tuple(tiers)
        self.jitter = jitter
        self.negative_ttl = negative_ttl
        self.stale_while_revalidate = stale_while_revalidate
        self.early_refresh = early_refresh
        self.single_flight = single_flight
        self._flight = SingleFlight()
        self._backoff = RefreshBackoff()  # keys whose background refreshes failed lately
        self.invalidation = invalidation
        self.lease = lease
        self.lease_wait: float = (lease or 0.0) if lease_wait is None else lease_wait
        self._leaser: Tier | None = None
        if lease is not None:
            self._leaser = next((t for t in self.tiers if isinstance(t, Leasing)), None)
        if lease is not None and self._leaser is None:
            raise ConfigurationError("TieredCache.lease", lease, "a tier that can lease (Redis)")
        # Invalidations seen, numbered: a read that started before an invalidation of its key
        # (or before a flush) must not put what it read into L1.
        self._seq = 0
        self._flushed_at = 0
        self._invalidated: dict[str, int] = {}
        self._hooks = hooks if hooks is not None else default_hooks
        self._now = clock
        self._rand = rand
        # The L1 fast path: a MemoryTier on top is read synchronously, without a coroutine. A
        # tier that only observes it (TracedTier) is seen through: no span is worth an L1 hit.
        self._l1: MemoryTier | None = _memory_l1(self.tiers[0])
        self._lower: tuple[Tier, ...] = self.tiers[1:] if self._l1 is not None else self.tiers
        # One breaker per tier object: two tiers of one name must not share a breaker.
        self._guards: dict[int, Pipeline] = {
            id(t): _guard_for(name, t, tier_timeout, tier_failures, tier_recovery, self._hooks)
            for t in self.tiers
            if not t.local
        }

    # -- internals -----------------------------------------------------------------------------

    def _entry(self, value: Any, ttl: float, now: float, delta: float = 0.0) -> Entry:
        if self.jitter:
            ttl *= 1.0 - self.jitter * self._rand()
        expires_at = now + ttl
        stale_until = expires_at + self.stale_while_revalidate
        return Entry(value, expires_at, delta, value is None, stale_until)

    async def _on(
        self, tier: Tier, op: str, fn: Callable[..., Awaitable[T]], *args: Any
    ) -> T | None:
        """Run one tier operation; a failure (or an open breaker) is reported, never raised,
        except a value the cache refuses (``CacheValueError``): that is the caller's to see."""
        guard = self._guards.get(id(tier))
        try:
            if guard is None:
                return await fn(*args)
            return cast(T, await guard.call(fn, *args))
        except CacheValueError:
            raise
        except Exception as exc:
            if self._hooks.active:
                self._hooks.emit(CacheError(self.name, tier.name, op, type(exc).__name__))
            if not isinstance(exc, Rejected):
                _log.warning("cache %r: tier %r failed on %s: %s", self.name, tier.name, op, exc)
            return None

    async def _find(self, key: str, now: float) -> tuple[int, Entry] | None:
        """The first tier (index into ``self.tiers``) below L1 with an entry for ``key``, fresh
        if any tier has it fresh, else the first stale one."""
        offset = 0 if self._l1 is None else 1
        stale: tuple[int, Entry] | None = None
        for i, tier in enumerate(self._lower, offset):
            entry = await self._on(tier, "get", tier.get, key)
            if entry is not None:
                if entry.expires_at > now:
                    return i, entry
                if stale is None:
                    stale = i, entry
        return stale

    async def _promote(self, key: str, entry: Entry, found_at: int, seq: int) -> None:
        # Same expires_at: a promoted copy never outlives the copy it came from.
        for i, tier in enumerate(self.tiers[:found_at]):
            if i == 0 and self._l1 is not None:
                if self._current(key, seq):
                    self._l1.store(key, entry)
            else:
                await self._on(tier, "set", tier.set, key, entry)

    def _current(self, key: str, seq: int) -> bool:
        """Has nothing invalidated ``key`` since invalidation number ``seq``?"""
        return self._flushed_at <= seq and self._invalidated.get(key, -1) <= seq

    def _changed(self, key: str) -> None:
        """``key`` changes now: a read already in flight must not put what it read into L1."""
        self._seq += 1
        self._invalidated[key] = self._seq
        if len(self._invalidated) > 10_000:  # only recent ones matter to reads in flight
            del self._invalidated[next(iter(self._invalidated))]

    def _evict(self, key: str | None) -> None:
        """An invalidation from another instance: ``key``, or everything (None)."""
        if key is None:
            self._seq += 1
            self._flushed_at = self._seq
            self._invalidated.clear()
            if self._l1 is not None:
                self._l1.clear()
        else:
            self._changed(key)
            if self._l1 is not None:
                self._l1.remove(key)
        if self._hooks.active and self._l1 is not None:
            self._hooks.emit(CacheInvalidated(self.name, self._l1.name, key or "*"))

    async def _announce(self, key: str) -> None:
        if self.invalidation is None:
            return
        try:
            await self.invalidation.publish(key)
        except Exception as exc:
            if self._hooks.active:
                self._hooks.emit(
                    CacheError(self.name, "invalidation", "publish", type(exc).__name__)
                )
            _log.warning(
                "cache %r: could not publish the invalidation of %r: %s", self.name, key, exc
            )

    async def start(self) -> None:
        """Start the cross-instance invalidation listener, if the cache has one."""
        if self.invalidation is not None:
            await self.invalidation.start(self._evict)

    async def __aenter__(self) -> TieredCache:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _write(self, key: str, entry: Entry) -> None:
        self._changed(key)
        # Lower tiers first, so that L1 never holds what the shared tiers do not.
        remote = [self._on(t, "set", t.set, key, entry) for t in self._lower]
        if remote:
            await asyncio.gather(*remote)
        if self._l1 is not None:
            self._l1.store(key, entry)
        await self._announce(key)

    # -- reads ---------------------------------------------------------------------------------

    async def get(self, key: str, default: Any = MISSING) -> Any:
        """The fresh value for ``key`` from the first tier that has it, or ``default``."""
        now = self._now()
        l1 = self._l1
        if l1 is not None:
            entry = l1.lookup(key, now)
            if entry is not None:
                if self._hooks.active:
                    self._hooks.emit(CacheHit(self.name, l1.name, key))
                return entry.value
        entry = await self._entry_below(key, now)
        return default if entry is None or entry.expires_at <= now else entry.value

    async def _entry_below(self, key: str, now: float) -> Entry | None:
        """Read below L1, promote a fresh hit, report hit or miss; the entry may be stale."""
        seq = self._seq
        found = await self._find(key, now)
        if found is None or found[1].expires_at <= now:
            if self._hooks.active:
                self._hooks.emit(CacheMiss(self.name, key))
            return None if found is None else found[1]
        i, entry = found
        if self._hooks.active:
            self._hooks.emit(CacheHit(self.name, self.tiers[i].name, key))
        await self._promote(key, entry, i, seq)
        return entry

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The fresh values found for ``keys`` (misses are left out), one round trip per tier."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Any] = {}
        now = self._now()
        if self._l1 is not None:
            for k in wanted:
                entry = self._l1.lookup(k, now)
                if entry is not None:
                    found[k] = entry.value
            wanted = [k for k in wanted if k not in found]
        offset = 0 if self._l1 is None else 1
        seq = self._seq
        for i, tier in enumerate(self._lower, offset):
            if not wanted:
                break
            entries = await self._on(tier, "get_many", tier.get_many, wanted)
            if entries is None:
                continue
            missing = []
            for k, entry in zip(wanted, entries, strict=True):
                if entry is None or entry.expires_at <= now:
                    missing.append(k)
                else:
                    found[k] = entry.value
                    await self._promote(k, entry, i, seq)
            wanted = missing
        return found

    # -- writes --------------------------------------------------------------------------------

    async def set(self, key: str, value: Any, ttl: float) -> None:
        """Store ``value`` in every tier for ``ttl`` seconds (less the jitter)."""
        if ttl <= 0:
            raise ConfigurationError("TieredCache.set ttl", ttl, "seconds > 0")
        if value is MISSING:
            raise ConfigurationError(
                "TieredCache.set value", value, "a value (MISSING means a miss)"
            )
        await self._write(key, self._entry(value, ttl, self._now()))

    async def delete(self, key: str) -> None:
        """Forget ``key`` in every tier."""
        self._changed(key)
        if self._l1 is not None:
            self._l1.remove(key)
        remote = [self._on(t, "delete", t.delete, key) for t in self._lower]
        if remote:
            await asyncio.gather(*remote)
        await self._announce(key)

    # -- read-through ----------------------------------------------------------------------------

    async def get_or_load(
        self,
        key: str,
        loader: Callable[[], Awaitable[T]],
        ttl: float,
        *,
        negative_ttl: float | None = None,
    ) -> T:
        """The cached value for ``key``, or ``await loader()`` stored for ``ttl`` seconds.

        Concurrent misses of one key share one ``loader`` call. A loader that raises stores
        nothing, and each caller waiting on it raises an exception of its own of the same type,
        caused by the loader's (``SingleFlight.run``). A stale value (within
        ``stale_while_revalidate``) is returned at once while one background load refreshes
        it; a fresh one may be refreshed early (``early_refresh``).
        """
        now = self._now()
        l1 = self._l1
        entry = None
        if l1 is not None:
            entry = l1.lookup(key, now)  # a fresh hit, counted for eviction
            if entry is not None:
                if self._hooks.active:
                    self._hooks.emit(CacheHit(self.name, l1.name, key))
            else:
                entry = l1.peek(key, now)  # perhaps a stale one, for stale-while-revalidate
        if entry is None and not self.single_flight:
            entry = await self._fill(key, loader, ttl, negative_ttl, now)
        elif entry is None:
            # One caller per key reads the shared tiers and, on a miss, loads: a thousand
            # concurrent misses make one Redis read and one loader call, not a thousand.
            entry = await self._flight.run(
                key,
                lambda: self._fill(key, loader, ttl, negative_ttl, now),
                on_wait=lambda: self._coalesced(key),
            )
        beta = self.early_refresh
        due = entry.expires_at <= now or (  # stale, or due for an early refresh
            beta is not None
            and entry.delta
            and xfetch_due(now, entry.expires_at, entry.delta, beta, self._rand())
        )
        if due and self._backoff.ready(key, now):  # unless refreshes of it failed just now
            # Serve it, and refresh it once in the background.
            self._flight.spawn(key, lambda: self._refresh(key, loader, ttl, negative_ttl))
        return cast(T, entry.value)

    def _coalesced(self, key: str) -> None:
        if self._hooks.active:
            self._hooks.emit(CacheCoalesced(self.name, key))

    async def _fill(
        self,
        key: str,
        loader: Callable[[], Awaitable[Any]],
        ttl: float,
        negative_ttl: float | None,
        now: float,
    ) -> Entry:
        """An L1 miss: the shared tiers' entry (fresh or stale), else a load."""
        entry = await self._entry_below(key, now)
        if entry is not None:
            return entry
        return await self._load(key, loader, ttl, negative_ttl)

    async def _refresh(
        self,
        key: str,
        loader: Callable[[], Awaitable[Any]],
        ttl: float,
        negative_ttl: float | None,
    ) -> Entry:
        """A background load: if it fails, the next one for ``key`` waits (``_backoff``)."""
        try:
            return await self._load(key, loader, ttl, negative_ttl)
        except Exception:
            self._backoff.failed(key, self._now())
            raise

    async def _load(
        self,
        key: str,
        loader: Callable[[], Awaitable[Any]],
        ttl: float,
        negative_ttl: float | None,
    ) -> Entry:
        """Load ``key`` (under the lease, if any), store it, report it."""
        keep = negative_ttl if negative_ttl is not None else self.negative_ttl
        started = time.perf_counter()
        try:
            value = await self._lease_or_load(key, loader, keep is not None)
        except BaseException:
            if self._hooks.active:
                seconds = time.perf_counter() - started
                self._hooks.emit(CacheLoad(self.name, key, seconds, ok=False))
            raise
        seconds = time.perf_counter() - started
        self._backoff.succeeded(key)
        if self._hooks.active:
            self._hooks.emit(CacheLoad(self.name, key, seconds))
        life = ttl if value is not None or keep is None else keep
        entry = self._entry(value, life, self._now(), seconds)
        if value is not None or keep is not None:
            try:
                await self._write(key, entry)
            except CacheValueError as exc:  # the load worked; only caching it did not
                if self._hooks.active:
                    self._hooks.emit(CacheError(self.name, "*", "set", type(exc).__name__))
                _log.warning("cache %r: not caching %r: %s", self.name, key, exc)
        return entry

    async def _lease_or_load(
        self, key: str, loader: Callable[[], Awaitable[T]], caches_none: bool
    ) -> T:
        """Call ``loader``, unless another instance holds the lease on ``key`` and its value
        (or word that it found nothing to cache) shows up in the shared tier while we wait."""
        tier = self._leaser
        if tier is None or self.lease is None:
            return await loader()
        leaser = cast(Leasing, tier)
        token = await self._on(tier, "lease", leaser.acquire_lease, key, self.lease)
        if token:
            empty_for = 0.0
            try:
                value = await loader()
                if value is None and not caches_none:
                    # Nothing will show up in the tier: without a word, the waiters would poll
                    # until ``lease_wait`` runs out.
                    empty_for = self.lease_wait
                return value
            finally:
                await self._on(tier, "lease", leaser.release_lease, key, token, empty_for)
        if token is None:  # the tier failed: load without a lease
            return await loader()
        deadline = time.monotonic() + self.lease_wait
        delay = 0.005
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
            entry = await self._on(tier, "get", tier.get, key)
            if entry is not None and entry.expires_at > self._now():
                return cast(T, entry.value)
            if await self._on(tier, "lease", leaser.lease_empty, key):
                return cast(T, None)  # the holder's loader answered None: so do we
        return await loader()  # the holder died or is slow: load ourselves

    async def aclose(self) -> None:
        """Stop the invalidation listener and cancel the background refreshes still running."""
        if self.invalidation is not None:
            await self.invalidation.stop()
        await self._flight.aclose()

    def cached(
        self,
        ttl: float,
        *,
        key: Callable[..., str] | None = None,
        namespace: CacheKey | None = None,
        negative_ttl: float | None = None,
    ) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Coroutine[Any, Any, T]]]:
        """Decorate an ``async def`` to read through this cache for ``ttl`` seconds.

        ``key(*args, **kwargs)`` builds the key. By default it is ``namespace`` (default
        ``CacheKey("fn")``) + the function's module and qualified name + the arguments bound to
        their parameter names, each as its ``repr`` (so ``f(1)``, ``f("1")`` and ``f(x=1)``
        are told apart; give arguments a stable ``repr``), hashed when long.
        """

        def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
            space = namespace if namespace is not None else CacheKey("fn")
            make_key = key
            signature = inspect.signature(fn)
            where = f"{fn.__module__}.{fn.__qualname__}"

            @functools.wraps(fn)
            async def read_through(*args: P.args, **kwargs: P.kwargs) -> T:
                if make_key is not None:
                    k = make_key(*args, **kwargs)
                else:
                    bound = signature.bind(*args, **kwargs)
                    bound.apply_defaults()
                    text = ",".join(f"{n}={v!r}" for n, v in bound.arguments.items())
                    if len(text) > 200:
                        text = "#" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
                    k = space.build(where, text)
                return await self.get_or_load(
                    k, lambda: fn(*args, **kwargs), ttl, negative_ttl=negative_ttl
                )

            return read_through

        return decorate

    def __repr__(self) -> str:
        return f"TieredCache(name={self.name!r}, tiers={[t.name for t in self.tiers]})"
