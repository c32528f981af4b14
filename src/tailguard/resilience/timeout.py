"""``Timeout``: one deadline per call, visible to inner policies, on one shared coarse timer.

A deadline lives in a ContextVar while the call runs, so an inner ``Retry`` knows how much time
is left (:func:`time_remaining`) and a nested ``Timeout`` keeps the tighter of the two.

Cost: ``asyncio.timeout`` schedules (and cancels) one loop timer per call. Here every deadline
that falls in the same millisecond shares one timer: entering a ``Timeout`` is a set insert, and
the loop runs at most one callback per millisecond however many calls are in flight. A deadline
therefore fires up to ``RESOLUTION`` (1 ms) late, never early.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from tailguard._clock import SYSTEM_CLOCK, Clock, MonotonicClock
from tailguard.errors import ConfigurationError, DeadlineExceeded
from tailguard.events import HookRegistry, TimeoutExpired
from tailguard.resilience._loop import running_task
from tailguard.resilience._policy import PolicyBase, resolve_hooks

__all__ = ["RESOLUTION", "Deadline", "Timeout", "current_deadline", "time_remaining"]

P = ParamSpec("P")
T = TypeVar("T")

RESOLUTION = 0.001  # seconds: deadlines are grouped by this tick on the shared timer


class Deadline:
    """One running ``Timeout``: when it ends (``at``, seconds on the owner's clock), the task it
    cancels, and whether it fired."""

    __slots__ = ("at", "bucket", "cancelling", "fired", "owner", "task", "token")

    def __init__(self, at: float, owner: Timeout, task: asyncio.Task[Any]) -> None:
        self.at = at
        self.owner = owner
        self.task = task
        self.cancelling = task.cancelling()
        self.fired = False
        self.bucket: set[Deadline] | None = None
        self.token: Token[Deadline | None] | None = None

    @property
    def clock(self) -> Clock:
        return self.owner.clock

    def remaining(self) -> float:
        """Seconds left before this deadline (negative once passed)."""
        return self.at - self.owner._now()

    def expire(self) -> None:
        if not self.fired and not self.task.done():
            self.fired = True
            self.task.cancel()
            self.owner._hooks.emit(TimeoutExpired(self.owner.name, self.owner.seconds))


_CURRENT: ContextVar[Deadline | None] = ContextVar("tailguard_deadline", default=None)


def current_deadline() -> Deadline | None:
    """The innermost deadline of the running call, or ``None`` outside any ``Timeout``."""
    return _CURRENT.get()


def time_remaining() -> float | None:
    """Seconds left before the current deadline, or ``None`` when there is none."""
    d = _CURRENT.get()
    return None if d is None else d.at - d.owner._now()


_TICKS_PER_SECOND = round(1 / RESOLUTION)


class _Wheel:
    """Per-loop timer shared by every deadline: one loop callback per occupied tick."""

    __slots__ = ("__weakref__", "buckets", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.buckets: dict[int, set[Deadline]] = {}

    def add(self, d: Deadline, now: float) -> None:
        # Round up so that a deadline never fires early.
        tick = int(d.at * _TICKS_PER_SECOND) + 1
        bucket = self.buckets.get(tick)
        if bucket is None:
            bucket = self.schedule(tick, now)
        bucket.add(d)
        d.bucket = bucket

    def schedule(self, tick: int, now: float) -> set[Deadline]:
        bucket: set[Deadline] = set()
        self.buckets[tick] = bucket
        self.loop.call_later(tick / _TICKS_PER_SECOND - now, self._fire, tick)
        return bucket

    def _fire(self, tick: int) -> None:
        for d in self.buckets.pop(tick, ()):
            d.expire()


_wheels: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Wheel] = weakref.WeakKeyDictionary()


def _wheel_for(loop: asyncio.AbstractEventLoop) -> _Wheel:
    wheel = _wheels.get(loop)
    if wheel is None:
        wheel = _wheels[loop] = _Wheel(loop)
    return wheel


async def _watch(d: Deadline) -> None:
    await d.owner.clock.sleep(d.remaining())
    d.expire()


class Timeout(PolicyBase):
    """Cancel the call after ``seconds`` and raise :class:`~tailguard.errors.DeadlineExceeded`.

    ``await Timeout(1.0).call(fn, *args)``, ``@Timeout(1.0)`` or ``async with Timeout(1.0):``.
    Inside a tighter outer deadline, the outer one governs and no timer is added.
    ``clock`` defaults to the real monotonic clock; a ``ManualClock`` makes it testable without
    sleeping (one watcher task per call, so use the default in production).
    """

    __slots__ = ("_hooks", "_now", "_real", "_watchers", "_wheel", "clock", "name", "seconds")

    def __init__(
        self,
        seconds: float,
        *,
        name: str = "timeout",
        clock: Clock = SYSTEM_CLOCK,
        hooks: HookRegistry | None = None,
    ) -> None:
        if (
            not isinstance(seconds, int | float)
            or isinstance(seconds, bool)
            or not 0 < seconds < float("inf")
        ):
            raise ConfigurationError("Timeout.seconds", seconds, "a number of seconds > 0")
        self.seconds = float(seconds)
        self.name = name
        self.clock = clock
        self._now = clock.now
        self._real = isinstance(clock, MonotonicClock)
        self._hooks = resolve_hooks(hooks)
        self._wheel: _Wheel | None = None
        self._watchers: dict[Deadline, asyncio.Task[None]] = {}

    def _enter(self, outer: Deadline | None) -> Deadline | None:
        """Start this call's deadline, or return None when a tighter outer one governs."""
        now = self._now()
        at = now + self.seconds
        if outer is not None and (
            outer.at <= at if outer.owner.clock is self.clock else outer.remaining() <= self.seconds
        ):
            return None
        task = running_task()
        if task is None:
            raise RuntimeError("Timeout must be used inside an asyncio task")
        d = Deadline(at, self, task)
        if self._real:
            wheel = self._wheel
            if wheel is None or wheel.loop is not task.get_loop():
                wheel = self._wheel = _wheel_for(task.get_loop())
            wheel.add(d, now)
        else:
            self._watchers[d] = asyncio.ensure_future(_watch(d))
        return d

    def _leave(self, d: Deadline) -> None:
        if d.bucket is not None:
            d.bucket.discard(d)
        else:
            watcher = self._watchers.pop(d, None)
            if watcher is not None:
                watcher.cancel()

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        # The hot path of the library: _enter/_leave inlined for the real clock.
        if not self._real:
            return await self._call_generic(fn, *args, **kwargs)
        now = self._now()
        at = now + self.seconds
        outer = _CURRENT.get()
        if outer is not None and outer.at <= at and outer.owner._real:
            return await fn(*args, **kwargs)
        task = running_task()
        if task is None:
            raise RuntimeError("Timeout must be used inside an asyncio task")
        d = Deadline(at, self, task)
        wheel = self._wheel
        if wheel is None or wheel.loop is not task.get_loop():
            wheel = self._wheel = _wheel_for(task.get_loop())
        tick = int(at * _TICKS_PER_SECOND) + 1
        bucket = wheel.buckets.get(tick)
        if bucket is None:
            bucket = wheel.schedule(tick, now)
        bucket.add(d)
        d.bucket = bucket
        token = _CURRENT.set(d)
        try:
            return await fn(*args, **kwargs)
        except asyncio.CancelledError:
            # Ours only if it fired and nobody else cancelled the task meanwhile.
            if d.fired and task.uncancel() <= d.cancelling:
                raise DeadlineExceeded(self.name, self.seconds) from None
            raise
        finally:
            _CURRENT.reset(token)
            bucket.discard(d)

    async def _call_generic(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        d = self._enter(_CURRENT.get())
        if d is None:
            return await fn(*args, **kwargs)
        token = _CURRENT.set(d)
        try:
            return await fn(*args, **kwargs)
        except asyncio.CancelledError:
            if d.fired and d.task.uncancel() <= d.cancelling:
                raise DeadlineExceeded(self.name, self.seconds) from None
            raise
        finally:
            _CURRENT.reset(token)
            self._leave(d)

    async def __aenter__(self) -> Deadline:
        outer = _CURRENT.get()
        d = self._enter(outer)
        if d is None:
            # A tighter outer deadline governs: stand in for it, with no timer of our own.
            assert outer is not None
            d = Deadline(outer.at, self, outer.task)
        d.token = _CURRENT.set(d)
        return d

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        d = _CURRENT.get()
        if d is None or d.owner is not self or d.token is None:
            raise RuntimeError(f"{self!r}: __aexit__ without a matching __aenter__")
        _CURRENT.reset(d.token)
        self._leave(d)
        if exc_type is asyncio.CancelledError and d.fired and d.task.uncancel() <= d.cancelling:
            raise DeadlineExceeded(self.name, self.seconds) from exc

    def __repr__(self) -> str:
        return f"Timeout({self.seconds:g}, name={self.name!r})"
