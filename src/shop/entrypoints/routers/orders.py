"""``POST /orders``: the cart becomes an order, charged once or not at all."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, status
from fastapi.responses import JSONResponse

from shop.entrypoints.auth import Principal, current_user
from shop.entrypoints.deps import ServicesDep
from shop.entrypoints.schemas import OrderOut, errors
from shop.service_layer import handlers

router = APIRouter(tags=["orders"])

_ERRORS = errors(
    401,
    (402, "the charge was declined, or refused (order_id: the abandoned order)"),
    (409, "out of stock (shortfalls: product id to units missing), or the same key is in progress"),
    (422, "the cart is empty, or the request is malformed"),
    (503, "payments unavailable (breaker open, bulkhead full, outcome unknown): retry later"),
)


@router.post(
    "/orders",
    response_model=OrderOut,
    status_code=status.HTTP_201_CREATED,
    responses=_ERRORS,
)
async def place_order(
    svc: ServicesDep,
    me: Annotated[Principal, Depends(current_user)],
    idempotency_key: Annotated[
        str,
        Header(
            min_length=8,
            max_length=200,
            pattern=r"^[A-Za-z0-9_.:-]+$",
            description="a client-chosen key; a repeat returns the first answer",
        ),
    ],
) -> Any:
    """Order the cart: validate, reserve stock, charge, confirm. A repeated Idempotency-Key
    returns the first final answer."""
    outcome = await handlers.place_order(svc, me.user_id, me.session_id, idempotency_key)
    headers = {}
    if outcome.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(outcome.retry_after)))
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)
