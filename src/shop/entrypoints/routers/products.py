"""``/products``: the catalogue, cached (L1/L2) and cacheable by a CDN (L4)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from shop.entrypoints.deps import ServicesDep
from shop.entrypoints.schemas import MAX_ID, NO_NUL, ProductOut, ProductsPage, errors
from shop.service_layer import views

router = APIRouter(tags=["products"])


@router.get("/products", response_model=ProductsPage, responses=errors(422, 503))
async def list_products(
    svc: ServicesDep,
    category: Annotated[str | None, Query(min_length=1, max_length=50, pattern=NO_NUL)] = None,
    cursor: Annotated[
        str | None,
        Query(pattern=r"^[1-9][0-9]{0,17}$", description="next_cursor of the previous page"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Any:
    """A page of products in id order, optionally of one category."""
    after = int(cursor) if cursor is not None else 0
    return await views.products_page(svc, category=category, after=after, limit=limit)


@router.get(
    "/products/{product_id}",
    response_model=ProductOut,
    responses=errors((404, "no such product"), 422, 503),
)
async def get_product(product_id: Annotated[int, Path(ge=1, le=MAX_ID)], svc: ServicesDep) -> Any:
    """One product, through the tiered cache, with an ETag and Cache-Control."""
    return await views.product(svc, product_id)
