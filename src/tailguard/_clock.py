"""Injectable time: the ``Clock`` protocol, the real ``MonotonicClock`` and a ``ManualClock``.

State machines take ``now`` from a clock so that tests move time by hand instead of sleeping.
All values are seconds on a monotonic scale; only differences between them mean anything.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "MonotonicClock", "SYSTEM_CLOCK"]


@runtime_checkable
class Clock(Protocol):
    """A source of monotonic time (seconds) and a way to wait on it."""

    def now(self) -> float:
        """The current time in seconds on a monotonic scale."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a value <= 0 yields to the loop once)."""
        ...


class MonotonicClock:
    """The real clock: ``time.monotonic`` and ``asyncio.sleep``."""

    __slots__ = ()

    now = staticmethod(time.monotonic)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))

    def __repr__(self) -> str:
        return "MonotonicClock()"


SYSTEM_CLOCK = MonotonicClock()


class ManualClock:
    """A clock that moves only when told to: ``advance(seconds)`` or ``set(now)``.

    ``await clock.sleep(s)`` parks the caller until the clock has been advanced by ``s``; the
    sleepers whose time has come are woken in deadline order. Nothing here sleeps for real, so a
    60 s breaker recovery is tested in microseconds. With ``autojump=True`` every ``sleep`` moves
    the clock forward by its own duration at once: handy for one task's backoff schedule, wrong
    when several tasks sleep at once (each would jump the clock for all).
    """

    def __init__(self, start: float = 0.0, *, autojump: bool = False) -> None:
        self._now = float(start)
        self.autojump = autojump
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        if self.autojump:
            self.advance(seconds)
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), fut))
        await fut

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake every sleeper now due."""
        if seconds < 0:
            raise ValueError(f"ManualClock.advance(seconds={seconds!r}): time only moves forward")
        self.set(self._now + seconds)

    def set(self, now: float) -> None:
        """Move time forward to ``now`` (seconds) and wake every sleeper now due."""
        if now < self._now:
            raise ValueError(f"ManualClock.set(now={now!r}): earlier than {self._now!r}")
        self._now = float(now)
        # A hair of tolerance: ten advances of 0.1 s add up to 0.9999999999999999 s.
        while self._sleepers and self._sleepers[0][0] <= self._now + 1e-9:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    @property
    def sleepers(self) -> int:
        """How many callers are parked in ``sleep`` and not yet due."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now!r})"
