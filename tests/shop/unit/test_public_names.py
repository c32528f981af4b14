"""The shop's public names, pinned: a change here is a change users see."""

from __future__ import annotations

import shop.domain
import shop.simulators
from shop.config import Naive


def test_domain_names() -> None:
    assert sorted(shop.domain.__all__) == sorted(
        [
            "MAX_QUANTITY",
            "Cart",
            "DomainError",
            "EmptyCart",
            "Event",
            "InvalidQuantity",
            "Inventory",
            "Order",
            "OrderConfirmed",
            "OrderCreated",
            "OrderFailed",
            "OrderItem",
            "OrderStatus",
            "OutOfStock",
            "PaymentDeclined",
            "Product",
            "ProductPriceChanged",
            "ProfileUpdated",
            "UnknownProduct",
            "User",
        ]
    )
    for name in shop.domain.__all__:
        assert getattr(shop.domain, name) is not None


def test_simulator_names() -> None:
    assert sorted(shop.simulators.__all__) == [
        "Behaviour",
        "RunningServer",
        "create_payments_app",
        "create_recommendations_app",
        "parse_behaviour",
        "serve_in_background",
    ]


def test_the_naive_twins_are_named_once() -> None:
    assert [p.value for p in Naive] == [
        "eager_loading",
        "concurrency",
        "cache",
        "timeouts",
        "breaker",
        "bulkhead",
        "retry_budget",
        "jitter",
        "rate_limit",
        "pool",
        "balancing",
    ]
