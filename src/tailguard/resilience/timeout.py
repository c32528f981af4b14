"""``Timeout``: one deadline per call, visible to inner policies, on one shared coarse timer.

A deadline lives in a ContextVar while the call runs, so an inner ``Retry`` knows how much time
is left (:func:`time_remaining`) and a nested ``Timeout`` keeps the tighter of the two.

Cost: ``asyncio.timeout`` schedules (and cancels) one loop timer per call. Here every deadline
that falls in the same millisecond tick shares one timer: entering a ``Timeout`` is a dict
insert, and the loop runs at most one callback per tick however many calls are in flight. A
deadline therefore fires up to ``RESOLUTION`` (1 ms) late, never early; for the same reason an
inner deadline in the same tick as an outer one is left to the outer.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from threading import get_ident
from types import TracebackType
from typing import Any, NamedTuple, ParamSpec, TypeVar

from tailguard._clock import SYSTEM_CLOCK, Clock, MonotonicClock
from tailguard.errors import ConfigurationError, DeadlineExceeded
from tailguard.events import HookRegistry, TimeoutExpired
from tailguard.resilience._loop import current_tasks, running_task
from tailguard.resilience._policy import PolicyBase, resolve_hooks

__all__ = [
    "RESOLUTION",
    "Deadline",
    "Timeout",
    "current_deadline",
    "has_deadline",
    "time_remaining",
]

P = ParamSpec("P")
T = TypeVar("T")

RESOLUTION = 0.001  # seconds: deadlines are grouped by this tick on the shared timer
_TICKS_PER_SECOND = round(1 / RESOLUTION)

Task = asyncio.Task[Any]

# While a Timeout runs, the ContextVar holds a plain tuple (a tuple is the cheapest object to
# build on the hot path): (at, timeout, tick, scope, task). ``at`` is in seconds on the
# timeout's clock, ``tick`` the shared-timer tick (None on other clocks), ``scope`` None on
# the call path and a _Scope for ``async with``, ``task`` the task the deadline cancels. Tasks
# created inside inherit the ContextVar; a deadline counts only in the task that owns it.
_Entry = tuple[float, "Timeout", int | None, "_Scope | None", Task]
_CURRENT: ContextVar[_Entry | None] = ContextVar("tailguard_deadline", default=None)


class Deadline(NamedTuple):
    """The deadline of the running call: ``at`` (seconds on ``timeout.clock``)."""

    at: float
    timeout: Timeout

    def remaining(self) -> float:
        """Seconds left before this deadline (negative once passed)."""
        return self.at - self.timeout.clock.now()


def _own_entry() -> _Entry | None:
    entry = _CURRENT.get()
    if entry is None or entry[4] is not running_task():
        return None  # none, or inherited from the task that created this one
    return entry


def current_deadline() -> Deadline | None:
    """The innermost deadline of the running task, or ``None`` outside any ``Timeout``."""
    entry = _own_entry()
    return None if entry is None else Deadline(entry[0], entry[1])


def time_remaining() -> float | None:
    """Seconds left before the running task's deadline, or ``None`` when it has none."""
    entry = _own_entry()
    return None if entry is None else entry[0] - entry[1]._now()


def has_deadline() -> bool:
    """Cheap check (no task lookup) that a deadline may apply: call ``time_remaining`` next."""
    return _CURRENT.get() is not None


class _Wheel:
    """Per-loop timer shared by every deadline: one loop callback per occupied tick.

    ``buckets[tick]`` maps each task with a deadline in that tick to its ``Timeout``; a task is
    in a bucket at most once, because a nested deadline in the same tick is left to the outer.
    ``fired`` holds the (task, tick) pairs cancelled by the timer and not yet acknowledged.
    The loop is held weakly, so that a closed loop and its wheel can be collected.
    """

    __slots__ = ("__weakref__", "buckets", "fired", "loop", "tasks")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop: Callable[[], Any] = weakref.ref(loop)
        self.buckets: dict[int, dict[Task, Timeout]] = {}
        self.fired: set[tuple[Task, int]] = set()
        # The 3.11 shortcut to the running task (see _loop.py), for loops that allow it.
        self.tasks = current_tasks if hasattr(loop, "_thread_id") else None

    def schedule(self, tick: int, now: float) -> dict[Task, Timeout]:
        bucket: dict[Task, Timeout] = {}
        self.buckets[tick] = bucket
        self.loop().call_later(tick / _TICKS_PER_SECOND - now, self._fire, tick)
        return bucket

    def _fire(self, tick: int) -> None:
        for task, timeout in self.buckets.pop(tick, {}).items():
            if not task.done():
                self.fired.add((task, tick))
                task.cancel()
                timeout._hooks.emit(TimeoutExpired(timeout.name, timeout.seconds))

    def acknowledge(self, task: Task, tick: int, cancelling: int) -> bool:
        """Forget a fired deadline and undo its cancel; True if it fired and nobody else has
        cancelled the task since (so that a CancelledError is the deadline's)."""
        key = (task, tick)
        if key not in self.fired:
            return False
        self.fired.discard(key)
        return task.uncancel() <= cancelling


_wheels: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Wheel] = weakref.WeakKeyDictionary()


def _wheel_for(loop: asyncio.AbstractEventLoop) -> _Wheel:
    wheel = _wheels.get(loop)
    if wheel is None:
        wheel = _wheels[loop] = _Wheel(loop)
    return wheel


class _Scope:
    """The state of one deadline that is not on the fast path (``async with``, other clocks)."""

    __slots__ = ("cancelling", "fired", "task", "tick", "token", "watcher", "wheel")

    def __init__(self, task: Task) -> None:
        self.task = task
        self.cancelling = task.cancelling()
        self.fired = False  # set by the watcher (clocks other than the real one)
        self.tick: int | None = None
        self.wheel: _Wheel | None = None
        self.watcher: asyncio.Task[None] | None = None
        self.token: Token[_Entry | None] | None = None

    def acknowledge(self) -> bool:
        """Like ``_Wheel.acknowledge``, for either kind of timer."""
        if self.wheel is not None and self.tick is not None:
            return self.wheel.acknowledge(self.task, self.tick, self.cancelling)
        if not self.fired:
            return False
        self.fired = False
        return self.task.uncancel() <= self.cancelling


class Timeout(PolicyBase):
    """Cancel the call after ``seconds`` and raise :class:`~tailguard.errors.DeadlineExceeded`.

    ``await Timeout(1.0).call(fn, *args)``, ``@Timeout(1.0)`` or ``async with Timeout(1.0):``.
    Inside a tighter outer deadline, the outer one governs and no timer is added.
    ``clock`` defaults to the real monotonic clock; a ``ManualClock`` makes it testable without
    sleeping (one watcher task per call, so use the default in production).
    """

    __slots__ = ("_hooks", "_now", "_real", "_wheel", "clock", "name", "seconds")

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

    def _governed(self, outer: _Entry | None, at: float, tick: int | None, task: Task) -> bool:
        """Does an outer deadline of this task end no later than ours (so it alone governs)?"""
        if outer is None or outer[4] is not task:
            return False
        if tick is not None and outer[2] is not None:
            return outer[2] <= tick
        return outer[0] - outer[1]._now() <= at - self._now()

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        # The hot path of the library, so it is written out flat for the real clock: find the
        # task, put it in its tick's bucket, publish the deadline, run, take it out again.
        if not self._real:
            return await self._call_scoped(fn, *args, **kwargs)
        now = self._now()
        at = now + self.seconds
        tick = int(at * _TICKS_PER_SECOND) + 1  # round up: never fire early
        wheel = self._wheel
        loop = None if wheel is None else wheel.loop()
        if loop is not None and wheel.tasks is not None and loop._thread_id == get_ident():  # type: ignore[union-attr]
            task = wheel.tasks.get(loop)  # type: ignore[union-attr]  # see _loop.py
        else:
            task = running_task()
            if task is not None and loop is not task.get_loop():
                wheel = self._wheel = _wheel_for(task.get_loop())
        if task is None or wheel is None:
            raise RuntimeError("Timeout must be used inside an asyncio task")
        outer = _CURRENT.get()
        if outer is not None and self._governed(outer, at, tick, task):
            return await fn(*args, **kwargs)
        bucket = wheel.buckets.get(tick)
        if bucket is None:
            bucket = wheel.schedule(tick, now)
        bucket[task] = self
        cancelling = task.cancelling()
        token = _CURRENT.set((at, self, tick, None, task))
        try:
            return await fn(*args, **kwargs)
        except asyncio.CancelledError:
            if wheel.fired and wheel.acknowledge(task, tick, cancelling):
                raise DeadlineExceeded(self.name, self.seconds) from None
            raise
        finally:
            _CURRENT.reset(token)
            bucket.pop(task, None)
            if wheel.fired:  # fired, but the call swallowed the cancellation: undo it
                wheel.acknowledge(task, tick, cancelling)

    # -- the scoped path: ``async with`` and clocks other than the real one -------------------

    def _open(self) -> _Scope:
        now = self._now()
        at = now + self.seconds
        tick = int(at * _TICKS_PER_SECOND) + 1 if self._real else None
        outer = _CURRENT.get()
        task = running_task()
        if task is None:
            raise RuntimeError("Timeout must be used inside an asyncio task")
        scope = _Scope(task)
        if self._governed(outer, at, tick, task):
            assert outer is not None
            scope.token = _CURRENT.set((outer[0], outer[1], outer[2], scope, task))  # no timer
            return scope
        if tick is not None:
            wheel = self._wheel = _wheel_for(task.get_loop())
            bucket = wheel.buckets.get(tick) or wheel.schedule(tick, now)
            bucket[task] = self
            scope.wheel, scope.tick = wheel, tick
        else:
            scope.watcher = asyncio.ensure_future(self._watch(scope, at))
        scope.token = _CURRENT.set((at, self, tick, scope, task))
        return scope

    async def _watch(self, scope: _Scope, at: float) -> None:
        await self.clock.sleep(at - self._now())
        if not scope.task.done():
            scope.fired = True
            scope.task.cancel()
            self._hooks.emit(TimeoutExpired(self.name, self.seconds))

    def _close(self, scope: _Scope) -> bool:
        """End the scope; True if its deadline fired (and is ours to report)."""
        assert scope.token is not None
        _CURRENT.reset(scope.token)
        if scope.watcher is not None:
            scope.watcher.cancel()
        if scope.wheel is not None and scope.tick is not None:
            bucket = scope.wheel.buckets.get(scope.tick)
            if bucket is not None:
                bucket.pop(scope.task, None)
        return scope.acknowledge()

    async def _call_scoped(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        scope = self._open()
        try:
            result = await fn(*args, **kwargs)
        except asyncio.CancelledError:
            if self._close(scope):
                raise DeadlineExceeded(self.name, self.seconds) from None
            raise
        except BaseException:
            self._close(scope)
            raise
        self._close(scope)
        return result

    async def __aenter__(self) -> Deadline:
        self._open()
        entry = _CURRENT.get()
        assert entry is not None
        return Deadline(entry[0], entry[1])

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        entry = _CURRENT.get()
        scope = None if entry is None else entry[3]
        if scope is None or scope.token is None:
            raise RuntimeError(f"{self!r}: __aexit__ without a matching __aenter__")
        if self._close(scope) and exc_type is asyncio.CancelledError:
            raise DeadlineExceeded(self.name, self.seconds) from exc

    def __repr__(self) -> str:
        return f"Timeout({self.seconds:g}, name={self.name!r})"
