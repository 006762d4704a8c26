"""Handoffs to humans and each workspace's escalation target (issue 12).

Revision ID: 0007_handoffs
Revises: 0006_reference_answers
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0007_handoffs"
down_revision: str | Sequence[str] | None = "0006_reference_answers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # placeholder: filled in by the work it names


def downgrade() -> None:
    pass
