"""The one composition root: the settings pick embedded or real parts, and naive twins.

``async with bootstrap(settings) as svc:`` builds every part, starts what must run (the
invalidation listener; the embedded payment and recommendation simulators when no URL is
given) and stops all of it on the way out.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from shop.adapters.db import create_engine, session_factory
from shop.adapters.payments import HttpPaymentGateway, is_transient
from shop.adapters.recommendations import HttpRecommender
from shop.adapters.sessions import MemorySessionStore, RedisSessionStore, SessionStore
from shop.config import Naive, Settings
from shop.service_layer.services import Services
from shop.service_layer.unit_of_work import SqlAlchemyUnitOfWork
from tailguard.cache import MemoryTier, RedisInvalidation, RedisTier, TieredCache
from tailguard.ratelimit import GCRA, MemoryStorage, RedisStorage
from tailguard.resilience import Bulkhead, CircuitBreaker, Pipeline, Retry, RetryBudget, Timeout

__all__ = ["bootstrap", "payment_policy", "prepare_database", "secret_file"]

_log = logging.getLogger("shop.bootstrap")

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
        engine = create_engine(settings)
        stack.push_async_callback(engine.dispose)
        if prepare:
            await prepare_database(engine)
        factory = session_factory(engine)

        redis_client: Any = None
        if settings.redis_url:
            import redis.asyncio as aioredis

            redis_client = aioredis.Redis.from_url(
                settings.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0
            )
            stack.push_async_callback(redis_client.aclose)

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

        svc = Services(
            settings=settings,
            uow=lambda: SqlAlchemyUnitOfWork(factory),
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
        yield svc


async def prepare_database(engine: Any) -> None:
    """Migrate the database to the latest schema and seed it when it has no users."""
    from shop.adapters.schema import is_empty, migrate
    from shop.adapters.seed import seed

    await migrate(engine)
    if await is_empty(engine):
        report = await seed(engine)
        _log.warning("seeded an empty database: %s", report)


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
