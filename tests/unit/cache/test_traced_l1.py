"""A ``TracedTier`` around the L1 ``MemoryTier``: ``TieredCache`` sees through it (the tier
only observes), so L1 keeps its synchronous fast path, and the tiers below keep their spans."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tailguard.cache import Entry, MemoryTier, TieredCache
from tailguard.cache.tiers import Observing
from tailguard.events import CacheHit, HookRegistry
from tailguard.observe.tracing import TracedTier, memory_exporter, setup_tracing, shutdown_tracing
from tailguard.testing import RecordingHook


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    setup_tracing("test", exporter="memory", set_global=False)
    yield memory_exporter()
    shutdown_tracing()


class CountingTracedTier(TracedTier[Entry]):
    """Counts the calls that reach the wrapper's async ``Tier`` methods."""

    def __init__(self, tier: MemoryTier) -> None:
        super().__init__(tier)
        self.calls: list[str] = []

    async def get(self, key: str) -> Entry | None:
        self.calls.append("get")
        return await super().get(key)

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        self.calls.append("get_many")
        return await super().get_many(keys)

    async def set(self, key: str, entry: Entry) -> None:
        self.calls.append("set")
        await super().set(key, entry)

    async def delete(self, key: str) -> None:
        self.calls.append("delete")
        await super().delete(key)


class Remote(MemoryTier):
    """A lower level that reports as remote (as a RedisTier would)."""

    local = False


async def test_a_traced_l1_keeps_the_fast_path_and_the_lower_tiers_keep_their_spans(
    spans: InMemorySpanExporter,
) -> None:
    l1 = MemoryTier()
    traced_l1 = CountingTracedTier(l1)
    assert isinstance(traced_l1, Observing)
    registry = HookRegistry()
    rec = RecordingHook(registry)
    cache = TieredCache(
        [traced_l1, TracedTier(Remote(name="remote"))],
        hooks=registry,
        early_refresh=None,
    )
    loads = 0

    async def load() -> str:
        nonlocal loads
        loads += 1
        return "v"

    # a miss: L1 is looked up synchronously, the remote tier through its span, then both written
    assert await cache.get_or_load("k", load, ttl=60) == "v"
    assert "k" in l1
    # hits: all from L1, read synchronously
    assert await cache.get_or_load("k", load, ttl=60) == "v"
    assert await cache.get("k") == "v"
    assert await cache.get_many(["k"]) == {"k": "v"}
    assert loads == 1
    assert traced_l1.calls == []  # the wrapper's coroutines never ran: the fast path did
    assert [e.tier for e in rec.of(CacheHit)] == ["memory"] * 2  # get_many reports none
    # What tracing records is what it records for a bare MemoryTier L1: the remote tier's
    # operations, and no span for L1 (an L1 hit is not worth one).
    assert [s.name for s in spans.get_finished_spans()] == [
        "cache.remote.get",
        "cache.remote.set",
    ]

    # The L1 features TieredCache had lost behind the wrapper work again: another instance's
    # invalidation evicts from it, and a delete reaches it without the wrapper.
    cache._evict("k")
    assert "k" not in l1
    assert await cache.get("k") == "v"  # from the remote tier (a span), promoted into L1
    assert "k" in l1
    await cache.delete("k")
    assert "k" not in l1
    assert traced_l1.calls == []
    assert [s.name for s in spans.get_finished_spans()][2:] == [
        "cache.remote.get",
        "cache.remote.delete",
    ]
