"""``Endpoint``: one backend a balancer may send to, with everything a picker reads.

An endpoint is a small mutable record: its address, its weight, how many requests it has in
flight, its peak-EWMA latency (Finagle's ``PeakEwma``: a new sample above the average replaces
it at once, a lower one is blended in with a weight that decays with the time since the last
sample, ``exp(-elapsed / decay)``), and its health: ejected until some time by outlier
detection, marked down by active checks, or refused by its circuit breaker. Nothing here reads
the clock: every method that needs the time takes ``now`` (seconds, monotonic).
"""

from __future__ import annotations

import math
from typing import Final

from tailguard.errors import ConfigurationError
from tailguard.resilience import BreakerConfig, BreakerState

__all__ = ["PENALTY", "Endpoint"]

PENALTY: Final = 1e9
"""The load (seconds x requests) of an endpoint with requests in flight and no latency measured
yet: as in Finagle, a fresh endpoint takes one request, then waits for its first answer."""

_exp = math.exp  # bound once: observe and load run on every request
_INF = math.inf
_CLOSED: Final = "closed"
_OPEN: Final = "open"


class Endpoint:
    """A backend: ``address`` (a base URL such as ``"http://10.0.0.7:8000"``, or any name),
    ``weight`` (relative share, > 0), ``decay`` (the EWMA time constant, seconds).

    ``in_flight`` counts started and not yet finished requests; ``ejected_until`` (seconds) is
    set by outlier detection, ``healthy`` by active health checks, ``breaker`` (a sans-IO
    :class:`~tailguard.resilience.BreakerState`, or ``None``) by the balancer.
    """

    __slots__ = (
        "_cost",
        "_stamp",
        "address",
        "breaker",
        "decay",
        "ejected_until",
        "ejections",
        "healthy",
        "in_flight",
        "weight",
    )

    def __init__(
        self,
        address: str,
        *,
        weight: float = 1.0,
        decay: float = 10.0,
        breaker: BreakerConfig | None = None,
    ) -> None:
        if not (math.isfinite(weight) and weight > 0):
            raise ConfigurationError(f"Endpoint({address!r}).weight", weight, "a finite number > 0")
        if not decay > 0:
            raise ConfigurationError(f"Endpoint({address!r}).decay", decay, "seconds > 0")
        self.address = address
        self.weight = float(weight)
        self.decay = float(decay)
        self.in_flight = 0
        self._cost = 0.0  # seconds, peak-EWMA of latency as of _stamp
        self._stamp = -math.inf
        self.ejected_until = -math.inf  # seconds (monotonic)
        self.ejections = 0  # times ejected, less the intervals it stayed healthy since
        self.healthy = True
        self.breaker = BreakerState(breaker) if breaker is not None else None

    # -- latency and load ----------------------------------------------------------------

    def observe(self, latency: float, now: float) -> None:
        """Fold one measured ``latency`` (seconds) into the peak-EWMA, at time ``now``."""
        elapsed = now - self._stamp
        cost = self._cost
        if latency > cost or elapsed == _INF:
            self._cost = latency
        elif elapsed > 0:  # (none passed: the average keeps its whole weight, as exp(0) = 1)
            w = _exp(-elapsed / self.decay)
            self._cost = cost * w + latency * (1.0 - w)
        self._stamp = now

    def latency(self, now: float) -> float:
        """The peak-EWMA latency (seconds) as of ``now``: it decays towards 0 while idle, so a
        slow endpoint is tried again after a while."""
        elapsed = now - self._stamp
        if elapsed <= 0:
            return self._cost
        return self._cost * _exp(-elapsed / self.decay)

    def load(self, now: float) -> float:
        """Finagle's P2C cost: peak-EWMA latency x (in flight + 1), divided by the weight;
        :data:`PENALTY` plus in flight when requests wait on an endpoint never measured."""
        cost = self._cost  # self.latency(now), inlined: two loads are compared per pick
        elapsed = now - self._stamp
        if elapsed > 0:
            cost *= _exp(-elapsed / self.decay)
        in_flight = self.in_flight
        if cost == 0.0 and in_flight:
            return PENALTY + in_flight
        return cost * (in_flight + 1) / self.weight

    # -- health ----------------------------------------------------------------------------

    def admits(self, now: float) -> bool:
        """Would this endpoint's breaker admit a call at ``now``? (Nothing is used up.)"""
        b = self.breaker
        if b is None or b.state == _CLOSED:
            return True
        if b.state == _OPEN:
            return now >= b.opened_at + b.config.recovery_time
        return b.probes_admitted < b.config.half_open_probes

    def available(self, now: float) -> bool:
        """Not ejected, not marked down by health checks, and its breaker would admit a call."""
        return (
            self.healthy
            and now >= self.ejected_until
            and (self.breaker is None or self.admits(now))
        )

    def ejected(self, now: float) -> bool:
        """Is it ejected by outlier detection at ``now``?"""
        return now < self.ejected_until

    def __repr__(self) -> str:
        return (
            f"Endpoint({self.address!r}, weight={self.weight:g}, in_flight={self.in_flight}, "
            f"latency={self._cost:.6f})"
        )
