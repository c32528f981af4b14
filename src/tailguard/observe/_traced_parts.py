"""Spans around policies and cache tiers: ``Traced``, a policy, and ``TracedTier``, a tier.

Neither capability imports OpenTelemetry (resilience may not, cache may not import observe):
they are wrapped here instead. Both open a span only while tracing is set up
(:func:`~tailguard.observe.tracing.setup_tracing` or ``use_tracer_provider``); until then a
call costs one attribute test (and one coroutine frame) on top of the wrapped one.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar, Token
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, Self, TypeVar, cast

from tailguard.errors import ConfigurationError
from tailguard.observe.tracing import Attributes, _end, _start, _state
from tailguard.resilience._policy import PolicyBase

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span

__all__ = ["Traced", "TracedTier"]

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")

OUTCOME = "tailguard.outcome"  # "ok", the exception's type name, or "cancelled"
RETRIES = "tailguard.retries"  # RetryScheduled events on a Traced span, when there are any

_Scope = tuple["Span", Token["Context"]]


def _outcome(span: Span, exc: BaseException | None) -> None:
    if exc is None:
        span.set_attribute(OUTCOME, "ok")
    elif isinstance(exc, Exception):
        span.set_attribute(OUTCOME, type(exc).__name__)
    else:
        span.set_attribute(OUTCOME, "cancelled")


# --- a policy -------------------------------------------------------------------------------


class _Open:
    __slots__ = ("scope", "token")

    def __init__(self, scope: _Scope | None) -> None:
        self.scope = scope
        self.token: Token[_Open | None] | None = None


class Traced(PolicyBase):
    """A span named ``name`` around everything inside it, made current while it runs.

    ``Pipeline(Traced("payments"), Retry(), CircuitBreaker())`` gives each call one
    ``payments`` span; the attempts' own spans nest under it, and what the inner policies do
    (``RetryScheduled``, ``CallRejected``, ``TimeoutExpired``, ``HedgeFired``,
    ``FallbackUsed``...) lands on it as span events, since it is the current span when they
    emit (``setup_tracing`` subscribes :class:`~tailguard.observe.tracing.SpanEvents`).
    Attributes: ``attributes``, ``tailguard.outcome`` (``ok``, the exception's type name, or
    ``cancelled``) and ``tailguard.retries``, the ``RetryScheduled`` events on it, if any.
    An exception is recorded and sets the span's status to ERROR, as with ``@traced``.

    Also ``@Traced("name")`` on an ``async def``, and ``async with Traced("name"):``.
    """

    __slots__ = ("_open", "attributes", "name")

    def __init__(self, name: str, *, attributes: Attributes | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError("Traced.name", name, "a non-empty string")
        self.name = name
        self.attributes: dict[str, str | bool | int | float] | None = (
            dict(attributes) if attributes else None
        )
        self._open: ContextVar[_Open | None] = ContextVar(f"tailguard.traced.{name}", default=None)

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        if _state.exemplars is None:  # tracing not set up
            return await fn(*args, **kwargs)
        scope = _start(self.name, self.attributes, None)
        if scope is None:  # inside an unsampled trace
            return await fn(*args, **kwargs)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            _close(scope, exc)
            raise
        _close(scope, None)
        return result

    async def __aenter__(self) -> Self:
        scope = None if _state.exemplars is None else _start(self.name, self.attributes, None)
        opened = _Open(scope)
        opened.token = self._open.set(opened)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        opened = self._open.get()
        if opened is None or opened.token is None:
            raise RuntimeError(f"{self!r}: __aexit__ without a matching __aenter__")
        self._open.reset(opened.token)
        if opened.scope is not None:
            _close(opened.scope, exc)


def _close(scope: _Scope, exc: BaseException | None) -> None:
    span = scope[0]
    if span.is_recording():
        _outcome(span, exc)
        events: Sequence[Any] = getattr(span, "events", ())  # the SDK's spans have them
        retries = sum(1 for e in events if getattr(e, "name", None) == "RetryScheduled")
        if retries:
            span.set_attribute(RETRIES, retries)
    _end(scope, exc)


# --- a cache tier ---------------------------------------------------------------------------


class _EntryLike(Protocol):
    @property
    def expires_at(self) -> float: ...


E = TypeVar("E", bound=_EntryLike)


class TierLike(Protocol[E]):
    """``tailguard.cache.Tier``, restated: observe does not import cache."""

    name: str
    local: bool

    async def get(self, key: str) -> E | None: ...

    async def get_many(self, keys: Sequence[str]) -> list[E | None]: ...

    async def set(self, key: str, entry: E) -> None: ...

    async def delete(self, key: str) -> None: ...


TIER = "tailguard.cache.tier"
OPERATION = "tailguard.cache.operation"
KEY = "tailguard.cache.key"
HIT = "tailguard.cache.hit"  # get: the tier had an entry, fresh or stale
STALE = "tailguard.cache.stale"  # get: that entry is past its TTL (kept for stale serving)
SIZE = "tailguard.cache.entry_size"  # bytes, when the tier reports it (MemoryTier does)
KEYS = "tailguard.cache.keys"  # get_many: keys asked for
HITS = "tailguard.cache.hits"  # get_many: entries found
GRANTED = "tailguard.cache.lease_granted"  # acquire_lease


class TracedTier(Generic[E]):
    """A cache tier with one span per operation: ``cache.<tier name>.<operation>``.

    ``TieredCache([MemoryTier(), TracedTier(RedisTier(redis))])``. It is a ``Tier`` with the
    wrapped tier's ``name`` and ``local``; each ``get``, ``get_many``, ``set``, ``delete``
    (and ``acquire_lease`` / ``release_lease`` / ``lease_empty`` when the wrapped tier has
    them, as ``RedisTier`` does, so leases keep working) runs in a span of its own, current
    while it runs, with attributes ``tailguard.cache.tier``, ``.operation``, ``tailguard.outcome``;
    for ``get`` ``.hit``, ``.stale`` (a hit past its TTL, by ``clock``) and ``.entry_size``
    (bytes, when the tier reports it: MemoryTier does); for ``get_many`` ``.keys`` and
    ``.hits``; for ``acquire_lease`` ``.lease_granted``. ``record_keys`` adds
    ``tailguard.cache.key`` (off by default: keys may hold personal data). A failure is
    recorded on the span, with status ERROR, and re-raised.

    It only observes: ``observed`` is the wrapped tier, which a ``TieredCache`` uses directly
    when it is its L1 ``MemoryTier``, read synchronously (so an L1 makes no spans, wrapped or
    not); wrap the tiers below it.
    """

    __slots__ = ("_attrs", "_clock", "_record_keys", "_spans", "inner", "local", "name")

    name: str
    local: bool

    def __new__(
        cls,
        tier: TierLike[E],
        *,
        record_keys: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> Self:
        if cls is TracedTier and _leases(tier):
            return cast(Self, object.__new__(_TracedLeasingTier))
        return object.__new__(cls)

    def __init__(
        self,
        tier: TierLike[E],
        *,
        record_keys: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for attr in ("name", "local", "get", "get_many", "set", "delete"):
            if not hasattr(tier, attr):
                raise ConfigurationError("TracedTier.tier", tier, "a cache tier (Tier)")
        self.inner = tier
        self.name = tier.name
        self.local = tier.local
        self._record_keys = record_keys
        self._clock = clock
        ops = ("get", "get_many", "set", "delete", "acquire_lease", "release_lease", "lease_empty")
        self._spans = {op: f"cache.{tier.name}.{op}" for op in ops}
        self._attrs: dict[str, dict[str, str | bool | int | float]] = {
            op: {TIER: tier.name, OPERATION: op} for op in ops
        }

    async def get(self, key: str) -> E | None:
        if _state.exemplars is None:
            return await self.inner.get(key)
        return await self._traced("get", key, self.inner.get(key), self._read)

    async def get_many(self, keys: Sequence[str]) -> list[E | None]:
        if _state.exemplars is None:
            return await self.inner.get_many(keys)
        return await self._traced("get_many", None, self.inner.get_many(keys), _read_many)

    async def set(self, key: str, entry: E) -> None:
        if _state.exemplars is None:
            return await self.inner.set(key, entry)
        return await self._traced("set", key, self.inner.set(key, entry), None)

    async def delete(self, key: str) -> None:
        if _state.exemplars is None:
            return await self.inner.delete(key)
        return await self._traced("delete", key, self.inner.delete(key), None)

    async def _traced(
        self,
        op: str,
        key: str | None,
        work: Awaitable[R],
        note: Callable[[Span, R], None] | None,
    ) -> R:
        attributes = self._attrs[op]
        if self._record_keys and key is not None:
            attributes = {**attributes, KEY: key}
        scope = _start(self._spans[op], attributes, None)
        if scope is None:  # inside an unsampled trace
            return await work
        try:
            result = await work
        except BaseException as exc:
            if scope[0].is_recording():
                _outcome(scope[0], exc)
            _end(scope, exc)
            raise
        span = scope[0]
        if span.is_recording():
            _outcome(span, None)
            if note is not None:
                note(span, result)
        _end(scope, None)
        return result

    def _read(self, span: Span, entry: E | None) -> None:
        span.set_attribute(HIT, entry is not None)
        if entry is None:
            return
        if entry.expires_at <= self._clock():
            span.set_attribute(STALE, True)
        size = getattr(entry, "size", None)
        if isinstance(size, int) and not isinstance(size, bool):
            span.set_attribute(SIZE, size)

    @property
    def observed(self) -> TierLike[E]:
        """The wrapped tier (``tailguard.cache.tiers.Observing``)."""
        return self.inner

    def __repr__(self) -> str:
        return f"TracedTier({self.inner!r})"


def _read_many(span: Span, entries: list[Any]) -> None:
    span.set_attribute(KEYS, len(entries))
    span.set_attribute(HITS, sum(1 for e in entries if e is not None))


def _leases(tier: object) -> bool:
    methods = ("acquire_lease", "release_lease", "lease_empty")
    return all(callable(getattr(tier, m, None)) for m in methods)


class _TracedLeasingTier(TracedTier[E]):
    """A ``TracedTier`` around a tier that leases (``Leasing``): ``TracedTier`` makes one."""

    __slots__ = ()

    async def acquire_lease(self, key: str, ttl: float) -> str:
        inner: Any = self.inner
        if _state.exemplars is None:
            return cast(str, await inner.acquire_lease(key, ttl))
        return await self._traced("acquire_lease", key, inner.acquire_lease(key, ttl), _granted)

    async def release_lease(self, key: str, token: str, empty_for: float = 0.0) -> None:
        inner: Any = self.inner
        work = inner.release_lease(key, token, empty_for)
        if _state.exemplars is None:
            return cast(None, await work)
        return await self._traced("release_lease", key, work, None)

    async def lease_empty(self, key: str) -> bool:
        inner: Any = self.inner
        if _state.exemplars is None:
            return cast(bool, await inner.lease_empty(key))
        return await self._traced("lease_empty", key, inner.lease_empty(key), None)


def _granted(span: Span, token: str) -> None:
    span.set_attribute(GRANTED, bool(token))
