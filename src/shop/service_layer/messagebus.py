"""The message bus: after a unit of work commits, its events go to their handlers here.

Handlers run in the request's task, after the commit; a failing handler is logged and does not
undo the committed change (the scale-out issue moves these to an outbox and a worker).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from shop.domain.events import (
    Event,
    OrderConfirmed,
    OrderCreated,
    OrderFailed,
    ProductPriceChanged,
    ProfileUpdated,
)
from shop.service_layer.services import Services
from shop.service_layer.views import product_key, profile_key

__all__ = ["HANDLERS", "publish"]

_log = logging.getLogger("shop.events")

Handler = Callable[[Services, Any], Awaitable[None]]


async def _evict_product(svc: Services, event: ProductPriceChanged) -> None:
    await svc.evict(product_key(svc, event.product_id))


async def _evict_profile(svc: Services, event: ProfileUpdated) -> None:
    await svc.evict(profile_key(svc, event.user_id))


async def _log_event(svc: Services, event: Event) -> None:
    _log.debug("%r", event)


HANDLERS: dict[type[Event], list[Handler]] = {
    ProductPriceChanged: [_evict_product],
    ProfileUpdated: [_evict_profile],
    OrderCreated: [_log_event],
    OrderConfirmed: [_log_event],
    OrderFailed: [_log_event],
}
"""Event type to the handlers that react to it, in order."""


async def publish(svc: Services, events: Iterable[Event]) -> None:
    """Run every handler of every event; a handler's failure is logged, not raised."""
    for event in list(events):
        for handler in HANDLERS.get(type(event), ()):
            try:
                await handler(svc, event)
            except Exception:
                _log.exception("handler %s failed for %r", handler.__name__, event)
