"""``CircuitBreaker``: stop calling a dependency that is failing, and probe it to recover.

Two layers, as everywhere in tailguard: :class:`BreakerState` is a sans-IO state machine that is
handed ``now`` and never awaits; :class:`CircuitBreaker` is the thin async driver around it.

Modes (one config each):

* consecutive failures (the default, the guide's: open after 5 in a row, half-open after 60 s);
* failure rate over a sliding window, count-based (``window=100`` calls) or time-based
  (``window_seconds=60``), never before ``minimum_calls`` calls are in the window;
* slow calls: with ``slow_call_duration`` set, a call slower than it counts as slow; the breaker
  opens when the slow-call rate reaches ``slow_call_rate`` (in consecutive mode a slow call
  counts as a failure).

Half-open admits ``half_open_probes`` calls; it closes only when all of them succeed and opens
again on the first failure. A cancelled call is neither a success nor a failure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import Final, ParamSpec, TypeVar

from tailguard._clock import SYSTEM_CLOCK, Clock
from tailguard.errors import CircuitOpenError, ConfigurationError
from tailguard.events import CallRejected, CircuitStateChanged, HookRegistry
from tailguard.resilience._policy import (
    ExceptionSpec,
    PolicyBase,
    exception_matcher,
    resolve_hooks,
)
from tailguard.resilience._window import CountWindow, TimeWindow

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "BreakerConfig", "BreakerState", "CircuitBreaker"]

P = ParamSpec("P")
T = TypeVar("T")

CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """The breaker's rule. Durations in seconds, rates in 0..1.

    ``failure_rate=None`` and ``slow_call_rate=None`` select the consecutive mode
    (``failure_threshold`` in a row); either rate selects the rate mode over a window, where
    ``minimum_calls`` is capped at ``window`` for a count window.
    """

    failure_threshold: int = 5
    failure_rate: float | None = None
    window: int = 100
    window_seconds: float | None = None
    minimum_calls: int = 10
    slow_call_duration: float | None = None
    slow_call_rate: float | None = None
    recovery_time: float = 60.0
    half_open_probes: int = 1

    def __post_init__(self) -> None:
        def need(ok: bool, setting: str, value: object, expected: str) -> None:
            if not ok:
                raise ConfigurationError(f"CircuitBreaker.{setting}", value, expected)

        need(self.failure_threshold >= 1, "failure_threshold", self.failure_threshold, ">= 1")
        if self.failure_rate is not None:
            need(0 < self.failure_rate <= 1, "failure_rate", self.failure_rate, "0 < rate <= 1")
        need(self.window >= 1, "window", self.window, ">= 1 call")
        if self.window_seconds is not None:
            need(self.window_seconds > 0, "window_seconds", self.window_seconds, "> 0 seconds")
        need(self.minimum_calls >= 1, "minimum_calls", self.minimum_calls, ">= 1")
        if self.slow_call_duration is not None:
            need(
                self.slow_call_duration > 0,
                "slow_call_duration",
                self.slow_call_duration,
                "> 0 seconds",
            )
        if self.slow_call_rate is not None:
            need(
                0 < self.slow_call_rate <= 1, "slow_call_rate", self.slow_call_rate, "0 < rate <= 1"
            )
            need(
                self.slow_call_duration is not None,
                "slow_call_rate",
                self.slow_call_rate,
                "to be given with slow_call_duration (what counts as slow)",
            )
        need(self.recovery_time >= 0, "recovery_time", self.recovery_time, ">= 0 seconds")
        need(self.half_open_probes >= 1, "half_open_probes", self.half_open_probes, ">= 1")

    @property
    def rate_mode(self) -> bool:
        return self.failure_rate is not None or self.slow_call_rate is not None

    @property
    def failure_rate_threshold(self) -> float:
        """The failure rate that opens a rate-mode breaker (0.5 when only a slow-call rate
        was given, as in resilience4j)."""
        return self.failure_rate if self.failure_rate is not None else 0.5

    @property
    def effective_minimum_calls(self) -> int:
        """A count window never holds more than ``window`` calls, so it never waits for more."""
        if self.window_seconds is None:
            return min(self.minimum_calls, self.window)
        return self.minimum_calls

    @property
    def timed(self) -> bool:
        """Whether outcomes need the clock (slow calls or a time-based window)."""
        return self.slow_call_duration is not None or (
            self.rate_mode and self.window_seconds is not None
        )


@dataclass(frozen=True, slots=True)
class Transition:
    old: str
    new: str
    failure_rate: float | None = None
    slow_call_rate: float | None = None


class BreakerState:
    """The sans-IO breaker: ``permit(now)``, then ``record(gen, now, failed, slow)`` or
    ``release(gen)``. Transitions queue in ``pending`` for the driver to publish."""

    __slots__ = (
        "config",
        "consecutive",
        "generation",
        "opened_at",
        "pending",
        "probes_admitted",
        "probes_passed",
        "state",
        "window",
    )

    def __init__(self, config: BreakerConfig) -> None:
        self.config = config
        self.state: str = CLOSED
        self.generation = 0
        self.opened_at = 0.0
        self.consecutive = 0
        self.probes_admitted = 0
        self.probes_passed = 0
        self.pending: list[Transition] = []
        self.window: CountWindow | TimeWindow | None = None
        if config.rate_mode:
            self.window = (
                TimeWindow(config.window_seconds)
                if config.window_seconds is not None
                else CountWindow(config.window)
            )

    # -- transitions ---------------------------------------------------------------------

    def _to(
        self, new: str, now: float, rates: tuple[float | None, float | None] = (None, None)
    ) -> None:
        self.pending.append(Transition(self.state, new, *rates))
        self.state = new
        self.generation += 1
        self.consecutive = 0
        self.probes_admitted = self.probes_passed = 0
        if self.window is not None:
            self.window.reset()
        if new == OPEN:
            self.opened_at = now

    def reset(self, now: float) -> None:
        """Close the breaker by hand, forgetting all recorded outcomes."""
        if self.state != CLOSED:
            self._to(CLOSED, now)

    def trip(self, now: float) -> None:
        """Open the breaker by hand; it half-opens after ``recovery_time`` as usual."""
        self._to(OPEN, now)

    # -- the protocol ----------------------------------------------------------------------

    def permit(self, now: float) -> bool:
        """May a call start now? In half-open, admitting a call uses up one probe."""
        state = self.state
        if state == CLOSED:
            return True
        if state == OPEN:
            if now < self.opened_at + self.config.recovery_time:
                return False
            self._to(HALF_OPEN, now)
        if self.probes_admitted < self.config.half_open_probes:
            self.probes_admitted += 1
            return True
        return False

    def retry_after(self, now: float) -> float | None:
        """Seconds until a call may be admitted, if known."""
        if self.state == OPEN:
            return max(0.0, self.opened_at + self.config.recovery_time - now)
        return None

    def record(self, generation: int, now: float, failed: bool, slow: bool) -> None:
        """The outcome of a call admitted in ``generation``; stale outcomes are ignored."""
        if generation != self.generation:
            return
        cfg = self.config
        if self.state == HALF_OPEN:
            if failed or slow:
                self._to(OPEN, now)
            else:
                self.probes_passed += 1
                if self.probes_passed >= cfg.half_open_probes:
                    self._to(CLOSED, now)
            return
        window = self.window
        if window is None:
            if failed or slow:
                self.consecutive += 1
                if self.consecutive >= cfg.failure_threshold:
                    self._to(OPEN, now)
            else:
                self.consecutive = 0
            return
        window.record(now, failed, slow)
        calls, failures, slows = window.totals(now)
        if calls < cfg.effective_minimum_calls:
            return
        f_rate, s_rate = failures / calls, slows / calls
        slow_limit = cfg.slow_call_rate if cfg.slow_call_rate is not None else cfg.failure_rate
        if f_rate >= cfg.failure_rate_threshold or (
            slow_limit is not None and cfg.slow_call_duration is not None and s_rate >= slow_limit
        ):
            self._to(OPEN, now, (f_rate, s_rate))

    def release(self, generation: int) -> None:
        """A call admitted in ``generation`` ended without an outcome (cancelled)."""
        if generation == self.generation and self.state == HALF_OPEN:
            self.probes_admitted -= 1


class _Scope:
    __slots__ = ("generation", "start", "token")

    def __init__(self, generation: int, start: float) -> None:
        self.generation = generation
        self.start = start
        self.token: object = None


class CircuitBreaker(PolicyBase):
    """Fail fast while a dependency is down; probe it after ``recovery_time`` seconds.

    ``CircuitBreaker()`` is the guide's breaker: open after 5 consecutive failures, half-open
    after 60 s, one probe. ``CircuitBreaker(failure_rate=0.5, window=100, minimum_calls=20)``
    opens when half of the last 100 calls failed. Exceptions matching ``failure_on`` (types or a
    predicate; default ``Exception``) count as failures, those matching ``ignore_on`` count as
    neither, anything else as a success. Rejections raise
    :class:`~tailguard.errors.CircuitOpenError` with ``retry_after`` in seconds.
    """

    __slots__ = (
        "_failure",
        "_hooks",
        "_ignore",
        "_now",
        "_plain",
        "_scope",
        "_slow",
        "_st",
        "_timed",
        "clock",
        "config",
        "name",
    )

    def __init__(
        self,
        name: str = "circuit",
        *,
        failure_threshold: int = 5,
        failure_rate: float | None = None,
        window: int = 100,
        window_seconds: float | None = None,
        minimum_calls: int = 10,
        slow_call_duration: float | None = None,
        slow_call_rate: float | None = None,
        recovery_time: float = 60.0,
        half_open_probes: int = 1,
        failure_on: ExceptionSpec = Exception,
        ignore_on: ExceptionSpec = (),
        clock: Clock = SYSTEM_CLOCK,
        hooks: HookRegistry | None = None,
    ) -> None:
        self.name = name
        self.config = BreakerConfig(
            failure_threshold=failure_threshold,
            failure_rate=failure_rate,
            window=window,
            window_seconds=window_seconds,
            minimum_calls=minimum_calls,
            slow_call_duration=slow_call_duration,
            slow_call_rate=slow_call_rate,
            recovery_time=recovery_time,
            half_open_probes=half_open_probes,
        )
        self._st = BreakerState(self.config)
        self._failure = exception_matcher(failure_on, "CircuitBreaker.failure_on")
        self._ignore = exception_matcher(ignore_on, "CircuitBreaker.ignore_on")
        self._slow = slow_call_duration if slow_call_duration is not None else float("inf")
        self._timed = self.config.timed
        self._plain = not self._timed and not self.config.rate_mode
        self.clock = clock
        self._now = clock.now
        self._hooks = resolve_hooks(hooks)
        self._scope: ContextVar[_Scope | None] = ContextVar(f"breaker:{name}", default=None)

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half_open"`` (an open breaker past its recovery
        time reads ``"open"`` until the next call half-opens it)."""
        return self._st.state

    def reset(self) -> None:
        """Close the breaker by hand."""
        self._st.reset(self._now())
        self._publish()

    def trip(self) -> None:
        """Open the breaker by hand."""
        self._st.trip(self._now())
        self._publish()

    def _publish(self) -> None:
        pending = self._st.pending
        while pending:
            t = pending.pop(0)
            self._hooks.emit(
                CircuitStateChanged(self.name, t.old, t.new, t.failure_rate, t.slow_call_rate)
            )

    def _admit(self) -> int:
        st = self._st
        if st.state != CLOSED:
            now = self._now()
            admitted = st.permit(now)
            if st.pending:
                self._publish()
            if not admitted:
                retry_after = st.retry_after(now)
                self._hooks.emit(CallRejected(self.name, "circuit_breaker", st.state, retry_after))
                raise CircuitOpenError(self.name, retry_after=retry_after)
        return st.generation

    def _settle(self, generation: int, start: float, exc: BaseException | None) -> None:
        st = self._st
        if exc is not None:
            if self._ignore(exc):
                st.release(generation)
                return
            failed = self._failure(exc)
        else:
            failed = False
        if self._timed:
            now = self._now()
            st.record(generation, now, failed, now - start >= self._slow)
        else:
            # Only a failure can open the breaker, and only opening needs the time.
            st.record(generation, self._now() if failed else 0.0, failed, False)
        if st.pending:
            self._publish()

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        st = self._st
        # Fast path: a closed breaker in consecutive mode needs neither the clock nor a method
        # call to admit a call and to record its success.
        plain = self._plain and st.state == CLOSED
        generation = st.generation if plain else self._admit()
        start = self._now() if self._timed else 0.0
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            self._settle(generation, start, exc)
            raise
        except BaseException:  # cancelled (or interpreter exit): neither success nor failure
            st.release(generation)
            raise
        if plain and generation == st.generation:
            st.consecutive = 0
        else:
            self._settle(generation, start, None)
        return result

    async def __aenter__(self) -> CircuitBreaker:
        scope = _Scope(self._admit(), self._now() if self._timed else 0.0)
        scope.token = self._scope.set(scope)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        scope = self._scope.get()
        if scope is None:
            raise RuntimeError(f"{self!r}: __aexit__ without a matching __aenter__")
        self._scope.reset(scope.token)  # type: ignore[arg-type]
        if exc is None or isinstance(exc, Exception):
            self._settle(scope.generation, scope.start, exc)
        else:
            self._st.release(scope.generation)
