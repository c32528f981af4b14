"""Domain events: what happened, as frozen values an aggregate collects and the bus drains."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Event",
    "OrderConfirmed",
    "OrderCreated",
    "OrderFailed",
    "ProductPriceChanged",
    "ProfileUpdated",
]


@dataclass(frozen=True, slots=True)
class Event:
    """The base of every domain event."""


@dataclass(frozen=True, slots=True)
class OrderCreated(Event):
    """An order was placed and its stock reserved; it is not charged yet."""

    order_id: int
    user_id: int
    total_cents: int


@dataclass(frozen=True, slots=True)
class OrderConfirmed(Event):
    """An order was charged and confirmed."""

    order_id: int
    user_id: int
    total_cents: int
    charge_id: str


@dataclass(frozen=True, slots=True)
class OrderFailed(Event):
    """An order was abandoned (declined or payment unavailable); its reservation was released."""

    order_id: int
    user_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class ProductPriceChanged(Event):
    """A product's price changed: every cached copy of it is stale."""

    product_id: int
    price_cents: int


@dataclass(frozen=True, slots=True)
class ProfileUpdated(Event):
    """A user's profile changed: every cached copy of it is stale."""

    user_id: int
