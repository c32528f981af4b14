"""The ``Storage`` protocol: where rate-limit state lives and checks run atomically."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from tailguard.ratelimit.algorithms import Algorithm, Decision

__all__ = ["Storage", "state_keys"]


@runtime_checkable
class Storage(Protocol):
    """Runs ``algorithm``'s rule for every limit of ``key`` as one atomic step."""

    async def apply(
        self, algorithm: Algorithm, key: str, cost: int, now: float | None
    ) -> Decision: ...


def state_keys(algorithm: Algorithm, key: str) -> list[str]:
    """One storage key per limit, all with the same ``{hash tag}`` so that a multi-limit
    check lands on one Redis Cluster slot. A key holding braces is tagged by its digest."""
    tag = key if "{" not in key and "}" not in key else hashlib.blake2b(key.encode()).hexdigest()
    return [
        f"{algorithm.prefix}:{{{tag}}}:{algorithm.name}:{r.limit}/{r.period:g}/{r.capacity}"
        for r in algorithm.rates
    ]
