"""Dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from shop.service_layer.services import Services

__all__ = ["ServicesDep", "services"]


async def services(request: Request) -> Services:
    """The process's parts, built by the lifespan (async: a plain function would cost every
    request a hop to FastAPI's thread pool)."""
    svc: Services = request.app.state.services
    return svc


ServicesDep = Annotated[Services, Depends(services)]
