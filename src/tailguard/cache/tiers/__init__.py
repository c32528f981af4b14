"""Cache tiers: the ``Tier`` protocol, the in-process ``MemoryTier`` and ``RedisTier``."""

from tailguard.cache.tiers.base import Entry, Tier
from tailguard.cache.tiers.memory import MemoryTier, approx_size

__all__ = ["Entry", "MemoryTier", "RedisTier", "Tier", "approx_size"]


def __getattr__(name: str) -> object:
    # RedisTier imports msgspec; load it only when asked for.
    if name == "RedisTier":
        from tailguard.cache.tiers.redis import RedisTier

        return RedisTier
    raise AttributeError(name)
