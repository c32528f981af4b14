"""The public names are a promise: changing them must be a decision, made here."""

from __future__ import annotations

import subprocess
import sys

import tailguard
import tailguard.errors
import tailguard.events
import tailguard.resilience
import tailguard.testing


def test_top_level_names() -> None:
    assert sorted(tailguard.__all__) == sorted(
        [
            "BackendUnavailable",
            "Bulkhead",
            "BulkheadFullError",
            "CircuitBreaker",
            "CircuitOpenError",
            "Clock",
            "ConfigurationError",
            "DeadlineExceeded",
            "Fallback",
            "HookRegistry",
            "ManualClock",
            "MonotonicClock",
            "Pipeline",
            "RateLimitExceeded",
            "Rejected",
            "Retry",
            "RetryBudget",
            "TailguardError",
            "Timeout",
            "__version__",
            "hooks",
        ]
    )


def test_resilience_names() -> None:
    assert sorted(tailguard.resilience.__all__) == sorted(
        [
            "AIMD",
            "AdaptiveLimit",
            "Backoff",
            "BreakerConfig",
            "BreakerState",
            "Bulkhead",
            "CircuitBreaker",
            "Deadline",
            "Fallback",
            "Gradient2",
            "Hedge",
            "LimitAlgorithm",
            "Pipeline",
            "Policy",
            "Retry",
            "RetryBudget",
            "Timeout",
            "current_deadline",
            "time_remaining",
        ]
    )


def test_errors_events_and_testing_names() -> None:
    assert sorted(tailguard.errors.__all__) == [
        "BackendSaturated",
        "BackendUnavailable",
        "BulkheadFullError",
        "CacheValueError",
        "CircuitOpenError",
        "ConfigurationError",
        "ConnectionLeak",
        "DeadlineExceeded",
        "KeyTooLong",
        "NPlusOneDetected",
        "RateLimitExceeded",
        "Rejected",
        "ShardError",
        "TailguardError",
        "ValueTooLarge",
    ]
    assert sorted(tailguard.events.__all__) == [
        "CacheCoalesced",
        "CacheError",
        "CacheHit",
        "CacheInvalidated",
        "CacheLoad",
        "CacheMiss",
        "CallRejected",
        "CircuitStateChanged",
        "EndpointEjected",
        "EndpointHealthChanged",
        "Event",
        "FallbackUsed",
        "HedgeFired",
        "Hook",
        "HookRegistry",
        "LimitChanged",
        "RateLimited",
        "RetryGaveUp",
        "RetryScheduled",
        "TimeoutExpired",
        "hooks",
    ]
    assert sorted(tailguard.testing.__all__) == [
        "ManualClock",
        "RecordingHook",
        "no_backoff",
        "set_backoff",
    ]


def test_every_exported_name_exists() -> None:
    for module in (tailguard, tailguard.resilience, tailguard.errors, tailguard.events):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_import_tailguard_stays_light() -> None:
    heavy = [
        "redis",
        "sqlalchemy",
        "opentelemetry",
        "prometheus_client",
        "httpx",
        "aiohttp",
        "pydantic",
    ]
    code = (
        "import sys, tailguard, tailguard.resilience, tailguard.testing, tailguard.cache,"
        " tailguard.ratelimit, tailguard.shard, tailguard.balance;"
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cache_names() -> None:
    import tailguard.cache

    assert sorted(tailguard.cache.__all__) == [
        "CacheKey",
        "Codec",
        "Entry",
        "HttpCaching",
        "Invalidation",
        "JsonCodec",
        "MISSING",
        "MemoryTier",
        "MsgpackCodec",
        "RedisInvalidation",
        "RedisTier",
        "SignedPickleCodec",
        "Tier",
        "TieredCache",
    ]
    for name in tailguard.cache.__all__:
        assert getattr(tailguard.cache, name) is not None


def test_ratelimit_names() -> None:
    import tailguard.ratelimit

    assert sorted(tailguard.ratelimit.__all__) == [
        "Algorithm",
        "ConcurrencyLimit",
        "Decision",
        "FixedWindow",
        "GCRA",
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


def test_observe_names() -> None:
    import tailguard.observe

    assert sorted(tailguard.observe.__all__) == [
        "BurnRateAlert",
        "ConnectionLeak",
        "ConnectionWatch",
        "EventMetrics",
        "GoldenSignals",
        "LATENCY_BUCKETS",
        "LoopLag",
        "NPlusOne",
        "NPlusOneDetected",
        "QueryCounter",
        "QueryCounterMiddleware",
        "QueryStats",
        "REGISTRY",
        "SLO",
        "SoakReport",
        "SpanEvents",
        "Traced",
        "TracedTier",
        "assert_no_leaks",
        "checked_out",
        "current_trace_id",
        "exemplar",
        "memory_exporter",
        "metrics_app",
        "monitor",
        "profile_performance",
        "redis_in_use",
        "route_template",
        "setup_tracing",
        "shutdown_tracing",
        "soak",
        "traced",
        "use_tracer_provider",
        "watch",
        "watch_process",
    ]
    for name in tailguard.observe.__all__:
        assert getattr(tailguard.observe, name) is not None, name


def test_metrics_alone_import_no_orm_yaml_or_tracing() -> None:
    heavy = ["sqlalchemy", "opentelemetry", "yaml", "pyinstrument"]
    code = f"import sys, tailguard.observe;print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_shard_names() -> None:
    import tailguard.shard

    assert sorted(tailguard.shard.__all__) == [
        "ByMonth",
        "Gathered",
        "JumpHash",
        "Key",
        "Modulo",
        "Move",
        "Movement",
        "Rendezvous",
        "ShardError",
        "ShardRouter",
        "StableHash",
        "Strategy",
        "digest64",
        "jump",
        "movement",
        "moves",
    ]
    for name in tailguard.shard.__all__:
        assert hasattr(tailguard.shard, name), name


def test_balance_names() -> None:
    import tailguard.balance

    assert sorted(tailguard.balance.__all__) == [
        "BalancedSession",
        "BalancedTransport",
        "Balancer",
        "Endpoint",
        "HealthCheck",
        "IPHash",
        "Lease",
        "LeastConnections",
        "OutlierDetection",
        "Picker",
        "PowerOfTwo",
        "RoundRobin",
        "Weighted",
        "is_idempotent",
    ]
    for name in tailguard.balance.__all__:
        assert getattr(tailguard.balance, name) is not None, name


def test_capacity_names() -> None:
    import tailguard.capacity

    assert sorted(tailguard.capacity.__all__) == [
        "CapacityPlan",
        "USLFit",
        "erlang_c",
        "fit_usl",
        "mean_wait",
        "plan",
        "servers_for",
    ]
    for name in tailguard.capacity.__all__:
        assert getattr(tailguard.capacity, name) is not None, name


def test_loadtest_names() -> None:
    import tailguard.loadtest

    assert sorted(tailguard.loadtest.__all__) == [
        "ArrivalRate",
        "Client",
        "Histogram",
        "Profile",
        "Ramp",
        "Response",
        "Result",
        "SLO",
        "Segment",
        "SloOutcome",
        "User",
        "between",
        "constant",
        "load_scenario",
        "merge",
        "parse_slo",
        "run",
        "run_processes",
        "task",
    ]
    for name in tailguard.loadtest.__all__:
        assert getattr(tailguard.loadtest, name) is not None, name


def test_import_loadtest_stays_light() -> None:
    heavy = ["hdrh", "rich", "uvloop", "matplotlib", "aiohttp", "tailguard.capacity"]
    code = f"import sys, tailguard.loadtest; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
