"""Helpers for testing code that uses tailguard: a manual clock, a no-backoff switch, a recorder.

::

    from tailguard.testing import ManualClock, RecordingHook, no_backoff

    with no_backoff():          # Retry stops waiting between attempts
        await guarded_call()
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from tailguard._clock import ManualClock
from tailguard._config import CONFIG
from tailguard.events import Event, HookRegistry

__all__ = ["ManualClock", "RecordingHook", "no_backoff", "set_backoff"]

E = TypeVar("E", bound=Event)


def set_backoff(enabled: bool) -> None:
    """Turn ``Retry``'s backoff waits on or off for the whole process (a hedge delay is not a
    backoff: it stays)."""
    CONFIG.backoff_enabled = enabled


@contextmanager
def no_backoff() -> Iterator[None]:
    """Within the block, retries happen at once instead of after their backoff delay."""
    before = CONFIG.backoff_enabled
    CONFIG.backoff_enabled = False
    try:
        yield
    finally:
        CONFIG.backoff_enabled = before


class RecordingHook:
    """Subscribes to a registry and keeps every event it sees, for assertions."""

    def __init__(self, registry: HookRegistry, *types: type[Event]) -> None:
        self.events: list[Event] = []
        self._unsubscribe = registry.subscribe(self.events.append, *types)

    def of(self, kind: type[E]) -> list[E]:
        """The recorded events of type ``kind``, in order."""
        return [e for e in self.events if isinstance(e, kind)]

    def close(self) -> None:
        """Stop recording."""
        self._unsubscribe()
