"""Cache tiers: the ``Tier`` protocol, the in-process ``MemoryTier`` and ``RedisTier``."""

from tailguard.cache.tiers.base import Entry, Leasing, Observing, Tier
from tailguard.cache.tiers.memory import MemoryTier, approx_size
from tailguard.cache.tiers.redis import RedisTier

__all__ = ["Entry", "Leasing", "MemoryTier", "Observing", "RedisTier", "Tier", "approx_size"]
