"""The read side: profiles, products, order history, the dashboard. Values are plain dicts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from shop.adapters.recommendations import RecommenderUnavailable
from shop.config import Naive
from shop.domain.model import Order, Product, User
from shop.service_layer.services import Services
from shop.service_layer.unit_of_work import UnitOfWork
from tailguard.errors import TailguardError

__all__ = [
    "DASHBOARD_ORDERS",
    "RECOMMENDATIONS",
    "NotFound",
    "dashboard",
    "order_stats",
    "orders_page",
    "popular",
    "product",
    "products_by_ids",
    "products_page",
    "profile",
    "recommendations",
]

_log = logging.getLogger("shop.views")

DASHBOARD_ORDERS = 5
"""Recent orders the dashboard shows."""
RECOMMENDATIONS = 10
"""Products the dashboard recommends."""


class NotFound(LookupError):
    """The thing asked for does not exist; the message says what."""


def product_key(svc: Services, product_id: int) -> str:
    """The cache key of a product."""
    return svc.keys.build("product", product_id)


def profile_key(svc: Services, user_id: int) -> str:
    """The cache key of a user's profile."""
    return svc.keys.build("user", user_id, "profile")


def _product(p: Product) -> dict[str, Any]:
    return {
        "id": p.id,
        "sku": p.sku,
        "name": p.name,
        "category": p.category,
        "price_cents": p.price_cents,
        "description": p.description,
    }


def _profile(u: User) -> dict[str, Any]:
    return {"id": u.id, "email": u.email, "name": u.name, "created_at": u.created_at.isoformat()}


def order_dict(o: Order) -> dict[str, Any]:
    """An order with its lines, as the API shows it."""
    return {
        "id": o.id,
        "status": str(o.status),
        "total_cents": o.total_cents,
        "charge_id": o.charge_id,
        "created_at": o.created_at.isoformat(),
        "items": [
            {
                "product_id": i.product_id,
                "name": i.product.name if "product" in i.__dict__ else None,
                "quantity": i.quantity,
                "price_cents": i.price_cents,
            }
            for i in o.items
        ],
    }


async def profile(svc: Services, user_id: int) -> dict[str, Any]:
    """The user's profile, read through the cache; NotFound for an unknown user."""

    async def load() -> dict[str, Any] | None:
        async with svc.user_uow(user_id) as uow:
            user = await uow.users.get(user_id)
            return None if user is None else _profile(user)

    found = await svc.cached(profile_key(svc, user_id), load)
    if found is None:
        raise NotFound(f"user {user_id} does not exist")
    return found


async def product(svc: Services, product_id: int) -> dict[str, Any]:
    """One product, read through the cache; NotFound for an unknown id."""

    async def load() -> dict[str, Any] | None:
        async with svc.uow() as uow:
            found = await uow.products.get(product_id)
            return None if found is None else _product(found)

    found = await svc.cached(product_key(svc, product_id), load)
    if found is None:
        raise NotFound(f"product {product_id} does not exist")
    return found


async def products_by_ids(svc: Services, ids: list[int]) -> list[dict[str, Any]]:
    """The products of ``ids`` that exist, in that order: cache hits first, the misses in one
    query (and cached)."""
    found: dict[int, dict[str, Any]] = {}
    if not svc.naive(Naive.CACHE):
        for pid in ids:
            value = await svc.cache.get(product_key(svc, pid))
            if isinstance(value, dict):
                found[pid] = value
    missing = [pid for pid in ids if pid not in found]
    if missing:
        async with svc.uow() as uow:
            for p in await uow.products.page_by_ids(missing):
                found[p.id] = _product(p)
                if not svc.naive(Naive.CACHE):
                    await svc.cache.set(
                        product_key(svc, p.id), found[p.id], ttl=svc.settings.cache_ttl
                    )
    return [found[pid] for pid in ids if pid in found]


async def products_page(
    svc: Services, *, category: str | None, after: int, limit: int
) -> dict[str, Any]:
    """A page of the catalogue after product id ``after``; ``next_cursor`` when more may follow."""

    async def load() -> dict[str, Any]:
        async with svc.uow() as uow:
            rows = await uow.products.page(category=category, after=after, limit=limit)
        items = [_product(p) for p in rows]
        return {
            "items": items,
            "next_cursor": str(items[-1]["id"]) if len(items) == limit else None,
        }

    key = svc.keys.build("products", category or "*", after, limit)
    return await svc.cached(key, load)


async def orders_page(
    svc: Services, user_id: int, *, before: int | None, limit: int
) -> dict[str, Any]:
    """The user's confirmed orders, newest first, items and products loaded: eagerly (two
    queries a page), or lazily in the ``eager_loading`` naive twin (one query per order)."""
    async with svc.user_uow(user_id) as uow:
        found = await uow.orders.for_user(
            user_id, before=before, limit=limit, eager=not svc.naive(Naive.EAGER_LOADING)
        )
        items = [order_dict(o) for o in found]
    return {
        "items": items,
        "next_cursor": str(items[-1]["id"]) if len(items) == limit else None,
    }


async def popular(svc: Services) -> list[int]:
    """The best-selling product ids, cached for five minutes."""

    async def load() -> list[int]:
        async with svc.uow() as uow:
            return await uow.products.popular(RECOMMENDATIONS)

    return await svc.cached(svc.keys.build("popular"), load, ttl=300.0)


async def recommendations(svc: Services, user_id: int) -> tuple[list[int], str]:
    """Product ids for the user and where they came from: ``live``, or the fallbacks ``cached``
    (the user's last live answer) and ``popular``.

    The recommender has ``recommendation_timeout`` seconds (the ``timeouts`` naive twin waits
    as long as it takes); any failure falls back, so the dashboard never fails for it.
    """
    last = svc.keys.build("user", user_id, "recommendations")
    try:
        if svc.recommendation_policy is None:
            ids = await svc.recommender.for_user(user_id, RECOMMENDATIONS)
        else:
            ids = await svc.recommendation_policy.call(
                svc.recommender.for_user, user_id, RECOMMENDATIONS
            )
    except (RecommenderUnavailable, TimeoutError, TailguardError) as exc:
        _log.debug("recommendations for user %s fell back: %r", user_id, exc)
        cached = await svc.cache.get(last)
        if isinstance(cached, list) and cached:
            return [int(i) for i in cached], "cached"
        return await popular(svc), "popular"
    await svc.cache.set(last, ids, ttl=3600.0)
    return ids, "live"


async def dashboard(svc: Services, user_id: int) -> dict[str, Any]:
    """Profile, recent orders and recommendations, fetched concurrently (a TaskGroup), or one
    after another in the ``concurrency`` naive twin."""

    async def recommended() -> tuple[list[dict[str, Any]], str]:
        ids, source = await recommendations(svc, user_id)
        return await products_by_ids(svc, ids), source

    if svc.naive(Naive.CONCURRENCY):
        user = await profile(svc, user_id)
        recent = await orders_page(svc, user_id, before=None, limit=DASHBOARD_ORDERS)
        recs, source = await recommended()
    else:
        async with asyncio.TaskGroup() as group:
            user_task = group.create_task(profile(svc, user_id))
            recent_task = group.create_task(
                orders_page(svc, user_id, before=None, limit=DASHBOARD_ORDERS)
            )
            recs_task = group.create_task(recommended())
        user, recent, (recs, source) = user_task.result(), recent_task.result(), recs_task.result()
    return {
        "user": user,
        "recent_orders": recent["items"],
        "recommendations": recs,
        "recommendations_source": source,
    }


STATS_DAYS = 30
"""Days of orders ``order_stats`` covers, today included."""


async def order_stats(svc: Services, *, days: int = STATS_DAYS) -> dict[str, Any]:
    """Confirmed orders and revenue per day over the last ``days`` days, summed across the
    shards (the router's scatter-gather: every shard at once, each within its timeout); which
    shards answered, and which did not (their orders are missing from the sums)."""
    since = (datetime.now(UTC) - timedelta(days=days - 1)).replace(
        hour=0, minute=0, second=0, microsecond=0, tzinfo=None
    )

    async def daily(make_uow: Callable[[], UnitOfWork], _shard: int) -> list[tuple[str, int, int]]:
        async with make_uow() as uow:
            return await uow.orders.daily(since)

    gathered = await svc.shards.gather(daily)
    totals: dict[str, list[int]] = {}
    for rows in gathered.values():
        for day, count, revenue in rows:
            slot = totals.setdefault(day, [0, 0])
            slot[0] += count
            slot[1] += revenue
    return {
        "since": since.date().isoformat(),
        "days": [
            {"day": day, "orders": n, "revenue_cents": revenue}
            for day, (n, revenue) in sorted(totals.items())
        ],
        "orders": sum(n for n, _ in totals.values()),
        "revenue_cents": sum(r for _, r in totals.values()),
        "shards": {
            "total": len(svc.shards),
            "answered": sorted(gathered.results),
            "failed": {
                str(shard): f"{type(error).__name__}: {error}"[:200]
                for shard, error in gathered.errors.items()
            },
        },
        "complete": gathered.complete,
    }
