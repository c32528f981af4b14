"""Events: small frozen dataclasses that policies emit, and the registry hooks subscribe to.

Capabilities never import a metrics library. They emit events here; ``tailguard.observe`` (or
your own hook) subscribes and turns them into metrics, logs or spans::

    from tailguard.events import CircuitStateChanged, hooks

    def log_breaker(event: CircuitStateChanged) -> None:
        print(f"{event.name}: {event.old} -> {event.new}")

    unsubscribe = hooks.subscribe(log_breaker, CircuitStateChanged)

Events are emitted on the slow paths only (a state change, a retry, a rejection), never on a
plain success, so a registry with no subscriber costs one truth test. A hook that raises is
logged and skipped: observability never breaks the call it observes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

__all__ = [
    "CacheCoalesced",
    "CacheError",
    "CacheHit",
    "CacheInvalidated",
    "CacheLoad",
    "CacheMiss",
    "CallRejected",
    "CircuitStateChanged",
    "EndpointEjected",
    "EndpointHealthChanged",
    "Event",
    "FallbackUsed",
    "HedgeFired",
    "Hook",
    "HookRegistry",
    "LimitChanged",
    "RateLimited",
    "RetryGaveUp",
    "RetryScheduled",
    "TimeoutExpired",
    "hooks",
]

_log = logging.getLogger("tailguard.events")

E = TypeVar("E", bound="Event")
E_contra = TypeVar("E_contra", bound="Event", contravariant=True)


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event. ``name`` is the name given to the emitting policy or component."""

    name: str


# --- resilience ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CircuitStateChanged(Event):
    """A breaker moved between ``"closed"``, ``"open"`` and ``"half_open"``.

    ``failure_rate`` and ``slow_call_rate`` (0..1) are the window's rates when it opened,
    ``None`` when unknown or not applicable.
    """

    old: str
    new: str
    failure_rate: float | None = None
    slow_call_rate: float | None = None


@dataclass(frozen=True, slots=True)
class CallRejected(Event):
    """A policy refused a call. ``policy`` is its kind (``"circuit_breaker"``, ``"bulkhead"``,
    ``"adaptive_limit"``, ``"rate_limit"``); ``retry_after`` in seconds when known."""

    policy: str
    reason: str
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class RetryScheduled(Event):
    """Attempt ``attempt`` failed and attempt ``attempt + 1`` starts after ``delay`` seconds.

    ``error`` is the exception's type name, or ``"result"`` for a retried result.
    """

    attempt: int
    delay: float
    error: str


@dataclass(frozen=True, slots=True)
class RetryGaveUp(Event):
    """A retrying call stopped after ``attempts`` attempts; ``reason`` is ``"attempts"``,
    ``"budget"`` (the retry budget was empty) or ``"deadline"`` (no time for another)."""

    attempts: int
    reason: str
    error: str


@dataclass(frozen=True, slots=True)
class TimeoutExpired(Event):
    """A ``Timeout`` of ``timeout`` seconds ran out and cancelled its call."""

    timeout: float


@dataclass(frozen=True, slots=True)
class HedgeFired(Event):
    """A hedged call started extra attempt number ``attempt`` after ``delay`` seconds."""

    attempt: int
    delay: float


@dataclass(frozen=True, slots=True)
class FallbackUsed(Event):
    """A ``Fallback`` answered in place of a call that raised ``error`` (a type name)."""

    error: str


@dataclass(frozen=True, slots=True)
class LimitChanged(Event):
    """An ``AdaptiveLimit`` moved its concurrency limit from ``old`` to ``new``."""

    old: int
    new: int


# --- cache ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CacheHit(Event):
    """``key`` was found fresh in tier ``tier`` of cache ``name``."""

    tier: str
    key: str


@dataclass(frozen=True, slots=True)
class CacheMiss(Event):
    """``key`` was in no tier of cache ``name``."""

    key: str


@dataclass(frozen=True, slots=True)
class CacheError(Event):
    """Tier ``tier`` failed (or was skipped by its open breaker) during ``operation``."""

    tier: str
    operation: str
    error: str


@dataclass(frozen=True, slots=True)
class CacheLoad(Event):
    """The loader for ``key`` ran for ``seconds``; ``ok`` is False when it raised."""

    key: str
    seconds: float
    ok: bool = True


@dataclass(frozen=True, slots=True)
class CacheCoalesced(Event):
    """A miss of ``key`` waited for a load already in flight instead of starting its own."""

    key: str


@dataclass(frozen=True, slots=True)
class CacheInvalidated(Event):
    """``key`` was evicted from tier ``tier`` because it changed elsewhere (``"*"``: all)."""

    tier: str
    key: str


# --- rate limiting --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateLimited(Event):
    """Limiter ``name`` refused a request: ``limit`` is the limit that decided (as written,
    e.g. ``"100/minute"``), ``retry_after`` seconds until it could pass. The key is left out:
    it is usually a user or an IP, and would make an unbounded metric label."""

    limit: str
    retry_after: float


# --- load balancing -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EndpointEjected(Event):
    """Balancer ``name`` ejected ``address`` for ``seconds`` (its ``ejections``-th time in a
    row: the time grows with repeats)."""

    address: str
    ejections: int
    seconds: float


@dataclass(frozen=True, slots=True)
class EndpointHealthChanged(Event):
    """An active health check found ``address`` (of balancer ``name``) healthy or not."""

    address: str
    healthy: bool


# --- registry -----------------------------------------------------------------------------


class Hook(Protocol[E_contra]):
    """Anything callable with one event."""

    def __call__(self, event: E_contra, /) -> None: ...


class HookRegistry:
    """Subscribers by event type; ``emit`` calls each hook whose type matches (subclasses too)."""

    __slots__ = ("_dispatch", "_subs", "active")

    def __init__(self) -> None:
        self.active = False  # any subscriber at all? Hot paths test this before building events.
        self._subs: list[tuple[tuple[type[Event], ...], Callable[[Any], None]]] = []
        # event class -> hooks, rebuilt lazily so emit is a dict lookup and a loop.
        self._dispatch: dict[type[Event], tuple[Callable[[Any], None], ...]] = {}

    def subscribe(self, hook: Hook[E], *types: type[E]) -> Callable[[], None]:
        """Call ``hook(event)`` for every emitted event of ``types`` (all events if none).

        Returns a function that unsubscribes the hook.
        """
        for t in types:
            if not (isinstance(t, type) and issubclass(t, Event)):
                raise TypeError(f"subscribe(): {t!r} is not an Event subclass")
        entry: tuple[tuple[type[Event], ...], Callable[[Any], None]] = (types or (Event,), hook)
        self._subs.append(entry)
        self._dispatch.clear()
        self.active = True

        def unsubscribe() -> None:
            for i, sub in enumerate(self._subs):
                if sub is entry:  # identity: the same hook may be subscribed twice
                    del self._subs[i]
                    self._dispatch.clear()
                    self.active = bool(self._subs)
                    return

        return unsubscribe

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to its subscribers; a failing hook is logged, never raised."""
        if not self._subs:
            return
        cls = type(event)
        targets = self._dispatch.get(cls)
        if targets is None:
            targets = tuple(h for ts, h in self._subs if issubclass(cls, ts))
            self._dispatch[cls] = targets
        for hook in targets:
            try:
                hook(event)
            except Exception:
                _log.exception("tailguard hook %r failed on %r", hook, event)

    def clear(self) -> None:
        """Remove every subscriber."""
        self._subs.clear()
        self._dispatch.clear()
        self.active = False

    def __bool__(self) -> bool:
        return bool(self._subs)

    def __len__(self) -> int:
        return len(self._subs)


hooks = HookRegistry()
"""The process-wide registry every component emits to unless given its own."""
