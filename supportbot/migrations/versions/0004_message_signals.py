"""Feedback: signals read from messages about the answer before them ("thanks 👍" in its thread).

Revision ID: 0004_message_signals
Revises: 0003_sync_sources
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_message_signals"
down_revision: str | Sequence[str] | None = "0003_sync_sources"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace", sa.String(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("platform", sa.String(), nullable=False),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("user_hash", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["interaction_id"], ["interaction.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("interaction_id", "event_id"),
    )
    op.create_index("ix_signal_interaction_id", "signal", ["interaction_id"], unique=False)
    op.create_index("ix_signal_workspace", "signal", ["workspace"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_signal_workspace", table_name="signal")
    op.drop_index("ix_signal_interaction_id", table_name="signal")
    op.drop_table("signal")
