"""The shard map: how many of SHOP_DATABASE_URLS are in use, and a reshard's freeze.

Revision ID: 0003
Revises: 0002
Created: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shard_map",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shards", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("frozen_from", sa.Integer(), nullable=True),
        sa.Column("frozen_to", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shard_map")),
    )


def downgrade() -> None:
    op.drop_table("shard_map")
