"""The outbox relay: publishes the outbox's unsent rows to the event stream, oldest first.

Each pass locks up to ``batch`` unsent rows, publishes them, marks them sent and commits. If the
stream is down the transaction rolls back and the rows wait, unsent, for the next pass: orders
are still accepted while Redis is away, and their events go out when it returns. If the process
dies between the publish and the commit, the rows go out again and the consumers, which know
each event by its id, apply them once.

Every shop instance runs a relay (and so does the worker); on PostgreSQL their passes take
disjoint rows (``SKIP LOCKED``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from shop.adapters.eventstream import EventStream
from shop.service_layer.unit_of_work import UnitOfWork

__all__ = ["OutboxRelay"]

_log = logging.getLogger("shop.relay")


class OutboxRelay:
    """Moves outbox rows to ``stream``. ``interval`` is how long an idle relay waits before it
    looks again, in seconds (a commit that wrote outbox rows in this process wakes it at once,
    through :meth:`nudge`); after a failure it waits up to ``max_backoff`` seconds, doubling."""

    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        stream: EventStream,
        *,
        batch: int = 200,
        interval: float = 0.5,
        max_backoff: float = 5.0,
        keep_sent: float = 3600.0,
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        self.uow = uow
        self.stream = stream
        self.batch = batch
        self.interval = interval
        self.max_backoff = max_backoff
        self.keep_sent = keep_sent
        """Seconds a published row stays in the outbox before it is pruned."""
        self.published = 0
        """Rows this relay published (a re-publish after a crash counts again)."""
        self.failures = 0
        """Passes that failed (the stream or the database was unreachable)."""
        self._wake = asyncio.Event()
        self._passes = 0
        self._stopping = False

    def nudge(self) -> None:
        """Something was written to the outbox: look now."""
        self._wake.set()

    def stop(self) -> None:
        """Return from ``run`` after the pass in hand."""
        self._stopping = True
        self._wake.set()

    async def run_once(self) -> int:
        """One pass: publish up to ``batch`` unsent rows; the number published."""
        async with self.uow() as uow:
            envelopes = await uow.outbox.unsent(self.batch)
            if not envelopes:
                return 0
            await self.stream.publish(envelopes)
            await uow.outbox.mark_sent([e.outbox_id for e in envelopes if e.outbox_id])
            await uow.commit()
        self.published += len(envelopes)
        return len(envelopes)

    async def prune(self) -> int:
        """Delete rows published more than ``keep_sent`` seconds ago."""
        async with self.uow() as uow:
            pruned = await uow.outbox.prune(self.keep_sent)
            await uow.commit()
        return pruned

    async def drain(self) -> int:
        """Publish until the outbox is empty; the rows published (bound it with a timeout)."""
        total = 0
        while (published := await self.run_once()) > 0:
            total += published
        return total

    async def run(self) -> None:
        """Relay until :meth:`stop` or cancellation: a pass when nudged, every ``interval``
        seconds otherwise, at once again while passes come back full, and with a growing pause
        after a failure."""
        backoff = 0.0
        published = 0
        while True:
            if backoff:
                await asyncio.sleep(backoff)
            elif published < self.batch:
                # asyncio.timeout, not wait_for: 3.11's wait_for swallows a cancellation that
                # lands as the event is set (gh-86296), and this task would never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.interval):
                        await self._wake.wait()
            # Cleared before the pass: a commit during it nudges again and the next wait
            # returns at once (nudges come after their commit, so this pass may miss them).
            self._wake.clear()
            if self._stopping:
                break
            try:
                published = await self.run_once()
                self._passes += 1
                if self._passes % 1000 == 0:
                    await self.prune()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                if not backoff:
                    _log.warning("outbox relay: %r; the rows wait in the outbox", exc)
                backoff = min(self.max_backoff, max(0.05, backoff * 2))
                continue
            if backoff:
                _log.warning("outbox relay recovered")
            backoff = 0.0
