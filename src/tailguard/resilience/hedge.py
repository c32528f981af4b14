"""``Hedge``: if a call is slow, start another; the first answer wins, the rest are cancelled.

The hedge delay is fixed (``delay=0.05``) or follows recent latency (``percentile=95``: hedge
the calls slower than 95 % of recent successes). Hedges draw from a shared
:class:`RetryBudget`, so hedging cannot double the load on a struggling dependency. Only hedge
idempotent calls: every attempt may reach the server.

The first attempt runs inline in the caller's task, so a call that answers before the delay
costs one loop timer; hedges run as tasks, and a hedge that answers first cancels the inline
attempt. Until ``min_samples`` latencies are known, percentile mode runs the call directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, ParamSpec, TypeVar

from tailguard._clock import SYSTEM_CLOCK, Clock
from tailguard.errors import ConfigurationError
from tailguard.events import HedgeFired, HookRegistry
from tailguard.resilience._loop import running_task
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
        task = running_task()
        if delay is None or self.max_hedges == 0 or task is None:
            result = await fn(*args, **kwargs)
            self._observe(self._now() - start)
            return result
        # The first attempt runs inline, in the caller's task; hedges run as tasks. When a hedge
        # answers first, it cancels the caller's task, and we turn that into its answer.
        race: _Race[T] = _Race(self, task, fn, args, kwargs, delay)
        try:
            result = await fn(*args, **kwargs)
            race.primary_running = False
        except asyncio.CancelledError:
            race.primary_running = False
            if race.answer is not None and task.uncancel() <= race.cancelling:
                self._observe(self._now() - start)
                return race.answer.result()
            raise
        except Exception as exc:
            race.primary_running = False
            result = await race.hedged_answer(exc)  # the hedges in flight may still answer
        finally:
            await race.close()
        self._observe(self._now() - start)
        return result


class _Race(Generic[T]):
    """One hedged call: the timer that launches hedges and the hedge tasks in flight."""

    __slots__ = (
        "answer",
        "args",
        "cancelling",
        "delay",
        "fn",
        "hedge",
        "hedges",
        "kwargs",
        "left",
        "primary",
        "primary_running",
        "timer",
    )

    def __init__(
        self,
        hedge: Hedge,
        primary: asyncio.Task[Any],
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        delay: float,
    ) -> None:
        self.hedge = hedge
        self.primary = primary
        self.cancelling = primary.cancelling()
        self.primary_running = True
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.delay = delay
        self.left = hedge.max_hedges
        self.hedges: list[asyncio.Task[T]] = []
        self.answer: asyncio.Task[T] | None = None
        self.timer: asyncio.TimerHandle | None = primary.get_loop().call_later(delay, self.launch)

    async def _attempt(self) -> T:
        return await self.fn(*self.args, **self.kwargs)

    def launch(self) -> None:
        self.timer = None
        budget = self.hedge._budget
        if self.answer is not None or (budget is not None and not budget.try_withdraw()):
            return
        self.left -= 1
        self.hedge._hooks.emit(HedgeFired(self.hedge.name, len(self.hedges) + 1, self.delay))
        attempt = asyncio.ensure_future(self._attempt())
        attempt.add_done_callback(self._settled)
        self.hedges.append(attempt)
        if self.left > 0:
            self.timer = self.primary.get_loop().call_later(self.delay, self.launch)

    def _settled(self, attempt: asyncio.Task[T]) -> None:
        if attempt.cancelled():
            return
        failed = attempt.exception() is not None  # also marks a loser's error as retrieved
        if self.answer is None and not failed:
            self.answer = attempt
            if self.primary_running:
                self.primary.cancel()

    async def hedged_answer(self, error: Exception) -> T:
        """The first attempt failed with ``error``: a hedge in flight may still answer (no new
        hedge starts: trying again after a failure is ``Retry``'s job)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        pending = [h for h in self.hedges if not h.done()]
        while self.answer is None and pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            pending = [h for h in pending if h not in done]
        if self.answer is not None:
            return self.answer.result()
        raise error

    async def close(self) -> None:
        """Stop the timer; cancel the hedges that lost and wait until they are gone."""
        if self.timer is not None:
            self.timer.cancel()
        losers = [h for h in self.hedges if h is not self.answer and not h.done()]
        for h in losers:
            h.cancel()
        if losers:
            await asyncio.wait(losers)
