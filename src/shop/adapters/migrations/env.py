"""Alembic's environment for the shop: async engines, SQLite and PostgreSQL alike.

Alembic runs this file on every command. It migrates, in order of preference:

* the SQLAlchemy ``Connection`` in ``config.attributes["connection"]`` (what
  :func:`shop.adapters.schema.migrate` passes from inside ``AsyncConnection.run_sync``), in
  that connection's transaction;
* else a fresh async engine on the Config's ``sqlalchemy.url`` main option, through
  ``connection.run_sync`` in ``asyncio.run`` (for a command run from synchronous code);
* else, in offline mode (``--sql``), it renders the SQL for ``sqlalchemy.url``'s dialect.

There is no ``alembic.ini``: :func:`shop.adapters.schema.alembic_config` builds the Config.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from shop.adapters.orm import metadata

config = context.config
target_metadata = metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: later migrations rebuild tables in batch mode.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations(connection: Connection) -> None:
    """Run the migrations on ``connection`` (a sync connection, e.g. inside ``run_sync``)."""
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations(url: str) -> None:
    """Run the migrations on a fresh engine for ``url``, disposed afterwards."""
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    """Render the SQL for ``sqlalchemy.url``'s dialect instead of running it."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate the passed connection, or the database at ``sqlalchemy.url``."""
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        run_migrations(connection)
        return
    if isinstance(connection, AsyncConnection):
        # This file runs synchronously; an AsyncConnection belongs to a running loop.
        raise TypeError(
            'config.attributes["connection"] must be a sync Connection: call alembic from '
            "AsyncConnection.run_sync (see shop.adapters.schema.migrate)"
        )
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            'nothing to migrate: set config.attributes["connection"] or the sqlalchemy.url '
            "main option"
        )
    asyncio.run(run_async_migrations(url))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
