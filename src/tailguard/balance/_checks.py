"""``HealthCheck``: active health checks (see ``health.py``, which exports it)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Protocol

from tailguard._clock import SYSTEM_CLOCK, Clock
from tailguard.balance._endpoint import Endpoint
from tailguard.errors import ConfigurationError
from tailguard.events import EndpointHealthChanged, HookRegistry
from tailguard.events import hooks as default_hooks

__all__ = ["Check", "HealthCheck"]


class _HasEndpoints(Protocol):
    @property
    def endpoints(self) -> Sequence[Endpoint]: ...


Check = Callable[[Endpoint], Awaitable[bool]]


class HealthCheck:
    """Active health checks: ``await check(endpoint)`` for every endpoint of ``target`` (a
    picker, a balancer, or a list of endpoints) every ``interval`` seconds, each within
    ``timeout`` seconds (a timeout or an exception is a failure).

    ``async with HealthCheck(balancer, check):`` runs the loop in a task for the block;
    ``await health.check_once()`` runs one round (what tests call).
    """

    __slots__ = (
        "_counts",
        "_marked",
        "_target",
        "_task",
        "check",
        "clock",
        "healthy_threshold",
        "hooks",
        "interval",
        "name",
        "timeout",
        "unhealthy_threshold",
    )

    def __init__(
        self,
        target: _HasEndpoints | Sequence[Endpoint],
        check: Check,
        *,
        interval: float = 10.0,
        timeout: float = 2.0,
        unhealthy_threshold: int = 3,
        healthy_threshold: int = 2,
        clock: Clock = SYSTEM_CLOCK,
        name: str | None = None,
        hooks: HookRegistry | None = None,
    ) -> None:
        if interval <= 0:
            raise ConfigurationError("HealthCheck.interval", interval, "seconds > 0")
        if timeout <= 0:
            raise ConfigurationError("HealthCheck.timeout", timeout, "seconds > 0")
        if unhealthy_threshold < 1:
            raise ConfigurationError("HealthCheck.unhealthy_threshold", unhealthy_threshold, ">= 1")
        if healthy_threshold < 1:
            raise ConfigurationError("HealthCheck.healthy_threshold", healthy_threshold, ">= 1")
        self._target = target
        self.check = check
        self.interval = interval
        self.timeout = timeout
        self.unhealthy_threshold = unhealthy_threshold
        self.healthy_threshold = healthy_threshold
        self.clock = clock
        # In the EndpointHealthChanged events: the balancer's name when checking a balancer.
        self.name = name if name is not None else str(getattr(target, "name", "health"))
        self.hooks = default_hooks if hooks is None else hooks
        self._counts: dict[Endpoint, int] = {}  # > 0: successes in a row, < 0: failures
        self._marked: set[Endpoint] = set()  # the endpoints this check marked down
        self._task: asyncio.Task[None] | None = None

    @property
    def endpoints(self) -> Sequence[Endpoint]:
        target = self._target
        return target if isinstance(target, Sequence) else target.endpoints

    def record(self, endpoint: Endpoint, ok: bool) -> None:
        """Sans-IO: the result of one check; flips ``endpoint.healthy`` at the thresholds."""
        n = self._counts.get(endpoint, 0)
        n = (max(n, 0) + 1) if ok else (min(n, 0) - 1)
        self._counts[endpoint] = n
        if endpoint.healthy and -n >= self.unhealthy_threshold:
            endpoint.healthy = False
            self._marked.add(endpoint)
        elif not endpoint.healthy and n >= self.healthy_threshold:
            endpoint.healthy = True
            self._marked.discard(endpoint)
        else:
            return
        self.hooks.emit(EndpointHealthChanged(self.name, endpoint.address, endpoint.healthy))

    async def _one(self, endpoint: Endpoint) -> None:
        try:
            ok = bool(await asyncio.wait_for(self.check(endpoint), self.timeout))
        except Exception:
            ok = False
        self.record(endpoint, ok)

    async def check_once(self) -> None:
        """Check every endpoint once, concurrently."""
        endpoints = self.endpoints
        live = set(endpoints)  # forget the endpoints that went away
        self._counts = {e: n for e, n in self._counts.items() if e in live}
        self._marked &= live
        await asyncio.gather(*(self._one(e) for e in endpoints))

    async def run(self) -> None:
        """Check every ``interval`` seconds until cancelled."""
        while True:
            await self.check_once()
            await self.clock.sleep(self.interval)

    async def __aenter__(self) -> HealthCheck:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="tailguard-health-check")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the loop started by ``async with``; mark up again the endpoints this check
        marked down (nothing checks them any more) and forget its counts."""
        task, self._task = self._task, None
        try:
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():
                        raise  # our caller is cancelled too, not only the loop
        finally:
            self._restore()

    def _restore(self) -> None:
        marked, self._marked = self._marked, set()
        self._counts.clear()
        for endpoint in marked:
            if not endpoint.healthy:
                endpoint.healthy = True
                self.hooks.emit(EndpointHealthChanged(self.name, endpoint.address, True))
