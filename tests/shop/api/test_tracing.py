"""Placing an order is traced step by step, each step a child of the order's span."""

from __future__ import annotations

from tailguard.observe.tracing import memory_exporter, setup_tracing, shutdown_tracing
from tests.shop.conftest import ShopFactory, sign_in


async def test_each_step_of_an_order_is_a_span(shop: ShopFactory) -> None:
    setup_tracing("shop-test", exporter="memory", set_global=False)
    try:
        async with shop() as (_, client):
            headers = await sign_in(client, 3)
            await client.post("/cart/items", json={"product_id": 4}, headers=headers)
            memory_exporter().clear()
            placed = await client.post(
                "/orders", headers={"Idempotency-Key": "traced-order-1", **headers}
            )
            assert placed.status_code == 201, placed.text
        spans = memory_exporter().get_finished_spans()
    finally:
        shutdown_tracing()
    by_name = {s.name: s for s in spans}
    assert {"order.place", "order.reserve", "order.charge", "order.confirm"} <= set(by_name)
    root = by_name["order.place"]
    for step in ("order.reserve", "order.charge", "order.confirm"):
        parent = by_name[step].parent
        assert parent is not None
        assert parent.span_id == root.context.span_id
