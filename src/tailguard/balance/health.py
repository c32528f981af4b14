"""Endpoint health: passive outlier ejection and optional active health checks.

:class:`OutlierDetection` is Envoy's outlier detection, sans-IO: it is told the outcome of every
request (``record(endpoint, ok=..., now=...)``) and ejects an endpoint after
``consecutive_failures`` failures in a row, or when its failure rate over the current
``interval`` reaches ``failure_rate`` with at least ``minimum_requests`` requests. An ejection
lasts ``base_ejection_time`` x the number of times the endpoint has been ejected, capped at
``max_ejection_time``; each whole interval the endpoint has since stayed in without being
ejected takes one off that count (every such interval, counted when its next request is
recorded). At most ``max_ejection_fraction`` of the endpoints are ejected at once, and never
all of them: at least one always remains, as in Envoy (which ejects one even when the fraction
rounds down to none). An endpoint comes back by itself when its time is up.

:class:`HealthCheck` runs an injected ``async check(endpoint) -> bool`` against every endpoint
every ``interval`` seconds (each bounded by ``timeout`` seconds): ``unhealthy_threshold``
failures in a row mark an endpoint down, ``healthy_threshold`` successes bring it back. When it
stops (``aclose()``, the end of its ``async with``), the endpoints it marked down are marked up
again: nothing checks them any more, and passive health still watches them.

Both keep state per endpoint only for the endpoints their target still has; a picker's
``replace`` keeps the ``Endpoint`` of an address it already had, so a service discovery refresh
neither resets an ejection nor grows that state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from tailguard.balance._checks import HealthCheck
from tailguard.balance._endpoint import Endpoint
from tailguard.errors import ConfigurationError

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
            if len(self._stats) >= len(endpoints):  # some endpoint went away: forget it
                live = set(endpoints)
                self._stats = {e: st for e, st in self._stats.items() if e in live}
            s = self._stats[endpoint] = _Stats(now)
        if now < endpoint.ejected_until:  # endpoint.ejected(now), inlined: every request
            return False  # a request that started before the ejection
        if now >= s.window_start + self.interval:
            if endpoint.ejections:  # one off per whole interval back in without an ejection
                since = max(s.window_start, endpoint.ejected_until)
                healthy = int((now - since) // self.interval)
                endpoint.ejections = max(0, endpoint.ejections - healthy)
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
