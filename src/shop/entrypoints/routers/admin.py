"""``/admin``: catalogue writes, with the admin token (``X-Admin-Token``)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request, status

from shop.entrypoints.deps import ServicesDep
from shop.entrypoints.schemas import MAX_ID, PriceIn, ProductOut, errors
from shop.service_layer import handlers, views

router = APIRouter(tags=["admin"])


async def admin(
    request: Request, x_admin_token: Annotated[str | None, Header(max_length=200)] = None
) -> None:
    """403 unless ``X-Admin-Token`` is the admin token."""
    expected: str = request.app.state.admin_token
    # Bytes: compare_digest raises TypeError (a 500) for a str with non-ASCII characters.
    if x_admin_token is None or not hmac.compare_digest(x_admin_token.encode(), expected.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin token required")


@router.patch(
    "/admin/products/{product_id}",
    response_model=ProductOut,
    dependencies=[Depends(admin)],
    responses=errors(400, (403, "admin token required"), (404, "no such product"), 413, 422, 503),
)
async def change_price(
    product_id: Annotated[int, Path(ge=1, le=MAX_ID)], body: PriceIn, svc: ServicesDep
) -> Any:
    """Set a product's price; every instance's cached copy is evicted."""
    return await handlers.change_price(svc, product_id, body.price_cents)


@router.get(
    "/admin/stats",
    dependencies=[Depends(admin)],
    responses=errors((403, "admin token required")),
)
async def stats(svc: ServicesDep) -> Any:
    """Confirmed orders and revenue per day over the last 30 days, across every shard at once
    (each within its timeout); ``shards`` says which answered and ``complete`` whether all
    did (a missing shard's orders are missing from the sums, never guessed)."""
    return await views.order_stats(svc)
