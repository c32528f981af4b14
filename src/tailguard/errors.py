"""Every exception tailguard raises, in one tree.

::

    TailguardError
     +- Rejected                 the call did not run; ``retry_after`` (seconds) when known
     |   +- CircuitOpenError     a circuit breaker is open (or half-open with no probe left)
     |   +- BulkheadFullError    no slot and no room in the waiting queue, or the wait ran out
     |   +- RateLimitExceeded    a rate limit said no
     +- DeadlineExceeded         a ``Timeout`` ran out (also a builtin ``TimeoutError``)
     +- BackendUnavailable       a Redis / database / broker error, raised ``from`` the original
     |   +- BackendSaturated     the client ran out of connections; the server may be fine
     +- ConfigurationError       a setting had a wrong value (also a ``ValueError``)
     +- CacheValueError          a key or value the cache cannot take (also a ``ValueError``)
     |   +- KeyTooLong           a cache key longer than its limit (bytes)
     |   +- ValueTooLarge        an encoded value larger than its limit (bytes)
     +- ShardError               one shard of a scatter-gather failed (its error as ``__cause__``)
     +- NPlusOneDetected         a unit of work ran one statement shape once per row
     +- ConnectionLeak           connections still checked out after a request or a test

Expected outcomes are values (a rate-limit ``Decision``); only failures and rejections raise.
Backend errors are translated at the boundary, so callers catch tailguard's names and still see
the original error as ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "BackendSaturated",
    "BackendUnavailable",
    "BulkheadFullError",
    "CacheValueError",
    "CircuitOpenError",
    "ConfigurationError",
    "ConnectionLeak",
    "DeadlineExceeded",
    "KeyTooLong",
    "NPlusOneDetected",
    "RateLimitExceeded",
    "Rejected",
    "ShardError",
    "TailguardError",
    "ValueTooLarge",
]


class TailguardError(Exception):
    """Base of every error raised by tailguard."""


class Rejected(TailguardError):
    """A policy refused to run the call; nothing was attempted.

    ``retry_after`` is the number of seconds after which trying again may succeed, or ``None``
    when the policy cannot know.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CircuitOpenError(Rejected):
    """The circuit breaker ``name`` is open; ``retry_after`` is the time until it half-opens."""

    def __init__(self, name: str, *, retry_after: float | None = None) -> None:
        when = "" if retry_after is None else f"; retry after {retry_after:.3f}s"
        super().__init__(f"circuit {name!r} is open{when}", retry_after=retry_after)
        self.name = name


class BulkheadFullError(Rejected):
    """The bulkhead ``name`` had no free slot and no room (or no time) left to wait."""

    def __init__(
        self,
        name: str,
        *,
        max_concurrent: int,
        max_queue: int,
        reason: str = "full",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            f"bulkhead {name!r} {reason} (max_concurrent={max_concurrent}, max_queue={max_queue})",
            retry_after=retry_after,
        )
        self.name = name
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.reason = reason


class RateLimitExceeded(Rejected):
    """A rate limit refused the request for ``key``; ``retry_after`` seconds until one fits."""

    def __init__(self, key: str, *, limit: str = "", retry_after: float | None = None) -> None:
        what = f" ({limit})" if limit else ""
        super().__init__(f"rate limit exceeded for {key!r}{what}", retry_after=retry_after)
        self.key = key
        self.limit = limit


class DeadlineExceeded(TailguardError, TimeoutError):
    """A ``Timeout`` ran out after ``timeout`` seconds. Also a builtin ``TimeoutError``."""

    def __init__(self, name: str, timeout: float) -> None:
        super().__init__(f"{name!r} timed out after {timeout:g}s")
        self.name = name
        self.timeout = timeout


class BackendUnavailable(TailguardError):
    """A backend (``redis``, ``postgres``, a broker) failed; the original error is the cause."""

    def __init__(self, backend: str, detail: str = "") -> None:
        super().__init__(f"{backend} unavailable" + (f": {detail}" if detail else ""))
        self.backend = backend


class BackendSaturated(BackendUnavailable):
    """The client's connection pool to ``backend`` was exhausted: a sign of our own load, not
    of the server's health (circuit breakers should not count it)."""


class ConfigurationError(TailguardError, ValueError):
    """A setting had a wrong value: the message names the setting and the value."""

    def __init__(self, setting: str, value: object, expected: str) -> None:
        super().__init__(f"{setting}={value!r}: expected {expected}")
        self.setting = setting
        self.value = value
        self.expected = expected


class CacheValueError(TailguardError, ValueError):
    """The cache refused a key or a value; nothing was stored."""


class KeyTooLong(CacheValueError):
    """A cache key of ``size`` bytes is over the ``limit``."""

    def __init__(self, key: str, size: int, limit: int) -> None:
        super().__init__(f"cache key of {size} bytes is over the limit of {limit}: {key[:80]!r}...")
        self.size = size
        self.limit = limit


class ValueTooLarge(CacheValueError):
    """A value encoded to ``size`` bytes is over the ``limit`` for ``key``."""

    def __init__(self, key: str, size: int, limit: int) -> None:
        super().__init__(f"value for {key!r} encodes to {size} bytes, over the limit of {limit}")
        self.key = key
        self.size = size
        self.limit = limit


class ShardError(TailguardError):
    """The call on shard ``shard`` failed (the original error is ``__cause__`` and ``error``);
    the other shards' calls were cancelled."""

    def __init__(self, shard: int, error: BaseException) -> None:
        super().__init__(f"shard {shard} failed: {type(error).__name__}: {error}".rstrip(": "))
        self.shard = shard
        self.error = error


class NPlusOneDetected(TailguardError):
    """A scope ran the same statement shape once per row: ``findings`` lists each one
    (``tailguard.observe.NPlusOne`` records)."""

    def __init__(self, findings: Sequence[Any]) -> None:
        scope = findings[0].scope if findings else ""
        lines = "".join(f"\n  {finding}" for finding in findings)
        super().__init__(f"N+1 queries in {scope!r}:{lines}")
        self.findings = list(findings)


class ConnectionLeak(TailguardError):
    """Connections are still checked out: ``leaks`` lists ``(pool name, count)`` pairs."""

    def __init__(self, leaks: list[tuple[str, int]]) -> None:
        what = "; ".join(
            f"{count} connection(s) still checked out of {name}" for name, count in leaks
        )
        super().__init__(what)
        self.leaks = leaks
