"""Slack assistant: each workspace's suggested prompts (issue 12).

Revision ID: 0009_assistant_prompts
Revises: 0008_console_users
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0009_assistant_prompts"
down_revision: str | Sequence[str] | None = "0008_console_users"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # placeholder: filled in by the work it names


def downgrade() -> None:
    pass
