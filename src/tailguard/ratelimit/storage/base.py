"""The ``Storage`` protocol: where rate-limit state lives and checks run atomically."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from tailguard.ratelimit.algorithms import Algorithm, Decision

__all__ = ["SlotStorage", "Storage", "state_keys"]


@runtime_checkable
class Storage(Protocol):
    """Runs ``algorithm``'s rule for every limit of ``key`` as one atomic step."""

    async def apply(
        self, algorithm: Algorithm, key: str, cost: int, now: float | None
    ) -> Decision: ...


@runtime_checkable
class SlotStorage(Protocol):
    """Leases on a bounded number of slots per key (for ``ConcurrencyLimit``)."""

    async def acquire_slot(
        self, key: str, limit: int, lease: float, token: str, now: float | None
    ) -> tuple[bool, int, float]: ...

    async def release_slot(self, key: str, token: str) -> None: ...


def state_keys(algorithm: Algorithm, key: str) -> list[str]:
    """One storage key per limit, all with the same ``{hash tag}`` (the key), so that a
    multi-limit check lands on one Redis Cluster slot. A key holding braces is tagged by its
    digest instead."""
    if "{" in key or "}" in key:
        key = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
    head = algorithm.key_head + key
    return [head + tail for tail in algorithm.key_tails]
