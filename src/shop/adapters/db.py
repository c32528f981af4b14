"""The database engine: SQLite (embedded, WAL) or PostgreSQL (asyncpg), with the guide's pool."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from shop.adapters.orm import start_mappers
from shop.config import Naive, Settings

__all__ = ["create_engine", "session_factory"]


def create_engine(settings: Settings) -> AsyncEngine:
    """The engine for ``settings``: its URL and pool (pool_size, max_overflow, pool_timeout,
    pool_recycle, pool_pre_ping). The naive ``pool`` twin lifts every bound on the pool."""
    start_mappers()
    url = settings.resolved_database_url
    if settings.embedded_database:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    pool: dict[str, Any] = {
        "pool_size": settings.pool_size,
        "max_overflow": settings.max_overflow,
        "pool_timeout": settings.pool_timeout,
        "pool_recycle": settings.pool_recycle,
        "pool_pre_ping": settings.pool_pre_ping,
    }
    if settings.is_naive(Naive.POOL):
        # The naive twin: every request opens another connection, without limit.
        pool.update(max_overflow=-1, pool_timeout=3600.0)
    connect_args: dict[str, Any] = {}
    if url.startswith("sqlite"):
        connect_args["timeout"] = 30.0  # seconds a writer waits for SQLite's one write lock
    engine = create_async_engine(url, connect_args=connect_args, **pool)
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers go on while one writer writes; NORMAL syncs at checkpoints only.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[Any]:
    """Sessions that keep loaded objects usable after commit (no expiry round trips)."""
    return async_sessionmaker(engine, expire_on_commit=False)
