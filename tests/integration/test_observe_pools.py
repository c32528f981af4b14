"""Saturation of real pools, read at scrape time: PostgreSQL (SQLAlchemy) and Redis."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tailguard.observe import watch


def gauge(registry: CollectorRegistry, metric: str, name: str) -> float | None:
    return registry.get_sample_value(metric, {"name": name})


async def test_sqlalchemy_pool_checked_out_and_waiters(database_url: str) -> None:
    registry = CollectorRegistry()
    engine = create_async_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=5)
    watch(engine, "orders-db", registry=registry)
    try:
        async with engine.connect() as held:
            await held.execute(text("select 1"))
            assert gauge(registry, "tailguard_db_pool_checked_out", "orders-db") == 1
            waiting = asyncio.create_task(engine.connect().__aenter__())
            await asyncio.sleep(0.1)
            assert gauge(registry, "tailguard_db_pool_waiters", "orders-db") == 1
            assert gauge(registry, "tailguard_db_pool_size", "orders-db") == 1
        second = await waiting  # the held connection went back and was handed over
        assert gauge(registry, "tailguard_db_pool_waiters", "orders-db") == 0
        await second.close()
        assert gauge(registry, "tailguard_db_pool_checked_out", "orders-db") == 0
    finally:
        await engine.dispose()


async def test_redis_pool_in_use(redis_url: str) -> None:
    registry = CollectorRegistry()
    client = aioredis.Redis.from_url(redis_url, max_connections=8)
    watch(client, "sessions", registry=registry)
    try:
        await client.ping()
        conn = await client.connection_pool.get_connection()
        assert gauge(registry, "tailguard_redis_pool_in_use", "sessions") == 1
        assert gauge(registry, "tailguard_redis_pool_max", "sessions") == 8
        await client.connection_pool.release(conn)
        assert gauge(registry, "tailguard_redis_pool_in_use", "sessions") == 0
        assert gauge(registry, "tailguard_redis_pool_idle", "sessions") == 1
    finally:
        await client.aclose()
