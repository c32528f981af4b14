"""Placing orders while the payment gateway misbehaves, on the embedded defaults.

The payment simulator runs inside the app (``extras["servers"]["payments"]``); its behaviour
is changed over HTTP (``PUT /admin/behaviour``) and its ledger (``GET /charges``) and request
count (``GET /admin/stats``) are what the tests check the shop against: money is taken once
for a confirmed order and never for anything else, and the breaker and the retry budget keep
an outage from being hammered (counted in requests, never timed).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from shop.adapters import orm
from shop.adapters.sessions import new_session_id
from shop.entrypoints.auth import COOKIE, issue_token
from shop.service_layer.handlers import payment_key
from tailguard.events import CircuitStateChanged, hooks
from tests.shop.conftest import ShopFactory, settle, sign_in

pytestmark = pytest.mark.slow

USERS = range(1, 7)
"""Seeded users who place the orders."""
FIRST_PRODUCT = 101
"""Each order buys one unit of its own product, from here on (the seed stocks 1,000,000)."""
HEALTHY = {"failure_rate": 0.0, "timeout_rate": 0.0}
FINAL_STATUSES = {201, 402, 409}


def gateway(app: Any) -> str:
    """The URL of the payment simulator running inside ``app``."""
    url: str = app.state.services.extras["servers"]["payments"].url
    return url


async def behave(app: Any, **changes: float) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.put(f"{gateway(app)}/admin/behaviour", json=changes)
        response.raise_for_status()


async def gateway_json(app: Any, path: str) -> Any:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{gateway(app)}{path}")
        response.raise_for_status()
        return response.json()


async def requests_seen(app: Any) -> int:
    """Charge requests the simulator received (voids and admin calls are not counted)."""
    stats = await gateway_json(app, "/admin/stats")
    return int(stats["requests"])


def new_session(app: Any, user_id: int) -> dict[str, str]:
    """Auth headers of a fresh cart session for ``user_id`` (a token as /auth/token makes,
    without paying argon2 per order): one cart per order, so concurrent orders of one user
    do not share a cart."""
    token = issue_token(app.state.secret, user_id, new_session_id(), 3600.0)
    return {"Authorization": f"Bearer {token}"}


class Attempt:
    """One order: whose, which product, which key, its session, and the answers it got."""

    def __init__(self, app: Any, n: int, user_id: int, product_id: int, prefix: str) -> None:
        self.user_id = user_id
        self.product_id = product_id
        self.key = f"{prefix}-{n:04d}"
        self.headers = new_session(app, user_id)
        self.answers: list[httpx.Response] = []

    @property
    def last(self) -> httpx.Response:
        return self.answers[-1]

    async def fill_cart(self, client: httpx.AsyncClient) -> None:
        added = await client.post(
            "/cart/items", json={"product_id": self.product_id, "quantity": 1}, headers=self.headers
        )
        assert added.status_code == 201, added.text

    async def place(self, client: httpx.AsyncClient) -> httpx.Response:
        response = await client.post(
            "/orders", headers={"Idempotency-Key": self.key, **self.headers}
        )
        self.answers.append(response)
        return response


def plan(app: Any, count: int, prefix: str, first_product: int = FIRST_PRODUCT) -> list[Attempt]:
    users = itertools.cycle(USERS)
    return [Attempt(app, n, next(users), first_product + n, prefix) for n in range(count)]


async def place_all(
    client: httpx.AsyncClient, attempts: list[Attempt], *, batch: int
) -> list[httpx.Response]:
    """Fill each cart and place each order, ``batch`` orders at once (1: one by one)."""
    client.cookies.clear()  # the session is the token's; a cookie would override it
    for attempt in attempts:
        await attempt.fill_cart(client)
    answers: list[httpx.Response] = []
    for start in range(0, len(attempts), batch):
        group = attempts[start : start + batch]
        answers += await asyncio.gather(*(a.place(client) for a in group))
    assert COOKIE not in client.cookies
    return answers


async def orders_by_key(app: Any, prefix: str) -> dict[str, dict[str, Any]]:
    """The orders whose Idempotency-Key starts with ``prefix``, read from the database."""
    engine = app.state.services.extras["engine"]
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(orm.orders).where(orm.orders.c.idempotency_key.like(f"{prefix}-%"))
        )
        found = {row.idempotency_key: dict(row._mapping) for row in rows}
        items = await connection.execute(
            select(orm.order_items.c.order_id, orm.order_items.c.product_id).where(
                orm.order_items.c.order_id.in_([o["id"] for o in found.values()])
            )
        )
        products: dict[int, list[int]] = {}
        for order_id, product_id in items:
            products.setdefault(order_id, []).append(product_id)
    for order in found.values():
        order["products"] = products.get(order["id"], [])
    return found


async def reserved(app: Any, product_ids: list[int]) -> dict[int, int]:
    engine = app.state.services.extras["engine"]
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(orm.inventory.c.product_id, orm.inventory.c.reserved).where(
                orm.inventory.c.product_id.in_(product_ids)
            )
        )
        return {int(pid): int(r) for pid, r in rows}


async def check_ledger(app: Any, prefix: str, attempts: list[Attempt]) -> dict[str, int]:
    """The invariants between the shop's orders and the gateway's charges; returns figures."""
    orders = await orders_by_key(app, prefix)
    ledger = (await gateway_json(app, "/charges"))["charges"]
    by_key: dict[str, list[dict[str, Any]]] = {}
    for charge in ledger:
        by_key.setdefault(charge["idempotency_key"], []).append(charge)
    # No payment key was ever charged twice.
    doubled = {k: v for k, v in by_key.items() if sum(c["status"] == "succeeded" for c in v) > 1}
    assert not doubled, doubled
    assert all(len(v) == 1 for v in by_key.values())

    confirmed = {o["id"]: o for o in orders.values() if o["status"] == "confirmed"}
    pending = {o["id"]: o for o in orders.values() if o["status"] == "pending"}
    assert len(confirmed) + len(pending) == len(orders), orders
    keys = {payment_key(o["id"], o["created_at"]): o["id"] for o in orders.values()}
    # Every confirmed order: exactly one succeeded charge, for its key and its amount.
    for order_id, order in confirmed.items():
        charges = by_key.get(payment_key(order_id, order["created_at"]), [])
        assert [c["status"] for c in charges] == ["succeeded"], (order, charges)
        assert charges[0]["amount_cents"] == order["total_cents"], (order, charges)
        assert charges[0]["id"] == order["charge_id"], (order, charges)
    # No money is kept for an order that is not confirmed (gone, or pending after a failed void).
    for key, charges in by_key.items():
        for charge in charges:
            if charge["status"] == "succeeded":
                assert keys.get(key) in confirmed, (key, charge)
    # Stock: reserved only for the products of pending orders (once the event worker has
    # taken confirmed orders' units from stock and given failed orders' back).
    await settle(app)
    products = [a.product_id for a in attempts]
    held = {pid for o in pending.values() for pid in o["products"]}
    stock = await reserved(app, products)
    assert {pid: r for pid, r in stock.items() if pid not in held and r != 0} == {}
    # The API agrees with the database: a 201 is a confirmed order of that user.
    for attempt in attempts:
        if attempt.last.status_code == 201:
            body = attempt.last.json()
            assert body["status"] == "confirmed"
            assert body["id"] in confirmed
            assert confirmed[body["id"]]["user_id"] == attempt.user_id
    return {"confirmed": len(confirmed), "pending": len(pending), "charges": len(ledger)}


def tally(answers: list[httpx.Response]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for answer in answers:
        counts[answer.status_code] = counts.get(answer.status_code, 0) + 1
    return dict(sorted(counts.items()))


async def repeat_until_final(
    client: httpx.AsyncClient, attempts: list[Attempt], *, rounds: int = 8
) -> list[httpx.Response]:
    """Repeat each unfinished attempt with its own key until it ends (201, 402 or 409),
    waiting its Retry-After (at most 6 s: the breaker's recovery is 5 s) between rounds."""
    answers: list[httpx.Response] = []
    for _ in range(rounds):
        unfinished = [a for a in attempts if a.last.status_code not in FINAL_STATUSES]
        if not unfinished:
            break
        wait = max(int(a.last.headers.get("Retry-After", "1")) for a in unfinished)
        await asyncio.sleep(min(wait, 6))
        answers += await asyncio.gather(*(a.place(client) for a in unfinished))
    return answers


@pytest.mark.parametrize("naive", ["", "breaker"], ids=["breaker", "no-breaker"])
async def test_faulty_payments_charge_each_confirmed_order_once(
    shop: ShopFactory, naive: str
) -> None:
    # 50% failing + 10% hanging is over the breaker's 50% threshold: with it, most orders
    # are refused fast once it opens; without it (naive), every order goes through the
    # retries, the timeouts and the voids, the paths where money could be lost or doubled.
    orders_tried = 60
    label = "no breaker" if naive else "breaker"
    async with shop(payment_timeout=0.6, naive=naive) as (app, client):
        for user_id in USERS:  # the real sign-in works; the orders use tokens made alike
            await sign_in(client, user_id)
        await behave(app, failure_rate=0.5, timeout_rate=0.1, hang=2.0)
        attempts = plan(app, orders_tried, "fault")
        answers = await place_all(client, attempts[:20], batch=1)
        answers += await place_all(client, attempts[20:], batch=10)
        first = tally(answers)
        assert set(first) <= {201, 503}, first  # 402/409 need a decline or a shortage
        for answer in answers:
            if answer.status_code == 503:
                assert int(answer.headers["Retry-After"]) >= 1
        during = await check_ledger(app, "fault", attempts)
        stats = await gateway_json(app, "/admin/stats")
        print(
            f"\n[{label}] payments 50% failing, 10% hanging: orders tried "
            f"{orders_tried}, 201 {first.get(201, 0)}, 503 {first.get(503, 0)}, pending "
            f"{during['pending']} (void failed); gateway: {stats['requests']} charge requests, "
            f"{stats['failed']} failed, {stats['hung']} hung, ledger {during['charges']}"
        )
        assert first.get(503, 0) > 0, first

        # Healthy again: every request that did not end is repeated with its own key.
        await behave(app, **HEALTHY)
        repeats = await repeat_until_final(client, attempts)
        second = tally(repeats)
        final = tally([a.last for a in attempts])
        assert set(final) <= FINAL_STATUSES, final
        # A 201 replays the same answer, whatever happened since.
        done = next(a for a in attempts if a.last.status_code == 201)
        replay = await done.place(client)
        assert replay.status_code == 201
        assert replay.json() == done.answers[-2].json()
        assert replay.headers["Idempotent-Replayed"] == "true"
        after = await check_ledger(app, "fault", attempts)
        print(
            f"[{label}] after recovery, {len(repeats)} repeats {second}; final "
            f"{final}; confirmed {after['confirmed']} of {orders_tried}, pending "
            f"{after['pending']}"
        )
        assert after["pending"] == 0
        assert after["confirmed"] == final.get(201, 0)


@pytest.fixture
def breaker_changes() -> Iterator[list[CircuitStateChanged]]:
    """The payments breaker's state changes, as they happen."""
    seen: list[CircuitStateChanged] = []
    unsubscribe = hooks.subscribe(
        lambda e: seen.append(e) if e.name == "payments" else None, CircuitStateChanged
    )
    try:
        yield seen
    finally:
        unsubscribe()


async def test_open_breaker_stops_calls_to_a_dead_gateway(
    shop: ShopFactory, breaker_changes: list[CircuitStateChanged]
) -> None:
    async with shop() as (app, client):
        await behave(app, failure_rate=1.0)
        # Until the breaker opens: 10 failed calls in its 10 s window (a few orders' tries).
        opened = False
        tried = 0
        for attempt in plan(app, 30, "trip"):
            await place_all(client, [attempt], batch=1)
            tried += 1
            assert attempt.last.status_code == 503, attempt.last.text
            if app.state.services.extras["breaker"].state == "open":
                opened = True
                break
        assert opened, f"the breaker did not open after {tried} orders"
        ready = await client.get("/readyz")
        # Still ready: the gateway is every instance's, so the balancer must keep this one.
        assert ready.status_code == 200
        assert ready.json()["dependencies"]["payments_breaker"] == "open"
        assert ready.json()["degraded"] == ["payments"]

        # While it stays open (no state change seen meanwhile) no charge reaches the gateway.
        for round_ in range(5):
            changes, before = len(breaker_changes), await requests_seen(app)
            ledger = (await gateway_json(app, "/charges"))["charges"]
            attempts = plan(app, 10, f"open{round_}", first_product=200 + 10 * round_)
            answers = await place_all(client, attempts, batch=5)
            after = await requests_seen(app)
            if len(breaker_changes) == changes:  # the same open period throughout
                break
            # It half-opened meanwhile (a very slow run): its probe may have gone out; again.
        assert len(breaker_changes) == changes, "the breaker never stayed open for 10 orders"
        assert after == before, (before, after)
        # Nothing was sent, so nothing was voided either: the gateway's ledger is unchanged.
        assert (await gateway_json(app, "/charges"))["charges"] == ledger
        assert tally(answers) == {503: 10}
        for answer in answers:
            assert int(answer.headers["Retry-After"]) >= 1
            assert "unavailable" in answer.json()["detail"]
        print(
            f"\nbreaker: opened after {tried} orders; 10 more orders while open: 503 x10, "
            f"gateway charge requests {before} -> {after}"
        )

    # The naive twin: no breaker, so every order keeps calling the dead gateway.
    async with shop(naive="breaker") as (app, client):
        assert app.state.services.extras["breaker"] is None
        await behave(app, failure_rate=1.0)
        before = await requests_seen(app)
        attempts = plan(app, 30, "naive")
        answers = await place_all(client, attempts, batch=5)
        after = await requests_seen(app)
        assert tally(answers) == {503: 30}
        assert after - before >= 30, (before, after)
        ready = await client.get("/readyz")
        assert "payments_breaker" not in ready.json()["dependencies"]
        print(f"naive breaker: 30 orders, gateway charge requests {before} -> {after}")


async def amplification(app: Any, client: httpx.AsyncClient, orders: int, prefix: str) -> float:
    """Charge requests the gateway got per order for ``orders`` orders, 10 at a time."""
    before = await requests_seen(app)
    answers = await place_all(client, plan(app, orders, prefix, first_product=300), batch=10)
    assert tally(answers) == {503: orders}
    return (await requests_seen(app) - before) / orders


async def test_retry_budget_caps_amplification_in_an_outage(shop: ShopFactory) -> None:
    # The budget (bootstrap.payment_policy): retries <= 20% of calls + 1/s x 10 s, over a
    # sliding 10 s window. A warm-up of 10 orders spends the 10-retry floor; then each of
    # 50 orders adds 0.2 retry: 50 calls + 10 retries = 1.2 per order. Even if the warm-up's
    # withdrawals all left the window during the burst (a run slower than 10 s), that frees
    # at most 10 more: 70 / 50 = 1.4, still under the 1.5 asserted. Without a budget, every
    # order makes its 3 attempts (the failures are immediate, well within payment_timeout).
    burst = 50
    async with shop(naive="breaker") as (app, client):
        await behave(app, failure_rate=1.0)
        warm = await amplification(app, client, 10, "warm")
        budgeted = await amplification(app, client, burst, "budget")
    async with shop(naive="breaker,retry_budget") as (app, client):
        await behave(app, failure_rate=1.0)
        unbudgeted = await amplification(app, client, burst, "nobudget")
    print(
        f"\nretry budget: warm-up 10 orders {warm:.2f} calls/order; burst of {burst}: "
        f"{budgeted:.2f} calls/order with the budget, {unbudgeted:.2f} without"
    )
    assert budgeted <= 1.5
    assert unbudgeted >= 2.5
