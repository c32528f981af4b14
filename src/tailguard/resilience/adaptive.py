"""``AdaptiveLimit``: a bulkhead whose limit follows measured latency.

The limit algorithms are sans-IO (given the current limit and one sample, they return the next
limit), after Netflix's concurrency-limits:

* :class:`AIMD`: add ``increase`` while the limit is in use and calls succeed; multiply by
  ``backoff_ratio`` on a drop (a timeout or rejection, or a call slower than ``timeout``).
* :class:`Gradient2`: compare a short-term latency average with a long-term one; when latency
  rises (queueing), shrink the limit in proportion, and grow it by ``queue_size`` otherwise.

Use it where you would use a fixed ``Bulkhead`` but do not know the right number.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import ParamSpec, Protocol, TypeVar

from tailguard._clock import SYSTEM_CLOCK, Clock
from tailguard.errors import ConfigurationError, Rejected
from tailguard.events import HookRegistry, LimitChanged
from tailguard.resilience._policy import ExceptionSpec, exception_matcher
from tailguard.resilience.bulkhead import Bulkhead

__all__ = ["AIMD", "AdaptiveLimit", "Gradient2", "LimitAlgorithm"]

P = ParamSpec("P")
T = TypeVar("T")


class LimitAlgorithm(Protocol):
    """Given the limit, a latency sample (seconds), the calls in flight when it started and
    whether it was dropped, return the new limit (the driver clamps and rounds it)."""

    def update(self, limit: float, rtt: float, inflight: int, dropped: bool) -> float: ...


class AIMD:
    """Additive increase, multiplicative decrease."""

    __slots__ = ("backoff_ratio", "increase", "timeout")

    def __init__(
        self, *, increase: float = 1.0, backoff_ratio: float = 0.9, timeout: float | None = None
    ) -> None:
        if not 0.5 <= backoff_ratio < 1:
            raise ConfigurationError("AIMD.backoff_ratio", backoff_ratio, "0.5 <= ratio < 1")
        if increase <= 0:
            raise ConfigurationError("AIMD.increase", increase, "> 0")
        self.increase = increase
        self.backoff_ratio = backoff_ratio
        self.timeout = timeout  # seconds: a slower call counts as a drop

    def update(self, limit: float, rtt: float, inflight: int, dropped: bool) -> float:
        if dropped or (self.timeout is not None and rtt > self.timeout):
            return limit * self.backoff_ratio
        if inflight * 2 >= limit:  # only grow a limit that is actually being used
            return limit + self.increase
        return limit


class Gradient2:
    """Latency gradient with a long-term baseline (Netflix's Gradient2)."""

    __slots__ = ("_long", "_n", "long_window", "queue_size", "smoothing", "tolerance")

    def __init__(
        self,
        *,
        smoothing: float = 0.2,
        tolerance: float = 1.5,
        long_window: int = 600,
        queue_size: float = 4.0,
    ) -> None:
        if not 0 < smoothing <= 1:
            raise ConfigurationError("Gradient2.smoothing", smoothing, "0 < smoothing <= 1")
        if tolerance < 1:
            raise ConfigurationError("Gradient2.tolerance", tolerance, ">= 1")
        if long_window < 1:
            raise ConfigurationError("Gradient2.long_window", long_window, ">= 1")
        self.smoothing = smoothing
        self.tolerance = tolerance
        self.long_window = long_window
        self.queue_size = queue_size
        self._long = 0.0
        self._n = 0

    def update(self, limit: float, rtt: float, inflight: int, dropped: bool) -> float:
        if dropped:
            return limit * 0.9
        # Long-term average: a plain mean while warming up, then an exponential one.
        self._n += 1
        if self._n <= self.long_window:
            self._long += (rtt - self._long) / self._n
        else:
            self._long += (rtt - self._long) * (2 / (self.long_window + 1))
        short = max(rtt, 1e-9)  # a call faster than the clock's resolution reads as 0
        if self._long / short > 2:  # latency fell a lot: let the baseline follow it down
            self._long *= 0.95
        if inflight < limit / 2:
            return limit  # app-limited: the sample says nothing about capacity
        gradient = max(0.5, min(1.0, self.tolerance * self._long / short))
        target = limit * gradient + self.queue_size
        return limit * (1 - self.smoothing) + target * self.smoothing


class AdaptiveLimit(Bulkhead):
    """A :class:`Bulkhead` whose ``max_concurrent`` moves between ``min_limit`` and
    ``max_limit`` with measured latency. Failures matching ``drop_on`` (default: timeouts and
    rejections from inner policies) count as drops; other failures are not samples."""

    __slots__ = ("_drop", "_exact", "_now", "algorithm", "clock", "max_limit", "min_limit")

    _kind = "adaptive_limit"

    def __init__(
        self,
        algorithm: LimitAlgorithm | None = None,
        *,
        initial: int = 20,
        min_limit: int = 1,
        max_limit: int = 1000,
        max_queue: int = 0,
        max_wait: float | None = None,
        drop_on: ExceptionSpec = (TimeoutError, Rejected),
        name: str = "adaptive_limit",
        clock: Clock = SYSTEM_CLOCK,
        hooks: HookRegistry | None = None,
    ) -> None:
        if not 1 <= min_limit <= initial <= max_limit:
            raise ConfigurationError(
                "AdaptiveLimit(min_limit, initial, max_limit)",
                (min_limit, initial, max_limit),
                "1 <= min_limit <= initial <= max_limit",
            )
        super().__init__(initial, max_queue, max_wait=max_wait, name=name, hooks=hooks)
        self.algorithm: LimitAlgorithm = algorithm if algorithm is not None else Gradient2()
        self.min_limit = min_limit
        self.max_limit = max_limit
        self._exact = float(initial)
        self._drop = exception_matcher(drop_on, "AdaptiveLimit.drop_on")
        self.clock = clock
        self._now = clock.now

    def sample(self, rtt: float, inflight: int, dropped: bool) -> None:
        """Feed one latency sample (seconds) to the algorithm and apply the new limit."""
        exact = self.algorithm.update(self._exact, rtt, inflight, dropped)
        self._exact = min(float(self.max_limit), max(float(self.min_limit), exact))
        new = max(self.min_limit, math.floor(self._exact))
        old = self._limit
        if new != old:
            self._limit = new
            self._hooks.emit(LimitChanged(self.name, old, new))
            if new > old:
                self._grant_waiters()

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self._active < self._limit and not self._waiters:
            self._active += 1
        else:
            await self._wait()
        inflight = self._active
        start = self._now()
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            if self._drop(exc):
                self.sample(self._now() - start, inflight, True)
            raise
        finally:
            self.release()
        self.sample(self._now() - start, inflight, False)
        return result
