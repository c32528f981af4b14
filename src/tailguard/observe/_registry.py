"""The registry observe records into, and the metric families it keeps per registry.

prometheus_client refuses to register one name twice in a registry, so every family is made
once per registry and found again here: two middlewares or decorators on one registry share
their series.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from prometheus_client import CollectorRegistry

__all__ = ["REGISTRY", "family"]

REGISTRY = CollectorRegistry()
"""tailguard's default registry (not prometheus_client's global one: a library should not
write into the application's registry unless asked). ``metrics_app()`` serves it."""

T = TypeVar("T")

_families: dict[tuple[int, str], object] = {}
_keep: dict[int, CollectorRegistry] = {}  # the registries keyed by id() stay alive with them
_lock = threading.Lock()


def family(registry: CollectorRegistry, name: str, make: Callable[[CollectorRegistry], T]) -> T:
    """The metric family ``name`` of ``registry``, made by ``make(registry)`` the first time."""
    key = (id(registry), name)
    found = _families.get(key)
    if found is None:
        with _lock:
            found = _families.get(key)
            if found is None:
                found = _families[key] = make(registry)
                _keep[id(registry)] = registry
    return found  # type: ignore[return-value]
