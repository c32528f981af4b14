"""The shop's domain rules, with no database: plain objects."""

from __future__ import annotations

import pytest

from shop.domain import (
    MAX_QUANTITY,
    Cart,
    EmptyCart,
    InvalidQuantity,
    Order,
    OrderConfirmed,
    OrderCreated,
    OrderFailed,
    OrderStatus,
    OutOfStock,
    Product,
    ProductPriceChanged,
    ProfileUpdated,
    UnknownProduct,
    User,
)
from shop.domain.model import MAX_CART_LINES, DomainError


def test_cart_adds_up_lines_and_refuses_quantities_out_of_range() -> None:
    cart = Cart()
    assert cart.add(7, 2) == 2
    assert cart.add(7, 3) == 5
    for bad in (0, -1, MAX_QUANTITY + 1):
        with pytest.raises(InvalidQuantity, match="between 1 and"):
            cart.add(8, bad)
    with pytest.raises(InvalidQuantity):
        cart.add(7, MAX_QUANTITY)  # 5 + 100 is over the line's limit
    assert cart.lines == {7: 5}  # a refused add changed nothing


def test_cart_holds_a_bounded_number_of_products() -> None:
    cart = Cart({pid: 1 for pid in range(1, MAX_CART_LINES + 1)})
    with pytest.raises(InvalidQuantity, match="at most"):
        cart.add(10_000, 1)
    assert cart.add(1, 1) == 2  # an existing line may still grow
    assert cart.remove(1)
    assert not cart.remove(1)


def test_order_from_cart_prices_lines_and_totals_in_cents() -> None:
    order = Order.from_cart(3, Cart({2: 3, 1: 1}), {1: 250, 2: 1999}, idempotency_key="k")
    assert [(i.product_id, i.quantity, i.price_cents) for i in order.items] == [
        (1, 1, 250),
        (2, 3, 1999),
    ]
    assert order.total_cents == 250 + 3 * 1999
    assert order.status == OrderStatus.PENDING


def test_order_refuses_an_empty_cart_and_unknown_products() -> None:
    with pytest.raises(EmptyCart):
        Order.from_cart(1, Cart(), {})
    with pytest.raises(UnknownProduct, match="product 9 does not exist"):
        Order.from_cart(1, Cart({9: 1}), {1: 100})


def test_order_lifecycle_records_events_and_a_confirmed_order_cannot_fail() -> None:
    order = Order.from_cart(3, Cart({1: 1}), {1: 100})
    order.id = 11
    order.placed()
    order.confirm("ch_1")
    order.confirm("ch_2")  # a repeat changes nothing
    assert order.charge_id == "ch_1"
    lines = ((1, 1, 100),)  # (product, quantity, unit price): what the event worker counts
    assert order.events == [
        OrderCreated(11, 3, 100, lines),
        OrderConfirmed(11, 3, 100, "ch_1", lines),
    ]
    with pytest.raises(DomainError, match="confirmed"):
        order.fail("late")
    pending = Order.from_cart(3, Cart({1: 1}), {1: 100})
    pending.id = 12
    pending.fail("declined")
    assert pending.events == [OrderFailed(12, 3, "declined", ((1, 1, 100),))]


def test_price_and_profile_changes_record_an_event_only_when_something_changed() -> None:
    product = Product("SKU-1", "Lamp", "home", 1000, id=5)
    product.change_price(1000)
    product.change_price(1200)
    assert product.events == [ProductPriceChanged(5, 1200)]
    with pytest.raises(DomainError, match="price_cents"):
        product.change_price(-1)
    user = User("a@shop.test", "Ada", "hash", id=4)
    user.update_profile(name="Ada")
    user.update_profile(name="Ada L.")
    assert user.events == [ProfileUpdated(4)]


def test_out_of_stock_names_every_shortfall() -> None:
    error = OutOfStock({3: 2, 1: 5})
    assert str(error) == "out of stock: product 1 short by 5, product 3 short by 2"
