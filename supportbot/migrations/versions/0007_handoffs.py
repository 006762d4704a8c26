"""Handoffs to humans and each workspace's escalation target (issue 12).

Revision ID: 0007_handoffs
Revises: 0006_reference_answers
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_handoffs"
down_revision: str | Sequence[str] | None = "0006_reference_answers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_TIME = sa.DateTime(timezone=True)
_OPEN = sa.text("resolved_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "escalation_target",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace", sa.String(), nullable=False),
        sa.Column("slack_channels", sa.JSON(), nullable=True),
        sa.Column("slack_usergroups", sa.JSON(), nullable=True),
        sa.Column("discord_channel", sa.String(), nullable=True),
        sa.Column("discord_role", sa.String(), nullable=True),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace"),
    )
    op.create_table(
        "handoff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace", sa.String(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=True),
        sa.Column("platform", sa.String(), nullable=False),
        sa.Column("team_id", sa.String(), nullable=False),
        sa.Column("channel_id", sa.String(), nullable=False),
        sa.Column("thread_id", sa.String(), nullable=False),
        sa.Column("asker_hash", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("notice_message_id", sa.String(), nullable=False),
        sa.Column("requested_at", _TIME, nullable=False),
        sa.Column("notified_at", _TIME, nullable=True),
        sa.Column("first_human_reply_at", _TIME, nullable=True),
        sa.Column("resolved_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(["interaction_id"], ["interaction.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_handoff_workspace", "handoff", ["workspace"], unique=False)
    op.create_index(
        "uq_handoff_open_thread",
        "handoff",
        ["workspace", "platform", "team_id", "channel_id", "thread_id"],
        unique=True,
        sqlite_where=_OPEN,
        postgresql_where=_OPEN,
    )


def downgrade() -> None:
    op.drop_index("uq_handoff_open_thread", table_name="handoff")
    op.drop_index("ix_handoff_workspace", table_name="handoff")
    op.drop_table("handoff")
    op.drop_table("escalation_target")
