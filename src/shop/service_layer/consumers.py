"""What the event worker does with each integration event, once in effect however often it is
delivered.

Each consumer has a name and is idempotent by event id on its own: a database consumer claims
``(name, event_id)`` in ``processed_events`` in the transaction of its effect; the analytics
consumer's Redis script keeps its own marker; cache eviction is idempotent by nature. A delivery
that fails part-way is redelivered, and the consumers already done skip it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shop.adapters.analytics import SalesAnalytics
from shop.adapters.effects import Counter as InventoryCounter
from shop.adapters.outbox import Envelope
from shop.domain.events import Line, OrderConfirmed, OrderCreated, OrderFailed
from shop.service_layer.unit_of_work import UnitOfWork
from tailguard.cache import CacheKey

__all__ = ["CONSUMERS", "EventContext", "apply"]


@dataclass(frozen=True, slots=True)
class EventContext:
    """The parts the consumers act on."""

    uow: Callable[[], UnitOfWork]
    analytics: SalesAnalytics
    evict: Callable[[str], Awaitable[None]]
    """Drop a cache key from every tier and every instance's in-process tier."""
    keys: CacheKey


Consumer = Callable[[EventContext, Envelope], Awaitable[None]]


def _units(lines: tuple[Line, ...]) -> dict[int, int]:
    units: Counter[int] = Counter()
    for product_id, quantity, _price in lines:
        units[product_id] += quantity
    return dict(units)


def _inventory(counter: InventoryCounter) -> Consumer:
    async def inventory(ctx: EventContext, envelope: Envelope) -> None:
        event: Any = envelope.event()
        units = _units(event.lines)
        async with ctx.uow() as uow:
            if await uow.effects.claim(f"inventory.{counter}", envelope.event_id):
                await uow.effects.count(counter, units)
                # The stock itself: a confirmed order's reservation becomes sold units, a
                # failed one's goes back. (The reservation was made with the order.)
                if counter == "sold":
                    await uow.products.commit_stock(units)
                elif counter == "released":
                    await uow.products.release(units)
                await uow.commit()

    inventory.__name__ = f"inventory.{counter}"
    return inventory


async def confirmation_email(ctx: EventContext, envelope: Envelope) -> None:
    """Write the order's confirmation email (a row standing in for the mail sent)."""
    event = envelope.event()
    assert isinstance(event, OrderConfirmed)
    units = sum(q for _p, q, _c in event.lines)
    subject = f"Your order {event.order_id} is confirmed"
    body = (
        f"Order {event.order_id}: {units} item(s), {event.total_cents / 100:.2f} charged "
        f"({event.charge_id})."
    )
    async with ctx.uow() as uow:
        if await uow.effects.claim("email", envelope.event_id):
            await uow.effects.write_email(event.order_id, event.user_id, subject, body)
            await uow.commit()


async def sales_analytics(ctx: EventContext, envelope: Envelope) -> None:
    """Units and revenue per product, in Redis (once per event, by the script's marker)."""
    event = envelope.event()
    assert isinstance(event, OrderConfirmed)
    await ctx.analytics.record(envelope.event_id, event.lines)


async def evict_popular(ctx: EventContext, envelope: Envelope) -> None:
    """Sales change what is popular: drop the cached list everywhere."""
    await ctx.evict(ctx.keys.build("popular"))


CONSUMERS: Mapping[str, tuple[Consumer, ...]] = {
    OrderCreated.topic or "": (_inventory("reserved"),),
    OrderConfirmed.topic or "": (
        _inventory("sold"),
        confirmation_email,
        sales_analytics,
        evict_popular,
    ),
    OrderFailed.topic or "": (_inventory("released"),),
}
"""Topic to its consumers, run in order for each delivery."""


async def apply(ctx: EventContext, envelope: Envelope) -> None:
    """Run every consumer of the envelope's topic; the first failure is raised (the delivery
    stays pending and comes again; the consumers done by then skip it)."""
    for consumer in CONSUMERS.get(envelope.topic, ()):
        await consumer(ctx, envelope)
