"""The stack's database, made ready once before any instance starts (so N instances never
race to migrate or seed): created when missing, migrated by ``shop migrate``, and seeded by
``shop seed`` when it has no users."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import subprocess
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from shop.deploy.config import StackError
from shop.deploy.plan import Plan

__all__ = ["prepare_database", "tail"]

T = TypeVar("T")


def tail(path: Path, chars: int = 2000) -> str:
    """The end of a log file ('' when there is none)."""
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def _run_async(factory: Callable[[], Coroutine[Any, Any, T]], timeout: float) -> T:
    # In a thread with its own loop: the caller may be inside a running event loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result(timeout)


async def _create_if_missing(url: str) -> bool:
    from sqlalchemy import make_url, text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    target = make_url(url)
    name = target.database
    admin = create_async_engine(
        target.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        async with admin.connect() as connection:
            exists = await connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            )
            if exists:
                return False
            await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
            return True
    finally:
        await admin.dispose()


async def _is_empty(url: str) -> bool:
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from shop.adapters.schema import is_empty

    engine = create_async_engine(url, poolclass=NullPool)
    try:
        return await is_empty(engine)
    finally:
        await engine.dispose()


def _shop(plan: Plan, args: list[str], log: Path, timeout: float) -> None:
    env = plan.shop_env("", "")
    env = {k: v for k, v in env.items() if k not in ("SHOP_SECRET_KEY", "SHOP_ADMIN_TOKEN")}
    with log.open("ab") as out:
        try:
            done = subprocess.run(
                [plan.python, "-m", "shop.entrypoints.cli", *args],
                env={**os.environ, **env, "SHOP_DATA_DIR": str(plan.state_dir / "data")},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=max(1.0, timeout),
            )
        except subprocess.TimeoutExpired:
            raise StackError(f"`shop {args[0]}` took over {timeout:.0f} s (log: {log})") from None
    if done.returncode != 0:
        raise StackError(f"`shop {' '.join(args)}` failed (exit {done.returncode}): {tail(log)}")


def prepare_database(plan: Plan, remaining: Callable[[], float]) -> None:
    """Create, migrate and (when empty) seed the stack's database; ``remaining()`` says how
    many seconds are left. StackError names the step that failed."""
    config = plan.config
    url = config.async_database_url
    log = plan.logs / "prepare.log"
    try:
        for shard_url in config.shard_urls:
            _run_async(
                lambda shard_url=shard_url: _create_if_missing(shard_url),  # type: ignore[misc]
                timeout=max(1.0, remaining()),
            )
    except (OSError, concurrent.futures.TimeoutError) as exc:
        raise StackError(f"PostgreSQL at {_redact(url)} cannot be reached: {exc}") from exc
    except Exception as exc:
        raise StackError(f"could not create the database {config.database_name}: {exc}") from exc
    _shop(plan, ["migrate"], log, remaining())
    if _run_async(lambda: _is_empty(url), timeout=max(1.0, remaining())):
        _shop(
            plan,
            [
                "seed",
                "--users",
                str(config.seed_users),
                "--products",
                str(config.seed_products),
                "--orders",
                str(config.seed_orders),
            ],
            log,
            remaining(),
        )


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
