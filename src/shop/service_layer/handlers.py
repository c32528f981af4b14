"""The write side: sign-in, the cart, placing an order, changing a price or a profile.

Placing an order never leaves it half-made: it is either confirmed and charged once, or not
there and not charged (a failed charge releases its reservation). The order's payment key
(:func:`payment_key`: ``order-{id}-{created_at}``) is the gateway's idempotency key, so a retry,
a repeat of the request or a resumed attempt can never charge twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from shop.adapters.passwords import verify_password
from shop.adapters.payments import Charge, ChargeRejected, PaymentUnavailable
from shop.domain.model import Cart, Order, OrderStatus, UnknownProduct, User
from shop.service_layer import messagebus
from shop.service_layer.services import Services
from shop.service_layer.unit_of_work import UnitOfWork
from shop.service_layer.views import NotFound, order_dict
from tailguard.errors import BackendUnavailable, Rejected
from tailguard.observe.tracing import traced

__all__ = [
    "OrderOutcome",
    "add_to_cart",
    "authenticate",
    "change_price",
    "payment_key",
    "place_order",
    "remove_from_cart",
    "update_profile",
]

_log = logging.getLogger("shop.handlers")


async def authenticate(svc: Services, email: str, password: str) -> User | None:
    """The user if ``password`` is theirs, else None (same answer for an unknown email).

    Users are sharded by id, not email: every shard is asked (one indexed lookup each, at
    once). A shard that does not answer is an error only when no other shard has the user.
    """
    user = await _user_by_email(svc, email)
    if user is None:
        return None
    # argon2 takes ~50-150 ms of CPU by design: off the event loop, or it stalls every request.
    if not await asyncio.to_thread(verify_password, user.password_hash, password):
        return None
    return user


def _fence(svc: Services, user_id: int) -> None:
    """BackendUnavailable (503, Retry-After) while a reshard moves ``user_id``. Checked at the
    start of a write and again right before each of its commits, so a write in flight when the
    freeze begins cannot land in the old shard after the reshard's ``grace``."""
    if svc.databases is not None:
        svc.databases.check_writable(user_id)


async def _user_by_email(svc: Services, email: str) -> User | None:
    async def lookup(make_uow: Callable[[], UnitOfWork], _shard: int) -> User | None:
        async with make_uow() as uow:
            return await uow.users.by_email(email)

    if len(svc.shards) == 1:
        return await lookup(svc.shards.targets[0], 0)
    gathered = await svc.shards.gather(lookup)
    for user in gathered.values():
        if user is not None:
            return user
    for shard, error in gathered.errors.items():
        raise BackendUnavailable("database", f"shard {shard} did not answer: {error!r}") from error
    return None


async def add_to_cart(
    svc: Services, user_id: int, session_id: str, product_id: int, quantity: int
) -> Cart:
    """Add ``quantity`` of a product; UnknownProduct when it does not exist."""
    from shop.service_layer.views import product

    try:
        await product(svc, product_id)
    except NotFound:
        raise UnknownProduct(product_id) from None
    cart = await svc.sessions.load(user_id, session_id)
    new = cart.add(product_id, quantity)
    await svc.sessions.set_line(user_id, session_id, product_id, new)
    return cart


async def remove_from_cart(svc: Services, user_id: int, session_id: str, product_id: int) -> Cart:
    """Drop a product from the cart; NotFound when it was not in it."""
    if not await svc.sessions.remove_line(user_id, session_id, product_id):
        raise NotFound(f"product {product_id} is not in the cart")
    return await svc.sessions.load(user_id, session_id)


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """The answer to ``POST /orders``: a status code, a body and, for 503, ``retry_after``."""

    status_code: int
    body: dict[str, Any]
    retry_after: float | None = None
    replayed: bool = False


def _final(status_code: int, body: dict[str, Any]) -> OrderOutcome:
    return OrderOutcome(status_code, body)


@traced("order.place")
async def place_order(
    svc: Services, user_id: int, session_id: str, idempotency_key: str
) -> OrderOutcome:
    """Order the cart: validate, reserve stock, charge, confirm; the first final answer to
    (user, ``idempotency_key``) is replayed for every repeat."""
    _fence(svc, user_id)
    async with svc.user_uow(user_id) as uow:
        prior = await uow.idempotency.get(user_id, idempotency_key)
        pending = None if prior else await uow.orders.by_key(user_id, idempotency_key)
    if prior is not None:
        return OrderOutcome(prior[0], prior[1], replayed=True)
    if pending is None:
        created = await _create(svc, user_id, session_id, idempotency_key)
        if isinstance(created, OrderOutcome):
            return created
        pending = created
    elif pending.status == OrderStatus.CONFIRMED:  # confirmed, its answer not yet saved
        return await _remember(svc, user_id, idempotency_key, _final(201, order_dict(pending)))
    return await _charge(svc, pending, session_id, idempotency_key)


@traced("order.reserve")
async def _create(svc: Services, user_id: int, session_id: str, key: str) -> Order | OrderOutcome:
    cart = await svc.sessions.load(user_id, session_id)
    if not cart.lines:
        return _final(422, {"detail": "the cart is empty"})
    async with svc.user_uow(user_id) as uow:
        prices = await uow.products.prices(list(cart.lines))
        try:
            order = Order.from_cart(user_id, cart, prices, idempotency_key=key)
        except UnknownProduct as exc:
            return _final(422, {"detail": str(exc)})
        shortfalls = await uow.products.reserve(cart.lines)
        if shortfalls:
            await uow.rollback()
            body = {
                "detail": "out of stock",
                "shortfalls": {str(k): v for k, v in sorted(shortfalls.items())},
            }
            return await _remember(svc, user_id, key, _final(409, body))
        uow.orders.add(order)
        try:
            await uow.flush()
            order.placed()
            _fence(svc, user_id)
            await uow.commit()
        except BaseException as exc:
            if uow.primary_committed:
                # Sharded: the reservation is committed, the order is not. Give it back (a
                # crash right here leaves it reserved: stock held, never an order without it).
                await asyncio.shield(_release(svc, dict(cart.lines)))
            if isinstance(exc, IntegrityError):
                # Another request with this key got there first: it answers; this one says so.
                return OrderOutcome(
                    409, {"detail": "a request with this Idempotency-Key is in progress"}, 1.0
                )
            raise
        await messagebus.publish(svc, uow.collect_new_events())
    return order


async def _release(svc: Services, lines: dict[int, int]) -> None:
    async with svc.uow() as uow:
        await uow.products.release(lines)
        await uow.commit()


def payment_key(order_id: int, created_at: datetime) -> str:
    """The gateway's idempotency key of an order: its id and creation time. A resumed order
    keeps it; no other order gets it, even where an id comes back (SQLite gives the id of a
    deleted last row to the next insert, and the gateway remembers that id's voided key)."""
    return f"order-{order_id}-{created_at:%Y%m%d%H%M%S%f}"


@traced("order.charge")
async def _pay(svc: Services, order: Order, pay_key: str) -> Charge:
    return await svc.payments.charge(pay_key, order.total_cents, order.user_id)


async def _charge(svc: Services, order: Order, session_id: str, key: str) -> OrderOutcome:
    pay_key = payment_key(order.id, order.created_at)
    try:
        charge = await _pay(svc, order, pay_key)
    except ChargeRejected as exc:  # the gateway refuses this key (voided earlier): give up
        await _abandon(svc, order, f"charge refused: {exc}")
        return _final(402, {"detail": "the payment was refused", "order_id": order.id})
    except (Rejected, PaymentUnavailable, TimeoutError, BackendUnavailable) as exc:
        retry_after = getattr(exc, "retry_after", None) or 1.0
        if isinstance(exc, Rejected):  # no attempt went out (PaymentGateway.charge): no void
            await _abandon(svc, order, f"payments rejected: {exc}")
        elif not await _void(svc, pay_key):
            # The charge may or may not have landed and the gateway cannot say now: the order
            # stays pending, and a repeat with the same key resumes it with the same charge key.
            _log.warning("order %s left pending: charge outcome unknown (%r)", order.id, exc)
            return OrderOutcome(503, {"detail": "payment outcome unknown; retry"}, retry_after)
        else:
            await _abandon(svc, order, f"payment unavailable: {exc}")
        return OrderOutcome(503, {"detail": "the payment service is unavailable"}, retry_after)
    if not charge.succeeded:
        await _abandon(svc, order, "declined")
        return await _remember(
            svc,
            order.user_id,
            key,
            _final(402, {"detail": "the charge was declined", "order_id": order.id}),
        )
    outcome = await _confirm(svc, order, charge, key)
    if outcome.status_code == 201 and not outcome.replayed:
        try:
            await svc.sessions.clear(order.user_id, session_id)
        except BackendUnavailable:
            _log.warning("order %s confirmed; its cart could not be cleared", order.id)
    return outcome


@traced("order.confirm")
async def _confirm(svc: Services, order: Order, charge: Charge, key: str) -> OrderOutcome:
    async with svc.user_uow(order.user_id) as uow:
        fresh = await uow.orders.get(order.id)
        if fresh is None:  # cannot happen: only this path removes a pending order
            raise RuntimeError(f"order {order.id} vanished while being charged")
        if fresh.status != OrderStatus.CONFIRMED:
            # Its order.confirmed event (outbox, same transaction) turns the reservation into
            # sold stock in the event worker, once: the stock is in the primary database.
            fresh.confirm(charge.id)
        outcome = _final(201, order_dict(fresh))
        _fence(svc, order.user_id)  # charged: a 503 now, and the repeat confirms it
        # The key's row is the guard: if a concurrent repeat confirmed first, this whole
        # transaction (its event included) is rolled back and its answer stands.
        prior = await _commit_answer(uow, order.user_id, key, outcome)
        if prior is not None:
            return prior
        await messagebus.publish(svc, uow.collect_new_events())
    return outcome


async def _void(svc: Services, pay_key: str) -> bool:
    """Cancel ``pay_key`` at the gateway; True when it is certainly void."""
    try:
        await svc.void_policy.call(svc.payments.void, pay_key)
    except Exception as exc:
        _log.info("void of %s failed: %r", pay_key, exc)
        return False
    return True


async def _abandon(svc: Services, order: Order, reason: str) -> None:
    async with svc.user_uow(order.user_id) as uow:
        fresh = await uow.orders.get(order.id)
        if fresh is None or fresh.status == OrderStatus.CONFIRMED:
            return
        # Its order.failed event releases the reservation in the event worker, once.
        fresh.fail(reason)
        await uow.orders.remove(fresh)
        _fence(svc, order.user_id)
        await uow.commit()
        await messagebus.publish(svc, uow.collect_new_events())


async def _commit_answer(
    uow: UnitOfWork, user_id: int, key: str, outcome: OrderOutcome
) -> OrderOutcome | None:
    """Save ``outcome`` as the key's answer and commit; None when it was saved. When a
    concurrent repeat saved first, roll back and return that answer (replayed)."""
    try:
        await uow.idempotency.save(user_id, key, outcome.status_code, outcome.body)
        await uow.commit()
    except IntegrityError:
        await uow.rollback()
        prior = await uow.idempotency.get(user_id, key)
        if prior is None:
            raise
        return OrderOutcome(prior[0], prior[1], replayed=True)
    return None


async def _remember(svc: Services, user_id: int, key: str, outcome: OrderOutcome) -> OrderOutcome:
    _fence(svc, user_id)
    async with svc.user_uow(user_id) as uow:
        return await _commit_answer(uow, user_id, key, outcome) or outcome


async def change_price(svc: Services, product_id: int, price_cents: int) -> dict[str, Any]:
    """Set a product's price; every instance's cached copy is evicted."""
    from shop.service_layer.views import _product

    async with svc.uow() as uow:
        found = await uow.products.get(product_id)
        if found is None:
            raise NotFound(f"product {product_id} does not exist")
        found.change_price(price_cents)
        await uow.commit()
        await messagebus.publish(svc, uow.collect_new_events())
        return _product(found)


async def update_profile(svc: Services, user_id: int, *, name: str) -> dict[str, Any]:
    """Rename a user; every instance's cached profile is evicted."""
    _fence(svc, user_id)
    from shop.service_layer.views import _profile

    async with svc.user_uow(user_id) as uow:
        user = await uow.users.get(user_id)
        if user is None:
            raise NotFound(f"user {user_id} does not exist")
        user.update_profile(name=name)
        _fence(svc, user_id)
        await uow.commit()
        await messagebus.publish(svc, uow.collect_new_events())
        return _profile(user)
