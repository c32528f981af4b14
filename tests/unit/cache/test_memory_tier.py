"""MemoryTier: both bounds hold, TTLs expire, S3-FIFO keeps the hot keys, deletes do not leak."""

from __future__ import annotations

import random

import pytest

from tailguard.cache import Entry, MemoryTier
from tailguard.errors import ConfigurationError


def entry(value: object, ttl: float = 100.0, now: float = 0.0) -> Entry:
    return Entry(value, now + ttl)


def test_entry_bound_holds_and_ttl_expires() -> None:
    tier = MemoryTier(max_entries=100)
    for i in range(1000):
        tier.store(f"k{i}", entry(i))
        assert len(tier) <= 100
    tier.store("short", entry("x", ttl=1.0))
    assert tier.lookup("short", 0.5) is not None
    assert tier.lookup("short", 1.0) is None  # expired at exactly expires_at
    assert "short" not in tier


def test_byte_bound_holds() -> None:
    tier = MemoryTier(max_entries=1_000_000, max_bytes=200_000)
    for i in range(5000):
        tier.store(f"k{i}", entry("v" * 100))
        assert tier.bytes <= 200_000
    assert 100 < len(tier) < 5000


def test_a_value_larger_than_the_tier_is_not_kept() -> None:
    tier = MemoryTier(max_bytes=10_000)
    tier.store("small", entry("s"))
    tier.store("huge", entry("x" * 50_000))
    assert "huge" not in tier
    assert "small" in tier


def test_falsy_values_are_values() -> None:
    tier = MemoryTier()
    for i, value in enumerate([0, "", [], None, False]):
        tier.store(f"k{i}", entry(value))
        found = tier.lookup(f"k{i}", 0.0)
        assert found is not None
        assert found.value == value


def test_overwrite_in_place_and_remove() -> None:
    tier = MemoryTier(max_entries=10)
    tier.store("k", entry("a"))
    tier.store("k", entry("bb"))
    found = tier.lookup("k", 0.0)
    assert found is not None
    assert found.value == "bb"
    assert len(tier) == 1
    assert tier.remove("k")
    assert not tier.remove("k")
    assert tier.bytes == 0


def test_hot_keys_survive_a_scan_of_one_hit_wonders() -> None:
    tier = MemoryTier(max_entries=100)
    hot = [f"hot{i}" for i in range(50)]
    for k in hot:
        tier.store(k, entry(k))
    for _ in range(3):
        for k in hot:
            tier.lookup(k, 0.0)
    for i in range(10_000):  # a scan: each key seen once
        tier.store(f"scan{i}", entry(i))
    assert sum(k in tier for k in hot) == 50


def test_s3fifo_beats_lru_style_churn_on_a_zipf_trace() -> None:
    rng = random.Random(1)
    keys = [f"k{i}" for i in range(10_000)]
    weights = [1 / (i + 1) ** 1.0 for i in range(len(keys))]
    trace = rng.choices(keys, weights, k=50_000)
    tier = MemoryTier(max_entries=500)
    hits = 0
    for k in trace:
        if tier.lookup(k, 0.0) is not None:
            hits += 1
        else:
            tier.store(k, entry(k))
    assert hits / len(trace) > 0.45  # measured against cachetools LRU in bench/cache.py


def test_deletes_without_eviction_do_not_leak_queue_nodes() -> None:
    tier = MemoryTier(max_entries=1_000_000)
    for i in range(50_000):
        tier.store(f"k{i}", entry(i))
        tier.remove(f"k{i}")
    assert len(tier) == 0
    assert len(tier._small) + len(tier._main) <= 2048


def test_clear_and_config_errors() -> None:
    tier = MemoryTier()
    tier.store("k", entry(1))
    tier.clear()
    assert len(tier) == 0
    assert tier.bytes == 0
    with pytest.raises(ConfigurationError, match="max_entries"):
        MemoryTier(max_entries=0)
    with pytest.raises(ConfigurationError, match="max_bytes"):
        MemoryTier(max_bytes=0)
