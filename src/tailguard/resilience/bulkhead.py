"""``Bulkhead``: at most ``max_concurrent`` calls at once, a bounded queue, a bounded wait.

A full bulkhead rejects at once with :class:`~tailguard.errors.BulkheadFullError` instead of
queueing without bound. A slot is released on every exit: success, exception or cancellation,
whether the caller was cancelled while waiting or while running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import ParamSpec, TypeVar

from tailguard.errors import BulkheadFullError, ConfigurationError
from tailguard.events import CallRejected, HookRegistry
from tailguard.resilience._policy import PolicyBase, resolve_hooks

__all__ = ["Bulkhead"]

P = ParamSpec("P")
T = TypeVar("T")


class Bulkhead(PolicyBase):
    """Limit concurrency to ``max_concurrent``; up to ``max_queue`` callers wait for a slot, each
    at most ``max_wait`` seconds (``None``: as long as it takes).

    ``await bulkhead.call(fn, *args)``, ``@bulkhead`` or ``async with bulkhead:``.
    """

    # __weakref__: observe.watch() holds bulkheads weakly.
    __slots__ = (
        "__weakref__",
        "_active",
        "_hooks",
        "_limit",
        "_waiters",
        "max_queue",
        "max_wait",
        "name",
    )

    _kind = "bulkhead"

    def __init__(
        self,
        max_concurrent: int = 100,
        max_queue: int = 0,
        *,
        max_wait: float | None = None,
        name: str = "bulkhead",
        hooks: HookRegistry | None = None,
    ) -> None:
        if not isinstance(max_concurrent, int) or max_concurrent < 1:
            raise ConfigurationError("Bulkhead.max_concurrent", max_concurrent, "an int >= 1")
        if not isinstance(max_queue, int) or max_queue < 0:
            raise ConfigurationError("Bulkhead.max_queue", max_queue, "an int >= 0")
        if max_wait is not None and max_wait < 0:
            raise ConfigurationError("Bulkhead.max_wait", max_wait, "None or seconds >= 0")
        self._limit = max_concurrent
        self.max_queue = max_queue
        self.max_wait = max_wait
        self.name = name
        self._active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._hooks = resolve_hooks(hooks)

    @property
    def max_concurrent(self) -> int:
        """The current concurrency limit."""
        return self._limit

    @property
    def active(self) -> int:
        """Calls holding a slot now."""
        return self._active

    @property
    def queued(self) -> int:
        """Callers waiting for a slot now."""
        return len(self._waiters)

    def _reject(self, reason: str) -> BulkheadFullError:
        self._hooks.emit(CallRejected(self.name, self._kind, reason))
        return BulkheadFullError(
            self.name, max_concurrent=self._limit, max_queue=self.max_queue, reason=reason
        )

    async def acquire(self) -> None:
        """Take a slot (waiting if allowed); pair with :meth:`release`."""
        if self._active < self._limit and not self._waiters:
            self._active += 1
            return
        await self._wait()

    async def _wait(self) -> None:
        if len(self._waiters) >= self.max_queue:
            raise self._reject("full")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            if self.max_wait is None:
                await fut
            else:
                async with asyncio.timeout(self.max_wait):
                    await fut
        except TimeoutError:
            self._forget(fut)
            raise self._reject(f"wait exceeded {self.max_wait:g}s") from None
        except BaseException:
            self._forget(fut)
            raise

    def _forget(self, fut: asyncio.Future[None]) -> None:
        if fut.done() and not fut.cancelled():
            # The slot was handed to us just as we gave up: pass it on.
            self.release()
        else:
            fut.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove(fut)

    def release(self) -> None:
        """Give a slot back, handing it straight to the next waiter if there is one."""
        waiters = self._waiters
        if self._active <= self._limit:
            while waiters:
                fut = waiters.popleft()
                if not fut.done():
                    fut.set_result(None)  # the slot moves to the waiter: active is unchanged
                    return
        self._active -= 1

    def _grant_waiters(self) -> None:
        """Hand out slots freed by a raised limit."""
        waiters = self._waiters
        while waiters and self._active < self._limit:
            fut = waiters.popleft()
            if not fut.done():
                self._active += 1
                fut.set_result(None)

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self._active < self._limit and not self._waiters:
            self._active += 1
        else:
            await self._wait()
        try:
            return await fn(*args, **kwargs)
        finally:
            if self._waiters:
                self.release()
            else:
                self._active -= 1

    async def __aenter__(self) -> Bulkhead:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, max_concurrent={self._limit}, "
            f"max_queue={self.max_queue}, active={self._active}, queued={len(self._waiters)})"
        )
