"""Request and response bodies (separate from the table models). Unknown fields are refused."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shop.domain.model import MAX_QUANTITY

__all__ = [
    "CartItemIn",
    "CartOut",
    "ErrorOut",
    "FieldError",
    "OrderLineOut",
    "OrderOut",
    "OrdersPage",
    "PriceIn",
    "ProductOut",
    "ProductsPage",
    "ProfileIn",
    "ProfileOut",
    "TokenOut",
    "errors",
]

MAX_ID = 2**62
"""The largest id any route accepts (ids are 64-bit in PostgreSQL)."""


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CartItemIn(_In):
    product_id: int = Field(ge=1, le=MAX_ID)
    quantity: int = Field(1, ge=1, le=MAX_QUANTITY)


NO_NUL = r"^[^\x00]*$"
"""Text that PostgreSQL can store (it refuses NUL characters in text: a 500 if let through)."""


class ProfileIn(_In):
    name: str = Field(min_length=1, max_length=100, pattern=NO_NUL)


class PriceIn(_In):
    price_cents: int = Field(ge=0, le=100_000_000)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class ProfileOut(BaseModel):
    id: int
    email: str
    name: str
    created_at: str


class ProductOut(BaseModel):
    id: int
    sku: str
    name: str
    category: str
    price_cents: int
    description: str


class ProductsPage(BaseModel):
    items: list[ProductOut]
    next_cursor: str | None


class OrderLineOut(BaseModel):
    product_id: int
    name: str | None
    quantity: int
    price_cents: int


class OrderOut(BaseModel):
    id: int
    status: str
    total_cents: int
    charge_id: str | None
    created_at: str
    items: list[OrderLineOut]


class OrdersPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None


class CartLineOut(BaseModel):
    product_id: int
    quantity: int


class CartOut(BaseModel):
    items: list[CartLineOut]

    @classmethod
    def of(cls, lines: dict[int, int]) -> CartOut:
        return cls(items=[CartLineOut(product_id=p, quantity=q) for p, q in sorted(lines.items())])


class DashboardOut(BaseModel):
    user: ProfileOut
    recent_orders: list[OrderOut]
    recommendations: list[ProductOut]
    recommendations_source: str


class FieldError(BaseModel):
    """One field of a malformed request: where (``loc``), what (``msg``) and its ``type``."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int]
    msg: str
    type: str


class ErrorOut(BaseModel):
    """Every error answer: ``detail`` says what was wrong, as a message or, for a malformed
    request, as the list of its field errors. Some add fields (``order_id``, ``shortfalls``)."""

    model_config = ConfigDict(extra="allow")

    detail: str | list[FieldError]


_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 1},
    }
}
_ERRORS = {
    400: "the body could not be read (not UTF-8)",
    401: "not signed in, or the token is not valid or has expired",
    402: "the charge was declined",
    403: "forbidden",
    404: "not found",
    409: "conflict",
    413: "the request body is over the limit (SHOP_MAX_BODY_BYTES)",
    422: "the request is malformed, or breaks a rule of the shop",
    429: "over the rate limit: retry after Retry-After seconds",
    503: "a backend is unavailable or overloaded: retry after Retry-After seconds",
}


def errors(*answers: int | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` documenting the error answers of a route, each an ``ErrorOut`` (429 and 503
    with Retry-After): a status code, or ``(code, description)`` to say more than the default."""
    responses: dict[int | str, dict[str, Any]] = {}
    for answer in answers:
        code, description = answer if isinstance(answer, tuple) else (answer, _ERRORS[answer])
        responses[code] = {"model": ErrorOut, "description": description}
        if code in (429, 503):
            responses[code]["headers"] = _RETRY_AFTER
    return responses


def detail(message: str, **extra: Any) -> dict[str, Any]:
    """An error body: ``{"detail": message, ...}``."""
    return {"detail": message, **extra}
