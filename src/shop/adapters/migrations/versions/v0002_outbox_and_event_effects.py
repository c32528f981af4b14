"""The transactional outbox and the event worker's effects: outbox, processed_events,
product_sales (inventory counters), order_emails.

Revision ID: 0002
Revises: 0001
Created: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "order_emails",
        sa.Column("order_id", _id(), nullable=False),
        sa.Column("user_id", _id(), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_order_emails")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", _id(), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
    )
    op.create_index("ix_outbox_sent_at_id", "outbox", ["sent_at", "id"], unique=False)
    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("processed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_processed_events")),
    )
    op.create_table(
        "product_sales",
        sa.Column("product_id", _id(), nullable=False),
        sa.Column("reserved", sa.BigInteger(), nullable=False),
        sa.Column("sold", sa.BigInteger(), nullable=False),
        sa.Column("released", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_product_sales_product_id_products")
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_product_sales")),
    )


def downgrade() -> None:
    op.drop_table("product_sales")
    op.drop_table("processed_events")
    op.drop_index("ix_outbox_sent_at_id", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("order_emails")
