"""Web console users, their workspace grants and failed sign-ins (issue 14).

Revision ID: 0008_console_users
Revises: 0007_handoffs
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0008_console_users"
down_revision: str | Sequence[str] | None = "0007_handoffs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # placeholder: filled in by the work it names


def downgrade() -> None:
    pass
