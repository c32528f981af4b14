"""``Retry``: try again after a failure, with jittered exponential backoff, inside a budget.

The decision is a sans-IO :class:`Backoff` schedule plus three stop rules checked before every
retry, in order: attempts used up; the remaining deadline of an enclosing ``Timeout`` cannot fit
the wait plus another attempt like the last one; the shared :class:`RetryBudget` is empty.
When it stops, the last exception is re-raised as it was (with a note saying why), so callers
keep catching the errors they know. ``CancelledError`` is never retried.

Every call keeps its attempt state in local variables: concurrent calls through one ``Retry``
never share counters.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any, Final, Literal, ParamSpec, TypeVar, cast

from tailguard._clock import SYSTEM_CLOCK, Clock
from tailguard._config import CONFIG
from tailguard.errors import CircuitOpenError, ConfigurationError
from tailguard.events import HookRegistry, RetryGaveUp, RetryScheduled
from tailguard.resilience._policy import (
    ExceptionSpec,
    PolicyBase,
    exception_matcher,
    resolve_hooks,
)
from tailguard.resilience.budget import RetryBudget
from tailguard.resilience.timeout import _CURRENT as _DEADLINE
from tailguard.resilience.timeout import time_remaining

__all__ = ["Backoff", "Jitter", "Retry"]

P = ParamSpec("P")
T = TypeVar("T")

Jitter = Literal["full", "equal", "decorrelated", "none"]
_JITTERS: Final = ("full", "equal", "decorrelated", "none")


class Backoff:
    """Exponential backoff: ``initial`` x ``multiplier`` ** (attempt - 1), capped at ``maximum``
    seconds, with jitter (see "Exponential Backoff And Jitter", AWS Architecture Blog):

    * ``"full"``: uniform in [0, d] (the default: spreads a herd the most);
    * ``"equal"``: d/2 + uniform in [0, d/2] (never retries at once);
    * ``"decorrelated"``: uniform in [initial, 3 x previous delay], capped;
    * ``"none"``: exactly d.
    """

    __slots__ = ("initial", "jitter", "maximum", "multiplier")

    def __init__(
        self,
        initial: float = 0.1,
        maximum: float = 10.0,
        multiplier: float = 2.0,
        jitter: Jitter = "full",
    ) -> None:
        if initial < 0:
            raise ConfigurationError("Retry.delay", initial, "seconds >= 0")
        if maximum < initial:
            raise ConfigurationError("Retry.max_delay", maximum, f"seconds >= delay ({initial})")
        if multiplier < 1:
            raise ConfigurationError("Retry.multiplier", multiplier, ">= 1")
        if jitter not in _JITTERS:
            raise ConfigurationError("Retry.jitter", jitter, f"one of {_JITTERS}")
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.jitter = jitter

    def delay(self, attempt: int, previous: float, rand: Callable[[], float]) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if self.jitter == "decorrelated":
            low = self.initial
            high = max(low, previous * 3)
            return min(self.maximum, low + (high - low) * rand())
        d = min(self.maximum, self.initial * self.multiplier ** min(attempt - 1, 64))
        if self.jitter == "full":
            return d * rand()
        if self.jitter == "equal":
            return d / 2 + d / 2 * rand()
        return d


def _default_retry_on(exc: BaseException) -> bool:
    # Retrying into an open breaker only waits for its recovery time: let it surface.
    return not isinstance(exc, CircuitOpenError)


class Retry(PolicyBase):
    """Run a call up to ``attempts`` times.

    ``on``: exception types or a predicate deciding which failures to retry (default: any
    ``Exception`` except ``CircuitOpenError``). ``on_result``: a predicate on the result that asks
    for another attempt (the last result is returned when attempts run out). Backoff: ``delay``
    (seconds) x ``multiplier`` ** n, capped at ``max_delay``, with ``jitter``. An exception
    carrying ``retry_after`` (seconds, as tailguard's rejections and 429/503 errors do) waits at
    least that long when ``honor_retry_after``. ``budget``: a shared :class:`RetryBudget`.
    """

    __slots__ = (
        "_budget",
        "_hooks",
        "_now",
        "_on",
        "_on_result",
        "_rand",
        "_shared_clock",
        "attempts",
        "backoff",
        "clock",
        "honor_retry_after",
        "name",
    )

    def __init__(
        self,
        attempts: int = 3,
        *,
        on: ExceptionSpec = _default_retry_on,
        on_result: Callable[[Any], bool] | None = None,
        delay: float = 0.1,
        max_delay: float = 10.0,
        multiplier: float = 2.0,
        jitter: Jitter = "full",
        budget: RetryBudget | None = None,
        honor_retry_after: bool = True,
        name: str = "retry",
        clock: Clock = SYSTEM_CLOCK,
        hooks: HookRegistry | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if not isinstance(attempts, int) or attempts < 1:
            raise ConfigurationError("Retry.attempts", attempts, "an int >= 1")
        self.attempts = attempts
        self.backoff = Backoff(delay, max_delay, multiplier, jitter)
        self._on = exception_matcher(on, "Retry.on")
        self._on_result = on_result
        self._budget = budget
        self.honor_retry_after = honor_retry_after
        self.name = name
        self.clock = clock
        self._now = clock.now
        self._shared_clock = budget is not None and budget.clock is clock
        self._hooks = resolve_hooks(hooks)
        self._rand = rand

    @property
    def budget(self) -> RetryBudget | None:
        return self._budget

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        # One clock read serves the budget and, under a deadline, the first attempt's duration
        # (the deadline stop rule needs it).
        started = self._now() if _DEADLINE.get() is not None else None
        budget = self._budget
        if budget is not None:
            budget.deposit(started if self._shared_clock else None)
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            if not self._on(exc):
                raise
            return await self._again(fn, args, kwargs, exc, None, started)
        if self._on_result is not None and self._on_result(result):
            return await self._again(fn, args, kwargs, None, result, started)
        return result

    def _next_delay(
        self, attempt: int, previous: float, exc: BaseException | None, last_duration: float
    ) -> tuple[float, str | None]:
        """(delay, None) to retry after ``delay`` seconds, or (0, reason) to stop."""
        if attempt >= self.attempts:
            return 0.0, "attempts"
        delay = self.backoff.delay(attempt, previous, self._rand)
        if self.honor_retry_after and exc is not None:
            hint = getattr(exc, "retry_after", None)
            if isinstance(hint, int | float) and hint > delay:
                delay = float(hint)
        if not CONFIG.backoff_enabled:
            delay = 0.0
        remaining = time_remaining()
        if remaining is not None and delay + last_duration >= remaining:
            return delay, "deadline"
        if self._budget is not None and not self._budget.try_withdraw():
            return delay, "budget"
        return delay, None

    async def _again(
        self,
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        exc: Exception | None,
        result: Any,
        started: float | None,
    ) -> T:
        attempt = 1
        previous = self.backoff.initial
        now = self.clock.now
        last_duration = 0.0 if started is None else now() - started
        while True:
            delay, stop = self._next_delay(attempt, previous, exc, last_duration)
            error = "result" if exc is None else type(exc).__name__
            if stop is not None:
                self._hooks.emit(RetryGaveUp(self.name, attempt, stop, error))
                if exc is None:
                    return cast(T, result)
                exc.add_note(f"tailguard: {self.name!r} gave up after {attempt} attempt(s): {stop}")
                raise exc
            self._hooks.emit(RetryScheduled(self.name, attempt, delay, error))
            if delay > 0:
                await self.clock.sleep(delay)
            previous = delay or self.backoff.initial
            attempt += 1
            started = now()
            try:
                value = await fn(*args, **kwargs)
            except Exception as e:
                if not self._on(e):
                    raise
                exc = e
                last_duration = now() - started
                continue
            if self._on_result is not None and self._on_result(value):
                exc, result = None, value
                last_duration = now() - started
                continue
            return value

    def __repr__(self) -> str:
        return f"Retry(attempts={self.attempts}, name={self.name!r})"
