"""The database engine: SQLite (embedded, WAL) or PostgreSQL (asyncpg), with the guide's pool."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from shop.adapters.orm import start_mappers
from shop.config import Naive, Settings

__all__ = ["Databases", "create_engine", "session_factory"]


class Databases:
    """The primary database (the catalogue) and the shards (users and their orders), each an
    engine; a shard whose URL is the primary's shares its engine. ``shard_of(user_id)`` is
    JumpHash over the user id: a shard added at the end takes ``1 / (n + 1)`` of the users."""

    def __init__(self, primary: AsyncEngine, shards: Sequence[AsyncEngine]) -> None:
        from tailguard.shard import JumpHash, ShardRouter

        if not shards:
            raise ValueError("at least one shard")
        self.primary = primary
        self.shards = list(shards)
        self.strategy = JumpHash(len(self.shards))
        self.router: ShardRouter[int, AsyncEngine] = ShardRouter(
            self.strategy, self.shards, timeout=2.0
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Databases:
        """Engines for every URL of ``settings`` (the primary's reused for an equal shard)."""
        primary = create_engine(settings)
        shards = [
            primary if url == settings.resolved_database_url else create_engine(settings, url)
            for url in settings.shard_urls
        ]
        return cls(primary, shards)

    @property
    def sharded(self) -> bool:
        """True when user data lives apart from the primary (more than one shard)."""
        return len(self.shards) > 1

    def shard_of(self, user_id: int) -> int:
        """The shard index of ``user_id``."""
        return self.strategy.shard(user_id)

    def engine_for(self, user_id: int) -> AsyncEngine:
        """The engine of ``user_id``'s shard."""
        return self.shards[self.strategy.shard(user_id)]

    def distinct(self) -> list[AsyncEngine]:
        """Every engine once: the primary first, then the shards that are not it."""
        seen: list[AsyncEngine] = [self.primary]
        for engine in self.shards:
            if all(engine is not other for other in seen):
                seen.append(engine)
        return seen

    async def dispose(self) -> None:
        """Close every engine's pool."""
        for engine in self.distinct():
            await engine.dispose()


def create_engine(settings: Settings, url: str | None = None) -> AsyncEngine:
    """The engine for ``url`` (default: the primary database) with the pool of ``settings``
    (pool_size, max_overflow, pool_timeout, pool_recycle, pool_pre_ping). The naive ``pool``
    twin lifts every bound on the pool."""
    start_mappers()
    url = url or settings.resolved_database_url
    if url.startswith("sqlite") and settings.embedded_database:
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
