"""Rate limiting: exact or O(1) algorithms over memory, Redis and Redis Cluster.

::

    from tailguard.ratelimit import GCRA, RedisStorage, SlidingLog

    limiter = GCRA("100/minute; burst=20", storage=RedisStorage(redis_client))
    decision = await limiter.check(f"user:{user_id}")   # Decision(allowed=..., retry_after=...)
    exact = SlidingLog("1000/minute", storage=RedisStorage(redis_client))

Algorithms are sans-IO rules (``algorithms.py``); storages apply them atomically, in process
or as one Lua script per check in Redis.
"""

from tailguard.ratelimit.algorithms import (
    GCRA,
    Algorithm,
    Decision,
    FixedWindow,
    SlidingLog,
    SlidingWindowCounter,
)
from tailguard.ratelimit.concurrency import ConcurrencyLimit, Lease
from tailguard.ratelimit.middleware import RateLimitMiddleware, client_ip, rate_limit_headers
from tailguard.ratelimit.rate import Rate, parse_rates
from tailguard.ratelimit.storage import MemoryStorage, RedisStorage, Storage

__all__ = [
    "GCRA",
    "Algorithm",
    "ConcurrencyLimit",
    "Decision",
    "FixedWindow",
    "Lease",
    "MemoryStorage",
    "Rate",
    "RateLimitMiddleware",
    "RedisStorage",
    "SlidingLog",
    "SlidingWindowCounter",
    "Storage",
    "client_ip",
    "parse_rates",
    "rate_limit_headers",
]
