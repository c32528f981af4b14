"""Order events through the transactional outbox, the stream and the worker, applied once in
effect: in process on the embedded defaults, and on the real services (PostgreSQL, Redis
Streams, ``shop worker`` processes killed with SIGKILL, a Redis broker stopped and restarted).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shop.adapters import orm
from shop.adapters.analytics import RedisSalesAnalytics
from shop.adapters.db import session_factory
from shop.adapters.eventstream import RedisEventStream, stream_name
from shop.adapters.keys import namespace_prefixes
from shop.adapters.schema import migrate
from shop.adapters.seed import seed
from shop.domain.events import OrderConfirmed
from shop.service_layer.consumers import EventContext
from shop.service_layer.relay import OutboxRelay
from shop.service_layer.unit_of_work import SqlAlchemyUnitOfWork
from shop.service_layer.worker import EventWorker
from tailguard.cache import CacheKey
from tests.services import KillableRedis, delete_prefixed_keys
from tests.shop.conftest import ShopFactory, sign_in

SETTLE_SECONDS = 30.0
"""Longest a test waits for events to be applied (polled, never slept through)."""


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + SETTLE_SECONDS
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {SETTLE_SECONDS} s: {what}")
        await asyncio.sleep(0.05)


async def place(client: Any, headers: dict[str, str], product_id: int, qty: int, key: str) -> Any:
    added = await client.post(
        "/cart/items", json={"product_id": product_id, "quantity": qty}, headers=headers
    )
    assert added.status_code in (200, 201), added.text
    placed = await client.post("/orders", headers={"Idempotency-Key": key, **headers})
    assert placed.status_code == 201, placed.text
    return placed.json()


async def test_an_order_and_its_events_are_applied_once_in_process(shop: ShopFactory) -> None:
    async with shop() as (app, client):
        svc = app.state.services
        assert svc.worker is not None  # embedded: no Redis
        headers = await sign_in(client, 4)
        async with svc.uow() as uow:  # the seed counts its own orders' sales
            before = await uow.effects.counters([10, 11, 12])
        orders = [await place(client, headers, 10 + i, i + 1, f"order-no-{i}") for i in range(3)]
        ids = [o["id"] for o in orders]

        async def applied() -> bool:
            async with svc.uow() as uow:
                return len(await uow.effects.emails(ids)) == 3

        await eventually(applied, "three confirmation emails")
        async with svc.uow() as uow:
            counters = await uow.effects.counters([10, 11, 12])
            emails = await uow.effects.emails(ids)
            assert await uow.outbox.backlog() == 0
        zero = {"reserved": 0, "sold": 0}
        assert {
            p: (
                c["reserved"] - before.get(p, zero)["reserved"],
                c["sold"] - before.get(p, zero)["sold"],
            )
            for p, c in counters.items()
        } == {10: (1, 1), 11: (2, 2), 12: (3, 3)}
        assert emails == {i: f"Your order {i} is confirmed" for i in ids}
        sales = await svc.analytics.sales([10, 11, 12])
        prices = {p: orders[p - 10]["items"][0]["price_cents"] for p in (10, 11, 12)}
        assert sales == {10: (1, prices[10]), 11: (2, 2 * prices[11]), 12: (3, 3 * prices[12])}
        info = await svc.stream.info()
        assert info.dead == 0
        stats = svc.worker.stats
        assert stats.applied == 6  # created + confirmed, three orders
        assert stats.failed == 0


# --- on the real services ------------------------------------------------------------------


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    """A fresh SHOP_NAMESPACE; its Redis keys (and its analytics hash tag) deleted after."""
    ns = f"ev{uuid.uuid4().hex[:12]}"
    try:
        yield ns
    finally:
        for prefix in namespace_prefixes(ns):
            delete_prefixed_keys(redis_url, prefix)


@pytest.fixture
async def engine(shop_database: str) -> AsyncIterator[AsyncEngine]:
    """The module's PostgreSQL database, migrated, with 10 users and 50 products (no orders)."""
    engine = create_async_engine(shop_database)
    await migrate(engine)
    async with engine.connect() as conn:
        users = (await conn.execute(select(func.count()).select_from(orm.users))).scalar_one()
    if users == 0:
        await seed(engine, users=10, products=50, orders=0)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _write_events(engine: AsyncEngine, events: list[OrderConfirmed]) -> None:
    factory = session_factory(engine)
    for start in range(0, len(events), 500):
        async with SqlAlchemyUnitOfWork(factory) as uow:
            await uow.outbox.add(events[start : start + 500])
            await uow.commit()


def _events(n: int, first_order: int) -> list[OrderConfirmed]:
    return [
        OrderConfirmed(
            first_order + i,
            1 + i % 10,
            (1 + i % 3) * 250,
            f"ch_{first_order + i}",
            ((1 + i % 50, 1 + i % 3, 250),),
        )
        for i in range(n)
    ]


def _expected_units(events: list[OrderConfirmed]) -> dict[int, int]:
    units: Counter[int] = Counter()
    for event in events:
        for product_id, quantity, _price in event.lines:
            units[product_id] += quantity
    return dict(units)


def _worker(env: dict[str, str], name: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "shop"), "worker", "--name", name],
        env={**os.environ, **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


@pytest.mark.redis
@pytest.mark.postgres
async def test_a_worker_killed_mid_batch_loses_nothing_and_doubles_nothing(
    engine: AsyncEngine,
    shop_database: str,
    redis_url: str,
    namespace: str,
    tmp_path: Path,
) -> None:
    events = _events(1500, first_order=1_000_000)
    await _write_events(engine, events)
    client = aioredis.Redis.from_url(redis_url)
    stream = RedisEventStream(client, stream_name(namespace))
    factory = session_factory(engine)
    relay = OutboxRelay(lambda: SqlAlchemyUnitOfWork(factory), stream, batch=500)
    try:
        assert await relay.drain() == 1500
        env = {
            "SHOP_DATABASE_URL": shop_database,
            "SHOP_REDIS_URL": redis_url,
            "SHOP_NAMESPACE": namespace,
            "SHOP_EVENTS_BATCH": "100",
            "SHOP_EVENTS_CLAIM_IDLE": "1.0",
            "SHOP_DATA_DIR": str(tmp_path),
        }

        async def emails() -> int:
            async with engine.connect() as conn:
                query = select(func.count()).select_from(orm.order_emails)
                return int((await conn.execute(query)).scalar_one())

        async def mid_batch() -> bool:
            # Killed while it holds a batch: acknowledged only at a batch's end, its entries
            # are pending nearly all the time (the check and the kill are a few ms apart).
            return await emails() >= 100 and (await stream.info()).pending > 0

        first = _worker(env, "worker-a", tmp_path / "a.log")
        try:
            await eventually(mid_batch, "worker A applied 100 events and holds a batch")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            with contextlib.suppress(ProcessLookupError):
                first.kill()
        done_by_a = await emails()
        pending_after_a = (await stream.info()).pending
        assert done_by_a < 1500, "worker A finished before it was killed: nothing was tested"
        assert pending_after_a > 0, "worker A held nothing pending when killed"

        second = _worker(env, "worker-b", tmp_path / "b.log")
        try:
            await eventually(lambda: _ge(emails, 1500), "worker B applied the rest")

            async def drained() -> bool:
                return (await stream.info()).pending == 0

            await eventually(drained, "nothing pending")
        finally:
            second.send_signal(signal.SIGTERM)
            code = second.wait(20)
        log = (tmp_path / "b.log").read_text()
        assert code == 0, log
        claimed = int(log.rsplit("claimed ", 1)[1].split(",", 1)[0])
        assert claimed >= pending_after_a, log

        async with SqlAlchemyUnitOfWork(factory) as uow:
            counters = await uow.effects.counters()
            processed = {c: await uow.effects.processed(c) for c in ("email", "inventory.sold")}
        expected = _expected_units(events)
        assert {p: c["sold"] for p, c in counters.items()} == expected
        assert processed == {"email": 1500, "inventory.sold": 1500}
        assert await emails() == 1500
        sales = await RedisSalesAnalytics(client, prefix=namespace).sales(expected)
        assert {p: units for p, (units, _revenue) in sales.items()} == expected
        info = await stream.info()
        assert info.dead == 0
        print(
            f"\n1,500 events; worker A applied {done_by_a} and was SIGKILLed holding "
            f"{pending_after_a} pending; worker B claimed {claimed} and finished: every "
            f"counter, email and analytics figure exactly once"
        )
    finally:
        await client.aclose()


async def _ge(count: Callable[[], Awaitable[int]], n: int) -> bool:
    return await count() >= n


@pytest.mark.redis
@pytest.mark.postgres
async def test_entries_that_keep_failing_go_to_the_dead_letter_stream(
    engine: AsyncEngine, redis_url: str, namespace: str
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    stream = RedisEventStream(client, stream_name(namespace))
    factory = session_factory(engine)
    evicted: list[str] = []

    async def evict(key: str) -> None:
        evicted.append(key)

    ctx = EventContext(
        lambda: SqlAlchemyUnitOfWork(factory),
        RedisSalesAnalytics(client, prefix=namespace),
        evict,
        CacheKey(namespace, version="v1"),
    )
    worker = EventWorker(stream, ctx, consumer="w", claim_idle=0.05, max_deliveries=3, block=0.05)
    try:
        await stream.ensure_group()
        good, poison = _events(2, first_order=2_000_000)
        # A product that does not exist: the inventory counter's foreign key refuses it, every
        # time.
        poison = OrderConfirmed(poison.order_id, 1, 100, "ch_x", ((999_999, 1, 100),))
        relay = OutboxRelay(lambda: SqlAlchemyUnitOfWork(factory), stream)
        await _write_events(engine, [good, poison])
        await relay.drain()
        await client.xadd(stream.stream, {"garbage": "1"})

        async def two_dead() -> bool:
            await worker.run_once()
            return (await stream.info()).dead >= 2

        await eventually(two_dead, "the poison event and the garbage entry are dead")
        dead = await client.xrange(stream.dead)
        reasons = sorted(fields[b"reason"].decode() for _id, fields in dead)
        assert reasons[0] == "failed 3 deliveries", reasons
        assert reasons[1].startswith("not an event"), reasons
        assert worker.stats.failed == 3
        assert worker.stats.dead == 2
        assert (await stream.info()).pending == 0
        async with SqlAlchemyUnitOfWork(factory) as uow:
            assert await uow.effects.emails([good.order_id]) == {
                good.order_id: f"Your order {good.order_id} is confirmed"
            }
        assert evicted  # the good event's cache eviction ran
    finally:
        await client.aclose()


@pytest.mark.redis
@pytest.mark.postgres
async def test_orders_are_accepted_while_the_broker_is_down_and_published_when_it_returns(
    shop: ShopFactory,
    shop_database: str,
    redis_url: str,
    namespace: str,
    killable_redis: KillableRedis,
) -> None:
    settings = {
        "database_url": shop_database,
        "redis_url": redis_url,
        "broker_url": killable_redis.url,
        "namespace": namespace,
        "secret_key": "k" * 32,
        "relay_interval": 0.2,
    }
    broker = aioredis.Redis.from_url(killable_redis.url)
    try:
        async with shop(**settings) as (app, client):
            svc = app.state.services
            assert svc.worker is None  # a broker: `shop worker` applies the events
            headers = await sign_in(client, 5)
            await place(client, headers, 20, 1, "broker-up")
            stream_key = stream_name(namespace)

            async def first_published() -> bool:
                async with svc.uow() as uow:  # both of the first order's events are out
                    return await uow.outbox.backlog() == 0 and await broker.xlen(stream_key) >= 2

            await eventually(first_published, "the first order's two events published")

            killable_redis.kill()
            placed = [await place(client, headers, 21 + i, 1, f"broker-down-{i}") for i in range(3)]

            async def backlog() -> int:
                async with svc.uow() as uow:
                    return await uow.outbox.backlog()

            assert await backlog() == 6  # created + confirmed of three orders, held
            killable_redis.restart()  # an empty Redis (no persistence): only the held events

            async def published() -> bool:
                return await backlog() == 0

            await eventually(published, "the held events published")
            entries = await broker.xrange(stream_key)
            orders = Counter(
                (fields[b"topic"].decode(), fields[b"payload"].decode().split(",")[0])
                for _id, fields in entries
            )
            assert len(entries) == 6
            for order in placed:
                for topic in ("order.created", "order.confirmed"):
                    assert orders[(topic, f'{{"order_id":{order["id"]}')] == 1
            print(
                f"\nbroker down: 3 orders accepted (201), 6 events held in the outbox, "
                f"published after restart (relay failures {svc.relay.failures})"
            )
    finally:
        await broker.aclose()
