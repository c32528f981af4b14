"""Open-model arrival schedules: when the i-th request is meant to start, whatever the server does.

::

    ArrivalRate(200)                              # 200 requests/s, for as long as the run lasts
    Ramp([(10, 100), (30, 100), (10, 0)])         # 0 -> 100/s over 10 s, hold 30 s, down in 10 s

A profile answers ``at(i)``: the intended start of arrival ``i`` (0-based), in seconds after the
run's start, or ``inf`` when the profile has no more arrivals. The engine measures each latency
from that time, so a request that starts late (the server stalled, every connection was busy)
still counts its wait.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from tailguard.errors import ConfigurationError

__all__ = ["ArrivalRate", "Profile", "Ramp", "Strided"]


@runtime_checkable
class Profile(Protocol):
    """An arrival schedule. ``duration``: seconds it lasts (``None``: no end of its own);
    ``peak``: its highest rate (requests per second)."""

    @property
    def duration(self) -> float | None: ...

    @property
    def peak(self) -> float: ...

    def at(self, i: int) -> float:
        """Seconds after the start at which arrival ``i`` (0-based) is due; ``inf``: none."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class ArrivalRate:
    """``rate`` arrivals per second, evenly spaced, without end."""

    rate: float

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise ConfigurationError("rate", self.rate, "a positive number of requests per second")

    @property
    def duration(self) -> float | None:
        return None

    @property
    def peak(self) -> float:
        return self.rate

    def at(self, i: int) -> float:
        return i / self.rate


@dataclasses.dataclass(frozen=True, slots=True, init=False)
class Ramp:
    """Stages of ``(seconds, rate)``: the rate moves linearly from the previous stage's rate
    (``start`` for the first) to ``rate`` over ``seconds`` (k6's ramping arrival rate). A stage
    whose rate equals the previous one holds it. The profile ends after the last stage."""

    stages: tuple[tuple[float, float], ...]
    start: float
    _bounds: tuple[float, ...]  # arrivals due before each stage ends (cumulative)

    def __init__(self, stages: Sequence[tuple[float, float]], *, start: float = 0.0) -> None:
        cleaned: list[tuple[float, float]] = []
        for stage in stages:
            seconds, rate = (float(x) for x in stage)
            if not (seconds > 0 and rate >= 0 and math.isfinite(seconds + rate)):
                raise ConfigurationError(
                    "ramp", stage, "(seconds > 0, rate >= 0) for each stage, e.g. (10, 100)"
                )
            cleaned.append((seconds, rate))
        if not cleaned or start < 0 or max([start] + [r for _, r in cleaned]) <= 0:
            raise ConfigurationError("ramp", list(stages), "stages with some rate above 0")
        bounds, total, previous = [], 0.0, float(start)
        for seconds, rate in cleaned:
            total += (previous + rate) / 2 * seconds
            bounds.append(total)
            previous = rate
        object.__setattr__(self, "stages", tuple(cleaned))
        object.__setattr__(self, "start", float(start))
        object.__setattr__(self, "_bounds", tuple(bounds))

    @property
    def duration(self) -> float:
        return sum(seconds for seconds, _ in self.stages)

    @property
    def peak(self) -> float:
        return max([self.start] + [rate for _, rate in self.stages])

    def at(self, i: int) -> float:
        k = bisect.bisect_right(self._bounds, i)
        if k == len(self.stages):
            return math.inf
        before = self._bounds[k - 1] if k else 0.0
        offset = sum(seconds for seconds, _ in self.stages[:k])
        r0 = self.stages[k - 1][1] if k else self.start
        seconds, r1 = self.stages[k]
        n = i - before
        if n <= 0:
            return offset
        # n = r0 t + (r1 - r0) t^2 / (2 seconds), solved for t in a form stable when r1 == r0
        root = math.sqrt(max(r0 * r0 + 2.0 * (r1 - r0) * n / seconds, 0.0))
        return offset + 2.0 * n / (r0 + root)


@dataclasses.dataclass(frozen=True, slots=True)
class Strided:
    """Every ``count``-th arrival of ``base`` from arrival ``first``: the share of one segment
    (k6's execution segments), so that the segments' arrivals together are ``base``'s."""

    base: Profile
    first: int
    count: int

    @property
    def duration(self) -> float | None:
        return self.base.duration

    @property
    def peak(self) -> float:
        return self.base.peak / self.count

    def at(self, i: int) -> float:
        return self.base.at(i * self.count + self.first)
