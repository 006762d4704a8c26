"""Tenant activity: when each workspace was last used, for cold tenants (issue 15).

Revision ID: 0010_tenant_activity
Revises: 0009_assistant_prompts
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0010_tenant_activity"
down_revision: str | Sequence[str] | None = "0009_assistant_prompts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # placeholder: filled in by the work it names


def downgrade() -> None:
    pass
