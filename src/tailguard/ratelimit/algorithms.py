"""Rate-limit algorithms: sans-IO rules, run by a storage (in memory, or as Lua in Redis).

Each algorithm is a pure ``step(state, rate, now, cost) -> Outcome`` for one limit; a storage
keeps the state per key and limit, and applies a check atomically across all the limits of a
key: the request is admitted only if every limit admits it, and only then is it recorded. A
rejected request leaves no trace. The Lua scripts in ``lua/`` implement the same steps, and a
property test holds the two to the same decisions.

* :class:`FixedWindow`: a counter per window. O(1), allows 2x the limit across a boundary.
* :class:`SlidingLog`: exact. One timestamp per admitted request over the window.
* :class:`SlidingWindowCounter`: two counters weighted by the window's progress. O(1),
  approximate (assumes the previous window's requests were spread evenly).
* :class:`GCRA`: the generic cell rate algorithm: token-bucket semantics with a single
  timestamp per key; ``burst`` is how many may arrive at once.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Any, ClassVar

from tailguard.errors import ConfigurationError, RateLimitExceeded
from tailguard.events import RateLimited, hooks
from tailguard.ratelimit.decision import Decision, Outcome, combine
from tailguard.ratelimit.rate import Rate, parse_rates
from tailguard.ratelimit.storage.memory import MemoryStorage

if TYPE_CHECKING:
    from tailguard.ratelimit.storage.base import Storage

__all__ = [
    "GCRA",
    "Algorithm",
    "Decision",
    "FixedWindow",
    "Outcome",
    "SlidingLog",
    "SlidingWindowCounter",
    "combine",
]

_EPS = 1e-9  # seconds: float slack in comparisons, the same in the Lua scripts


_floor = math.floor


def _after(seconds: float) -> float:
    """``seconds`` in whole microseconds, more than 1 us past it: waiting that long always
    crosses the boundary, whatever the float error at epoch times (about 0.25 us there). The
    Lua scripts report the same integer microseconds."""
    return (math.floor(seconds * 1e6) + 2) / 1e6


class Algorithm:
    """A limit (or several) under one algorithm, checked against a storage.

    ``await limiter.check(key)`` returns a :class:`Decision`; ``await limiter.acquire(key)``
    raises :class:`~tailguard.errors.RateLimitExceeded` with ``retry_after`` when refused.
    ``storage`` defaults to a fresh ``MemoryStorage``. ``name`` labels the limiter's
    :class:`~tailguard.events.RateLimited` events (and so its metrics); default: the
    algorithm and its limits.
    """

    script: ClassVar[str]  # the Lua script in lua/ that runs it in Redis
    code: ClassVar[str]  # short, in key names: Redis keeps every key's name in memory

    def __init__(
        self,
        rate: str | Rate | list[Rate],
        *,
        storage: Storage | None = None,
        prefix: str = "tg:rl",
        name: str | None = None,
    ) -> None:
        self.rates: list[Rate] = parse_rates(rate)
        self.storage: Storage = storage if storage is not None else MemoryStorage()
        if not prefix or "{" in prefix or "}" in prefix:
            raise ConfigurationError("prefix", prefix, "non-empty text without braces")
        self.prefix = prefix
        self.description = ", ".join(map(str, self.rates))
        # In events and metrics: say what it limits (name="login"); a key is never a name.
        self.name = name if name is not None else f"{type(self).__name__} {self.description}"
        # "{prefix}:{" + key + "}" + suffix: the key between braces is the hash tag.
        self.key_head = f"{prefix}:{{"
        self.key_tails = [
            f"}}:{self.code}:{r.limit}/{r.period!r}".removesuffix(".0")
            + ("" if r.burst is None else f"/{r.burst}")
            for r in self.rates
        ]
        self._memory = None if not isinstance(self.storage, MemoryStorage) else self.storage
        self.max_cost = min(self.largest_request(r) for r in self.rates)

    async def check(self, key: str, cost: int = 1, *, now: float | None = None) -> Decision:
        """Admit ``cost`` requests for ``key`` if every limit allows; record them only then.

        ``now`` (seconds) is for tests: in production the storage's clock decides (Redis
        reads the server's ``TIME``).
        """
        if not 1 <= cost <= self.max_cost:
            raise ConfigurationError(
                "cost", cost, f"1 <= cost <= {self.max_cost} (more can never be admitted)"
            )
        memory = self._memory
        if memory is not None:  # no second coroutine for the in-process storage
            decision = memory.apply_now(self, key, cost, memory.now() if now is None else now)
        else:
            decision = await self.storage.apply(self, key, cost, now)
        if hooks.active and not decision.allowed:
            limit = str(self.rates[decision.policy])
            hooks.emit(RateLimited(self.name, limit, decision.retry_after))
        return decision

    async def acquire(self, key: str, cost: int = 1) -> Decision:
        """Like ``check``, but raise ``RateLimitExceeded`` when refused."""
        decision = await self.check(key, cost)
        if not decision.allowed:
            raise RateLimitExceeded(key, limit=self.description, retry_after=decision.retry_after)
        return decision

    def step(self, state: Any, rate: Rate, now: float, cost: int) -> Outcome:
        """The rule for one limit: the verdict and the state to keep if admitted."""
        raise NotImplementedError

    def largest_request(self, rate: Rate) -> int:
        """The largest cost ``rate`` can ever admit at once."""
        return rate.limit

    # Whether ``record`` keeps the outcome's state as it is (lets the memory storage skip it).
    keeps_outcome: ClassVar[bool] = True

    def record(self, state: Any, now: float, cost: int) -> Any:
        """The state to keep once every limit admitted the request (the outcome's by
        default; a log appends the request here, so that a refusal leaves no trace)."""
        return state

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r}, storage={self.storage!r})"


class FixedWindow(Algorithm):
    """At most ``limit`` requests per window of ``period`` seconds aligned on the clock."""

    script = "fixed_window"
    code = "fw"

    def step(self, state: Any, rate: Rate, now: float, cost: int) -> Outcome:
        window = math.floor(now / rate.period)
        count = state[1] if state is not None and state[0] == window else 0
        ends = (window + 1) * rate.period - now
        if count + cost <= rate.limit:
            count += cost
            return (True, (window, count), rate.limit - count, _after(ends), 0.0, ends)
        return (False, state, max(0, rate.limit - count), _after(ends), _after(ends), ends)


class SlidingLog(Algorithm):
    """Exactly ``limit`` requests in any ``period`` seconds: a log of admitted timestamps.

    Memory grows with the limit (one entry per admitted request in the window).
    """

    script = "sliding_log"
    code = "sl"

    def step(self, state: Any, rate: Rate, now: float, cost: int) -> Outcome:
        log: deque[float] = state if state is not None else deque()
        cutoff = now - rate.period
        while log and log[0] <= cutoff + _EPS:  # expired entries may go at any time
            log.popleft()
        count = len(log)
        if count + cost <= rate.limit:  # full quota back when this request leaves the log
            return (True, log, rate.limit - count - cost, _after(rate.period), 0.0, rate.period)
        reset = _after(log[-1] + rate.period - now) if log else 0.0
        # The entry whose expiry makes room for ``cost`` more.
        retry = log[count + cost - rate.limit - 1] + rate.period - now
        return (False, state, max(0, rate.limit - count), reset, _after(max(retry, 0.0)), 0.0)

    keeps_outcome = False

    def record(self, state: Any, now: float, cost: int) -> Any:
        if state and now < state[-1]:
            # A check stamped earlier than the newest entry (the clock stepped back, or checks
            # raced with their own timestamps): keep the log in time order, as Redis's sorted
            # set is, or ``step`` would expire and count from the wrong entries.
            merged = sorted([*state, *([now] * cost)])
            state.clear()
            state.extend(merged)
            return state
        state.extend([now] * cost)
        return state


class SlidingWindowCounter(Algorithm):
    """About ``limit`` requests in any ``period`` seconds, from two counters: the previous
    window's count, weighted by how much of it still overlaps, plus the current one's."""

    script = "sliding_window_counter"
    code = "swc"

    def step(self, state: Any, rate: Rate, now: float, cost: int) -> Outcome:
        period, limit = rate.period, rate.limit
        window = math.floor(now / period)
        current = previous = 0
        if state is not None:
            if state[0] == window:
                current, previous = state[1], state[2]
            elif state[0] == window - 1:
                previous = state[1]
        elapsed = now - window * period
        estimate = previous * (1.0 - elapsed / period) + current
        if estimate + cost <= limit + _EPS:
            current += cost
            remaining = max(0, math.floor(limit - estimate - cost + _EPS))
            # Full quota back once this window has slid out too.
            full = _after(2 * period - elapsed)
            state = (window, current, previous)
            return (True, state, remaining, full, 0.0, 2 * period - elapsed)
        if current + cost <= limit:  # wait for the previous window to slide out enough
            retry = period * (1.0 - (limit - current - cost) / previous) - elapsed
        else:  # wait for the next window, then for this one to slide out enough
            retry = (period - elapsed) + period * (1.0 - (limit - cost) / current)
        remaining = max(0, math.floor(limit - estimate + _EPS))
        full = _after((2 * period if current else period) - elapsed)
        return (False, state, remaining, full, _after(max(retry, 0.0)), 0.0)


class GCRA(Algorithm):
    """Token-bucket semantics with one timestamp per key (the theoretical arrival time):
    ``limit`` per ``period`` on average, ``burst`` (default ``limit``) at once."""

    script = "gcra"
    code = "g"

    def largest_request(self, rate: Rate) -> int:
        return rate.capacity

    def step(self, state: Any, rate: Rate, now: float, cost: int) -> Outcome:
        # The TAT is kept in whole microseconds: Redis then stores it as an integer (fewer
        # bytes per key), and both storages round it the same way.
        interval = rate.interval
        window = rate.span  # how far ahead of now the TAT may run
        tat = now
        if state is not None and state / 1e6 > now:
            tat = state / 1e6
        new_tat = tat + interval * cost
        ahead = new_tat - now
        if ahead <= window + _EPS:  # now + EPS >= new_tat - window, written with one subtraction
            remaining = int((window - ahead) / interval + _EPS)  # >= 0 here: int() is floor
            kept = _floor(new_tat * 1e6 + 0.5)
            # Kept until the stored (rounded) TAT, exactly as Redis keeps it.
            return (True, kept, remaining, (_floor(ahead * 1e6) + 2) / 1e6, 0.0, kept / 1e6 - now)
        allow_at = new_tat - window
        remaining = max(0, math.floor((window - (tat - now)) / interval + _EPS))
        return (False, state, remaining, _after(tat - now), _after(allow_at - now), 0.0)
