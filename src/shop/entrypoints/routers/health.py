"""``/healthz`` (the process is up) and ``/readyz`` (it can serve: the database answers).

Readiness is what a load balancer acts on, so it fails only for what another instance could do
better: without its database an instance serves nothing useful. Redis, the payment gateway and
the recommender are shared by every instance; when one of them is down, taking every instance
out of the balancer would turn a degraded shop (catalogue reads from the database, carts 503)
into a dead one. Those are reported as ``degraded`` with ``ready`` still true.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from shop.entrypoints.deps import ServicesDep
from shop.service_layer.services import Services

router = APIRouter(tags=["health"])

REQUIRED = ("database",)
"""The dependencies without which the instance is not ready (503)."""


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """200 while the process serves."""
    return {"status": "ok"}


def _checks(svc: Services) -> dict[str, Callable[[], Awaitable[Any]]]:
    async def database() -> None:
        async with svc.extras["engine"].connect() as conn:
            await conn.execute(text("SELECT 1"))

    checks: dict[str, Callable[[], Awaitable[Any]]] = {
        "database": database,
        "sessions": svc.sessions.ping,
        "payments": svc.payments.ping,
        "recommender": svc.recommender.ping,
    }
    if svc.extras.get("redis") is not None:
        checks["redis"] = svc.extras["redis"].ping
    return checks


@router.get(
    "/readyz", responses={503: {"description": "a dependency is down (the same body, ready false)"}}
)
async def readyz(svc: ServicesDep) -> JSONResponse:
    """Each dependency within ``SHOP_READY_TIMEOUT`` seconds, the payment breaker's state, and
    the practices switched to their naive twin; 503 only when the database is down (the others
    are ``degraded``)."""
    timeout = svc.settings.ready_timeout

    async def run(check: Callable[[], Awaitable[Any]]) -> str:
        try:
            await asyncio.wait_for(check(), timeout)
        except Exception as exc:
            return f"down: {type(exc).__name__}"
        return "ok"

    checks = _checks(svc)
    results = await asyncio.gather(*(run(check) for check in checks.values()))
    status = dict(zip(checks, results, strict=True))
    breaker = svc.extras.get("breaker")
    if breaker is not None:
        status["payments_breaker"] = str(breaker.state)
        if breaker.state == "open":
            status["payments"] = "down: circuit open"
    degraded = sorted(k for k, v in status.items() if k not in REQUIRED and v.startswith("down"))
    ready = all(status[k] == "ok" for k in REQUIRED)
    body = {
        "ready": ready,
        "degraded": degraded,
        "dependencies": status,
        "naive": sorted(str(p) for p in svc.settings.naive),
    }
    return JSONResponse(body, status_code=200 if ready else 503)
