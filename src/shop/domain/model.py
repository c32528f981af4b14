"""The shop's entities and their rules, as plain classes (the ORM maps them from outside).

Money is in integer cents, never floats. Aggregates collect the events of what happened to them
in ``events``; the message bus drains them after the unit of work commits.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from shop.domain.events import (
    Event,
    OrderConfirmed,
    OrderCreated,
    OrderFailed,
    ProductPriceChanged,
    ProfileUpdated,
)

__all__ = [
    "MAX_QUANTITY",
    "Cart",
    "DomainError",
    "EmptyCart",
    "InvalidQuantity",
    "Inventory",
    "Order",
    "OrderItem",
    "OrderStatus",
    "OutOfStock",
    "PaymentDeclined",
    "Product",
    "UnknownProduct",
    "User",
]

MAX_QUANTITY = 100
"""The most of one product a cart line may hold."""
MAX_CART_LINES = 50
"""The most distinct products a cart may hold."""


class DomainError(Exception):
    """A business rule said no; the message says which and why."""


class InvalidQuantity(DomainError):
    """A quantity outside 1..MAX_QUANTITY."""


class EmptyCart(DomainError):
    """An order was asked for with nothing in the cart."""


class UnknownProduct(DomainError):
    """A product id that is not in the catalogue."""

    def __init__(self, product_id: int) -> None:
        super().__init__(f"product {product_id} does not exist")
        self.product_id = product_id


class OutOfStock(DomainError):
    """Not enough stock for one or more lines; ``shortfalls`` maps product id to units missing."""

    def __init__(self, shortfalls: Mapping[int, int]) -> None:
        listed = ", ".join(f"product {pid} short by {n}" for pid, n in sorted(shortfalls.items()))
        super().__init__(f"out of stock: {listed}")
        self.shortfalls = dict(shortfalls)


class PaymentDeclined(DomainError):
    """The payment gateway declined the charge."""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class _Aggregate:
    events: list[Event]

    def _record(self, event: Event) -> None:
        # Instances the ORM loads skip __init__; the list appears on first use.
        try:
            self.events.append(event)
        except AttributeError:
            self.events = [event]


class User(_Aggregate):
    """A customer who signs in with an email and a password."""

    def __init__(self, email: str, name: str, password_hash: str, *, id: int | None = None) -> None:
        self.id = id  # type: ignore[assignment]
        self.email = email
        self.name = name
        self.password_hash = password_hash
        self.created_at = _now()
        self.events = []

    id: int
    email: str
    name: str
    password_hash: str
    created_at: datetime

    def update_profile(self, *, name: str) -> None:
        """Rename the user; cached profiles become stale."""
        if name != self.name:
            self.name = name
            self._record(ProfileUpdated(user_id=self.id))


class Product(_Aggregate):
    """A catalogue entry; its price is in cents."""

    def __init__(
        self,
        sku: str,
        name: str,
        category: str,
        price_cents: int,
        *,
        description: str = "",
        id: int | None = None,
    ) -> None:
        if price_cents < 0:
            raise DomainError(f"price_cents must be >= 0, got {price_cents}")
        self.id = id  # type: ignore[assignment]
        self.sku = sku
        self.name = name
        self.category = category
        self.price_cents = price_cents
        self.description = description
        self.events = []

    id: int
    sku: str
    name: str
    category: str
    price_cents: int
    description: str

    def change_price(self, price_cents: int) -> None:
        """Set a new price; cached copies of the product become stale."""
        if price_cents < 0:
            raise DomainError(f"price_cents must be >= 0, got {price_cents}")
        if price_cents != self.price_cents:
            self.price_cents = price_cents
            self._record(ProductPriceChanged(product_id=self.id, price_cents=price_cents))


class Inventory:
    """Stock of one product: ``on_hand`` units, of which ``reserved`` are held by pending orders."""

    def __init__(self, product_id: int, on_hand: int, reserved: int = 0) -> None:
        self.product_id = product_id
        self.on_hand = on_hand
        self.reserved = reserved

    product_id: int
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        """Units that can still be reserved."""
        return self.on_hand - self.reserved


class OrderStatus(enum.StrEnum):
    """An order is pending (reserved, not charged) until it is confirmed (charged)."""

    PENDING = "pending"
    CONFIRMED = "confirmed"


class OrderItem:
    """One line of an order, at the price the product had when it was ordered."""

    def __init__(self, product_id: int, quantity: int, price_cents: int) -> None:
        check_quantity(quantity)
        self.product_id = product_id
        self.quantity = quantity
        self.price_cents = price_cents

    id: int
    order_id: int
    product_id: int
    quantity: int
    price_cents: int
    product: Product

    @property
    def total_cents(self) -> int:
        """The line's price times its quantity, in cents."""
        return self.price_cents * self.quantity


class Order(_Aggregate):
    """A user's purchase of some products; confirmed once charged, never half-made."""

    def __init__(
        self, user_id: int, items: Iterable[OrderItem], *, idempotency_key: str | None = None
    ) -> None:
        self.user_id = user_id
        self.items = list(items)
        if not self.items:
            raise EmptyCart("the cart is empty")
        self.status = OrderStatus.PENDING
        self.total_cents = sum(item.total_cents for item in self.items)
        self.idempotency_key = idempotency_key
        self.charge_id = None
        self.created_at = _now()
        self.events = []

    id: int
    user_id: int
    status: OrderStatus
    total_cents: int
    idempotency_key: str | None
    charge_id: str | None
    created_at: datetime
    items: list[OrderItem]

    @classmethod
    def from_cart(
        cls,
        user_id: int,
        cart: Cart,
        prices: Mapping[int, int],
        *,
        idempotency_key: str | None = None,
    ) -> Order:
        """An order for the cart's lines at ``prices`` (product id to cents)."""
        if not cart.lines:
            raise EmptyCart("the cart is empty")
        for product_id in cart.lines:
            if product_id not in prices:
                raise UnknownProduct(product_id)
        items = [OrderItem(pid, qty, prices[pid]) for pid, qty in sorted(cart.lines.items())]
        return cls(user_id, items, idempotency_key=idempotency_key)

    def placed(self) -> None:
        """Record that the order exists (its id is known) and its stock is reserved."""
        self._record(OrderCreated(self.id, self.user_id, self.total_cents, self._lines()))

    def confirm(self, charge_id: str) -> None:
        """The charge succeeded: the order is final."""
        if self.status == OrderStatus.CONFIRMED:
            return
        self.status = OrderStatus.CONFIRMED
        self.charge_id = charge_id
        self._record(
            OrderConfirmed(self.id, self.user_id, self.total_cents, charge_id, self._lines())
        )

    def fail(self, reason: str) -> None:
        """The order will not be charged: it is to be removed and its stock released."""
        if self.status == OrderStatus.CONFIRMED:
            raise DomainError(f"order {self.id} is confirmed and cannot fail")
        self._record(OrderFailed(self.id, self.user_id, reason, self._lines()))

    def _lines(self) -> tuple[tuple[int, int, int], ...]:
        return tuple((i.product_id, i.quantity, i.price_cents) for i in self.items)


def check_quantity(quantity: int) -> int:
    """``quantity`` if it is within 1..MAX_QUANTITY, else InvalidQuantity."""
    if not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidQuantity(f"quantity must be between 1 and {MAX_QUANTITY}, got {quantity}")
    return quantity


class Cart:
    """A session's cart: product id to quantity. It lives in the session store, not the database."""

    def __init__(self, lines: Mapping[int, int] | None = None) -> None:
        self.lines: dict[int, int] = dict(lines or {})

    def add(self, product_id: int, quantity: int) -> int:
        """Add ``quantity`` units; returns the line's new quantity."""
        check_quantity(quantity)
        new = self.lines.get(product_id, 0) + quantity
        check_quantity(new)
        if product_id not in self.lines and len(self.lines) >= MAX_CART_LINES:
            raise InvalidQuantity(f"a cart holds at most {MAX_CART_LINES} products")
        self.lines[product_id] = new
        return new

    def remove(self, product_id: int) -> bool:
        """Drop a line; False when it was not there."""
        return self.lines.pop(product_id, None) is not None

    def clear(self) -> None:
        """Empty the cart (after an order)."""
        self.lines.clear()
