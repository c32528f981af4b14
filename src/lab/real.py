"""``--real``: the demo on PostgreSQL and Redis instead of the embedded defaults.

The seeded database is made once, ``shop_demo_<run>_base``, and every shop gets a copy of it
(``CREATE DATABASE ... TEMPLATE``: a file copy on the server, far faster than seeding again);
every shop gets its own Redis namespace. All of it is dropped at the end of the run.
"""

from __future__ import annotations

import asyncio
import getpass
import itertools
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RealServices", "default_urls"]


def default_urls() -> tuple[str, str]:
    """``SHOP_DATABASE_URL`` / ``SHOP_REDIS_URL``, else the machine's PostgreSQL and Redis."""
    database = os.environ.get(
        "SHOP_DATABASE_URL", f"postgresql+asyncpg://{getpass.getuser()}@127.0.0.1:5432/postgres"
    )
    if database.startswith(("postgres://", "postgresql://")):
        database = "postgresql+asyncpg://" + database.split("://", 1)[1]
    return database, os.environ.get("SHOP_REDIS_URL", "redis://127.0.0.1:6379/0")


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@dataclass
class RealServices:
    """The throwaway databases and namespaces of one run."""

    server_url: str
    redis_url: str
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    databases: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    _made: itertools.count[int] = field(default_factory=itertools.count)
    # PostgreSQL copies a template only while nobody else uses it: one copy at a time.
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def base(self) -> str:
        return f"shop_demo_{self.run}_base"

    async def _admin(self, statement: str) -> None:
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(self.server_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()

    async def create_base(self) -> str:
        """The empty base database's URL (the caller migrates and seeds it)."""
        await self._admin(f'CREATE DATABASE "{self.base}"')
        self.databases.append(self.base)
        return _with_database(self.server_url, self.base)

    async def copy(self) -> tuple[str, str]:
        """(database URL, Redis namespace) for one more shop."""
        number = next(self._made)
        name = f"shop_demo_{self.run}_{number}"
        async with self._lock:
            await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.base}"')
        self.databases.append(name)
        namespace = f"demo{self.run}n{number}"
        self.namespaces.append(namespace)
        return _with_database(self.server_url, name), namespace

    async def drop(self, database_url: str) -> None:
        """Drop one shop's database (its process has stopped)."""
        name = database_url.rpartition("/")[2]
        if name in self.databases:
            self.databases.remove(name)
            await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def aclose(self) -> None:
        """Drop every database and Redis key of the run."""
        for name in reversed(self.databases):
            await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.databases.clear()
        import redis.asyncio as aioredis

        from shop.adapters.keys import namespace_prefixes

        client: Any = aioredis.Redis.from_url(self.redis_url)
        try:
            for namespace in self.namespaces:
                for prefix in namespace_prefixes(namespace):
                    async for key in client.scan_iter(match=f"{prefix}*", count=500):
                        await client.delete(key)
        finally:
            await client.aclose()
