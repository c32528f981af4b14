"""What the use cases run on, built once per process by ``shop.bootstrap``.

Each part is the real one or the embedded one as the settings chose; each practice is on or off
(its naive twin) as ``settings.naive`` says, and the use cases read that here, so the practice
and its twin share one code path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from shop.adapters.analytics import SalesAnalytics
from shop.adapters.db import Databases
from shop.adapters.eventstream import EventStream
from shop.adapters.payments import PaymentGateway
from shop.adapters.recommendations import Recommender
from shop.adapters.sessions import SessionStore
from shop.config import Naive, Settings
from shop.service_layer.relay import OutboxRelay
from shop.service_layer.unit_of_work import UnitOfWork
from shop.service_layer.worker import EventWorker
from tailguard.cache import CacheKey, TieredCache
from tailguard.shard import ShardRouter

__all__ = ["Services"]

T = TypeVar("T")


@dataclass(eq=False)
class Services:
    """The process's parts. ``uow()`` opens a new unit of work."""

    settings: Settings
    uow: Callable[[], UnitOfWork]
    """A unit of work on the primary database: the catalogue, stock, the worker's effects."""
    shards: ShardRouter[int, Callable[[], UnitOfWork]]
    """User id to the unit-of-work factory of its shard (users, orders, answers and their
    outbox there, the catalogue on the primary); ``gather`` reads every shard at once."""
    cache: TieredCache
    sessions: SessionStore
    payments: PaymentGateway
    recommender: Recommender
    recommendation_policy: Any | None
    """A Timeout around the recommender (None in the ``timeouts`` naive twin)."""
    void_policy: Any
    """The short Timeout + Retry a void runs under (it must not wait on a breaker)."""
    limiter: Any | None
    """The cart's per-user rate limiter (None in the ``rate_limit`` naive twin)."""
    stream: EventStream | None = None
    """Where the outbox relay publishes the order events."""
    relay: OutboxRelay | None = None
    """The outbox relay running in this process."""
    databases: Databases | None = None
    """The engines: the primary and the shards."""
    analytics: SalesAnalytics | None = None
    """Per-product sales, kept by the event worker."""
    worker: EventWorker | None = None
    """The event worker in this process (None when a separate ``shop worker`` runs)."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Things the entrypoints keep with the parts (the engine, the Redis client, servers)."""

    def __post_init__(self) -> None:
        # Every cache key the shop writes; bump the version to retire them all at once.
        self.keys = CacheKey(self.settings.namespace, version="v1")

    def user_uow(self, user_id: int) -> UnitOfWork:
        """A unit of work on ``user_id``'s shard and the primary: one transaction when they
        are one database."""
        return self.shards.target(user_id)()

    def naive(self, practice: Naive) -> bool:
        """True when ``practice`` runs as its naive twin."""
        return practice in self.settings.naive

    async def cached(
        self, key: str, loader: Callable[[], Awaitable[T]], ttl: float | None = None
    ) -> T:
        """``loader()`` through the tiered cache; straight to it in the ``cache`` naive twin."""
        if Naive.CACHE in self.settings.naive:
            return await loader()
        return await self.cache.get_or_load(
            key, loader, ttl if ttl is not None else self.settings.cache_ttl
        )

    async def evict(self, *keys: str) -> None:
        """Drop ``keys`` from every tier and, through the invalidation bus, every instance's L1."""
        for key in keys:
            await self.cache.delete(key)
