"""``Hedge``: if a call is slow, start another; the first answer wins, the rest are cancelled.

The hedge delay is fixed (``delay=0.05``) or follows recent latency (``percentile=95``: hedge
the calls slower than 95 % of recent successes). Hedges draw from a shared
:class:`RetryBudget`, so hedging cannot double the load on a struggling dependency. Only hedge
idempotent calls: every attempt may reach the server.

Cost: a hedged call runs its attempts as tasks (a few microseconds each). Until ``min_samples``
latencies are known, percentile mode runs the call directly with no hedge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from tailguard._clock import SYSTEM_CLOCK, Clock
from tailguard.errors import ConfigurationError
from tailguard.events import HedgeFired, HookRegistry
from tailguard.resilience._policy import PolicyBase, resolve_hooks
from tailguard.resilience.budget import RetryBudget

__all__ = ["Hedge"]

P = ParamSpec("P")
T = TypeVar("T")


class Hedge(PolicyBase):
    """Start up to ``max_hedges`` extra attempts, each ``delay`` seconds after the previous one
    (or the ``percentile`` of recent successful latencies when ``delay`` is None)."""

    __slots__ = (
        "_budget",
        "_cached",
        "_hooks",
        "_i",
        "_now",
        "_samples",
        "_samples_max",
        "_since",
        "clock",
        "delay",
        "max_hedges",
        "min_samples",
        "name",
        "percentile",
    )

    def __init__(
        self,
        delay: float | None = None,
        *,
        percentile: float = 95.0,
        max_hedges: int = 1,
        budget: RetryBudget | None = None,
        min_samples: int = 20,
        sample_size: int = 1000,
        name: str = "hedge",
        clock: Clock = SYSTEM_CLOCK,
        hooks: HookRegistry | None = None,
    ) -> None:
        if delay is not None and delay < 0:
            raise ConfigurationError("Hedge.delay", delay, "None or seconds >= 0")
        if not 0 < percentile < 100:
            raise ConfigurationError("Hedge.percentile", percentile, "0 < percentile < 100")
        if max_hedges < 0:
            raise ConfigurationError("Hedge.max_hedges", max_hedges, ">= 0")
        if sample_size < 1 or min_samples < 1:
            raise ConfigurationError("Hedge.sample_size", sample_size, ">= 1 and min_samples >= 1")
        self.delay = delay
        self.percentile = percentile
        self.max_hedges = max_hedges
        self.min_samples = min_samples
        self._budget = budget
        self.name = name
        self.clock = clock
        self._now = clock.now
        self._hooks = resolve_hooks(hooks)
        self._samples: list[float] = []
        self._i = 0
        self._since = 0  # samples since the percentile was last computed
        self._cached: float | None = None
        self._samples_max = sample_size

    def current_delay(self) -> float | None:
        """The hedge delay in seconds now, or None when too few latencies are known."""
        if self.delay is not None:
            return self.delay
        n = len(self._samples)
        if n < self.min_samples:
            return None
        if self._cached is None or self._since >= max(1, n // 10):
            ordered = sorted(self._samples)
            self._cached = ordered[min(n - 1, int(n * self.percentile / 100))]
            self._since = 0
        return self._cached

    def _observe(self, seconds: float) -> None:
        if len(self._samples) < self._samples_max:
            self._samples.append(seconds)
        else:
            self._samples[self._i] = seconds
            self._i = (self._i + 1) % self._samples_max
        self._since += 1

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self._budget is not None:
            self._budget.deposit()
        delay = self.current_delay()
        start = self._now()
        if delay is None or self.max_hedges == 0:
            result = await fn(*args, **kwargs)
            self._observe(self._now() - start)
            return result

        async def attempt() -> T:
            return await fn(*args, **kwargs)

        tasks: list[asyncio.Task[T]] = [asyncio.ensure_future(attempt())]
        hedges_left = self.max_hedges
        error: BaseException | None = None
        try:
            while tasks:
                done, _ = await asyncio.wait(
                    tasks,
                    timeout=delay if hedges_left > 0 else None,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if not done:
                    if self._budget is not None and not self._budget.try_withdraw():
                        hedges_left = 0  # budget empty: let the attempts in flight finish
                        continue
                    hedges_left -= 1
                    self._hooks.emit(HedgeFired(self.name, len(tasks), delay))
                    tasks.append(asyncio.ensure_future(attempt()))
                    continue
                for t in done:
                    tasks.remove(t)
                    if t.cancelled():
                        continue
                    exc = t.exception()
                    if exc is None:
                        self._observe(self._now() - start)
                        return t.result()
                    error = exc
            if error is None:  # every attempt was cancelled from outside
                raise asyncio.CancelledError
            raise error
        finally:
            for t in tasks:
                t.cancel()
            if tasks:
                await asyncio.wait(tasks)
