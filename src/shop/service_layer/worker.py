"""The event worker: one consumer of the stream's group, applying each event through
``consumers.apply`` and acknowledging it once applied.

Each pass first claims entries left pending longer than ``claim_idle`` seconds (by a consumer
that died, or by a failed try of its own), then reads new ones. An entry delivered more than
``max_deliveries`` times, or one that is not an event at all, goes to the dead-letter stream
instead of being tried again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass

from shop.adapters.eventstream import Delivery, EventStream
from shop.adapters.outbox import UnknownEvent
from shop.service_layer.consumers import EventContext, apply

__all__ = ["EventWorker", "WorkerStats", "default_consumer_name"]

_log = logging.getLogger("shop.worker")


def default_consumer_name() -> str:
    """``host-pid``: unique per process, stable for its life."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class WorkerStats:
    """What a worker did since it started."""

    applied: int = 0
    """Deliveries applied and acknowledged (a redelivery whose effects were done counts)."""
    failed: int = 0
    """Deliveries whose consumers raised (each stays pending and comes again)."""
    claimed: int = 0
    """Deliveries claimed from the pending list."""
    dead: int = 0
    """Entries moved to the dead-letter stream."""


class EventWorker:
    """Consumes ``stream`` as ``consumer``. Times in seconds."""

    def __init__(
        self,
        stream: EventStream,
        ctx: EventContext,
        *,
        consumer: str | None = None,
        batch: int = 100,
        block: float = 1.0,
        claim_idle: float = 30.0,
        max_deliveries: int = 5,
    ) -> None:
        if batch < 1 or max_deliveries < 1 or claim_idle <= 0 or block <= 0:
            raise ValueError(
                "batch and max_deliveries must be >= 1, claim_idle and block > 0; got "
                f"batch={batch}, max_deliveries={max_deliveries}, claim_idle={claim_idle}, "
                f"block={block}"
            )
        self.stream = stream
        self.ctx = ctx
        self.consumer = consumer or default_consumer_name()
        self.batch = batch
        self.block = block
        self.claim_idle = claim_idle
        self.max_deliveries = max_deliveries
        self.stats = WorkerStats()
        self._stopping = False

    def stop(self) -> None:
        """Finish the delivery in hand, acknowledge what is done, then return from ``run``."""
        self._stopping = True

    async def run_once(self) -> int:
        """Claim stale entries, else read new ones; apply them. The deliveries handled."""
        deliveries = await self.stream.claim(self.consumer, self.claim_idle, self.batch)
        self.stats.claimed += len(deliveries)
        if not deliveries:
            deliveries = await self.stream.read(self.consumer, self.batch, self.block)
        done: list[str] = []
        try:
            for delivery in deliveries:
                if self._stopping:
                    break
                if await self._handle(delivery):
                    done.append(delivery.entry_id)
        finally:
            # Even when cancelled part-way: what was applied is acknowledged (a lost ack would
            # only mean a harmless redelivery, but there is no need for one).
            if done:
                await asyncio.shield(self.stream.ack(done))
        return len(deliveries)

    async def _handle(self, delivery: Delivery) -> bool:
        try:
            envelope = delivery.envelope()
            envelope.event()
        except UnknownEvent as exc:
            await self._dead(delivery, f"not an event: {exc}")
            return False
        if delivery.deliveries > self.max_deliveries:
            await self._dead(delivery, f"failed {delivery.deliveries - 1} deliveries")
            return False
        try:
            await apply(self.ctx, envelope)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.stats.failed += 1
            _log.exception(
                "event %s (%s) failed, delivery %d of %d; it stays pending",
                envelope.event_id,
                envelope.topic,
                delivery.deliveries,
                self.max_deliveries,
            )
            return False
        self.stats.applied += 1
        return True

    async def _dead(self, delivery: Delivery, reason: str) -> None:
        _log.error("entry %s goes to the dead-letter stream: %s", delivery.entry_id, reason)
        await self.stream.dead_letter(delivery, reason)
        self.stats.dead += 1

    async def run(self, *, max_backoff: float = 5.0) -> None:
        """Consume until :meth:`stop` or cancellation; a stream outage is waited out."""
        await self._ensure_group(max_backoff)
        backoff = 0.0
        while not self._stopping:
            try:
                await self.run_once()
                if backoff:
                    _log.warning("event worker %s recovered", self.consumer)
                backoff = 0.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not backoff:
                    _log.warning("event worker %s: %r; retrying", self.consumer, exc)
                backoff = min(max_backoff, max(0.05, backoff * 2))
                await asyncio.sleep(backoff)

    async def _ensure_group(self, max_backoff: float) -> None:
        backoff = 0.05
        while not self._stopping:
            try:
                await self.stream.ensure_group()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning("event worker %s: no stream yet (%r)", self.consumer, exc)
                await asyncio.sleep(backoff)
                backoff = min(max_backoff, backoff * 2)
