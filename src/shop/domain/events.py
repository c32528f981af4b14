"""Domain events: what happened, as frozen values an aggregate collects and the bus drains.

An event with a ``topic`` is an integration event: the unit of work writes it to the outbox in
the transaction that made it happen, and the event worker applies its effects elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

Line = tuple[int, int, int]
"""An order line in an event: (product id, quantity, unit price in cents)."""

__all__ = [
    "INTEGRATION_EVENTS",
    "Event",
    "Line",
    "OrderConfirmed",
    "OrderCreated",
    "OrderFailed",
    "ProductPriceChanged",
    "ProfileUpdated",
]


@dataclass(frozen=True, slots=True)
class Event:
    """The base of every domain event."""

    topic: ClassVar[str | None] = None
    """The outbox topic of an integration event; None for one handled in process only."""


@dataclass(frozen=True, slots=True)
class OrderCreated(Event):
    """An order was placed and its stock reserved; it is not charged yet."""

    topic: ClassVar[str | None] = "order.created"
    order_id: int
    user_id: int
    total_cents: int
    lines: tuple[Line, ...] = ()


@dataclass(frozen=True, slots=True)
class OrderConfirmed(Event):
    """An order was charged and confirmed."""

    topic: ClassVar[str | None] = "order.confirmed"
    order_id: int
    user_id: int
    total_cents: int
    charge_id: str
    lines: tuple[Line, ...] = ()


@dataclass(frozen=True, slots=True)
class OrderFailed(Event):
    """An order was abandoned (declined or payment unavailable); its reservation was released."""

    topic: ClassVar[str | None] = "order.failed"
    order_id: int
    user_id: int
    reason: str
    lines: tuple[Line, ...] = ()


@dataclass(frozen=True, slots=True)
class ProductPriceChanged(Event):
    """A product's price changed: every cached copy of it is stale."""

    product_id: int
    price_cents: int


@dataclass(frozen=True, slots=True)
class ProfileUpdated(Event):
    """A user's profile changed: every cached copy of it is stale."""

    user_id: int


INTEGRATION_EVENTS: dict[str, type[Event]] = {
    cls.topic: cls for cls in (OrderCreated, OrderConfirmed, OrderFailed) if cls.topic
}
"""Outbox topic to the event class it carries."""
