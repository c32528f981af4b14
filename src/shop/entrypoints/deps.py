"""Dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from shop.service_layer.services import Services

__all__ = ["ServicesDep", "services"]


def services(request: Request) -> Services:
    """The process's parts, built by the lifespan."""
    svc: Services = request.app.state.services
    return svc


ServicesDep = Annotated[Services, Depends(services)]
