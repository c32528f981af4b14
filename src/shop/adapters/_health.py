"""The health check the HTTP clients share: ``GET /healthz`` on a replica the balancer picks."""

from __future__ import annotations

from typing import Any

__all__ = ["check_health"]


async def check_health(session: Any, name: str, error: type[Exception]) -> None:
    """Raise ``error`` unless a replica behind ``session`` (a ``BalancedSession``) answers
    ``GET /healthz`` with 200; ``name`` says which service in the message."""
    import aiohttp

    try:
        response = await session.get("/healthz")
        async with response:
            if response.status != 200:
                raise error(f"{name} health: {response.status}")
    except aiohttp.ClientError as exc:
        raise error(f"{name}: {exc!r}") from exc
