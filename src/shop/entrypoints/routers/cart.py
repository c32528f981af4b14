"""``/cart``: the session's cart, in the session store, rate-limited per user."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Response, status

from shop.entrypoints.auth import Principal, current_user
from shop.entrypoints.deps import ServicesDep
from shop.entrypoints.schemas import MAX_ID, CartItemIn, CartOut, errors
from shop.service_layer import handlers
from tailguard.ratelimit import rate_limit_headers

router = APIRouter(tags=["cart"], responses=errors(401, 429, 503))
_log = logging.getLogger("shop.cart")


async def limited_user(
    response: Response, svc: ServicesDep, me: Annotated[Principal, Depends(current_user)]
) -> Principal:
    """The signed-in user, within the cart's per-user rate limit (429 with Retry-After and
    RateLimit headers beyond it). The limit fails open: a dead limiter store never blocks."""
    limiter = svc.limiter
    if limiter is None:
        return me
    try:
        decision = await limiter.check(f"user:{me.user_id}")
    except Exception as exc:
        _log.warning("cart rate limiter unavailable, failing open: %r", exc)
        return me
    headers = dict(rate_limit_headers("cart", limiter, decision))
    if not decision.allowed:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, "rate limit exceeded", headers=headers
        )
    response.headers.update(headers)
    return me


Me = Annotated[Principal, Depends(limited_user)]


@router.get("/cart", response_model=CartOut)
async def get_cart(svc: ServicesDep, me: Me) -> Any:
    """The cart of the session."""
    cart = await svc.sessions.load(me.user_id, me.session_id)
    return CartOut.of(cart.lines)


@router.post(
    "/cart/items",
    response_model=CartOut,
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, (404, "no such product"), 413, 422),
)
async def add_item(body: CartItemIn, svc: ServicesDep, me: Me) -> Any:
    """Add units of a product (422 beyond 100 of one product or 50 products)."""
    cart = await handlers.add_to_cart(
        svc, me.user_id, me.session_id, body.product_id, body.quantity
    )
    return CartOut.of(cart.lines)


@router.delete(
    "/cart/items/{product_id}",
    response_model=CartOut,
    responses=errors((404, "the product is not in the cart"), 422),
)
async def remove_item(
    product_id: Annotated[int, Path(ge=1, le=MAX_ID)], svc: ServicesDep, me: Me
) -> Any:
    """Drop a product from the cart (404 when it is not in it)."""
    cart = await handlers.remove_from_cart(svc, me.user_id, me.session_id, product_id)
    return CartOut.of(cart.lines)
