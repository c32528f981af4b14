"""Per-product sales analytics, kept by the event worker from confirmed orders.

``RedisSalesAnalytics`` applies an event with one Lua script: it sets the event's marker
(``SET NX`` with a TTL) and, only when the marker was new, adds the units and revenue, all
atomically, so a redelivered event adds nothing. Its keys share one hash tag, so the script runs
on Redis Cluster too. ``MemorySalesAnalytics`` is the embedded default for one process.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from shop.domain.events import Line
from tailguard.errors import BackendUnavailable

__all__ = ["MemorySalesAnalytics", "RedisSalesAnalytics", "SalesAnalytics"]


class SalesAnalytics(Protocol):
    """Units sold and revenue per product."""

    async def record(self, event_id: str, lines: Sequence[Line]) -> bool:
        """Add ``lines`` once per ``event_id``; False when that event was already recorded."""
        ...

    async def sales(self, product_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
        """Product id to (units, revenue in cents), for the products with sales."""
        ...


class MemorySalesAnalytics:
    """In-process analytics for one process (the embedded default)."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._units: Counter[int] = Counter()
        self._revenue: Counter[int] = Counter()

    async def record(self, event_id: str, lines: Sequence[Line]) -> bool:
        if event_id in self._seen:
            return False
        self._seen.add(event_id)
        for product_id, quantity, price_cents in lines:
            self._units[product_id] += quantity
            self._revenue[product_id] += quantity * price_cents
        return True

    async def sales(self, product_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
        return {p: (self._units[p], self._revenue[p]) for p in product_ids if p in self._units}


_RECORD = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return 0
end
for i = 2, #ARGV, 3 do
  redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('HINCRBY', KEYS[3], ARGV[i], ARGV[i + 1] * ARGV[i + 2])
end
return 1
"""


class RedisSalesAnalytics:
    """Two hashes, units and revenue by product id, under ``{prefix}`` (a hash tag).

    ``remember`` is how long an event's marker lives, in seconds: a redelivery later than that
    would count again (the stream's consumers redeliver within minutes).
    """

    def __init__(self, client: Any, *, prefix: str = "shop", remember: float = 7 * 86400) -> None:
        self.client = client
        self.tag = "{" + f"{prefix}:sales" + "}"
        self.remember = max(1, int(remember))
        self._script = client.register_script(_RECORD)

    async def record(self, event_id: str, lines: Sequence[Line]) -> bool:
        keys = [f"{self.tag}:seen:{event_id}", f"{self.tag}:units", f"{self.tag}:revenue"]
        args: list[Any] = [self.remember]
        for product_id, quantity, price_cents in lines:
            args += [product_id, quantity, price_cents]
        return bool(await self._call(self._script(keys=keys, args=args)))

    async def sales(self, product_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
        ids = [str(p) for p in product_ids]
        if not ids:
            return {}
        units = await self._call(self.client.hmget(f"{self.tag}:units", ids))
        revenue = await self._call(self.client.hmget(f"{self.tag}:revenue", ids))
        return {
            int(p): (int(u), int(r or 0))
            for p, u, r in zip(ids, units, revenue, strict=True)
            if u is not None
        }

    @staticmethod
    async def _call(awaitable: Any) -> Any:
        from redis.exceptions import RedisError

        try:
            return await awaitable
        except (RedisError, OSError) as exc:
            raise BackendUnavailable("redis", str(exc)) from exc
