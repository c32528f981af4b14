"""The whole stack under faults: orders through HAProxy while an instance is SIGKILLed, while
Redis is down for 5 s, and while the payment gateway fails most of its calls for 10 s.

One stack (``shop.deploy.Stack``: HAProxy, two ``shop serve`` instances, ``shop worker``, the
simulators) with users and their orders sharded over two fresh PostgreSQL databases, and a
Redis of this module's own, which the test
stops. A small closed-loop client places orders through HAProxy: each order is a fresh cart
session, one ``POST /cart/items`` and one ``POST /orders`` with its own ``Idempotency-Key``;
a connection error or a 5xx is retried (the same request, the same key), waiting the answer's
``Retry-After`` or a short backoff, a bounded number of times. After each phase the orders
still unfinished are repeated with their keys until they end, and then the database, the
gateway's ledger (``GET /charges``) and the worker's effects are checked against what the
client was told. Every wait is bounded in time and in count; only loopback is used.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from shop.adapters import orm
from shop.adapters.sessions import new_session_id
from shop.deploy import Stack, StackConfig
from shop.deploy.plan import find_haproxy
from shop.entrypoints.auth import issue_token
from shop.service_layer.handlers import payment_key
from tailguard.shard import JumpHash
from tests.services import KillableRedis, require_service, skip_or_fail

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(240)]

SHARDS = 2
"""Users and their orders are sharded over two databases (the first also the catalogue's)."""
USERS = range(1, 31)
PRODUCTS = range(1, 21)
WORKERS = 6
"""Concurrent clients of the closed loop, each placing one order after another."""
ATTEMPTS = 10
"""Tries of one request before the order is left unfinished (repeated after the phase)."""
MAX_WAIT = 2.0
"""Longest wait between two tries, seconds, whatever Retry-After says."""
REQUEST_TIMEOUT = 10.0
SETTLE_ROUNDS = 4
"""Rounds of repeats of the unfinished orders after a phase."""
DRAIN_SECONDS = 30.0
"""Longest wait for the worker to apply every event (polled)."""
RECOVER_SECONDS = 25.0
"""Longest wait for the shop to work again after a fault ends (polled)."""
FAILING = 0.6
"""The share of charge requests the gateway fails for 10 s. Not 0.5: the shop's breaker opens
at 50 % failures over 10 s (at least 10 calls), so a gateway failing exactly half its calls
sits on the threshold and opens it only by chance (simulated: over 100 calls, about one
instance in ten never crosses it); at 60 % it must open, and the money is checked alike."""


# -- the stack --------------------------------------------------------------------------------


async def _admin(server_url: str, statement: str) -> None:
    engine = create_async_engine(
        make_url(server_url).set(database="postgres"),
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
    )
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql(statement)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def own_redis() -> Iterator[KillableRedis]:
    """A Redis of this module's own, which the test stops and starts again."""
    server = require_service(KillableRedis, context="a killable redis-server: ")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def stack(
    database_url: str, own_redis: KillableRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Two instances behind HAProxy (checks every 0.5 s: out after 2 failures, back after 1),
    one recommender, the worker, free ports; no automatic restart (the test restarts)."""
    try:
        find_haproxy()
    except FileNotFoundError as exc:
        skip_or_fail(str(exc))
    name = f"shop_e2e_{uuid.uuid4().hex[:12]}"
    config = StackConfig(
        instances=2,
        shards=SHARDS,
        recommenders=1,
        database_url=make_url(database_url).set(database=name).render_as_string(False),
        redis_url=own_redis.url,
        namespace="e2e",
        state_dir=tmp_path_factory.mktemp("stack"),
        port=0,
        stats_port=0,
        base_port=0,
        simulator_port=0,
        check_interval=0.5,
        fall=2,
        rise=1,
        autorestart=False,
        env={"SHOP_CART_RATE": "1000000/minute"},
        seed_users=len(USERS),
        seed_products=len(PRODUCTS),
        seed_orders=20,
    )
    running = Stack(config)
    try:
        running.start(timeout=90)
        yield running
    finally:
        try:
            running.stop()
        finally:
            for url in config.shard_urls:
                shard = make_url(url).database
                asyncio.run(_admin(database_url, f'DROP DATABASE IF EXISTS "{shard}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def placed() -> list[ClientOrder]:
    """The orders of the phases run so far (each phase checks them again)."""
    return []


@dataclass
class Shards:
    """The stack's databases: the shards in order, the first also the primary (catalogue,
    stock, the worker's effects)."""

    engines: list[AsyncEngine]

    @property
    def primary(self) -> AsyncEngine:
        return self.engines[0]

    async def rows(self, query: Any) -> list[tuple[int, Any]]:
        """``query`` on every shard: (shard, row) pairs."""
        found: list[tuple[int, Any]] = []
        for shard, engine in enumerate(self.engines):
            async with engine.connect() as connection:
                found += [(shard, row) for row in (await connection.execute(query)).all()]
        return found


@pytest.fixture
async def engine(stack: Stack) -> AsyncIterator[Shards]:
    engines = [create_async_engine(url, poolclass=NullPool) for url in stack.config.shard_urls]
    try:
        yield Shards(engines)
    finally:
        for engine in engines:
            await engine.dispose()


# -- the client -------------------------------------------------------------------------------


@dataclass
class Tally:
    """What one phase's client saw: every answer by status (or transport error), and retries."""

    answers: collections.Counter[str] = field(default_factory=collections.Counter)
    retried: int = 0

    def record(self, answer: httpx.Response | Exception) -> None:
        if isinstance(answer, Exception):
            self.answers[type(answer).__name__] += 1
        else:
            self.answers[str(answer.status_code)] += 1

    @property
    def requests(self) -> int:
        return sum(self.answers.values())

    @property
    def ok(self) -> int:
        return sum(n for k, n in self.answers.items() if k.startswith("2"))

    @property
    def unavailable(self) -> int:
        return self.answers["503"]

    @property
    def other(self) -> dict[str, int]:
        return {k: n for k, n in sorted(self.answers.items()) if k[0] not in "2" and k != "503"}

    def line(self, phase: str, orders: list[ClientOrder], lost: int) -> str:
        acked = sum(o.acknowledged for o in orders)
        again = sum(o.tries > 1 for o in orders)
        other = f"other {sum(self.other.values())}" + (f" {self.other}" if self.other else "")
        return (
            f"[{phase}] requests {self.requests}, 2xx {self.ok}, 503 {self.unavailable}, "
            f"{other}, retried {self.retried}; orders {len(orders)} ({again} placed again "
            f"with their key), acknowledged (201) {acked}, lost {lost}"
        )


@dataclass
class ClientOrder:
    """One order as the client knows it: its key, session, what it asked for and was told."""

    key: str
    user_id: int
    product_id: int
    headers: dict[str, str]
    in_cart: bool = False
    status: int | None = None
    body: dict[str, Any] = field(default_factory=dict)
    answered_at: float = 0.0
    """When the last answer to ``POST /orders`` came (monotonic seconds)."""
    tries: int = 0
    """``POST /orders`` sent with this key."""

    @property
    def acknowledged(self) -> bool:
        return self.status == 201


def _retryable(answer: httpx.Response | Exception) -> bool:
    if isinstance(answer, Exception):
        return True
    # 409: the same key is in progress elsewhere (its answer says retry after 1 s)
    return answer.status_code >= 500 or answer.status_code == 409


def _wait(answer: httpx.Response | Exception, attempt: int) -> float:
    if isinstance(answer, httpx.Response) and "Retry-After" in answer.headers:
        return min(MAX_WAIT, float(str(answer.headers["Retry-After"])))
    return min(MAX_WAIT, 0.05 * 2.0**attempt)


class Shop:
    """The closed-loop client of one phase, through HAProxy."""

    def __init__(self, client: httpx.AsyncClient, secret: str, prefix: str) -> None:
        self.client = client
        self.secret = secret
        self.prefix = prefix
        self.tally = Tally()
        self.orders: list[ClientOrder] = []
        self._numbers = itertools.count()

    def new_order(self) -> ClientOrder:
        n = next(self._numbers)
        user_id = USERS[n % len(USERS)]
        token = issue_token(self.secret, user_id, new_session_id(), 3600.0)
        order = ClientOrder(
            key=f"{self.prefix}-{n:05d}",
            user_id=user_id,
            product_id=PRODUCTS[n % len(PRODUCTS)],
            headers={"Authorization": f"Bearer {token}"},
        )
        self.orders.append(order)
        return order

    async def send(
        self, method: str, path: str, order: ClientOrder | None = None, **kwargs: Any
    ) -> httpx.Response | Exception:
        """One request, retried (bounded) on a connection error or a 5xx; the last answer.
        ``order``: the order whose ``POST /orders`` this is (its tries are counted)."""
        answer: httpx.Response | Exception = RuntimeError("not sent")
        for attempt in range(ATTEMPTS):
            if attempt:
                self.tally.retried += 1
            if order is not None:
                order.tries += 1
            try:
                answer = await self.client.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                answer = exc
            self.tally.record(answer)
            if not _retryable(answer):
                break
            await asyncio.sleep(_wait(answer, attempt))
        return answer

    async def place(self, order: ClientOrder) -> None:
        """Fill the order's cart and place it, each step retried; a cart emptied under it (a
        Redis that lost it) is filled again and the order repeated with the same key."""
        for _ in range(3):
            if not order.in_cart:
                added = await self.send(
                    "POST",
                    "/cart/items",
                    json={"product_id": order.product_id, "quantity": 1},
                    headers=order.headers,
                )
                if not isinstance(added, httpx.Response) or added.status_code != 201:
                    return
                order.in_cart = True
            headers = {"Idempotency-Key": order.key, **order.headers}
            answer = await self.send("POST", "/orders", headers=headers, order=order)
            if isinstance(answer, Exception):
                return
            order.status, order.body = answer.status_code, answer.json()
            order.answered_at = time.monotonic()
            if order.status == 422 and "empty" in str(order.body.get("detail")):
                order.in_cart = False
                self.tally.retried += 1
                continue
            return

    async def loop(self, until: Callable[[], bool]) -> None:
        """``WORKERS`` clients, each placing orders one after another until ``until()``."""

        async def one() -> None:
            while not until():
                await self.place(self.new_order())

        await asyncio.gather(*(one() for _ in range(WORKERS)))

    async def settle(self) -> list[ClientOrder]:
        """Repeat every unfinished order with its own key (bounded); the still unfinished."""
        for _ in range(SETTLE_ROUNDS):
            unfinished = [o for o in self.orders if o.status not in (201, 402, 409)]
            if not unfinished:
                break
            await asyncio.gather(*(self.place(o) for o in unfinished))
        return [o for o in self.orders if o.status not in (201, 402, 409)]


@contextlib.asynccontextmanager
async def shop_client(stack: Stack, prefix: str) -> AsyncIterator[Shop]:
    secret = (stack.plan.state_dir / "secret_key").read_text().strip()
    limits = httpx.Limits(max_connections=4 * WORKERS)
    async with httpx.AsyncClient(
        base_url=stack.url, timeout=REQUEST_TIMEOUT, limits=limits
    ) as client:
        yield Shop(client, secret, prefix)


def seconds_from_now(seconds: float) -> Callable[[], bool]:
    deadline = time.monotonic() + seconds
    return lambda: time.monotonic() >= deadline


async def polled(check: Callable[[], bool], seconds: float, interval: float = 0.1) -> bool:
    """Poll ``check`` every ``interval`` for at most ``seconds``; its last value."""
    for _ in range(max(1, round(seconds / interval))):
        if check():
            return True
        await asyncio.sleep(interval)
    return check()


def acknowledged_after(orders: list[ClientOrder], moment: float) -> int:
    return sum(o.acknowledged and o.answered_at > moment for o in orders)


class Phase:
    """A phase's end: ``end_in(seconds)`` once its fault is over; ``over()`` polls it."""

    def __init__(self) -> None:
        self._end: float | None = None

    def end_in(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def over(self) -> bool:
        return self._end is not None and time.monotonic() >= self._end


# -- the checks -------------------------------------------------------------------------------


async def gateway(stack: Stack, method: str, path: str, **kwargs: Any) -> Any:
    async with httpx.AsyncClient(base_url=stack.plan.payments_url, timeout=10) as http:
        response = await http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()


async def check_orders(engine: Shards, stack: Stack, orders: list[ClientOrder]) -> int:
    """Every test order so far against the shards and the gateway's ledger; returns how many
    acknowledged orders were lost (not confirmed, not in its user's shard, or not charged
    exactly once)."""
    placed = await engine.rows(select(orm.orders).where(orm.orders.c.idempotency_key.like("e2e%")))
    strategy = JumpHash(len(engine.engines))
    misplaced = [(shard, row.id) for shard, row in placed if strategy.shard(row.user_id) != shard]
    assert misplaced == [], misplaced  # each order in its user's shard, and only there
    rows = [row for _shard, row in placed]
    by_key = {row.idempotency_key: row for row in rows}
    assert len(by_key) == len(rows)  # one order per Idempotency-Key
    assert {row.status for row in rows} <= {"confirmed"}, [
        r for r in rows if r.status != "confirmed"
    ]
    ledger = (await gateway(stack, "GET", "/charges"))["charges"]
    charges = collections.defaultdict(list)
    for charge in ledger:
        charges[charge["idempotency_key"]].append(charge)
    paid = {payment_key(row.id, row.created_at): row for row in rows}
    # No money for an order that is not confirmed (removed ones were voided or refunded).
    kept = [c for c in ledger if c["status"] == "succeeded"]
    assert [c for c in kept if c["idempotency_key"] not in paid] == []
    lost = 0
    for order in orders:
        if not order.acknowledged:
            continue
        row = by_key.get(order.key)
        mine = charges.get(payment_key(row.id, row.created_at), []) if row else []
        if not (
            row is not None
            and row.id == order.body["id"]
            and row.user_id == order.user_id
            and row.status == "confirmed"
            and [c["status"] for c in mine] == ["succeeded"]
            and mine[0]["id"] == row.charge_id
            and mine[0]["amount_cents"] == row.total_cents
        ):
            lost += 1
    # Every confirmed order was acknowledged to its client.
    assert {row.idempotency_key for row in rows} == {o.key for o in orders if o.acknowledged}
    return lost


async def effects(engine: Shards) -> dict[str, Any]:
    """What the worker applied, and what it should have: orders and their outbox rows from
    every shard, the worker's effects from the primary."""
    o, i, ob = orm.orders, orm.order_items, orm.outbox

    def sold(*where: Any) -> Any:
        return (
            select(i.c.product_id, func.sum(i.c.quantity))
            .join(o, o.c.id == i.c.order_id)
            .where(o.c.status == "confirmed", *where)
            .group_by(i.c.product_id)
        )

    def summed(pairs: list[tuple[int, Any]]) -> dict[Any, int]:
        total: collections.Counter[Any] = collections.Counter()
        for _shard, (key, n) in pairs:
            total[key] += int(n)
        return dict(total)

    confirmed = {
        row.id
        for _shard, row in await engine.rows(
            select(o.c.id).where(o.c.idempotency_key.like("e2e%"), o.c.status == "confirmed")
        )
    }
    units = summed(await engine.rows(sold(o.c.idempotency_key.like("e2e%"))))
    # The seed counts its own (confirmed, keyless) orders in product_sales.
    seeded = summed(await engine.rows(sold(o.c.idempotency_key.is_(None))))
    topics = summed(await engine.rows(select(ob.c.topic, func.count()).group_by(ob.c.topic)))
    unsent = sum(
        int(n) for _shard, (n,) in await engine.rows(
            select(func.count()).where(ob.c.sent_at.is_(None))
        )
    )  # fmt: skip
    async with engine.primary.connect() as connection:
        emails = list((await connection.execute(select(orm.order_emails.c.order_id))).scalars())
        pe = orm.processed_events
        processed: dict[str, int] = dict(
            (
                await connection.execute(
                    select(pe.c.consumer, func.count()).group_by(pe.c.consumer)
                )
            ).all()
        )
        sales = {
            row.product_id: row
            for row in (await connection.execute(select(orm.product_sales))).all()
        }
    return {
        "confirmed": confirmed,
        "units": {int(p): int(n) for p, n in units.items()},
        "seeded": {int(p): int(n) for p, n in seeded.items()},
        "topics": topics,
        "unsent": unsent,
        "emails": emails,
        "processed": processed,
        "sales": sales,
    }


def _beyond(sales: dict[int, Any], what: str, seeded: dict[int, int]) -> dict[int, int]:
    """Units per product the worker counted beyond the seed's: sold, or reserved - released."""
    counted = {
        p: (s.sold if what == "sold" else s.reserved - s.released) - seeded.get(p, 0)
        for p, s in sales.items()
    }
    return {p: n for p, n in counted.items() if n}


def applied_once(found: dict[str, Any]) -> bool:
    """True when every event was published and applied exactly once in effect."""
    topics, processed, sales = found["topics"], found["processed"], found["sales"]
    seeded = found["seeded"]
    confirmed_events = topics.get("order.confirmed", 0)
    return (
        found["unsent"] == 0
        and confirmed_events == len(found["confirmed"])
        and sorted(found["emails"]) == sorted(found["confirmed"])
        and processed.get("email", 0) == confirmed_events
        and processed.get("inventory.sold", 0) == confirmed_events
        and processed.get("inventory.reserved", 0) == topics.get("order.created", 0)
        and processed.get("inventory.released", 0) == topics.get("order.failed", 0)
        and _beyond(sales, "sold", seeded) == found["units"]
        and _beyond(sales, "net", seeded) == found["units"]
    )


async def drained(engine: Shards) -> dict[str, Any]:
    """Wait (bounded) until the worker has applied every event once; what it applied."""
    deadline = time.monotonic() + DRAIN_SECONDS
    while True:
        found = await effects(engine)
        if applied_once(found) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.2)


async def verify(
    phase: str, engine: Shards, stack: Stack, shop: Shop, placed: list[ClientOrder]
) -> str:
    """Settle the phase's orders, then check them and those of the phases before (``placed``,
    which they join) and every effect so far; the phase's line."""
    unfinished = await shop.settle()
    assert unfinished == [], [(o.key, o.status, o.body) for o in unfinished]
    assert {o.status for o in shop.orders} == {201}, collections.Counter(
        o.status for o in shop.orders
    )
    lost = await check_orders(engine, stack, placed + shop.orders)
    found = await drained(engine)
    assert applied_once(found), {k: v for k, v in found.items() if k != "sales"}
    placed.extend(shop.orders)
    line = shop.tally.line(phase, shop.orders, lost)
    print("\n" + line)
    assert lost == 0, line
    assert "500" not in shop.tally.answers, line
    return line


async def ready(stack: Stack) -> None:
    await asyncio.to_thread(stack.wait_ready, 60.0)


# -- the phases -------------------------------------------------------------------------------


async def test_an_instance_killed_under_load_loses_no_acknowledged_order(
    stack: Stack, engine: Shards, placed: list[ClientOrder]
) -> None:
    await ready(stack)
    async with shop_client(stack, "e2e-kill") as shop:
        load = asyncio.create_task(shop.loop(seconds_from_now(6.0)))
        await asyncio.sleep(1.5)
        killed = stack.kill_instance(1)
        try:
            await load
            assert stack.instance_pid(1) == 0, "shop-1 came back by itself"
            assert stack.servers()["shop-1"].status.startswith("DOWN")
            await verify(f"SIGKILL shop-1 (pid {killed}) under load", engine, stack, shop, placed)
        finally:
            await asyncio.to_thread(stack.restart_instance, 1, 60.0)
    # Both instances serve again.
    seen = set()
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
        for _ in range(20):
            response = await http.get("/products/1", headers={"Connection": "close"})
            assert response.status_code == 200
            seen.add(response.headers["X-Served-By"])
    assert seen == set(stack.instance_names)


async def test_redis_down_for_5s_keeps_the_catalogue_and_recovers_by_itself(
    stack: Stack, engine: Shards, own_redis: KillableRedis, placed: list[ClientOrder]
) -> None:
    await ready(stack)
    pids = [stack.instance_pid(i) for i in range(len(stack.instance_names))]
    reads: list[tuple[float, str, int, str | None]] = []  # sent at, kind, status, Retry-After
    down: list[float] = []  # when Redis had stopped, when it answered again
    phase = Phase()
    async with shop_client(stack, "e2e-redis") as shop:
        reader = {"Authorization": f"Bearer {issue_token(shop.secret, 1, new_session_id(), 3600)}"}
        added = await shop.send(
            "POST", "/cart/items", json={"product_id": 1, "quantity": 1}, headers=reader
        )
        assert isinstance(added, httpx.Response), added
        assert added.status_code == 201, added.text
        carts_back = asyncio.Event()

        async def read() -> None:
            paths = [("product", f"/products/{p}") for p in PRODUCTS[:6]]
            paths += [("products", "/products?limit=5"), ("cart", "/cart")]
            for kind, path in itertools.cycle(paths):
                if phase.over():
                    return
                sent = time.monotonic()
                try:
                    response = await shop.client.get(path, headers=reader)
                except httpx.TransportError as exc:
                    shop.tally.record(exc)
                    reads.append((sent, kind, 0, None))
                    continue
                shop.tally.record(response)
                after = response.headers.get("Retry-After")
                reads.append((sent, kind, response.status_code, after))
                if kind == "cart" and len(down) == 2 and sent > down[1] and response.is_success:
                    carts_back.set()
                await asyncio.sleep(0.01)

        async def outage() -> None:
            try:
                await asyncio.sleep(1.0)
                # SHUTDOWN SAVE: Redis exits at once (every connection drops) and comes back
                # with its data, as one with persistence would. (A Redis that lost its stream
                # would lose events whatever the shop did: not what this test is about.)
                client = redis.Redis.from_url(own_redis.url, socket_timeout=5)
                with contextlib.suppress(redis.ConnectionError):
                    client.shutdown(save=True)
                client.close()
                await asyncio.to_thread(own_redis.process.wait, 10)
                down.append(time.monotonic())
                await asyncio.sleep(5.0)
                await asyncio.to_thread(own_redis.restart)
                down.append(time.monotonic())
                await polled(
                    lambda: carts_back.is_set() and acknowledged_after(shop.orders, down[1]) > 0,
                    RECOVER_SECONDS,
                )
            finally:
                phase.end_in(2.0)  # orders go on a little after the recovery

        await asyncio.gather(shop.loop(phase.over), read(), read(), outage())
        line = await verify("Redis stopped for 5 s", engine, stack, shop, placed)

    stopped, started = down
    # Sent while Redis was down (its answer cannot have seen Redis back).
    during = [r for r in reads if stopped < r[0] < started - 0.5]
    seen = collections.Counter(f"{kind} {status}" for _, kind, status, _ in during)
    print(f"reads sent while Redis was down: {dict(sorted(seen.items()))}")
    catalogue = collections.Counter((k, s) for _, k, s, _ in reads if k != "cart")
    assert set(catalogue) == {("product", 200), ("products", 200)}, catalogue
    carts = [r for r in during if r[1] == "cart"]
    assert carts, seen
    assert {r[2] for r in carts} == {503}, seen
    assert all(int(r[3] or 0) >= 1 for r in carts), carts  # Retry-After
    assert shop.tally.other == {}, line
    assert carts_back.is_set(), "the cart did not answer 200 again after Redis came back"
    assert acknowledged_after(shop.orders, started) > 0, "no order was placed after Redis"
    # Nothing was restarted: the same processes serve.
    assert [stack.instance_pid(i) for i in range(len(pids))] == pids


async def test_failing_payments_open_the_breaker_and_never_charge_twice(
    stack: Stack, engine: Shards, placed: list[ClientOrder]
) -> None:
    await ready(stack)
    names, urls = stack.instance_names, stack.instance_urls
    states: dict[str, list[tuple[float, str]]] = {name: [] for name in names}
    marks: dict[str, float] = {}
    phase = Phase()

    def closed_since(moment: float) -> bool:
        return all(s and s[-1][1] == "closed" and s[-1][0] > moment for s in states.values())

    async def watch() -> None:
        # Each instance's /readyz, directly: its payment breaker's state.
        async with httpx.AsyncClient(timeout=5) as http:
            while not phase.over():
                for name, url in zip(names, urls, strict=True):
                    at = time.monotonic()
                    try:
                        body = (await http.get(url + "/readyz")).json()
                        state = str(body["dependencies"].get("payments_breaker"))
                    except (httpx.TransportError, ValueError, KeyError) as exc:
                        state = type(exc).__name__
                    states[name].append((at, state))
                await asyncio.sleep(0.2)

    async with shop_client(stack, "e2e-pay") as shop:

        async def fault() -> None:
            try:
                await asyncio.sleep(1.0)
                await gateway(stack, "PUT", "/admin/behaviour", json={"failure_rate": FAILING})
                marks["failing"] = time.monotonic()
                await asyncio.sleep(10.0)
                await gateway(stack, "PUT", "/admin/behaviour", json={"failure_rate": 0.0})
                marks["healthy"] = time.monotonic()
                await polled(lambda: closed_since(marks["healthy"]), RECOVER_SECONDS)
                marks["closed"] = time.monotonic()
            finally:
                phase.end_in(2.0)

        try:
            await asyncio.gather(shop.loop(phase.over), watch(), fault())
        finally:
            await gateway(stack, "PUT", "/admin/behaviour", json={"failure_rate": 0.0})
        stats = await gateway(stack, "GET", "/admin/stats")
        phase_name = f"payments failing {FAILING:.0%} for 10 s"
        await verify(phase_name, engine, stack, shop, placed)

    opened = {
        name: sum(1 for (_, a), (_, b) in itertools.pairwise(seen) if b == "open" and a != "open")
        for name, seen in states.items()
    }
    print(f"breaker opened (times per instance): {opened}; gateway stats: {stats}")
    assert stats["failed"] > 0, stats
    assert any(opened.values()), states
    assert closed_since(marks["healthy"]), {n: s[-3:] for n, s in states.items()}
    assert acknowledged_after(shop.orders, marks["closed"]) > 0, "no order after recovery"
