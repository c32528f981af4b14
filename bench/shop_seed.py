"""shop.adapters.seed: seconds to fill a fresh, migrated database with the demo data.

Two cases, each seeded ``--reps`` times (default 3) into a fresh database made for the run
and migrated first (migration is not timed):

1. **SQLite**, the shop's defaults (1,000 users, 500 products, 20,000 orders) in a file under
   a temp dir, on the engine ``shop.adapters.db.create_engine`` builds (WAL, synchronous=NORMAL).
2. **PostgreSQL**, 100,000 orders (1,000 users, 500 products), in a throwaway database
   ``shop_bench_<hex>`` on ``$TAILGUARD_DATABASE_URL``'s server (default: 127.0.0.1:5432,
   database ``test``, as the current user, then ``postgres``), dropped afterwards. Skipped,
   with the reason, when no server answers.

The time is ``SeedReport.elapsed``: planning the rows (one argon2 hash included) and writing
them in one transaction. We print the median and the minimum over the repetitions and the
rows written per second (every table's rows over the median).

    .venv/bin/python -m bench shop_seed              # ~30 s
    .venv/bin/python -m bench shop_seed --quick      # a smoke test: smaller, one repetition
    .venv/bin/python -m bench.shop_seed --markdown   # the table for docs/BENCHMARKS.md

The targets are goals, not assertions: the script exits 0 whatever they say, and ``main()``
returns the results as a dict.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import statistics
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from bench._harness import Settings, Target, eprint, header, parse_args, render_table
from shop.adapters.db import create_engine
from shop.adapters.schema import migrate
from shop.adapters.seed import SeedReport, seed
from shop.config import load_settings

__all__ = ["main"]

SQLITE_TARGET = 10.0  # seconds, the defaults on SQLite
POSTGRES_TARGET = 30.0  # seconds, 100,000 orders on PostgreSQL


@dataclass(frozen=True, slots=True)
class Size:
    users: int
    products: int
    orders: int


@dataclass(frozen=True, slots=True)
class Run:
    backend: str
    size: Size
    reports: tuple[SeedReport, ...]
    skipped: str = ""

    @property
    def seconds(self) -> list[float]:
        return [r.elapsed for r in self.reports]

    @property
    def rows(self) -> int:
        """Rows written per seed: users, products and their inventory, orders and items."""
        r = self.reports[0]
        return r.users + 2 * r.products + r.orders + r.order_items


SQLITE = {False: Size(1_000, 500, 20_000), True: Size(1_000, 500, 2_000)}
POSTGRES = {False: Size(1_000, 500, 100_000), True: Size(1_000, 500, 10_000)}


def _postgres_candidates() -> list[str]:
    configured = os.environ.get("TAILGUARD_DATABASE_URL")
    if configured:
        return [configured]
    users = dict.fromkeys([getpass.getuser(), "postgres"])
    return [f"postgresql+asyncpg://{user}@127.0.0.1:5432/test" for user in users]


async def _postgres_admin() -> tuple[AsyncEngine | None, str]:
    """An AUTOCOMMIT engine on a reachable server, or None and why not."""
    problems = []
    for url in _postgres_candidates():
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                await connection.exec_driver_sql("SELECT 1")
        except Exception as exc:
            await engine.dispose()
            problems.append(f"{make_url(url).render_as_string()}: {type(exc).__name__}: {exc}")
            continue
        return engine, ""
    return None, "; ".join(problems)


@asynccontextmanager
async def _sqlite_database() -> AsyncIterator[AsyncEngine]:
    with tempfile.TemporaryDirectory(prefix="shop-seed-bench-") as directory:
        path = Path(directory) / "shop.db"
        settings = load_settings(data_dir=directory, database_url=f"sqlite+aiosqlite:///{path}")
        engine = create_engine(settings)
        try:
            yield engine
        finally:
            await engine.dispose()


@asynccontextmanager
async def _postgres_database(admin: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    name = f"shop_bench_{uuid.uuid4().hex[:16]}"
    async with admin.connect() as connection:
        await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        url = admin.url.set(database=name).render_as_string(hide_password=False)
        engine = create_engine(load_settings(database_url=url))
        try:
            yield engine
        finally:
            await engine.dispose()
    finally:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _seed_fresh(database: Any, size: Size) -> SeedReport:
    async with database as engine:
        await migrate(engine)
        return await seed(engine, users=size.users, products=size.products, orders=size.orders)


async def measure(settings: Settings) -> list[Run]:
    """Seed each backend ``settings.reps`` times, a fresh database each time."""
    size = SQLITE[settings.quick]
    eprint(f"shop_seed: SQLite, {size.orders:,} orders x {settings.reps} ...")
    sqlite = [await _seed_fresh(_sqlite_database(), size) for _ in range(settings.reps)]
    runs = [Run("SQLite", size, tuple(sqlite))]
    size = POSTGRES[settings.quick]
    admin, problem = await _postgres_admin()
    if admin is None:
        eprint(f"shop_seed: PostgreSQL skipped: {problem}")
        return [*runs, Run("PostgreSQL", size, (), skipped=problem)]
    try:
        eprint(f"shop_seed: PostgreSQL, {size.orders:,} orders x {settings.reps} ...")
        pg = [await _seed_fresh(_postgres_database(admin), size) for _ in range(settings.reps)]
    finally:
        await admin.dispose()
    return [*runs, Run("PostgreSQL", size, tuple(pg))]


def table(runs: Sequence[Run], *, markdown: bool) -> str:
    heads = ["backend", "users", "products", "orders", "items", "median s", "min s", "rows/s"]
    rows = []
    for run in runs:
        s = run.size
        counts = [f"{s.users:,}", f"{s.products:,}", f"{s.orders:,}"]
        if run.skipped:
            rows.append([run.backend, *counts, "-", "skipped", "-", "-"])
            continue
        median = statistics.median(run.seconds)
        rows.append(
            [
                run.backend,
                *counts,
                f"{run.reports[0].order_items:,}",
                f"{median:.2f}",
                f"{min(run.seconds):.2f}",
                f"{run.rows / median:,.0f}",
            ]
        )
    return render_table(
        heads, rows, markdown=markdown, align=["<", ">", ">", ">", ">", ">", ">", ">"]
    )


def targets(runs: Sequence[Run], settings: Settings) -> list[Target]:
    goals = []
    note = "--quick: smaller than the target's size" if settings.quick else ""
    for run, limit in zip(runs, (SQLITE_TARGET, POSTGRES_TARGET), strict=True):
        if run.skipped:
            continue
        what = f"{run.backend} seed of {run.size.orders:,} orders, median seconds"
        goals.append(Target(what, statistics.median(run.seconds), "<", limit, note))
    return goals


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table and the targets; return the results."""
    settings = parse_args(
        argv,
        prog="python -m bench shop_seed",
        description="Seconds to seed the shop's demo data on SQLite and PostgreSQL.",
        reps=3,
    )
    if settings.quick:
        settings = Settings(1, settings.sample_seconds, settings.markdown, quick=True)
    runs = asyncio.run(measure(settings))
    goals = targets(runs, settings)
    title = "shop.adapters.seed: seconds to seed a fresh database"
    lines = [
        *header(title, settings)[:2],
        f"median (and min) of {settings.reps} seeds per backend, each into a fresh database",
    ]
    md = settings.markdown
    if md:
        print("\n".join([f"### {lines[0]}", "", *(f"{line}  " for line in lines[1:]), ""]))
    else:
        print("\n".join([*lines, ""]))
    print(table(runs, markdown=md))
    print()
    bullet = "- " if md else "  "
    if not md:
        print("Targets:")
    print("\n".join(f"{bullet}{t.line()}" for t in goals))
    for run in runs:
        if run.skipped:
            print(f"{bullet}{run.backend} skipped: {run.skipped}")
    return {
        "runs": {
            run.backend: {
                "users": run.size.users,
                "products": run.size.products,
                "orders": run.size.orders,
                "seconds": run.seconds,
                "skipped": run.skipped,
            }
            for run in runs
        },
        "targets": [t.as_dict() for t in goals],
    }


if __name__ == "__main__":
    main()
