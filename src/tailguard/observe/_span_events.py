"""Tailguard events as span events: what a policy or a cache did, on the span that called it."""

from __future__ import annotations

import dataclasses
from types import TracebackType
from typing import Self

from tailguard.events import Event, HookRegistry, hooks

__all__ = ["SpanEvents"]

_PRIMITIVE = (str, bool, int, float)
_FIELDS: dict[type[Event], tuple[str, ...]] = {}  # field names by event class, read once


def event_attributes(event: Event) -> dict[str, str | bool | int | float]:
    """The event's dataclass fields as span attributes: ``None`` left out, anything that is not
    a str, bool, int or float turned into its ``str``."""
    cls = type(event)
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    attributes: dict[str, str | bool | int | float] = {}
    for name in names:
        value = getattr(event, name)
        if value is None:
            continue
        attributes[name] = value if isinstance(value, _PRIMITIVE) else str(value)
    return attributes


class SpanEvents:
    """While subscribed, each tailguard event becomes a span event on the current span.

    Policies and caches emit their events synchronously, in the task that runs the call, so
    the current span is the caller's: a ``@traced`` function that reads a ``TieredCache``
    gets ``CacheHit(tier="memory")`` or ``CacheMiss`` + ``CacheLoad`` on its own span, and
    one that calls through a ``Retry`` gets its ``RetryScheduled`` events. Nothing is added
    when there is no current span or it is not recording (not sampled, or already ended).

    ``types`` limits the events (all by default); ``registry`` is the hook registry to
    subscribe to. Close it with :meth:`close`, or use it as a context manager::

        with SpanEvents():
            await handler()
    """

    __slots__ = ("_current_span", "_unsubscribe")

    def __init__(self, *types: type[Event], registry: HookRegistry = hooks) -> None:
        from opentelemetry.trace import get_current_span

        self._current_span = get_current_span
        self._unsubscribe = registry.subscribe(self, *types)

    def __call__(self, event: Event, /) -> None:
        span = self._current_span()
        if span.is_recording():
            span.add_event(type(event).__name__, event_attributes(event))

    def close(self) -> None:
        """Unsubscribe; calling it again does nothing."""
        self._unsubscribe()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
