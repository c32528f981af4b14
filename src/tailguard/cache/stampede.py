"""Stampede protection: single flight in a process, and XFetch's early-refresh rule.

``SingleFlight.run(key, fn)`` runs ``fn`` once for all concurrent callers of one key: the first
caller leads, the others wait for its result (or its exception: each waiter raises one of its
own, so that tracebacks do not mix). A cancelled leader hands the key to a waiting caller
instead of failing it. ``SingleFlight.spawn`` leads in the background (for
stale-while-revalidate and early refresh).

``RefreshBackoff`` holds background refreshes of a key off after they fail, longer after each
failure in a row, so that a loader that keeps failing is not called again on every stale read.

``xfetch_due`` is "Optimal Probabilistic Cache Stampede Prevention" (Vattani et al., VLDB 2015):
recompute early when ``now - delta * beta * ln(rand()) >= expiry``, ``delta`` being how long the
last computation took; the more expensive a value and the nearer its expiry, the likelier.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar, cast

__all__ = ["RefreshBackoff", "SingleFlight", "xfetch_due"]

T = TypeVar("T")

_log = logging.getLogger("tailguard.cache")


def xfetch_due(now: float, expires_at: float, delta: float, beta: float, rand: float) -> bool:
    """Should a value expiring at ``expires_at`` be recomputed now? ``rand`` is uniform in
    [0, 1); times and ``delta`` in seconds; ``beta`` > 1 refreshes earlier, < 1 later."""
    return now - delta * beta * math.log(1.0 - rand) >= expires_at


class RefreshBackoff:
    """Per key: after ``failed(key, now)``, ``ready(key, now)`` is False for ``first`` seconds,
    doubling with each failure in a row up to ``cap`` seconds; ``succeeded(key)`` forgets the
    key. Times come from the caller (sans-IO). The ``max_keys`` most recent failures are kept.
    """

    __slots__ = ("_failures", "cap", "first", "max_keys")

    def __init__(self, first: float = 1.0, cap: float = 60.0, max_keys: int = 10_000) -> None:
        self.first = first
        self.cap = cap
        self.max_keys = max_keys
        self._failures: dict[Hashable, tuple[int, float]] = {}  # key: (in a row, not before)

    def ready(self, key: Hashable, now: float) -> bool:
        """May ``key`` be refreshed in the background at ``now``?"""
        failed = self._failures.get(key)
        return failed is None or now >= failed[1]

    def failed(self, key: Hashable, now: float) -> float:
        """A refresh of ``key`` failed at ``now``: the seconds until the next may run."""
        count = self._failures.pop(key, (0, 0.0))[0] + 1  # popped: re-inserted as the newest
        delay = min(self.cap, self.first * 2.0 ** min(count - 1, 62))
        self._failures[key] = (count, now + delay)
        if len(self._failures) > self.max_keys:
            del self._failures[next(iter(self._failures))]
        return delay

    def succeeded(self, key: Hashable) -> None:
        """A load of ``key`` worked: no backoff left."""
        if self._failures:
            self._failures.pop(key, None)


def _remake(exc: Exception) -> Exception | None:
    """A new exception like ``exc`` (type, ``args``, attributes and notes, not its traceback or
    chain), or None when its class cannot make one without calling ``__init__``."""
    cls = type(exc)
    try:
        mine = cls.__new__(cls, *exc.args)
        mine.args = exc.args
        attrs = getattr(exc, "__dict__", None)
        if attrs:
            mine.__dict__.update(attrs)
    except Exception:
        return None
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):
        mine.__notes__ = list(notes)  # a note a caller adds stays with its own exception
    return mine


class SingleFlight:
    """At most one run per key at a time; concurrent callers share its outcome."""

    def __init__(self) -> None:
        self._inflight: dict[Hashable, asyncio.Future[Any]] = {}
        self._background: set[asyncio.Task[Any]] = set()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._inflight

    async def run(
        self,
        key: Hashable,
        fn: Callable[[], Awaitable[T]],
        *,
        on_wait: Callable[[], None] | None = None,
    ) -> T:
        """``await fn()`` unless a run for ``key`` is in flight: then share its outcome
        (``on_wait()`` is called when this caller waits instead of running).

        A waiter does not re-raise the leader's exception object (each raise would add its
        frames to one shared traceback): it raises a new exception of the same type, with the
        same ``args`` and attributes, ``from`` the leader's, which is its ``__cause__``. A
        ``BaseException`` that is no ``Exception``, or one that cannot be made again that way
        (its class's ``__new__`` refuses its ``args``), is shared as it was raised.
        """
        while True:
            pending = self._inflight.get(key)
            if pending is None:
                return await self._lead(key, fn, self._claim(key))
            if on_wait is not None:
                on_wait()
            # Wait without raising the leader's exception here: raising it would add this
            # caller's frames to its traceback. A cancelled wait leaves ``pending`` running.
            await asyncio.wait((pending,))
            if pending.cancelled():
                continue  # only the leader was cancelled: one of the waiters leads instead
            exc = pending.exception()
            if exc is None:
                return cast(T, pending.result())
            mine = _remake(exc) if isinstance(exc, Exception) else None
            if mine is None:
                raise exc
            raise mine from exc

    def spawn(self, key: Hashable, fn: Callable[[], Awaitable[Any]]) -> bool:
        """Run ``fn`` for ``key`` in the background unless a run is in flight; True if started."""
        if key in self._inflight:
            return False
        # Claim the key now, not when the task first runs, so that the next caller sees it.
        claim = self._claim(key)
        task = asyncio.ensure_future(self._lead(key, fn, claim))
        self._background.add(task)
        task.add_done_callback(lambda t: self._finished(key, claim, t))
        return True

    async def aclose(self) -> None:
        """Cancel the background runs and wait for them to end."""
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    def _claim(self, key: Hashable) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        return future

    async def _lead(
        self, key: Hashable, fn: Callable[[], Awaitable[T]], future: asyncio.Future[Any]
    ) -> T:
        try:
            value = await fn()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        else:
            future.set_result(value)
            return value
        finally:
            if self._inflight.get(key) is future:
                del self._inflight[key]

    def _finished(self, key: Hashable, claim: asyncio.Future[Any], task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not claim.done():  # cancelled before it ever ran: release the key
            claim.cancel()
            if self._inflight.get(key) is claim:
                del self._inflight[key]
        if not task.cancelled() and task.exception() is not None:
            _log.warning("cache: background load of %r failed: %r", key, task.exception())
