"""The database engine: SQLite (embedded, WAL) or PostgreSQL (asyncpg), with the guide's pool."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from shop.adapters.orm import start_mappers
from shop.config import Naive, Settings
from tailguard.errors import BackendUnavailable, ConfigurationError
from tailguard.shard import JumpHash

__all__ = ["Databases", "ShardMap", "create_engine", "session_factory"]


@dataclass(frozen=True, slots=True)
class ShardMap:
    """How users are spread: ``shards`` of the configured databases in use (JumpHash over the
    user id), and while a reshard switches, the counts it moves between (``frozen``): users
    whose shard differs between them may not write until the switch is done."""

    shards: int
    epoch: int = 0
    frozen: tuple[int, int] | None = None


class Databases:
    """The primary database (the catalogue) and the shard databases (users and their orders),
    each an engine; a shard whose URL is the primary's shares its engine. The first
    ``map.shards`` of them are in use; ``shard_of(user_id)`` is JumpHash over the user id, so a
    shard added at the end takes ``1 / (n + 1)`` of the users and moves no others."""

    def __init__(
        self, primary: AsyncEngine, engines: Sequence[AsyncEngine], *, shards: int | None = None
    ) -> None:
        if not engines:
            raise ValueError("at least one shard")
        self.primary = primary
        self.engines = list(engines)
        """Every configured shard database, in use or not."""
        self.map = ShardMap(len(self.engines))
        self.apply(ShardMap(shards or len(self.engines)))

    @classmethod
    def from_settings(cls, settings: Settings) -> Databases:
        """Engines for every URL of ``settings`` (the primary's reused for an equal shard)."""
        if settings.shards is not None and settings.shards > len(settings.shard_urls):
            raise ConfigurationError(
                "SHOP_SHARDS",
                settings.shards,
                f"at most {len(settings.shard_urls)}, the databases in SHOP_DATABASE_URLS",
            )
        primary = create_engine(settings)
        engines = [
            primary if url == settings.resolved_database_url else create_engine(settings, url)
            for url in settings.shard_urls
        ]
        return cls(primary, engines, shards=settings.shards)

    def apply(self, shard_map: ShardMap) -> None:
        """Use ``shard_map`` from now on (ConfigurationError if it names more shards than
        SHOP_DATABASE_URLS lists)."""
        counts = [shard_map.shards, *(shard_map.frozen or ())]
        if not all(1 <= n <= len(self.engines) for n in counts):
            raise ConfigurationError(
                "SHOP_DATABASE_URLS",
                f"{len(self.engines)} URL(s)",
                f"at least {max(counts)}: the shard map in the primary database has users on "
                f"{max(counts)} shards (SHOP_SHARDS or `shop reshard` set it)",
            )
        self.map = shard_map
        self.strategy = JumpHash(shard_map.shards)
        self._frozen = (
            None
            if shard_map.frozen is None
            else (JumpHash(shard_map.frozen[0]), JumpHash(shard_map.frozen[1]))
        )

    @property
    def shards(self) -> list[AsyncEngine]:
        """The shard databases in use, in shard order."""
        return self.engines[: self.map.shards]

    @property
    def sharded(self) -> bool:
        """True when user data may live apart from the primary (more than one database)."""
        return len(self.engines) > 1

    def shard_of(self, user_id: int) -> int:
        """The shard index of ``user_id``."""
        return self.strategy.shard(user_id)

    def moving(self, user_id: int) -> bool:
        """True while a reshard's switch moves ``user_id`` to another shard."""
        if self._frozen is None:
            return False
        old, new = self._frozen
        return old.shard(user_id) != new.shard(user_id)

    def check_writable(self, user_id: int) -> None:
        """BackendUnavailable (a 503 with Retry-After) while ``user_id`` is being moved."""
        if self.moving(user_id):
            raise BackendUnavailable("shard", f"user {user_id} is moving to another shard")

    def distinct(self) -> list[AsyncEngine]:
        """Every engine once: the primary first, then the shard databases that are not it."""
        seen: list[AsyncEngine] = [self.primary]
        for engine in self.engines:
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
