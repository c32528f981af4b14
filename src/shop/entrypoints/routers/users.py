"""``/users/{id}``: the profile (cached), the dashboard (concurrent), order history (eager)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from shop.entrypoints.auth import Principal, self_only
from shop.entrypoints.deps import ServicesDep
from shop.entrypoints.schemas import DashboardOut, OrdersPage, ProfileIn, ProfileOut, errors
from shop.service_layer import handlers, views

router = APIRouter(tags=["users"])
Self = Annotated[Principal, Depends(self_only)]
PRIVATE = {"Cache-Control": "private, no-store"}
ERRORS = errors(401, (403, "this is another user's data"), (404, "no such user"), 422, 503)


@router.get("/users/{user_id}", response_model=ProfileOut, responses=ERRORS)
async def get_profile(user_id: int, svc: ServicesDep, me: Self) -> Any:
    """The user's profile, read through the tiered cache."""
    return await views.profile(svc, me.user_id)


@router.patch(
    "/users/{user_id}", response_model=ProfileOut, responses={**ERRORS, **errors(400, 413)}
)
async def patch_profile(user_id: int, body: ProfileIn, svc: ServicesDep, me: Self) -> Any:
    """Rename the user; every instance's cached profile is evicted."""
    return await handlers.update_profile(svc, me.user_id, name=body.name)


@router.get("/users/{user_id}/dashboard", response_model=DashboardOut, responses=ERRORS)
async def get_dashboard(user_id: int, svc: ServicesDep, me: Self) -> Any:
    """Profile, recent orders and recommendations fetched concurrently; recommendations have
    their own timeout and fall back to the user's last ones or to popular products."""
    return await views.dashboard(svc, me.user_id)


@router.get("/users/{user_id}/orders", response_model=OrdersPage, responses=ERRORS)
async def get_orders(
    user_id: int,
    svc: ServicesDep,
    me: Self,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[
        str | None,
        Query(pattern=r"^[1-9][0-9]{0,17}$", description="next_cursor of the previous page"),
    ] = None,
) -> Any:
    """Confirmed orders, newest first, with items and products eager-loaded (two queries a
    page), keyset-paginated."""
    before = int(cursor) if cursor is not None else None
    return await views.orders_page(svc, me.user_id, before=before, limit=limit)
