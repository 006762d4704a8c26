"""Learning loop: evaluation runs of a workspace's question set, and drafted FAQ entries.

Revision ID: 0005_eval_runs
Revises: 0004_message_signals
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_eval_runs"
down_revision: str | Sequence[str] | None = "0004_message_signals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "eval_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace", sa.String(), nullable=False),
        sa.Column("trigger", sa.String(), nullable=False),
        sa.Column("questions", sa.Integer(), nullable=False),
        sa.Column("hit_at_5", sa.Float(), nullable=True),
        sa.Column("mrr_at_10", sa.Float(), nullable=True),
        sa.Column("answer_agreement", sa.Float(), nullable=True),
        sa.Column("changed_docs", sa.JSON(), nullable=True),
        sa.Column("results", sa.JSON(), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_eval_run_workspace", "eval_run", ["workspace"], unique=False)
    op.create_table(
        "gap_draft",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace", sa.String(), nullable=False),
        sa.Column("cluster_key", sa.String(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("questions", sa.JSON(), nullable=True),
        sa.Column("interaction_ids", sa.JSON(), nullable=True),
        sa.Column("asked", sa.Integer(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("references", sa.JSON(), nullable=True),
        sa.Column("drafted_by", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("doc_id", sa.String(), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("approved_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_gap_draft_workspace", "gap_draft", ["workspace"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_gap_draft_workspace", table_name="gap_draft")
    op.drop_table("gap_draft")
    op.drop_index("ix_eval_run_workspace", table_name="eval_run")
    op.drop_table("eval_run")
