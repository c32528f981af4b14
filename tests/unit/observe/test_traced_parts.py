"""Spans around policies (``Traced``) and cache tiers (``TracedTier``).

Each test sets tracing up with ``set_global=False`` and the in-memory exporter, as
``test_tracing.py`` does. The tier contract suite runs again on a ``TracedTier(MemoryTier())``,
with tracing off and on (its test functions are imported, and get this module's fixture).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from tailguard.cache import Entry, MemoryTier, RedisTier, Tier, TieredCache
from tailguard.cache.tiers import Leasing
from tailguard.errors import (
    BackendUnavailable,
    CircuitOpenError,
    ConfigurationError,
    DeadlineExceeded,
)
from tailguard.events import CacheError, HookRegistry
from tailguard.observe import _traced_parts
from tailguard.observe._traced_parts import Traced, TracedTier
from tailguard.observe.tracing import memory_exporter, setup_tracing, shutdown_tracing, traced
from tailguard.resilience import CircuitBreaker, Fallback, Hedge, Pipeline, Retry, Timeout
from tailguard.testing import no_backoff
from tests.contract.test_tier_contract import (
    test_a_miss_is_none,  # noqa: F401 - collected here, run on TracedTier
    test_delete_and_overwrite,  # noqa: F401
    test_expiry_and_metadata_survive_the_round_trip,  # noqa: F401
    test_get_many_keeps_order_across_slots,  # noqa: F401
    test_set_then_get_round_trips_every_kind_of_value,  # noqa: F401
)


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    shutdown_tracing()


@pytest.fixture
def spans() -> InMemorySpanExporter:
    setup_tracing("test", exporter="memory", set_global=False)
    return memory_exporter()


@pytest.fixture(params=["tracing off", "tracing on"])
def tier_and_prefix(request: pytest.FixtureRequest) -> tuple[Tier, str]:
    if request.param == "tracing on":
        setup_tracing("test", exporter="memory", set_global=False)
    return TracedTier(MemoryTier()), "k:"


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def parent_id(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


# --- Traced: a policy -------------------------------------------------------------------------


async def test_a_pipeline_span_gets_the_retries_of_the_policies_inside(
    spans: InMemorySpanExporter,
) -> None:
    calls = 0

    @traced("attempt")
    async def charge(amount: int) -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("reset")
        return f"charged {amount}"

    pay = Pipeline(Traced("pay", attributes={"psp": "acme"}), Retry(attempts=3))

    @traced("checkout")
    async def checkout() -> str:
        return await pay.call(charge, 12)

    with no_backoff():
        assert await checkout() == "charged 12"
    (outer,) = named(spans, "checkout")
    (span,) = named(spans, "pay")
    assert parent_id(span) == span_id(outer)
    assert [e.name for e in span.events] == ["RetryScheduled", "RetryScheduled"]
    assert [e.attributes["attempt"] for e in span.events if e.attributes] == [1, 2]
    assert attrs(span) == {"psp": "acme", "tailguard.outcome": "ok", "tailguard.retries": 2}
    assert span.status.status_code is StatusCode.UNSET
    attempts = named(spans, "attempt")
    assert len(attempts) == 3
    assert all(parent_id(a) == span_id(span) for a in attempts)
    assert outer.events == ()  # the events went to the innermost current span


async def test_a_failure_is_recorded_with_its_type_as_the_outcome(
    spans: InMemorySpanExporter,
) -> None:
    breaker = CircuitBreaker("db", failure_threshold=1)
    db = Pipeline(Traced("db"), breaker)

    async def query() -> None:
        raise TimeoutError("slow")

    with pytest.raises(TimeoutError):
        await db.call(query)
    with pytest.raises(CircuitOpenError):
        await db.call(query)  # rejected by the now open breaker
    failed, rejected = named(spans, "db")
    assert attrs(failed)["tailguard.outcome"] == "TimeoutError"
    assert failed.status.status_code is StatusCode.ERROR
    assert "exception" in [e.name for e in failed.events]
    assert attrs(rejected)["tailguard.outcome"] == "CircuitOpenError"
    assert "CallRejected" in [e.name for e in rejected.events]
    assert "tailguard.retries" not in attrs(failed)


async def test_a_fallback_inside_is_an_ok_outcome_with_its_event(
    spans: InMemorySpanExporter,
) -> None:
    profile = Pipeline(Traced("profile"), Fallback("anonymous"))

    async def lookup() -> str:
        raise KeyError("user")

    assert await profile.call(lookup) == "anonymous"
    (span,) = named(spans, "profile")
    assert attrs(span)["tailguard.outcome"] == "ok"
    assert [e.name for e in span.events] == ["FallbackUsed"]


async def test_hedges_and_timeouts_land_on_it_too(spans: InMemorySpanExporter) -> None:
    calls = 0

    @traced("attempt")
    async def read() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(1.0 if calls == 1 else 0.0)  # the first attempt is slow
        return calls

    hedged = Pipeline(Traced("hedged"), Hedge(delay=0.01))
    assert await hedged.call(read) == 2
    timed = Pipeline(Traced("timed"), Timeout(0.01))
    with pytest.raises(DeadlineExceeded):
        await timed.call(asyncio.sleep, 1.0)
    (hedge,) = named(spans, "hedged")
    assert [e.name for e in hedge.events] == ["HedgeFired"]
    assert attrs(hedge)["tailguard.outcome"] == "ok"
    attempts = named(spans, "attempt")
    assert len(attempts) == 2
    assert all(parent_id(a) == span_id(hedge) for a in attempts)  # the hedge's too
    (timeout,) = named(spans, "timed")
    assert [e.name for e in timeout.events][-2:] == ["TimeoutExpired", "exception"]
    assert attrs(timeout)["tailguard.outcome"] == "DeadlineExceeded"


async def test_cancellation_is_an_outcome_not_an_error(spans: InMemorySpanExporter) -> None:
    slow = Traced("slow")

    async def wait() -> None:
        await asyncio.sleep(10)

    task = asyncio.create_task(slow.call(wait))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (span,) = named(spans, "slow")
    assert attrs(span)["tailguard.outcome"] == "cancelled"
    assert span.status.status_code is StatusCode.UNSET


async def test_as_a_decorator_and_an_async_context_manager(spans: InMemorySpanExporter) -> None:
    job = Traced("job")

    @job
    async def work(n: int) -> int:
        return n * 2

    assert await work(4) == 8
    async with job:
        async with job:  # nested on one instance: each exit closes its own span
            await work(1)
        with pytest.raises(ValueError, match="bad"):
            async with job:
                raise ValueError("bad")
    got = named(spans, "job")
    assert len(got) == 5
    first, inner_work, middle, failed, outer = got
    assert parent_id(first) is None
    assert parent_id(inner_work) == span_id(middle)
    assert parent_id(middle) == span_id(outer)
    assert parent_id(failed) == span_id(outer)
    assert attrs(failed)["tailguard.outcome"] == "ValueError"
    assert attrs(outer)["tailguard.outcome"] == "ok"


async def test_aexit_without_aenter_is_refused() -> None:
    with pytest.raises(RuntimeError, match="without a matching"):
        await Traced("x").__aexit__(None, None, None)


async def test_nothing_happens_until_tracing_is_set_up(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_span(*args: object) -> None:
        raise AssertionError("a span was started")

    monkeypatch.setattr(_traced_parts, "_start", no_span)

    async def work() -> int:
        return 1

    assert await Pipeline(Traced("x"), Retry()).call(work) == 1
    async with Traced("x"):
        pass
    tier = TracedTier(MemoryTier())
    await tier.set("k", Entry(1, time.time() + 60))
    assert await tier.get("k") is not None
    assert await tier.get_many(["k"]) != [None]
    await tier.delete("k")


def test_no_opentelemetry_import_while_tracing_is_not_set_up() -> None:
    code = (
        "import asyncio, sys, time\n"
        "from tailguard.cache import Entry, MemoryTier\n"
        "from tailguard.observe.tracing import Traced, TracedTier\n"
        "async def one() -> int:\n"
        "    return 1\n"
        "async def main() -> None:\n"
        "    assert await Traced('x').call(one) == 1\n"
        "    tier = TracedTier(MemoryTier())\n"
        "    await tier.set('k', Entry(1, time.time() + 60))\n"
        "    assert await tier.get('k') is not None\n"
        "asyncio.run(main())\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


async def test_no_span_inside_an_unsampled_trace() -> None:
    setup_tracing("test", exporter="memory", sample_ratio=0.0, set_global=False)

    async def work() -> int:
        return 1

    @traced
    async def root() -> int:
        tier = TracedTier(MemoryTier())
        await tier.get("k")
        return await Traced("x").call(work)

    assert await root() == 1
    assert memory_exporter().get_finished_spans() == ()


def test_name_is_validated() -> None:
    with pytest.raises(ConfigurationError, match=r"Traced\.name"):
        Traced("")
    assert repr(Traced("pay")) == "Traced(name='pay')"


# --- TracedTier: a cache tier -------------------------------------------------------------------


async def test_get_or_load_makes_a_span_per_tier_operation(spans: InMemorySpanExporter) -> None:
    l1 = MemoryTier(name="l1")
    tier = TracedTier(MemoryTier())
    cache = TieredCache([l1, tier], name="profiles", early_refresh=None)

    async def load() -> dict[str, int]:
        return {"id": 42}

    @traced("profile")
    async def profile() -> dict[str, int]:
        return await cache.get_or_load("user:42", load, ttl=60)

    assert await profile() == {"id": 42}
    l1.clear()  # so that the second read reaches the traced tier
    assert await profile() == {"id": 42}
    first, second = named(spans, "profile")
    miss, hit = named(spans, "cache.memory.get")
    (stored,) = named(spans, "cache.memory.set")
    assert [parent_id(s) for s in (miss, stored, hit)] == [
        span_id(first),
        span_id(first),
        span_id(second),
    ]
    assert attrs(miss) == {
        "tailguard.cache.tier": "memory",
        "tailguard.cache.operation": "get",
        "tailguard.outcome": "ok",
        "tailguard.cache.hit": False,
    }
    assert attrs(stored) == {
        "tailguard.cache.tier": "memory",
        "tailguard.cache.operation": "set",
        "tailguard.outcome": "ok",
    }
    assert attrs(hit)["tailguard.cache.hit"] is True
    assert attrs(hit)["tailguard.cache.entry_size"] > 0
    assert "tailguard.cache.stale" not in attrs(hit)
    assert [e.name for e in first.events] == ["CacheMiss", "CacheLoad"]
    assert [e.name for e in second.events] == ["CacheHit"]


async def test_wrapping_the_tiers_below_l1(spans: InMemorySpanExporter) -> None:
    l2 = TracedTier(MemoryTier(name="l2"), record_keys=True)
    cache = TieredCache([MemoryTier(), l2], early_refresh=None)

    async def load() -> str:
        return "v"

    await cache.get_or_load("k", load, ttl=60)
    await cache.get_or_load("k", load, ttl=60)  # an L1 hit: read synchronously, no span
    assert [s.name for s in spans.get_finished_spans()] == ["cache.l2.get", "cache.l2.set"]
    assert all(attrs(s)["tailguard.cache.key"] == "k" for s in spans.get_finished_spans())


async def test_get_many_stale_and_delete(spans: InMemorySpanExporter) -> None:
    now = [1000.0]
    tier = TracedTier(MemoryTier(clock=lambda: now[0]), clock=lambda: now[0])
    await tier.set("a", Entry(1, 1010.0, stale_until=1100.0))
    assert await tier.get_many(["a", "b", "a"]) != []
    now[0] = 1050.0
    stale = await tier.get("a")
    assert stale is not None
    await tier.delete("a")
    (many,) = named(spans, "cache.memory.get_many")
    assert attrs(many)["tailguard.cache.keys"] == 3
    assert attrs(many)["tailguard.cache.hits"] == 2
    (get,) = named(spans, "cache.memory.get")
    assert attrs(get)["tailguard.cache.stale"] is True
    assert attrs(named(spans, "cache.memory.delete")[0])["tailguard.outcome"] == "ok"


class Broken(MemoryTier):
    """A remote tier that is down."""

    local = False

    async def get(self, key: str) -> Entry | None:
        raise BackendUnavailable(self.name, "connection refused")


async def test_a_failing_tier_is_recorded_and_the_cache_carries_on(
    spans: InMemorySpanExporter,
) -> None:
    registry = HookRegistry()
    errors: list[CacheError] = []
    registry.subscribe(errors.append, CacheError)
    cache = TieredCache(
        [MemoryTier(), TracedTier(Broken(name="down"))], hooks=registry, early_refresh=None
    )

    async def load() -> int:
        return 7

    assert await cache.get_or_load("k", load, ttl=60) == 7
    (get,) = named(spans, "cache.down.get")
    assert get.status.status_code is StatusCode.ERROR
    assert attrs(get)["tailguard.outcome"] == "BackendUnavailable"
    assert "tailguard.cache.hit" not in attrs(get)
    # then its breaker is open: the set is rejected without reaching the tier (no span)
    assert [(e.tier, e.operation) for e in errors] == [("down", "get"), ("down", "set")]
    assert named(spans, "cache.down.set") == []


class FakeLeasing(MemoryTier):
    """A tier that grants leases, in memory."""

    local = False

    def __init__(self) -> None:
        super().__init__(name="shared")
        self.leases: dict[str, str] = {}

    async def acquire_lease(self, key: str, ttl: float) -> str:
        if key in self.leases:
            return ""
        self.leases[key] = f"token-{key}"
        return self.leases[key]

    async def release_lease(self, key: str, token: str, empty_for: float = 0.0) -> None:
        if self.leases.get(key) == token:
            del self.leases[key]

    async def lease_empty(self, key: str) -> bool:
        return False


async def test_leases_pass_through_with_spans(spans: InMemorySpanExporter) -> None:
    traced_tier = TracedTier(FakeLeasing())
    assert isinstance(traced_tier, TracedTier)
    assert isinstance(traced_tier, Leasing)
    assert not isinstance(TracedTier(MemoryTier()), Leasing)
    cache = TieredCache([MemoryTier(), traced_tier], lease=1.0, early_refresh=None)

    async def load() -> str:
        return "v"

    assert await cache.get_or_load("k", load, ttl=60) == "v"
    (acquired,) = named(spans, "cache.shared.acquire_lease")
    (released,) = named(spans, "cache.shared.release_lease")
    assert attrs(acquired)["tailguard.cache.lease_granted"] is True
    assert attrs(released)["tailguard.outcome"] == "ok"
    assert await traced_tier.acquire_lease("x", 1.0)
    assert await traced_tier.acquire_lease("x", 1.0) == ""
    assert (
        attrs(named(spans, "cache.shared.acquire_lease")[-1])["tailguard.cache.lease_granted"]
        is False
    )


def test_it_is_a_tier_mirroring_the_wrapped_one() -> None:
    memory = MemoryTier(name="l1")
    tier = TracedTier(memory)
    assert isinstance(tier, Tier)
    assert (tier.name, tier.local, tier.inner) == ("l1", True, memory)
    assert repr(tier) == f"TracedTier({memory!r})"
    with pytest.raises(ConfigurationError, match=r"TracedTier\.tier"):
        TracedTier(object())  # type: ignore[arg-type]


async def test_a_redis_tier_traced_with_leases(
    spans: InMemorySpanExporter, redis_client: Any, redis_prefix: str
) -> None:
    redis = TracedTier(RedisTier(redis_client))
    assert isinstance(redis, Leasing)
    assert not redis.local
    cache = TieredCache([TracedTier(MemoryTier()), redis], lease=1.0, early_refresh=None)

    async def load() -> str:
        return "v"

    key = f"{redis_prefix}k"
    assert await cache.get_or_load(key, load, ttl=60) == "v"
    assert await cache.get_or_load(key, load, ttl=60) == "v"
    names = [s.name for s in spans.get_finished_spans()]
    # The traced L1 is read and written synchronously, without spans; the second read is an
    # L1 hit. The Redis tier's operations are traced.
    assert names == [
        "cache.redis.get",
        "cache.redis.acquire_lease",
        "cache.redis.release_lease",
        "cache.redis.set",
    ]
    assert attrs(named(spans, "cache.redis.get")[0])["tailguard.cache.hit"] is False


class CountingTier(MemoryTier):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[Sequence[str]] = []

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        self.reads.append(keys)
        return await super().get_many(keys)


async def test_calls_are_delegated_unchanged() -> None:
    inner = CountingTier()
    tier = TracedTier(inner)
    assert await tier.get_many(["a", "b"]) == [None, None]
    assert inner.reads == [["a", "b"]]
