"""Delivery leases: a claim on a message records its holder, lease, message and placeholder,
so that a replica that dies mid-answer has its question answered by another (issue 15).

Claims made before this revision are done (they were permanent).

Revision ID: 0011_delivery_leases
Revises: 0010_tenant_activity
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_delivery_leases"
down_revision: str | Sequence[str] | None = "0010_tenant_activity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "processeddelivery"
_INDEX = "ix_processeddelivery_open"


def upgrade() -> None:
    with op.batch_alter_table(_TABLE) as batch:
        batch.add_column(sa.Column("done", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("holder", sa.String(), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("message", sa.String(), nullable=True))
        batch.add_column(sa.Column("progress_id", sa.String(), nullable=True))
    op.create_index(_INDEX, _TABLE, ["done", "lease_until"])


def downgrade() -> None:
    op.drop_index(_INDEX, table_name=_TABLE)
    with op.batch_alter_table(_TABLE) as batch:
        for name in ("progress_id", "message", "attempts", "lease_until", "holder", "done"):
            batch.drop_column(name)
