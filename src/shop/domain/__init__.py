"""The shop's domain: plain models, rules and events; it imports no framework or driver."""

from shop.domain.events import (
    Event,
    OrderConfirmed,
    OrderCreated,
    OrderFailed,
    ProductPriceChanged,
    ProfileUpdated,
)
from shop.domain.model import (
    MAX_QUANTITY,
    Cart,
    DomainError,
    EmptyCart,
    InvalidQuantity,
    Inventory,
    Order,
    OrderItem,
    OrderStatus,
    OutOfStock,
    PaymentDeclined,
    Product,
    UnknownProduct,
    User,
)

__all__ = [
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
