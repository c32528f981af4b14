"""``RetryBudget``: retries may add at most a fraction of recent traffic, plus a small floor.

As in Finagle's ``RetryBudget`` and gRPC's retry throttling: every call deposits one request;
every retry (or hedge) withdraws one. Over the last ``window`` seconds, retries may not exceed
``ratio`` x requests + ``min_per_second`` x ``window``. So when a dependency is down, a fleet of
clients adds at most ``ratio`` more load instead of multiplying it by the attempt count.

``RetryBudget()`` is Finagle's default: 20 % of requests plus 10 retries per second, over 10 s.
One budget is meant to be shared by every ``Retry``/``Hedge`` that calls the same dependency.
"""

from __future__ import annotations

import math

from tailguard._clock import SYSTEM_CLOCK, Clock
from tailguard.errors import ConfigurationError

__all__ = ["RetryBudget"]


class RetryBudget:
    """A shared allowance of retries (see the module docstring). Times are in seconds."""

    __slots__ = (
        "_deposits",
        "_epoch",
        "_i",
        "_n",
        "_now",
        "_slot",
        "_slot_end",
        "_withdrawals",
        "clock",
        "min_per_second",
        "ratio",
        "window",
    )

    def __init__(
        self,
        ratio: float = 0.2,
        *,
        min_per_second: float = 10.0,
        window: float = 10.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not 0 <= ratio <= 1:
            raise ConfigurationError("RetryBudget.ratio", ratio, "a fraction 0..1 of requests")
        if min_per_second < 0:
            raise ConfigurationError("RetryBudget.min_per_second", min_per_second, ">= 0")
        if window <= 0:
            raise ConfigurationError("RetryBudget.window", window, "seconds > 0")
        self.ratio = ratio
        self.min_per_second = min_per_second
        self.window = window
        self.clock = clock
        self._now = clock.now
        self._n = max(1, math.ceil(window))  # one-second slots (or one slot if window < 1 s)
        self._slot = window / self._n
        self._deposits = [0] * self._n
        self._withdrawals = [0] * self._n
        self._epoch = int(self._now() / self._slot)
        self._i = self._epoch % self._n
        self._slot_end = (self._epoch + 1) * self._slot

    def _advance(self, now: float) -> None:
        """Move to the slot of ``now``, emptying the slots that left the window."""
        epoch = max(int(now / self._slot), self._epoch + 1)
        n = self._n
        for e in range(max(self._epoch + 1, epoch - n + 1), epoch + 1):
            self._deposits[e % n] = self._withdrawals[e % n] = 0
        self._epoch = epoch
        self._i = epoch % n
        self._slot_end = (epoch + 1) * self._slot

    def deposit(self, now: float | None = None) -> None:
        """Record one request (call it once per call, not per attempt). ``now``: the budget
        clock's time if the caller has just read it (seconds)."""
        # The hot path: one clock read, one comparison, one increment.
        if now is None:
            now = self._now()
        if now >= self._slot_end:
            self._advance(now)
        self._deposits[self._i] += 1

    def balance(self) -> float:
        """How many retries the budget would allow right now."""
        now = self._now()
        if now >= self._slot_end:
            self._advance(now)
        allowance = self.ratio * sum(self._deposits) + self.min_per_second * self.window
        return allowance - sum(self._withdrawals)

    def try_withdraw(self) -> bool:
        """Take one retry from the budget; False (and nothing taken) when it is empty."""
        if self.balance() < 1 - 1e-9:  # 0.57 x 100 sums to 56.99999999999999
            return False
        self._withdrawals[self._i] += 1
        return True

    def __repr__(self) -> str:
        return (
            f"RetryBudget(ratio={self.ratio}, min_per_second={self.min_per_second}, "
            f"window={self.window}, balance={self.balance():.1f})"
        )
