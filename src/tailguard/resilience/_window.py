"""Sliding windows of call outcomes (count-based and time-based), shared by breaker and limits.

Each window keeps running totals, so recording an outcome and reading a rate are O(1).
"""

from __future__ import annotations

import math

__all__ = ["CountWindow", "TimeWindow", "Window"]


class CountWindow:
    """The last ``size`` outcomes."""

    __slots__ = ("_i", "_ring", "calls", "failures", "size", "slow")

    def __init__(self, size: int) -> None:
        self.size = size
        self._ring = bytearray(size)  # bit 1 = failure, bit 2 = slow, bit 4 = occupied
        self._i = 0
        self.calls = self.failures = self.slow = 0

    def record(self, now: float, failed: bool, slow: bool) -> None:
        old = self._ring[self._i]
        if old:
            self.calls -= 1
            self.failures -= old & 1
            self.slow -= (old >> 1) & 1
        self._ring[self._i] = 4 | failed | (slow << 1)
        self._i = (self._i + 1) % self.size
        self.calls += 1
        self.failures += failed
        self.slow += slow

    def totals(self, now: float) -> tuple[int, int, int]:
        return self.calls, self.failures, self.slow

    def reset(self) -> None:
        self._ring = bytearray(self.size)
        self._i = 0
        self.calls = self.failures = self.slow = 0


class TimeWindow:
    """The outcomes of the last ``seconds``, in ``buckets`` equal slices (oldest slice drops)."""

    __slots__ = ("_calls", "_epochs", "_fail", "_slow", "_width", "buckets", "seconds")

    def __init__(self, seconds: float, buckets: int | None = None) -> None:
        self.seconds = seconds
        self.buckets = buckets or max(1, min(60, math.ceil(seconds)))
        self._width = seconds / self.buckets
        self._epochs = [-1] * self.buckets
        self._calls = [0] * self.buckets
        self._fail = [0] * self.buckets
        self._slow = [0] * self.buckets

    def record(self, now: float, failed: bool, slow: bool) -> None:
        epoch = int(now / self._width)
        i = epoch % self.buckets
        if self._epochs[i] != epoch:
            self._epochs[i] = epoch
            self._calls[i] = self._fail[i] = self._slow[i] = 0
        self._calls[i] += 1
        self._fail[i] += failed
        self._slow[i] += slow

    def totals(self, now: float) -> tuple[int, int, int]:
        oldest = int(now / self._width) - self.buckets + 1
        calls = failures = slow = 0
        for i, epoch in enumerate(self._epochs):
            if epoch >= oldest:
                calls += self._calls[i]
                failures += self._fail[i]
                slow += self._slow[i]
        return calls, failures, slow

    def reset(self) -> None:
        self._epochs = [-1] * self.buckets
        self._calls = [0] * self.buckets
        self._fail = [0] * self.buckets
        self._slow = [0] * self.buckets


Window = CountWindow | TimeWindow
