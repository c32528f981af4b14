"""Request and response bodies (separate from the table models). Unknown fields are refused."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shop.domain.model import MAX_QUANTITY

__all__ = [
    "CartItemIn",
    "CartOut",
    "OrderLineOut",
    "OrderOut",
    "OrdersPage",
    "PriceIn",
    "ProductOut",
    "ProductsPage",
    "ProfileIn",
    "ProfileOut",
    "TokenOut",
]

MAX_ID = 2**62
"""The largest id any route accepts (ids are 64-bit in PostgreSQL)."""


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CartItemIn(_In):
    product_id: int = Field(ge=1, le=MAX_ID)
    quantity: int = Field(1, ge=1, le=MAX_QUANTITY)


class ProfileIn(_In):
    name: str = Field(min_length=1, max_length=100)


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


def detail(message: str, **extra: Any) -> dict[str, Any]:
    """An error body: ``{"detail": message, ...}``."""
    return {"detail": message, **extra}
