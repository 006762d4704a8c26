"""Tenant activity: when each workspace was last used, for cold tenants (issue 15).

Revision ID: 0010_tenant_activity
Revises: 0009_assistant_prompts
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_tenant_activity"
down_revision: str | Sequence[str] | None = "0009_assistant_prompts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_TIME = sa.DateTime(timezone=True)
_COLUMNS = ("last_used_at", "deactivated_at", "reactivated_at")


def upgrade() -> None:
    with op.batch_alter_table("workspace") as batch:
        for name in _COLUMNS:
            batch.add_column(sa.Column(name, _TIME, nullable=True))
        batch.add_column(sa.Column("reactivation_ms", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workspace") as batch:
        batch.drop_column("reactivation_ms")
        for name in reversed(_COLUMNS):
            batch.drop_column(name)
