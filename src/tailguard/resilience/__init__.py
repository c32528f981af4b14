"""Resilience policies: breaker, bulkhead, retry with budget, timeout, fallback, hedge,
adaptive limit, and the pipeline that composes them.

::

    from tailguard.resilience import Bulkhead, CircuitBreaker, Pipeline, Retry, RetryBudget, Timeout

    guard = Pipeline(Timeout(1.0), Retry(attempts=3, budget=RetryBudget()),
                     CircuitBreaker(), Bulkhead(max_concurrent=100, max_queue=50))
    profile = await guard.call(fetch_profile, user_id)   # or @guard on an async def

Each policy is a decorator, an async context manager where that reads naturally (``Timeout``,
``CircuitBreaker``, ``Bulkhead``, ``AdaptiveLimit``) and ``await policy.call(fn, *args)``.
"""

from tailguard.resilience._policy import Policy
from tailguard.resilience.adaptive import AIMD, AdaptiveLimit, Gradient2, LimitAlgorithm
from tailguard.resilience.breaker import BreakerConfig, BreakerState, CircuitBreaker
from tailguard.resilience.budget import RetryBudget
from tailguard.resilience.bulkhead import Bulkhead
from tailguard.resilience.fallback import Fallback
from tailguard.resilience.hedge import Hedge
from tailguard.resilience.pipeline import Pipeline
from tailguard.resilience.retry import Backoff, Retry
from tailguard.resilience.timeout import Deadline, Timeout, current_deadline, time_remaining

__all__ = [
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
