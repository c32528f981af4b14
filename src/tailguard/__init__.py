"""tailguard: composable, typed, asyncio-first primitives for fast, scalable, resilient services.

The everyday names are here; each capability lives in its subpackage (``tailguard.resilience``,
...). Importing ``tailguard`` imports no third-party library.
"""

from tailguard._clock import Clock, ManualClock, MonotonicClock
from tailguard.errors import (
    BackendUnavailable,
    BulkheadFullError,
    CircuitOpenError,
    ConfigurationError,
    DeadlineExceeded,
    RateLimitExceeded,
    Rejected,
    TailguardError,
)
from tailguard.events import HookRegistry, hooks
from tailguard.resilience import (
    Bulkhead,
    CircuitBreaker,
    Fallback,
    Pipeline,
    Retry,
    RetryBudget,
    Timeout,
)

__version__ = "0.1.0"

__all__ = [
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
