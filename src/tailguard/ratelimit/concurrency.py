"""``ConcurrencyLimit``: at most N requests in flight per key, across processes.

Each admitted request holds a lease (a token with an expiry). It is released when the request
ends, by success, exception or cancellation; if the process dies first, the lease expires after
``lease`` seconds, so a crash cannot hold a slot forever. State lives in the same storages as
the rate limits: ``MemoryStorage`` or ``RedisStorage`` (a sorted set of tokens by expiry).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from tailguard.errors import ConfigurationError, RateLimitExceeded
from tailguard.ratelimit.storage.base import SlotStorage

__all__ = ["ConcurrencyLimit", "Lease"]

_log = logging.getLogger("tailguard.ratelimit")


@dataclass(frozen=True, slots=True)
class Lease:
    """A slot held for ``key``; ``in_flight`` counts it and the others held at acquisition."""

    key: str
    token: str
    in_flight: int


class ConcurrencyLimit:
    """At most ``limit`` concurrent requests per key; leases expire after ``lease`` seconds.

    ``async with limiter.hold(key):`` runs the block holding a slot, or raises
    :class:`~tailguard.errors.RateLimitExceeded` with ``retry_after`` (seconds until the
    soonest lease could expire) when all are taken.
    """

    name = "concurrency"

    def __init__(
        self,
        limit: int,
        *,
        lease: float = 30.0,
        storage: SlotStorage | None = None,
        prefix: str = "tg:rl",
    ) -> None:
        from tailguard.ratelimit.storage.memory import MemoryStorage

        if not isinstance(limit, int) or limit < 1:
            raise ConfigurationError("ConcurrencyLimit.limit", limit, "an int >= 1")
        if not lease > 0:
            raise ConfigurationError("ConcurrencyLimit.lease", lease, "seconds > 0")
        self.limit = limit
        self.lease = lease
        self.storage: SlotStorage = storage if storage is not None else MemoryStorage()
        self.prefix = prefix

    def state_key(self, key: str) -> str:
        return f"{self.prefix}:{{{key}}}:{self.name}:{self.limit}"

    async def try_acquire(self, key: str, *, now: float | None = None) -> Lease | None:
        """A lease on a slot for ``key``, or None when all ``limit`` are held."""
        ok, in_flight, _, token = await self._take(key, now)
        return Lease(key, token, in_flight) if ok else None

    async def acquire(self, key: str) -> Lease:
        """A lease, or ``RateLimitExceeded`` (with ``retry_after``) when none is free."""
        ok, in_flight, retry_after, token = await self._take(key, None)
        if not ok:
            raise RateLimitExceeded(key, limit=f"{self.limit} in flight", retry_after=retry_after)
        return Lease(key, token, in_flight)

    async def _take(self, key: str, now: float | None) -> tuple[bool, int, float, str]:
        token = uuid.uuid4().hex
        state_key = self.state_key(key)
        try:
            ok, in_flight, retry_after = await self.storage.acquire_slot(
                state_key, self.limit, self.lease, token, now
            )
        except asyncio.CancelledError:
            # The storage may have granted the lease before the cancellation reached us (a
            # reply still on the wire): give it back now rather than when it expires.
            await asyncio.shield(self._give_back(state_key, token))
            raise
        return ok, in_flight, retry_after, token

    async def _give_back(self, state_key: str, token: str) -> None:
        try:
            await self.storage.release_slot(state_key, token)  # a no-op if never granted
        except Exception as exc:  # the lease expires by itself; nothing more to do
            _log.warning("could not give back a cancelled lease on %s: %s", state_key, exc)

    async def release(self, lease: Lease) -> None:
        """Give the slot back (no error if it had expired)."""
        await self.storage.release_slot(self.state_key(lease.key), lease.token)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[Lease]:
        """Hold a slot for the block; released however the block ends, cancellation included."""
        lease = await self.acquire(key)
        try:
            yield lease
        finally:
            # Shielded: a second cancellation must not leave the slot held until it expires.
            await asyncio.shield(self.release(lease))

    def __repr__(self) -> str:
        return f"ConcurrencyLimit({self.limit}, lease={self.lease:g}, storage={self.storage!r})"
