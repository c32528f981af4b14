"""``MemoryTier``: the in-process L1, bounded by entries and bytes, evicting with S3-FIFO.

Eviction is S3-FIFO (Yang et al., SOSP 2023): new keys enter a small FIFO (10 % of the room);
keys hit again while there move to the main FIFO, the others are evicted and remembered in a
ghost FIFO, so that a key coming back soon goes straight to main. Main evicts from its tail but
gives any key hit since its last pass another round. On skewed (Zipf) traffic it keeps more
hits than LRU (see ``bench/cache.py``), and a hit only bumps a small counter: no reordering,
which keeps the L1 hit path short.

Sizes are approximate: ``approx_size`` walks containers and adds the tier's own bookkeeping,
erring high, so a byte bound is a real bound.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Any

from tailguard.cache.tiers.base import Entry
from tailguard.errors import ConfigurationError

__all__ = ["MemoryTier", "approx_size"]

_OVERHEAD = 360  # bytes per entry beyond key and value: node, dict slot (with slack), queues
_GHOST_COST = 150  # bytes per remembered evicted key (a hash in an OrderedDict)
_SCALARS = (str, bytes, bytearray, int, float, bool, type(None))
_SEQUENCES = (list, tuple, set, frozenset)


def approx_size(value: Any, _depth: int = 0) -> int:
    """A generous estimate of the bytes ``value`` holds (containers walked 4 levels deep)."""
    size = sys.getsizeof(value)
    if _depth >= 4 or isinstance(value, _SCALARS):
        return size
    if isinstance(value, dict):
        return size + sum(
            approx_size(k, _depth + 1) + approx_size(v, _depth + 1) for k, v in value.items()
        )
    if isinstance(value, _SEQUENCES):
        return size + sum(approx_size(v, _depth + 1) for v in value)
    attrs = getattr(value, "__dict__", None)
    if attrs is not None:
        return size + approx_size(attrs, _depth + 1)
    slots = getattr(type(value), "__slots__", ())
    return size + sum(approx_size(getattr(value, s, None), _depth + 1) for s in slots)


class _Node(Entry):
    """An entry as the memory tier keeps it: with its key, size, queue and hit counter."""

    __slots__ = ("freq", "in_main", "key", "live", "size")

    def __init__(self, key: str, entry: Entry, size: int) -> None:
        super().__init__(
            entry.value, entry.expires_at, entry.delta, entry.negative, entry.stale_until
        )
        self.key = key
        self.size = size
        self.freq = 0
        self.in_main = False
        self.live = True


class MemoryTier:
    """L1: at most ``max_entries`` entries and about ``max_bytes`` bytes, TTL per entry.

    ``clock`` is a wall clock (seconds since the epoch; ``time.time`` by default), the time
    base ``Entry.expires_at`` uses in every tier.
    """

    local = True

    def __init__(
        self,
        max_entries: int = 100_000,
        max_bytes: int = 256 * 1024 * 1024,
        *,
        name: str = "memory",
        sizer: Callable[[Any], int] = approx_size,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_entries < 1:
            raise ConfigurationError("MemoryTier.max_entries", max_entries, "an int >= 1")
        if max_bytes < 1:
            raise ConfigurationError("MemoryTier.max_bytes", max_bytes, "bytes >= 1")
        self.name = name
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._sizer = sizer
        self._now = clock
        self._data: dict[str, _Node] = {}
        self._small: deque[_Node] = deque()
        self._main: deque[_Node] = deque()
        # Hashes of keys evicted from probation, as many as there are live entries (their cost
        # is counted in the byte bound): a key seen again soon goes straight to main.
        self._ghost: OrderedDict[int, None] = OrderedDict()
        self._small_count = 0
        self._small_bytes = 0
        self._bytes = 0
        self._dead = 0  # unlinked nodes still sitting in a queue
        # The small (probation) queue gets 10 % of the room, by count and by bytes, whichever
        # binds: with only a count target, a byte-bound tier would evict from main alone.
        self._small_target = max(1, max_entries // 10)
        self._small_bytes_target = max(1, max_bytes // 10)

    # -- sync core (the TieredCache fast path calls these directly) ---------------------------

    def lookup(self, key: str, now: float) -> Entry | None:
        """The fresh entry for ``key`` at ``now``, counting the hit; None if absent or stale."""
        node = self._data.get(key)
        if node is None:
            return None
        if node.expires_at <= now:
            if node.stale_until <= now:
                self._unlink(node)
            return None
        if node.freq < 3:
            node.freq += 1
        return node

    def peek(self, key: str, now: float) -> Entry | None:
        """The entry for ``key``, fresh or stale, until its ``stale_until``; None otherwise."""
        node = self._data.get(key)
        if node is None:
            return None
        if node.stale_until <= now:
            self._unlink(node)
            return None
        return node

    def store(self, key: str, entry: Entry) -> None:
        """Keep ``entry`` under ``key``, evicting as needed to stay within both bounds."""
        size = _OVERHEAD + len(key) + self._sizer(entry.value)
        if size > self.max_bytes:
            self.remove(key)
            return  # larger than the whole tier: not worth evicting everything for
        node = self._data.get(key)
        if node is not None:  # overwrite in place: same queue position, fresh value
            node.value, node.expires_at = entry.value, entry.expires_at
            node.delta, node.negative = entry.delta, entry.negative
            node.stale_until = entry.stale_until
            self._bytes += size - node.size
            if not node.in_main:
                self._small_bytes += size - node.size
            node.size = size
        else:
            node = _Node(key, entry, size)
            if self._ghost and self._forget_ghost(hash(key)):  # evicted recently: to main
                node.in_main = True
                self._main.appendleft(node)
            else:
                self._small.appendleft(node)
                self._small_count += 1
                self._small_bytes += size
            self._data[key] = node
            self._bytes += size
        while (len(self._data) > self.max_entries or self._bytes > self.max_bytes) and self._data:
            self._evict()

    def remove(self, key: str) -> bool:
        """Forget ``key``; True if it was there."""
        node = self._data.get(key)
        if node is None:
            return False
        self._unlink(node)
        return True

    def clear(self) -> None:
        """Forget everything (used when invalidations may have been missed)."""
        self._data.clear()
        self._small.clear()
        self._main.clear()
        self._ghost.clear()
        self._small_count = 0
        self._small_bytes = 0
        self._bytes = 0
        self._dead = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    @property
    def bytes(self) -> int:
        """The approximate bytes held now (entries and the ghost FIFO's remembered keys)."""
        return self._bytes

    # -- S3-FIFO -------------------------------------------------------------------------------

    def _forget_ghost(self, h: int) -> bool:
        if self._ghost.pop(h, 0) is None:
            self._bytes -= _GHOST_COST
            return True
        return False

    def _unlink(self, node: _Node) -> None:
        # Lazy: the node stays in its queue, dead, until eviction reaches it, or until the dead
        # outnumber the living and the queues are compacted (so deletes cannot leak memory).
        node.live = False
        node.value = None  # the queue may keep the node a while: not its value
        del self._data[node.key]
        self._bytes -= node.size
        if not node.in_main:
            self._small_count -= 1
            self._small_bytes -= node.size
        self._dead += 1
        if self._dead > 1024 and self._dead > len(self._data):
            self._small = deque(n for n in self._small if n.live)
            self._main = deque(n for n in self._main if n.live)
            self._dead = 0

    def _drop(self, node: _Node) -> None:
        """Evict a node just popped from its queue."""
        node.live = False
        node.value = None
        del self._data[node.key]
        self._bytes -= node.size

    def _evict(self) -> None:
        if (
            self._small_count >= self._small_target
            or self._small_bytes >= self._small_bytes_target
            or not self._main
        ):
            self._evict_small()
        else:
            self._evict_main()

    def _evict_small(self) -> None:
        while self._small:
            node = self._small.pop()
            if not node.live:
                self._dead -= 1
                continue
            self._small_count -= 1
            self._small_bytes -= node.size
            if node.freq > 0:  # hit while on probation: promote to main
                node.freq = 0
                node.in_main = True
                self._main.appendleft(node)
            else:
                self._drop(node)
                self._ghost[hash(node.key)] = None
                self._bytes += _GHOST_COST
                while len(self._ghost) > max(1, len(self._data)):
                    self._ghost.popitem(last=False)
                    self._bytes -= _GHOST_COST
            return
        self._evict_main()

    def _evict_main(self) -> None:
        while self._main:
            node = self._main.pop()
            if not node.live:
                self._dead -= 1
                continue
            if node.freq > 0:  # hit since its last pass: another round
                node.freq -= 1
                self._main.appendleft(node)
                continue
            self._drop(node)
            return
        if self._small:
            self._evict_small()

    # -- the Tier protocol -----------------------------------------------------------------------

    async def get(self, key: str) -> Entry | None:
        return self.peek(key, self._now())

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        now = self._now()
        return [self.peek(k, now) for k in keys]

    async def set(self, key: str, entry: Entry) -> None:
        self.store(key, entry)

    async def delete(self, key: str) -> None:
        self.remove(key)

    def __repr__(self) -> str:
        return (
            f"MemoryTier(name={self.name!r}, entries={len(self._data)}/{self.max_entries}, "
            f"bytes={self._bytes}/{self.max_bytes})"
        )
