"""Leak checks: connections still checked out of a pool, and memory that grows with requests.

::

    assert_no_leaks(engine, redis_client)   # after a request or a test: raises ConnectionLeak
    watch = ConnectionWatch(engine)         # later: watch.check(), right even after dispose()
    report = await soak(handle_one_request, requests=10_000)
    report.growth_per_1000, report.top, report.leaking()

``checked_out`` reads a SQLAlchemy pool (``Engine``, ``AsyncEngine`` or the pool itself);
``redis_in_use`` a ``redis.asyncio`` client's pool (or every node's, for ``RedisCluster``).
Nothing from redis is imported: it is an optional dependency.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import Pool

from tailguard.errors import ConfigurationError, ConnectionLeak

__all__ = [
    "ConnectionLeak",
    "ConnectionWatch",
    "SoakReport",
    "assert_no_leaks",
    "checked_out",
    "redis_in_use",
    "soak",
]


def _pool(resource: Engine | AsyncEngine | Pool) -> Pool:
    if isinstance(resource, AsyncEngine):
        return resource.sync_engine.pool
    return resource.pool if isinstance(resource, Engine) else resource


def checked_out(engine: Engine | AsyncEngine | Pool) -> int:
    """Connections of ``engine``'s pool that are in use right now.

    Needs a pool that counts them (``QueuePool``, ``AsyncAdaptedQueuePool``: the defaults of
    server databases and SQLite files); ``NullPool`` and ``StaticPool`` raise ``TypeError``.
    """
    pool = _pool(engine)
    count = getattr(pool, "checkedout", None)
    if count is None:
        raise TypeError(f"{type(pool).__name__} does not count checked-out connections")
    return int(count())


def redis_in_use(client: Any) -> int:
    """Connections of a ``redis.asyncio`` client's pool that are in use (not idle) right now."""
    if callable(getattr(client, "get_nodes", None)):  # RedisCluster: a free deque per node
        return sum(
            len(getattr(node, "_connections", ())) - len(getattr(node, "_free", ()))
            for node in client.get_nodes()
        )
    pool = getattr(client, "connection_pool", client)
    in_use = getattr(pool, "_in_use_connections", None)
    if in_use is None:
        raise TypeError(f"{type(client).__name__} is not a redis.asyncio client or pool")
    return len(in_use)


def _describe(resource: Any) -> tuple[str, int]:
    if isinstance(resource, Engine | AsyncEngine):
        return resource.url.render_as_string(hide_password=True), checked_out(resource)
    if isinstance(resource, Pool):
        return f"{type(resource).__name__} {id(resource):#x}", checked_out(resource)
    return repr(resource), redis_in_use(resource)


def assert_no_leaks(*resources: Any) -> None:
    """Raise ``ConnectionLeak`` naming each engine, pool or redis client with a connection
    still checked out."""
    leaks = [(name, count) for name, count in map(_describe, resources) if count]
    if leaks:
        raise ConnectionLeak(leaks)


class _PoolTally:
    """Connections out of one pool, kept by its events: those out when the tally began (until
    they come back), plus those checked out since and not returned."""

    def __init__(self, resource: Engine | AsyncEngine | Pool) -> None:
        self.name, self.before = _describe(resource)  # TypeError for pools that do not count
        self.pool = _pool(resource)
        self.out: set[object] = set()  # connection records
        self.listening = True
        # Engine.dispose() recreates the pool with these listeners, so the tally goes on there
        event.listen(self.pool, "checkout", self._checkout)
        event.listen(self.pool, "checkin", self._returned)
        event.listen(self.pool, "detach", self._returned)

    def _checkout(self, dbapi_connection: Any, record: object, proxy: Any) -> None:
        self.out.add(record)

    def _returned(self, dbapi_connection: Any, record: object) -> None:
        if record in self.out:
            self.out.discard(record)
        elif self.before:  # one that was out before the tally began
            self.before -= 1

    @property
    def count(self) -> int:
        return self.before + len(self.out)

    def close(self) -> None:
        if self.listening:
            self.listening = False
            event.remove(self.pool, "checkout", self._checkout)
            event.remove(self.pool, "checkin", self._returned)
            event.remove(self.pool, "detach", self._returned)


class ConnectionWatch:
    """``assert_no_leaks`` for later, when the pools may be gone: watches ``resources``
    (SQLAlchemy engines and pools, ``redis.asyncio`` clients) from now on.

    A pool's connections are counted by its ``checkout`` / ``checkin`` / ``detach`` events,
    starting from the number out now: ``Engine.dispose()`` (an engine fixture's teardown)
    resets a ``QueuePool``'s own count to zero, these events keep the connections it never got
    back. A redis client is read at ``check()``. ``close()`` (or leaving ``with``) stops
    listening; ``check()`` still answers from what was counted until then.
    """

    def __init__(self, *resources: Any) -> None:
        self._tallies: list[_PoolTally] = []
        self._clients: list[Any] = []
        try:
            for resource in resources:
                if isinstance(resource, Engine | AsyncEngine | Pool):
                    self._tallies.append(_PoolTally(resource))
                else:
                    redis_in_use(resource)  # TypeError now rather than at the check
                    self._clients.append(resource)
        except BaseException:
            self.close()
            raise

    def leaks(self) -> list[tuple[str, int]]:
        """``(name, count)`` for each resource with a connection still checked out."""
        found = [(tally.name, tally.count) for tally in self._tallies]
        found += [_describe(client) for client in self._clients]
        return [(name, count) for name, count in found if count]

    def check(self) -> None:
        """Raise ``ConnectionLeak`` as ``assert_no_leaks`` does."""
        leaks = self.leaks()
        if leaks:
            raise ConnectionLeak(leaks)

    def close(self) -> None:
        """Stop listening to the pools (idempotent)."""
        for tally in self._tallies:
            tally.close()

    def __enter__(self) -> ConnectionWatch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(frozen=True)
class SoakReport:
    """Memory traced by ``tracemalloc`` while a function ran ``requests`` times.

    ``samples``: ``(requests done, traced bytes)`` every ``every`` requests, from 0;
    ``growth_per_1000``: bytes per 1,000 requests (least-squares slope of the samples);
    ``top``: the five source lines that grew most, ``"file:line: +N B (+M blocks)"``;
    ``seconds``: wall time of the measured requests.
    """

    requests: int
    every: int
    samples: list[tuple[int, int]]
    growth_per_1000: float
    top: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def leaking(self, threshold_bytes_per_1000: float = 10_240) -> bool:
        """Whether memory grew faster than ``threshold_bytes_per_1000`` bytes per 1,000
        requests (default 10 KiB: about 10 bytes a request)."""
        return self.growth_per_1000 > threshold_bytes_per_1000


def _slope(points: list[tuple[int, int]]) -> float:
    """Least-squares slope of y over x."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return sxy / sxx if sxx else 0.0


def _traced() -> int:
    gc.collect()  # count what is reachable, not garbage waiting for the cycle collector
    return tracemalloc.get_traced_memory()[0]


async def soak(
    fn: Callable[[], Awaitable[object]],
    *,
    requests: int = 10_000,
    every: int = 1_000,
    warmup: int = 1_000,
) -> SoakReport:
    """Await ``fn()`` ``warmup`` times (caches fill, not measured), then ``requests`` times
    with ``tracemalloc`` sampling traced memory every ``every`` calls.

    Tracing is started if it was off, and then stopped again; if it was on, it stays on.
    """
    if every < 1 or requests < 2 * every:
        raise ConfigurationError("requests", requests, f"at least 2 x every ({every})")
    if warmup < 0:
        raise ConfigurationError("warmup", warmup, "an integer >= 0")
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        for _ in range(warmup):
            await fn()
        begin = time.perf_counter()
        samples = [(0, _traced())]
        before = tracemalloc.take_snapshot()
        for done in range(1, requests + 1):
            await fn()
            if done % every == 0:
                samples.append((done, _traced()))
        seconds = time.perf_counter() - begin
        after = tracemalloc.take_snapshot()
    finally:
        if started:
            tracemalloc.stop()
    ignore = (
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, __file__),
    )
    stats = after.filter_traces(ignore).compare_to(before.filter_traces(ignore), "lineno")
    top = [
        f"{s.traceback[0].filename}:{s.traceback[0].lineno}: "
        f"{s.size_diff:+,} B ({s.count_diff:+,} blocks)"
        for s in [s for s in stats if s.size_diff > 0][:5]
    ]
    return SoakReport(requests, every, samples, _slope(samples) * 1_000, top, seconds)
