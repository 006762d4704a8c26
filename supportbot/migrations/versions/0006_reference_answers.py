"""Feedback: the time of each signal's event, and teammates' replies as reference answers.

Revision ID: 0006_reference_answers
Revises: 0005_eval_runs
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_reference_answers"
down_revision: str | Sequence[str] | None = "0005_eval_runs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("signal") as batch:
        batch.add_column(sa.Column("event_at", _TIME, nullable=True))
    op.create_table(
        "reference_answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace", sa.String(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(), nullable=False),
        sa.Column("agrees", sa.Boolean(), nullable=False),
        sa.Column("platform", sa.String(), nullable=False),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("author_hash", sa.String(), nullable=False),
        sa.Column("event_at", _TIME, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(["interaction_id"], ["interaction.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("interaction_id", "event_id"),
    )
    op.create_index(
        "ix_reference_answer_interaction_id", "reference_answer", ["interaction_id"], unique=False
    )
    op.create_index(
        "ix_reference_answer_workspace", "reference_answer", ["workspace"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_reference_answer_workspace", table_name="reference_answer")
    op.drop_index("ix_reference_answer_interaction_id", table_name="reference_answer")
    op.drop_table("reference_answer")
    with op.batch_alter_table("signal") as batch:
        batch.drop_column("event_at")
