"""The schema, and the imperative mapping of the domain's plain classes onto it (cosmicpython).

The tables are the single description of the schema: the Alembic migrations create exactly
these (``tests/shop`` checks that ``alembic upgrade head`` and ``metadata`` agree).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import registry, relationship

from shop.domain.model import Inventory, Order, OrderItem, Product, User

__all__ = [
    "idempotency",
    "inventory",
    "metadata",
    "order_emails",
    "order_items",
    "orders",
    "outbox",
    "processed_events",
    "product_sales",
    "products",
    "shard_map",
    "start_mappers",
    "users",
]

# Named constraints, so migrations on PostgreSQL and SQLite name them the same way.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BigInteger ids on PostgreSQL, INTEGER on SQLite (where only INTEGER PRIMARY KEY autoincrements).
Id = BigInteger().with_variant(Integer(), "sqlite")

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("name", String(100), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("created_at", DateTime(), nullable=False),
)

products = Table(
    "products",
    metadata,
    Column("id", Id, primary_key=True),
    Column("sku", String(32), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("category", String(50), nullable=False),
    Column("price_cents", Integer(), nullable=False),
    Column("description", Text(), nullable=False, default=""),
    Index("ix_products_category_id", "category", "id"),
)

inventory = Table(
    "inventory",
    metadata,
    Column("product_id", Id, ForeignKey("products.id"), primary_key=True),
    Column("on_hand", Integer(), nullable=False),
    Column("reserved", Integer(), nullable=False, default=0),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Id, primary_key=True),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("total_cents", BigInteger(), nullable=False),
    Column("idempotency_key", String(200), nullable=True),
    Column("charge_id", String(64), nullable=True),
    Column("created_at", DateTime(), nullable=False),
    # The keyset pagination of a user's orders reads this index backwards.
    Index("ix_orders_user_id_id", "user_id", "id"),
    UniqueConstraint("user_id", "idempotency_key", name="uq_orders_user_id_idempotency_key"),
)

order_items = Table(
    "order_items",
    metadata,
    Column("id", Id, primary_key=True),
    Column("order_id", Id, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("product_id", Id, ForeignKey("products.id"), nullable=False),
    Column("quantity", Integer(), nullable=False),
    Column("price_cents", Integer(), nullable=False),
    Index("ix_order_items_order_id", "order_id"),
)

idempotency = Table(
    "idempotency",
    metadata,
    # The first final answer to (user, Idempotency-Key), replayed for every repeat.
    Column("user_id", Id, ForeignKey("users.id"), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("status_code", Integer(), nullable=False),
    Column("body", JSON(), nullable=False),
    Column("created_at", DateTime(), nullable=False),
)

# The transactional outbox: an integration event is written here in the transaction that made
# it happen; the relay publishes unsent rows (``sent_at`` null) in id order and marks them.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True),
    # The event's identity everywhere downstream (stream entry, processed_events): unique across
    # databases, so events of different shards never collide.
    Column("event_id", String(36), nullable=False, unique=True),
    Column("topic", String(64), nullable=False),
    Column("payload", JSON(), nullable=False),
    Column("created_at", DateTime(), nullable=False),
    Column("sent_at", DateTime(), nullable=True),
    Index("ix_outbox_sent_at_id", "sent_at", "id"),
)

# The event worker's effects, each in one transaction with the row that says it is done.
processed_events = Table(
    "processed_events",
    metadata,
    Column("consumer", String(64), primary_key=True),
    Column("event_id", String(36), primary_key=True),
    Column("processed_at", DateTime(), nullable=False),
)

product_sales = Table(
    "product_sales",
    metadata,
    # Inventory counters kept by the worker from order events (units, not money).
    Column("product_id", Id, ForeignKey("products.id"), primary_key=True),
    Column("reserved", BigInteger(), nullable=False, default=0),
    Column("sold", BigInteger(), nullable=False, default=0),
    Column("released", BigInteger(), nullable=False, default=0),
)

order_emails = Table(
    "order_emails",
    metadata,
    # The confirmation "email" of an order: written once, however often its event arrives.
    Column("order_id", Id, primary_key=True),
    Column("user_id", Id, nullable=False),
    Column("subject", String(200), nullable=False),
    Column("body", Text(), nullable=False),
    Column("created_at", DateTime(), nullable=False),
)

# In the primary: how many of SHOP_DATABASE_URLS are in use (none: all of them), and, while a
# reshard freezes the users it moves, the shard counts it moves between.
shard_map = Table(
    "shard_map",
    metadata,
    Column("id", Integer(), primary_key=True),
    Column("shards", Integer(), nullable=False),
    Column("epoch", Integer(), nullable=False),
    Column("frozen_from", Integer(), nullable=True),
    Column("frozen_to", Integer(), nullable=True),
    Column("updated_at", DateTime(), nullable=False),
)

mapper_registry = registry(metadata=metadata)


def start_mappers() -> None:
    """Map the domain classes onto the tables; safe to call more than once."""
    if mapper_registry.mappers:
        return
    mapper_registry.map_imperatively(User, users)
    product_mapper = mapper_registry.map_imperatively(Product, products)
    mapper_registry.map_imperatively(Inventory, inventory)
    mapper_registry.map_imperatively(
        OrderItem,
        order_items,
        # lazy="raise_on_sql" would hide the N+1 twin; the default lazy load is what it shows.
        properties={"product": relationship(product_mapper, lazy="select")},
    )
    mapper_registry.map_imperatively(
        Order,
        orders,
        properties={
            "items": relationship(
                OrderItem, lazy="select", order_by=order_items.c.id, cascade="all, delete-orphan"
            )
        },
    )
