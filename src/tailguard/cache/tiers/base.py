"""The ``Tier`` protocol every cache level implements, and the ``Entry`` it stores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = ["Entry", "Leasing", "Observing", "Tier"]


class Entry:
    """A cached value and what the cache needs to know about it.

    ``expires_at`` is wall-clock time (seconds since the epoch, so that every instance agrees)
    when the value stops being fresh; until ``stale_until`` (default: the same time) a tier
    still keeps it, for stale-while-revalidate. ``delta`` is how long the value took to
    compute (seconds; XFetch early refresh uses it); ``negative`` marks a cached "not found".
    """

    __slots__ = ("delta", "expires_at", "negative", "stale_until", "value")

    def __init__(
        self,
        value: Any,
        expires_at: float,
        delta: float = 0.0,
        negative: bool = False,
        stale_until: float | None = None,
    ) -> None:
        self.value = value
        self.expires_at = expires_at
        self.delta = delta
        self.negative = negative
        self.stale_until = expires_at if stale_until is None else max(stale_until, expires_at)

    def fresh(self, now: float) -> bool:
        """Is the value still fresh at ``now``?"""
        return now < self.expires_at

    def ttl(self, now: float) -> float:
        """Seconds of freshness left at ``now``."""
        return self.expires_at - now

    def __repr__(self) -> str:
        kind = "negative " if self.negative else ""
        return f"<{kind}Entry {self.value!r} expires_at={self.expires_at:.3f}>"


@runtime_checkable
class Tier(Protocol):
    """One level of a ``TieredCache``. ``local`` tiers live in the process and cannot fail;
    remote ones (Redis) run behind a circuit breaker. All times are seconds."""

    name: str
    local: bool

    async def get(self, key: str) -> Entry | None:
        """The entry for ``key`` until its ``stale_until``, else None (check ``fresh``)."""
        ...

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        """``get`` for each key, in order, in one round trip where the tier can."""
        ...

    async def set(self, key: str, entry: Entry) -> None:
        """Store ``entry`` until its ``expires_at``."""
        ...

    async def delete(self, key: str) -> None:
        """Forget ``key`` (no error if absent)."""
        ...


@runtime_checkable
class Observing(Protocol):
    """A tier that only watches the tier it wraps (``tailguard.observe.TracedTier``): it
    stores and returns what ``observed`` does, so ``TieredCache`` may use ``observed``
    directly. It does for a ``MemoryTier`` on top: its L1, read synchronously."""

    @property
    def observed(self) -> Tier: ...


@runtime_checkable
class Leasing(Protocol):
    """A tier that can grant a short exclusive lease on a key (``RedisTier``).

    A holder whose load found nothing to cache releases with ``empty_for`` > 0 (seconds): the
    instances waiting on its lease then see ``lease_empty`` True for that long, and stop
    waiting. That marker does not keep a new ``acquire_lease`` from succeeding.
    """

    name: str

    async def acquire_lease(self, key: str, ttl: float) -> str: ...

    async def release_lease(self, key: str, token: str, empty_for: float = 0.0) -> None: ...

    async def lease_empty(self, key: str) -> bool: ...

    async def get(self, key: str) -> Entry | None: ...
