"""M/M/c queueing (Erlang C): how many servers keep the wait in queue under a target.

Requests arrive at ``rate`` per second (Poisson) and each holds one of ``c`` servers (workers,
connections, agents) for an exponentially distributed time of mean ``service_time`` seconds.
The offered load is ``a = rate x service_time`` Erlangs (busy servers, on average); the queue
is stable only when ``c > a``. Then, with ``mu = 1 / service_time``:

- ``erlang_c(c, a)``: the probability that a request waits at all;
- ``P(W > t) = C(c, a) x exp(-(c mu - rate) t)``: the wait in queue (seconds) exceeds ``t``;
- ``mean_wait = C(c, a) / (c mu - rate)`` seconds.

``C`` is computed from Erlang B's recursion ``B(k) = a B(k-1) / (k + a B(k-1))``, which never
forms ``a^c`` or ``c!``, so it stays exact to float precision for thousands of servers.
"""

from __future__ import annotations

import math

from tailguard.errors import ConfigurationError

__all__ = ["erlang_b", "erlang_c", "mean_wait", "servers_for", "service_level"]

MAX_SERVERS = 10_000_000  # servers_for gives up beyond this (a wait target of ~0 s asks for it)


def erlang_b(servers: int, offered_load: float) -> float:
    """Erlang B: the probability that all ``servers`` are busy in a loss system (no queue)
    offered ``offered_load`` Erlangs."""
    _servers(servers)
    _nonnegative("offered_load", offered_load)
    b = 1.0
    for k in range(1, servers + 1):
        b = offered_load * b / (k + offered_load * b)
    return b


def erlang_c(servers: int, offered_load: float) -> float:
    """Erlang C: the probability that a request waits in an M/M/c queue with ``servers``
    servers offered ``offered_load`` Erlangs (``rate x service_time``).

    Raises ``ConfigurationError`` (a ``ValueError``) when ``servers <= offered_load``: the
    queue would grow without bound.
    """
    _stable(servers, offered_load)
    return _c_from_b(servers, offered_load, erlang_b(servers, offered_load))


def mean_wait(servers: int, rate: float, service_time: float) -> float:
    """Mean time in queue (seconds, before service starts) with ``servers`` servers,
    ``rate`` arrivals per second and a mean ``service_time`` in seconds."""
    a = _load(rate, service_time)
    return erlang_c(servers, a) / (servers / service_time - rate)


def service_level(servers: int, rate: float, service_time: float, wait_target: float) -> float:
    """``P(W <= wait_target)``: the fraction of requests that wait in queue no longer than
    ``wait_target`` seconds (0 s: the fraction that do not wait at all)."""
    a = _load(rate, service_time)
    _nonnegative("wait_target", wait_target)
    return _service_level(servers, a, erlang_c(servers, a), rate, service_time, wait_target)


def servers_for(
    rate: float, service_time: float, wait_target: float, percentile: float = 0.95
) -> int:
    """The fewest servers ``c`` for which ``P(W <= wait_target) >= percentile``: at least
    ``percentile`` of requests wait in queue ``wait_target`` seconds or less.

    ``rate``: arrivals per second; ``service_time``: mean seconds a request holds a server;
    ``percentile``: a fraction in (0, 1), e.g. 0.95 for the 95th percentile.
    """
    a = _load(rate, service_time)
    _nonnegative("wait_target", wait_target)
    if not (math.isfinite(percentile) and 0 < percentile < 1):
        raise ConfigurationError("percentile", percentile, "a fraction in (0, 1), e.g. 0.95")
    # Walk Erlang B's recursion up from one server; the first stable c is floor(a) + 1.
    b = 1.0
    for c in range(1, MAX_SERVERS + 1):
        b = a * b / (c + a * b)
        if c > a:
            level = _service_level(c, a, _c_from_b(c, a, b), rate, service_time, wait_target)
            if level >= percentile:
                return c
    raise ConfigurationError(
        "wait_target", wait_target, f"a target that fewer than {MAX_SERVERS} servers can meet"
    )


def _service_level(
    c: int, a: float, wait_probability: float, rate: float, service_time: float, t: float
) -> float:
    return 1 - wait_probability * math.exp(-(c / service_time - rate) * t)


def _c_from_b(c: int, a: float, b: float) -> float:
    return c * b / (c - a * (1 - b))


def _load(rate: float, service_time: float) -> float:
    _positive("rate", rate)
    _positive("service_time", service_time)
    return rate * service_time


def _stable(servers: int, offered_load: float) -> None:
    _servers(servers)
    _nonnegative("offered_load", offered_load)
    if servers <= offered_load:
        raise ConfigurationError(
            "servers",
            servers,
            f"more than the offered load of {offered_load:g} Erlangs, or the queue grows "
            "without bound",
        )


def _servers(servers: int) -> None:
    if isinstance(servers, bool) or not isinstance(servers, int) or servers < 1:
        raise ConfigurationError("servers", servers, "an int >= 1")


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ConfigurationError(name, value, "a finite number > 0")


def _nonnegative(name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ConfigurationError(name, value, "a finite number >= 0")
