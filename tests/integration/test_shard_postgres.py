"""ShardRouter on real PostgreSQL: four databases ``tg_shard_0 .. tg_shard_3`` on the local
server (dropped first if a previous run left them, dropped again afterwards), users and orders
routed by user id with ``JumpHash(4)``, then queries gathered across the shards: every row is
on the shard the strategy names, counts add up, the newest orders merge across shards, and a
dead or slow shard gives a partial result instead of failing the whole query.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tailguard.errors import DeadlineExceeded
from tailguard.shard import JumpHash, ShardRouter
from tests.services import free_port, skip_or_fail

T = TypeVar("T")

SHARDS = 4
NAMES = [f"tg_shard_{i}" for i in range(SHARDS)]
USERS = range(1, 201)
ORDERS_PER_USER = 3
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
SCHEMA = [
    "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL)",
    "CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES users,"
    " total_cents integer NOT NULL, created_at timestamptz NOT NULL)",
]


def in_thread(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on a private loop in a worker thread (sync fixtures sit between the
    event loops pytest-asyncio manages)."""

    async def main() -> T:
        return await factory()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result(60)


async def _drop_and_create(admin_url: str, create: bool) -> None:
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            for name in NAMES:
                await conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                if create:
                    await conn.execute(text(f"CREATE DATABASE {name}"))
    finally:
        await admin.dispose()


async def _create_schema(urls: list[str]) -> None:
    for url in urls:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                for statement in SCHEMA:
                    await conn.execute(text(statement))
        finally:
            await engine.dispose()


@pytest.fixture(scope="module")
def shard_urls(database_url: str) -> Iterator[list[str]]:
    """The URLs of four fresh databases tg_shard_0..3 holding empty users and orders tables."""
    base = make_url(database_url)
    urls = [base.set(database=name).render_as_string(hide_password=False) for name in NAMES]
    try:
        in_thread(lambda: _drop_and_create(database_url, create=True))
        in_thread(lambda: _create_schema(urls))
    except Exception as exc:
        skip_or_fail(f"cannot create the shard databases on {base.host}: {exc!r}")
    try:
        yield urls
    finally:
        in_thread(lambda: _drop_and_create(database_url, create=False))


@pytest.fixture
async def engines(shard_urls: list[str]) -> AsyncIterator[list[AsyncEngine]]:
    made = [create_async_engine(url, pool_size=2) for url in shard_urls]
    yield made
    await asyncio.gather(*(engine.dispose() for engine in made))


async def fetch(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def test_rows_live_on_their_shard_and_queries_gather_across_shards(
    engines: list[AsyncEngine],
) -> None:
    router = ShardRouter(JumpHash(SHARDS), engines, concurrency=SHARDS, timeout=5.0)
    batches = router.split(USERS)
    for shard, ids in batches.items():  # a bulk write: one transaction per shard
        async with router.session_at(shard) as session:
            await session.execute(
                text("INSERT INTO users (id, name) VALUES (:id, :name)"),
                [{"id": i, "name": f"user {i!r}"} for i in ids],
            )
            await session.commit()
    orders: list[dict[str, Any]] = [
        {"id": user * 10 + k, "user_id": user, "total_cents": 100 * k + user,
         "created_at": EPOCH + timedelta(minutes=(user * 37 + k * 101) % 1000, seconds=user)}
        for user in USERS for k in range(ORDERS_PER_USER)
    ]  # fmt: skip
    for user in USERS:  # the request path: one user's writes on that user's shard
        async with router.session(user) as session:
            await session.execute(
                text(
                    "INSERT INTO orders (id, user_id, total_cents, created_at)"
                    " VALUES (:id, :user_id, :total_cents, :created_at)"
                ),
                [o for o in orders if o["user_id"] == user],
            )
            await session.commit()

    placed = await router.gather(lambda e, s: fetch(e, "SELECT id FROM users"))
    assert placed.complete
    for shard, rows in placed.results.items():
        assert sorted(r.id for r in rows) == batches[shard]
        assert all(router.shard(r.id) == shard for r in rows), "every row where JumpHash says"
    assert all(rows for rows in placed.results.values()), "every shard holds users"

    counts = await router.gather(
        lambda e, s: fetch(e, "SELECT count(*) AS n, count(DISTINCT user_id) AS users FROM orders")
    )
    per_shard = {s: rows[0].n for s, rows in counts.results.items()}
    assert per_shard == {s: len(ids) * ORDERS_PER_USER for s, ids in batches.items()}
    assert sum(per_shard.values()) == len(orders)

    newest = await router.gather(
        lambda e, s: fetch(
            e, "SELECT id, user_id, created_at FROM orders ORDER BY created_at DESC, id LIMIT 10"
        )
    )
    top = newest.merged(key=lambda row: row.created_at, reverse=True, limit=10)
    expected = sorted(orders, key=lambda o: o["created_at"], reverse=True)[:10]
    assert [row.id for row in top] == [o["id"] for o in expected]
    assert all(router.shard(row.user_id) == shard
               for shard, rows in newest.results.items() for row in rows)  # fmt: skip


async def test_a_dead_or_slow_shard_gives_a_partial_result(
    engines: list[AsyncEngine], database_url: str
) -> None:
    dead_url = make_url(database_url).set(port=free_port(), database=NAMES[3])
    dead = create_async_engine(dead_url, connect_args={"timeout": 2})
    try:
        router = ShardRouter(JumpHash(SHARDS), [*engines[:3], dead])
        gathered = await router.gather(lambda e, s: fetch(e, "SELECT count(*) FROM users"))
        assert not gathered.complete
        assert gathered.failed == [3]
        assert list(gathered.results) == [0, 1, 2]
        assert isinstance(gathered.errors[3], OSError), repr(gathered.errors[3])
    finally:
        await dead.dispose()

    router = ShardRouter(JumpHash(SHARDS), engines)

    async def query(engine: AsyncEngine, shard: int) -> list[Any]:
        return await fetch(
            engine,
            "SELECT pg_sleep(:s), CAST(:shard AS integer) AS shard",
            s=5 if shard == 1 else 0,
            shard=shard,
        )

    slow = await router.gather(query, timeout=0.5)
    assert slow.failed == [1], slow.errors
    assert isinstance(slow.errors[1], DeadlineExceeded)
    assert [rows[0].shard for rows in slow.values()] == [0, 2, 3]
    assert slow.elapsed[1] < 2.0, "the slow shard was abandoned at its timeout"
