"""Slack assistant: each workspace's suggested prompts (issue 12).

Revision ID: 0009_assistant_prompts
Revises: 0008_console_users
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_assistant_prompts"
down_revision: str | Sequence[str] | None = "0008_console_users"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assistant_prompt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "position"),
    )
    op.create_index(
        "ix_assistant_prompt_workspace_id", "assistant_prompt", ["workspace_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_assistant_prompt_workspace_id", table_name="assistant_prompt")
    op.drop_table("assistant_prompt")
