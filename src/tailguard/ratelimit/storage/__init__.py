"""Where rate-limit state lives: ``MemoryStorage`` (embedded) and ``RedisStorage``."""

from tailguard.ratelimit.storage.base import Storage
from tailguard.ratelimit.storage.memory import MemoryStorage
from tailguard.ratelimit.storage.redis import RedisStorage

__all__ = ["MemoryStorage", "RedisStorage", "Storage"]
