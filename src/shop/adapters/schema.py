"""The shop's schema on a live database: migrate it to head, read its revision, check for data.

The migrations live beside the models in ``migrations/`` (Alembic, no ``alembic.ini``: the
Config is built here). They create exactly ``shop.adapters.orm.metadata``; the same calls work
on SQLite (aiosqlite) and PostgreSQL (asyncpg)::

    engine = create_engine(settings)
    await migrate(engine)  # "0001"; a second call changes nothing
    if await is_empty(engine):
        await seed(engine)  # shop.adapters.seed
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, literal, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from shop.adapters.orm import users

if TYPE_CHECKING:
    from shop.adapters.db import Databases

__all__ = [
    "ID_STRIDE",
    "MIGRATIONS",
    "alembic_config",
    "current_revision",
    "head_revision",
    "is_empty",
    "migrate",
    "prepare",
    "stride_sequences",
]

MIGRATIONS = Path(__file__).with_name("migrations")
"""The Alembic script directory (``env.py``, ``versions/``)."""

# Any fixed 64-bit key: instances starting together on PostgreSQL migrate one after another.
_MIGRATION_LOCK = 0x73686F705F6D6967  # "shop_mig"

# Alembic keeps the running command in module globals (``alembic.context``, ``alembic.op``):
# two migrations interleaved in one process, even on two databases, corrupt each other.
# Tasks of one loop queue on that loop's lock; other threads wait on the thread lock.
_loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)
_thread_lock = threading.Lock()


def _loop_lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _loop_locks.get(loop)
    if lock is None:
        lock = _loop_locks[loop] = asyncio.Lock()
    return lock


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config for the shop's migrations; ``url`` becomes ``sqlalchemy.url``.

    For commands beyond :func:`migrate`, e.g. a new revision from the models::

        command.revision(alembic_config(url), "add carts", autogenerate=True, rev_id="0002")
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    # New revision files must be importable module names: no leading digit.
    config.set_main_option("file_template", "v%%(rev)s_%%(slug)s")
    # A generated revision comes out lint-clean (ruff is a dev dependency; only
    # ``command.revision`` runs these hooks).
    hooks = {"ruff_fix": "check --fix --quiet", "ruff_format": "format --quiet"}
    config.set_section_option("post_write_hooks", "hooks", ", ".join(hooks))
    for name, options in hooks.items():
        config.set_section_option("post_write_hooks", f"{name}.type", "module")
        config.set_section_option("post_write_hooks", f"{name}.module", "ruff")
        config.set_section_option(
            "post_write_hooks", f"{name}.options", f"{options} REVISION_SCRIPT_FILENAME"
        )
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest revision in ``migrations/versions``."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the initial revision ships with the package
        raise RuntimeError(f"no migrations in {MIGRATIONS / 'versions'}")
    return head


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def migrate(engine: AsyncEngine) -> str:
    """Upgrade the database to the newest revision, in one transaction; returns that revision.

    At head already, nothing changes. Concurrent callers are serialized: instances starting
    together by a PostgreSQL advisory lock or SQLite's write lock (``BEGIN IMMEDIATE``), and
    calls in one process (Alembic's state is global) by a lock of this module.
    """
    config = alembic_config()

    def upgrade(connection: Connection) -> str | None:
        config.attributes["connection"] = connection
        with _thread_lock:
            command.upgrade(config, "head")
        return _revision(connection)

    async with _loop_lock(), engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # pysqlite opens no transaction for DDL: without this each CREATE would commit
            # alone, and two processes could both see an empty database.
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif connection.dialect.name == "postgresql":
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
            )
        revision = await connection.run_sync(upgrade)
        await connection.commit()
    if revision is None:  # pragma: no cover - alembic stamps the version in the same transaction
        raise RuntimeError("the upgrade left no revision in alembic_version")
    return revision


async def current_revision(engine: AsyncEngine) -> str | None:
    """The database's revision, or None when it was never migrated."""
    async with engine.connect() as connection:
        return await connection.run_sync(_revision)


async def is_empty(engine: AsyncEngine) -> bool:
    """True when there is no ``users`` table, or it has no rows (nothing to keep, seed away)."""
    async with engine.connect() as connection:
        if not await connection.run_sync(lambda sync: inspect(sync).has_table(users.name)):
            return True
        first = await connection.scalar(select(literal(1)).select_from(users).limit(1))
        return first is None


ID_STRIDE = 1024
"""On sharded PostgreSQL, shard ``i`` numbers its orders and order lines ``i + 1`` modulo this:
ids stay unique across shards, so a user's rows keep their ids when a reshard moves them."""

_STRIDED = ("orders", "order_items")


async def stride_sequences(databases: Databases) -> None:
    """Set each shard's order id sequences to step by :data:`ID_STRIDE` from its own residue,
    above every id on any shard; nothing to do unless sharded (on PostgreSQL)."""
    if not databases.sharded:
        return
    if len(databases.engines) > ID_STRIDE:
        raise ValueError(f"at most {ID_STRIDE} shards, got {len(databases.engines)}")
    highest = 0
    for engine in databases.engines:
        async with engine.connect() as connection:
            for table in _STRIDED:
                found = await connection.scalar(text(f"SELECT coalesce(max(id), 0) FROM {table}"))
                highest = max(highest, int(found or 0))
    # A margin of ID_STRIDE steps: rows inserted while this runs (the shop keeps serving) take
    # ids from the old sequences, a few steps past ``highest`` at most, never this far.
    highest += ID_STRIDE * ID_STRIDE
    for index, engine in enumerate(databases.engines):
        residue = index + 1
        start = highest + ((residue - highest) % ID_STRIDE or ID_STRIDE)
        async with engine.begin() as connection:
            for table in _STRIDED:
                sequence = await connection.scalar(
                    text(f"SELECT pg_get_serial_sequence('{table}', 'id')")
                )
                await connection.execute(
                    text(f"ALTER SEQUENCE {sequence} INCREMENT BY {ID_STRIDE} RESTART WITH {start}")
                )


async def prepare(databases: Databases) -> bool:
    """Migrate every database; follow the stored shard map (or store the first one); seed the
    shards in use when there is no data yet (True when it did); stride the sequences."""
    from shop.adapters.seed import seed
    from shop.adapters.shardmap import read_map, write_map

    for engine in databases.distinct():
        await migrate(engine)
    if databases.sharded:
        stored = await read_map(databases.primary)
        if stored is None:
            await write_map(databases.primary, databases.map)
        else:
            databases.apply(stored)
    empty = all([await is_empty(engine) for engine in databases.shards])
    if empty:
        await seed(databases)
    await stride_sequences(databases)
    return empty
