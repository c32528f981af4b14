"""The one composition root: the settings pick embedded or real parts, and naive twins.

``async with bootstrap(settings) as svc:`` builds every part, starts what must run (the
invalidation listener; the embedded payment and recommendation simulators when no URL is
given) and stops all of it on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from shop.adapters.analytics import MemorySalesAnalytics, RedisSalesAnalytics, SalesAnalytics
from shop.adapters.db import Databases, session_factory
from shop.adapters.eventstream import (
    EventStream,
    MemoryEventStream,
    RedisEventStream,
    stream_name,
)
from shop.adapters.payments import HttpPaymentGateway, is_transient
from shop.adapters.recommendations import HttpRecommender
from shop.adapters.sessions import MemorySessionStore, RedisSessionStore, SessionStore
from shop.config import Naive, Settings
from shop.service_layer.consumers import EventContext
from shop.service_layer.relay import OutboxRelay
from shop.service_layer.services import Services
from shop.service_layer.unit_of_work import SqlAlchemyUnitOfWork, UnitOfWork
from shop.service_layer.worker import EventWorker
from tailguard.cache import CacheKey, MemoryTier, RedisInvalidation, RedisTier, TieredCache
from tailguard.errors import ConfigurationError
from tailguard.ratelimit import GCRA, MemoryStorage, RedisStorage
from tailguard.resilience import Bulkhead, CircuitBreaker, Pipeline, Retry, RetryBudget, Timeout
from tailguard.shard import ShardRouter

__all__ = ["bootstrap", "bootstrap_worker", "payment_policy", "prepare_database", "secret_file"]

_log = logging.getLogger("shop.bootstrap")

SHARD_TIMEOUT = 2.0
"""Seconds each shard has to answer a cross-shard read."""

PAYMENT_ATTEMPTS = 3
"""Tries per charge (the first and two retries), within the retry budget."""


def secret_file(settings: Settings, name: str) -> str:
    """A random secret kept in ``data_dir/name``, made on first use (0600)."""
    path = Path(settings.data_dir) / name
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(value + "\n")
    _log.warning("generated a new %s in %s (set SHOP_%s to choose one)", name, path, name.upper())
    return value


def payment_policy(settings: Settings) -> tuple[Pipeline, Bulkhead | None, CircuitBreaker | None]:
    """The pipeline around a charge, outermost first: a deadline for the whole charge, retries
    of transient failures within a budget, a breaker, a bulkhead, and a deadline per attempt.
    The naive twins drop the breaker, the bulkhead or the budget."""
    per_attempt = settings.payment_timeout / PAYMENT_ATTEMPTS
    budget = (
        None
        if settings.is_naive(Naive.RETRY_BUDGET)
        else RetryBudget(settings.retry_budget, min_per_second=1.0)
    )
    breaker = (
        None
        if settings.is_naive(Naive.BREAKER)
        else CircuitBreaker(
            "payments", failure_rate=0.5, window_seconds=10.0, minimum_calls=10, recovery_time=5.0
        )
    )
    bulkhead = (
        None
        if settings.is_naive(Naive.BULKHEAD)
        else Bulkhead(
            settings.payment_concurrency,
            settings.payment_queue,
            max_wait=per_attempt,
            name="payments",
        )
    )
    policies: list[Any] = [
        Timeout(settings.payment_timeout, name="payments"),
        Retry(
            PAYMENT_ATTEMPTS,
            on=is_transient,
            delay=0.05,
            max_delay=0.5,
            budget=budget,
            name="payments",
        ),
    ]
    policies += [p for p in (breaker, bulkhead) if p is not None]
    policies.append(Timeout(per_attempt, name="payments-attempt"))
    return Pipeline(*policies, name="payments"), bulkhead, breaker


@contextlib.asynccontextmanager
async def bootstrap(settings: Settings, *, prepare: bool = False) -> AsyncIterator[Services]:
    """Build the process's parts from ``settings``; ``prepare`` migrates an empty database and
    seeds it (what ``shop serve`` does on a fresh checkout)."""
    from tailguard.balance import PowerOfTwo, RoundRobin
    from tailguard.balance.session import BalancedSession

    async with contextlib.AsyncExitStack() as stack:
        databases = Databases.from_settings(settings)
        stack.push_async_callback(databases.dispose)
        if prepare:
            await prepare_database(databases)
        elif databases.sharded:
            await _follow_map(databases)
        engine = databases.primary

        redis_client, broker, cache = await _redis_parts(stack, settings)

        sessions: SessionStore
        if redis_client is not None:
            sessions = RedisSessionStore(
                redis_client, ttl=settings.session_ttl, prefix=f"{settings.namespace}:cart"
            )
        else:
            sessions = MemorySessionStore(ttl=settings.session_ttl)

        payments_urls = list(settings.payments_urls)
        recommender_urls = list(settings.recommendations_urls)
        servers: dict[str, Any] = {}
        if not payments_urls or not recommender_urls:
            servers = await _start_simulators(stack, settings, payments_urls, recommender_urls)
            payments_urls = payments_urls or [servers["payments"].url]
            recommender_urls = recommender_urls or [s.url for s in servers["recommenders"]]

        policy, bulkhead, breaker = payment_policy(settings)
        pay_session = BalancedSession(payments_urls, retry=None, name="payments")
        stack.push_async_callback(pay_session.close)
        picker = RoundRobin if settings.is_naive(Naive.BALANCING) else PowerOfTwo
        rec_session = BalancedSession(recommender_urls, picker=picker, retry=2, name="recommender")
        stack.push_async_callback(rec_session.close)

        limiter = None
        if not settings.is_naive(Naive.RATE_LIMIT):
            storage = RedisStorage(redis_client) if redis_client is not None else MemoryStorage()
            limiter = GCRA(
                settings.cart_rate, storage=storage, prefix=f"{settings.namespace}:rl", name="cart"
            )

        events = _Events(settings, databases, broker or redis_client, cache)
        svc = Services(
            settings=settings,
            uow=events.uow,
            shards=events.shards,
            cache=cache,
            sessions=sessions,
            payments=HttpPaymentGateway(pay_session, policy),
            recommender=HttpRecommender(rec_session),
            recommendation_policy=(
                None
                if settings.is_naive(Naive.TIMEOUTS)
                else Timeout(settings.recommendation_timeout, name="recommender")
            ),
            void_policy=Pipeline(
                Timeout(1.0, name="payments-void"),
                Retry(3, on=is_transient, delay=0.05, name="payments-void"),
            ),
            limiter=limiter,
            stream=events.stream,
            relay=events.relay,
            analytics=events.analytics,
            databases=databases,
            extras={
                "engine": engine,
                "redis": redis_client,
                "bulkhead": bulkhead,
                "breaker": breaker,
                "payments_urls": payments_urls,
                "recommender_urls": recommender_urls,
                "servers": servers,
            },
        )
        svc.worker = events.worker(f"embedded-{os.getpid()}") if settings.embedded_worker else None
        await stack.enter_async_context(_running(events.relays, svc.worker))
        if databases.sharded:
            await stack.enter_async_context(_watching(svc, events, settings.shard_refresh))
        yield svc


@contextlib.asynccontextmanager
async def bootstrap_worker(
    settings: Settings, *, consumer: str | None = None
) -> AsyncIterator[EventWorker]:
    """The parts of ``shop worker``: the event worker on the Redis stream, with an outbox relay
    of its own (so events still go out while no shop instance runs). Needs SHOP_REDIS_URL."""
    if not settings.event_broker_url:
        raise ConfigurationError(
            "SHOP_REDIS_URL",
            None,
            "shop worker reads the Redis stream; without Redis each shop process runs its own "
            "worker (SHOP_EVENTS_WORKER=auto)",
        )
    async with contextlib.AsyncExitStack() as stack:
        databases = Databases.from_settings(settings)
        stack.push_async_callback(databases.dispose)
        redis_client, broker, cache = await _redis_parts(stack, settings)
        events = _Events(settings, databases, broker or redis_client, cache)
        worker = events.worker(consumer)
        await stack.enter_async_context(_running(events.relays, None))
        yield worker


class _Events:
    """The event parts of a process: the stream, a relay per database (each outbox lives with
    the rows whose events it holds), analytics, and the units of work that nudge them."""

    def __init__(
        self, settings: Settings, databases: Databases, broker: Any, cache: TieredCache
    ) -> None:
        self.settings = settings
        self.databases = databases
        self.stream: EventStream
        self.analytics: SalesAnalytics
        if broker is not None:
            self.stream = RedisEventStream(
                broker, stream_name(settings.namespace), maxlen=settings.events_maxlen
            )
            self.analytics = RedisSalesAnalytics(broker, prefix=settings.namespace)
        else:
            self.stream = MemoryEventStream()
            self.analytics = MemorySalesAnalytics()
        self.primary = session_factory(databases.primary)
        # One factory and one relay per distinct engine; shard i uses _shards[i].
        engines = databases.distinct()
        factories = [self.primary] + [session_factory(e) for e in engines[1:]]
        self.relays = [
            OutboxRelay(
                functools.partial(self._uow_on, factory),
                self.stream,
                batch=settings.events_batch,
                interval=settings.relay_interval,
            )
            for factory in factories
        ]
        self._relay_of = {id(f): r for f, r in zip(factories, self.relays, strict=True)}
        by_engine = {id(e): f for e, f in zip(engines, factories, strict=True)}
        self._shards = [by_engine[id(e)] for e in databases.engines]
        self.cache = cache
        self.keys = CacheKey(settings.namespace, version="v1")

    @property
    def relay(self) -> OutboxRelay:
        """The primary database's relay."""
        return self.relays[0]

    def _uow_on(self, shard: Any) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(
            self.primary,
            shard_factory=None if shard is self.primary else shard,
            on_outbox=self._relay_of[id(shard)].nudge,
        )

    def uow(self) -> SqlAlchemyUnitOfWork:
        """A unit of work on the primary database."""
        return self._uow_on(self.primary)

    @property
    def shards(self) -> ShardRouter[int, Callable[[], UnitOfWork]]:
        """User id to its shard's unit-of-work factory; scatter-gather with a per-shard
        timeout of SHARD_TIMEOUT seconds."""
        makers: list[Callable[[], UnitOfWork]] = [
            functools.partial(self._uow_on, factory)
            for factory in self._shards[: self.databases.map.shards]
        ]
        return ShardRouter(self.databases.strategy, makers, timeout=SHARD_TIMEOUT)

    async def _evict(self, key: str) -> None:
        await self.cache.delete(key)

    def worker(self, consumer: str | None) -> EventWorker:
        ctx = EventContext(self.uow, self.analytics, self._evict, self.keys)
        return EventWorker(
            self.stream,
            ctx,
            consumer=consumer,
            # Under the Redis client's 1 s socket timeout, or a quiet XREADGROUP times out.
            block=0.5,
            batch=self.settings.events_batch,
            claim_idle=self.settings.events_claim_idle,
            max_deliveries=self.settings.events_max_deliveries,
        )


@contextlib.asynccontextmanager
async def _running(relays: list[OutboxRelay], worker: EventWorker | None) -> AsyncIterator[None]:
    """One pass of each relay now (what an earlier process left), then the relays (and the
    worker) as tasks; stopped on the way out."""
    for relay in relays:
        try:
            await relay.run_once()
        except Exception as exc:  # the stream or database is down: the task keeps trying
            _log.warning("outbox relay at start: %r", exc)
    tasks = [asyncio.create_task(r.run(), name=f"outbox-relay-{i}") for i, r in enumerate(relays)]
    if worker is not None:
        tasks.append(asyncio.create_task(worker.run(), name="event-worker"))
    try:
        yield
    finally:
        # Stop flags first: a cancellation that lands inside a database call can be swallowed
        # by the driver, and the flags end the loops anyway.
        for relay in relays:
            relay.stop()
        if worker is not None:
            worker.stop()
        for task in tasks:
            task.cancel()
        _, pending = await asyncio.wait(tasks, timeout=10.0)
        for task in pending:
            _log.error("%s did not stop within 10 s", task.get_name())


async def _follow_map(databases: Databases) -> bool:
    """Apply the stored shard map if it differs; True when it changed."""
    from shop.adapters.shardmap import read_map

    stored = await read_map(databases.primary)
    if stored is None or stored == databases.map:
        return False
    databases.apply(stored)
    return True


@contextlib.asynccontextmanager
async def _watching(svc: Services, events: _Events, interval: float) -> AsyncIterator[None]:
    """Follow the shard map every ``interval`` seconds: a reshard's freeze and switch reach
    this process within that time (the reshard waits longer than it before each next step)."""

    async def watch() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                if await _follow_map(svc.databases or events.databases):
                    svc.shards = events.shards
                    _log.warning("shard map now %s", events.databases.map)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning("shard map: %r", exc)

    task = asyncio.create_task(watch(), name="shard-map")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.wait([task], timeout=5.0)


async def _redis_parts(
    stack: contextlib.AsyncExitStack, settings: Settings
) -> tuple[Any, Any, TieredCache]:
    """The Redis client (None without SHOP_REDIS_URL), the event broker's own client (None
    unless SHOP_BROKER_URL), and the tiered cache over the first."""
    redis_client = await _redis_client(stack, settings.redis_url)
    broker = await _redis_client(stack, settings.broker_url) if settings.broker_url else None
    return redis_client, broker, await _cache(stack, settings, redis_client)


async def _redis_client(stack: contextlib.AsyncExitStack, url: str | None) -> Any:
    if not url:
        return None
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
    stack.push_async_callback(client.aclose)
    return client


async def _cache(
    stack: contextlib.AsyncExitStack, settings: Settings, redis_client: Any
) -> TieredCache:
    naive_jitter = settings.is_naive(Naive.JITTER)
    tiers: list[Any] = [MemoryTier(max_entries=50_000, name="memory")]
    if redis_client is not None:
        tiers.append(RedisTier(redis_client))
    cache = TieredCache(
        tiers,
        name="shop",
        jitter=0.0 if naive_jitter else 0.1,
        single_flight=not naive_jitter,
        early_refresh=None if naive_jitter else 1.0,
        invalidation=(
            RedisInvalidation(redis_client, channel=f"{settings.namespace}:invalidate")
            if redis_client is not None
            else None
        ),
    )
    await stack.enter_async_context(cache)
    return cache


async def prepare_database(databases: Databases) -> None:
    """Migrate every database to the latest schema and seed them when they have no users."""
    from shop.adapters.schema import prepare

    if await prepare(databases):
        _log.warning("seeded the empty database(s)")


async def _start_simulators(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    payments_urls: list[str],
    recommender_urls: list[str],
) -> dict[str, Any]:
    from shop.simulators import (
        Behaviour,
        create_payments_app,
        create_recommendations_app,
        serve_in_background,
    )

    servers: dict[str, Any] = {}
    if not payments_urls:
        app = create_payments_app(Behaviour(latency_median=0.010, latency_p99=0.040))
        servers["payments"] = await stack.enter_async_context(
            await serve_in_background(app, grace=0)  # in-process: nothing to drain at exit
        )
    if not recommender_urls:
        servers["recommenders"] = []
        for i in range(settings.recommender_replicas):
            app = create_recommendations_app(
                Behaviour(latency_median=0.020, latency_p99=0.060),
                seed=i,
                name=f"recommender-{i + 1}",
            )
            server = await stack.enter_async_context(await serve_in_background(app, grace=0))
            servers["recommenders"].append(server)
    return servers
