"""Tiered caching: L1 memory, L2 Redis, L3 Redis Cluster, with versioned keys and no stampede.

::

    from tailguard.cache import CacheKey, MemoryTier, RedisTier, TieredCache

    cache = TieredCache([MemoryTier(), RedisTier(redis_client), RedisTier(cluster_client)])
    key = CacheKey("api", version="v2").build("user", user_id, "profile")
    await cache.set(key, profile, ttl=300)
    profile = await cache.get_or_load(key, lambda: load_profile(user_id), ttl=300)

``TieredCache`` is the core abstraction: read-through with promotion, write-through, a
``MISSING`` sentinel (falsy values are hits), negative caching, TTL jitter, per-tier circuit
breakers and single-flight loading.
"""

from tailguard.cache._missing import MISSING
from tailguard.cache.codec import Codec, JsonCodec, MsgpackCodec, SignedPickleCodec
from tailguard.cache.http import HttpCaching
from tailguard.cache.invalidation import Invalidation, RedisInvalidation
from tailguard.cache.keys import CacheKey
from tailguard.cache.tiered import TieredCache
from tailguard.cache.tiers.base import Entry, Tier
from tailguard.cache.tiers.memory import MemoryTier
from tailguard.cache.tiers.redis import RedisTier  # imports no Redis client: it is given one

__all__ = [
    "MISSING",
    "CacheKey",
    "Codec",
    "Entry",
    "HttpCaching",
    "Invalidation",
    "JsonCodec",
    "MemoryTier",
    "MsgpackCodec",
    "RedisInvalidation",
    "RedisTier",
    "SignedPickleCodec",
    "Tier",
    "TieredCache",
]
