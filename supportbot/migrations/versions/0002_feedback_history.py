"""Feedback: prompt messages, cited sources and found flag per answer; rating history;
verified answers; one interaction per answered platform message.

Revision ID: 0002_feedback_history
Revises: 0001_baseline
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_feedback_history"
down_revision: str | Sequence[str] | None = "0001_baseline"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)
_HAS_MESSAGE = sa.text("message_id <> ''")
# Rows recorded before this revision may repeat a message (nothing prevented it): the later
# ones get their id appended to the message id, so the unique index can be built and no row
# is lost.
_MARK_DUPLICATES = """
UPDATE interaction
SET message_id = message_id || '#duplicate-' || CAST(id AS TEXT)
WHERE message_id <> '' AND id NOT IN (
    SELECT MIN(id) FROM interaction WHERE message_id <> ''
    GROUP BY workspace, platform, channel_id, message_id
)
"""


def upgrade() -> None:
    # Plain ADD COLUMNs (SQLite has them): no copy of the table, whatever its size.
    op.add_column("interaction", sa.Column("sources", sa.JSON(), server_default="[]"))
    op.add_column("interaction", sa.Column("prompt_messages", sa.JSON(), server_default="[]"))
    op.add_column(
        "interaction", sa.Column("found", sa.Boolean(), nullable=False, server_default=sa.true())
    )
    op.execute(_MARK_DUPLICATES)
    op.create_index(
        "uq_interaction_message",
        "interaction",
        ["workspace", "platform", "channel_id", "message_id"],
        unique=True,
        sqlite_where=_HAS_MESSAGE,
        postgresql_where=_HAS_MESSAGE,
    )
    op.create_table(
        "rating_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("user_hash", sa.String(), nullable=False),
        sa.Column("old_value", sa.Integer(), nullable=False),
        sa.Column("new_value", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("event_id", sa.String(), nullable=True),
        sa.Column("event_at", _TIME, nullable=False),
        sa.Column("recorded_at", _TIME, nullable=False),
        sa.Column("stale", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["interaction_id"], ["interaction.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("interaction_id", "event_id"),
    )
    op.create_index("ix_rating_event_interaction_id", "rating_event", ["interaction_id"])
    op.create_table(
        "verified_answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace", sa.String(), nullable=False),
        sa.Column("question_key", sa.String(), nullable=False),
        sa.Column("doc_id", sa.String(), nullable=False),
        sa.Column("question", sa.String(), nullable=False),
        sa.Column("answer", sa.String(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=True),
        sa.Column("promoted_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(["interaction_id"], ["interaction.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace", "question_key"),
    )


def downgrade() -> None:
    op.drop_table("verified_answer")
    op.drop_index("ix_rating_event_interaction_id", table_name="rating_event")
    op.drop_table("rating_event")
    op.drop_index("uq_interaction_message", table_name="interaction")
    with op.batch_alter_table("interaction") as batch:
        batch.drop_column("found")
        batch.drop_column("prompt_messages")
        batch.drop_column("sources")
