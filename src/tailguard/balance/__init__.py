"""Load balancing: sans-IO pickers, endpoint health, and HTTP client adapters.

::

    import httpx
    from tailguard.balance import BalancedTransport, LeastConnections

    transport = BalancedTransport(["http://10.0.0.7:8000", "http://10.0.0.8:8000"])
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get("http://catalog/products/42")

Pickers (``pickers.py``): :class:`RoundRobin`, :class:`LeastConnections`, :class:`Weighted`
(nginx's smooth weighted round robin), :class:`IPHash` (consistent), :class:`PowerOfTwo` (P2C
with peak-EWMA latency, the default). Health (``health.py``): :class:`OutlierDetection`
(passive ejection) and :class:`HealthCheck` (active). :class:`Balancer` (``balancer.py``) joins a
picker, health, a circuit breaker per endpoint and retries on another endpoint; the adapters
run it: :class:`BalancedTransport` for httpx (``transports.py``) and :class:`BalancedSession` for
aiohttp (``session.py``).

``import tailguard.balance`` stays light: the two adapters, the only modules that import httpx
or aiohttp, are loaded on first access to their names (``tailguard.balance.BalancedTransport``),
or imported directly from ``tailguard.balance.transports`` / ``tailguard.balance.session``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tailguard.balance._endpoint import Endpoint
from tailguard.balance.balancer import Balancer, Lease, is_idempotent
from tailguard.balance.health import HealthCheck, OutlierDetection
from tailguard.balance.pickers import (
    IPHash,
    LeastConnections,
    Picker,
    PowerOfTwo,
    RoundRobin,
    Weighted,
)

if TYPE_CHECKING:
    from tailguard.balance.session import BalancedSession
    from tailguard.balance.transports import BalancedTransport

__all__ = [
    "BalancedSession",
    "BalancedTransport",
    "Balancer",
    "Endpoint",
    "HealthCheck",
    "IPHash",
    "Lease",
    "LeastConnections",
    "OutlierDetection",
    "Picker",
    "PowerOfTwo",
    "RoundRobin",
    "Weighted",
    "is_idempotent",
]

_LAZY = {
    "BalancedTransport": "tailguard.balance.transports",
    "BalancedSession": "tailguard.balance.session",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tailguard.balance' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
