"""Endpoint health: passive outlier ejection and optional active health checks.

:class:`OutlierDetection` is Envoy's outlier detection, sans-IO: it is told the outcome of every
request (``record(endpoint, ok=..., now=...)``) and ejects an endpoint after
``consecutive_failures`` failures in a row, or when its failure rate over the current
``interval`` reaches ``failure_rate`` with at least ``minimum_requests`` requests. An ejection
lasts ``base_ejection_time`` x the number of times the endpoint has been ejected, capped at
``max_ejection_time``; each full interval the endpoint then stays in without being ejected
takes one off that count. At most ``max_ejection_fraction`` of the endpoints are ejected at
once, and never all of them: at least one always remains, as in Envoy (which ejects one even
when the fraction rounds down to none). An endpoint comes back by itself when its time is up.

:class:`HealthCheck` runs an injected ``async check(endpoint) -> bool`` against every endpoint
every ``interval`` seconds (each bounded by ``timeout`` seconds): ``unhealthy_threshold``
failures in a row mark an endpoint down, ``healthy_threshold`` successes bring it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Protocol

from tailguard._clock import SYSTEM_CLOCK, Clock
from tailguard.balance._endpoint import Endpoint
from tailguard.errors import ConfigurationError
from tailguard.events import EndpointHealthChanged, HookRegistry
from tailguard.events import hooks as default_hooks

__all__ = ["HealthCheck", "OutlierDetection"]


class _Stats:
    __slots__ = ("consecutive", "failures", "requests", "window_start")

    def __init__(self, now: float) -> None:
        self.consecutive = 0
        self.requests = 0
        self.failures = 0
        self.window_start = now


class OutlierDetection:
    """Passive health: eject failing endpoints for a while (see the module docstring).

    ``consecutive_failures`` (``None``: off), ``failure_rate`` (0..1, ``None``: off) over
    ``interval`` seconds with at least ``minimum_requests``; times in seconds;
    ``max_ejection_fraction`` in 0..1.
    """

    __slots__ = (
        "_stats",
        "base_ejection_time",
        "consecutive_failures",
        "failure_rate",
        "interval",
        "max_ejection_fraction",
        "max_ejection_time",
        "minimum_requests",
    )

    def __init__(
        self,
        *,
        consecutive_failures: int | None = 5,
        failure_rate: float | None = None,
        minimum_requests: int = 20,
        interval: float = 10.0,
        base_ejection_time: float = 30.0,
        max_ejection_time: float = 300.0,
        max_ejection_fraction: float = 0.5,
    ) -> None:
        def need(ok: bool, setting: str, value: object, expected: str) -> None:
            if not ok:
                raise ConfigurationError(f"OutlierDetection.{setting}", value, expected)

        if consecutive_failures is not None:
            need(consecutive_failures >= 1, "consecutive_failures", consecutive_failures, ">= 1")
        if failure_rate is not None:
            need(0 < failure_rate <= 1, "failure_rate", failure_rate, "0 < rate <= 1")
        need(minimum_requests >= 1, "minimum_requests", minimum_requests, ">= 1")
        need(interval > 0, "interval", interval, "seconds > 0")
        need(base_ejection_time > 0, "base_ejection_time", base_ejection_time, "seconds > 0")
        need(
            max_ejection_time >= base_ejection_time,
            "max_ejection_time",
            max_ejection_time,
            f"seconds >= base_ejection_time ({base_ejection_time})",
        )
        need(
            0 <= max_ejection_fraction <= 1,
            "max_ejection_fraction",
            max_ejection_fraction,
            "a fraction 0..1 of the endpoints",
        )
        self.consecutive_failures = consecutive_failures
        self.failure_rate = failure_rate
        self.minimum_requests = minimum_requests
        self.interval = interval
        self.base_ejection_time = base_ejection_time
        self.max_ejection_time = max_ejection_time
        self.max_ejection_fraction = max_ejection_fraction
        self._stats: dict[Endpoint, _Stats] = {}

    def max_ejected(self, count: int) -> int:
        """How many of ``count`` endpoints may be ejected at once: the fraction, at least one,
        never all."""
        return min(count - 1, max(1, math.floor(self.max_ejection_fraction * count)))

    def record(
        self, endpoint: Endpoint, *, ok: bool, now: float, endpoints: Sequence[Endpoint]
    ) -> bool:
        """The outcome of one request to ``endpoint`` (one of ``endpoints``) at ``now``
        (seconds). Returns True when it ejected the endpoint."""
        s = self._stats.get(endpoint)
        if s is None:
            s = self._stats[endpoint] = _Stats(now)
        if endpoint.ejected(now):
            return False  # a request that started before the ejection
        if now >= s.window_start + self.interval:
            if endpoint.ejections and now >= endpoint.ejected_until + self.interval:
                endpoint.ejections -= 1  # a full interval back in without an ejection
            s.window_start = now
            s.requests = s.failures = 0
        s.requests += 1
        if ok:
            s.consecutive = 0
            return False
        s.failures += 1
        s.consecutive += 1
        limit = self.consecutive_failures
        rate = self.failure_rate
        if (limit is not None and s.consecutive >= limit) or (
            rate is not None
            and s.requests >= self.minimum_requests
            and s.failures >= rate * s.requests
        ):
            return self.eject(endpoint, now=now, endpoints=endpoints)
        return False

    def eject(self, endpoint: Endpoint, *, now: float, endpoints: Sequence[Endpoint]) -> bool:
        """Eject ``endpoint`` now unless that would eject too many; True if it did."""
        ejected = sum(1 for e in endpoints if e.ejected(now))
        if ejected >= self.max_ejected(len(endpoints)):
            return False
        endpoint.ejections += 1
        duration = min(self.base_ejection_time * endpoint.ejections, self.max_ejection_time)
        endpoint.ejected_until = now + duration
        s = self._stats.setdefault(endpoint, _Stats(now))
        s.consecutive = s.requests = s.failures = 0
        s.window_start = endpoint.ejected_until
        return True

    def __repr__(self) -> str:
        return (
            f"OutlierDetection(consecutive_failures={self.consecutive_failures}, "
            f"failure_rate={self.failure_rate}, base_ejection_time={self.base_ejection_time})"
        )


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
        elif not endpoint.healthy and n >= self.healthy_threshold:
            endpoint.healthy = True
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
        await asyncio.gather(*(self._one(e) for e in self.endpoints))

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
        """Stop the loop started by ``async with``."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
