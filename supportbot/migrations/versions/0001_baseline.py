"""Baseline: every table that existed before migrations.

Revision ID: 0001_baseline
Revises:
Create Date: 2026-11-24

Databases made before migrations had these tables from ``create_all``; each table (with its
indexes) is created only when missing, so adopting such a database keeps all of its rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_baseline"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def _create(
    name: str, *items: sa.schema.SchemaItem, indexes: Sequence[tuple[str, list[str], bool]] = ()
) -> None:
    """Create a table and its indexes unless a database made before migrations has it."""
    if sa.inspect(op.get_bind()).has_table(name):
        return
    op.create_table(name, *items)
    for index_name, columns, unique in indexes:
        op.create_index(index_name, name, columns, unique=unique)


def upgrade() -> None:
    _create(
        "workspace",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("tenant", sa.String(), nullable=False),
        sa.Column("embedding_model", sa.String(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant"),
        indexes=[("ix_workspace_name", ["name"], True)],
    )
    _create(
        "platformidentity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("external_id", sa.String(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "external_id"),
        indexes=[("ix_platformidentity_workspace_id", ["workspace_id"], False)],
    )
    _create(
        "botreply",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(), nullable=False),
        sa.Column("team_id", sa.String(), nullable=False),
        sa.Column("channel_id", sa.String(), nullable=False),
        sa.Column("thread_id", sa.String(), nullable=False),
        sa.Column("reply_message_id", sa.String(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "channel_id", "reply_message_id"),
        indexes=[
            ("ix_botreply_team_id", ["team_id"], False),
            ("ix_botreply_thread_id", ["thread_id"], False),
        ],
    )
    _create(
        "channelsetting",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(), nullable=False),
        sa.Column("team_id", sa.String(), nullable=False),
        sa.Column("channel_id", sa.String(), nullable=False),
        sa.Column("mode", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "team_id", "channel_id"),
    )
    _create(
        "directmessagechoice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(), nullable=False),
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("workspace", sa.String(), nullable=False),
        sa.Column("chosen_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "user_id"),
    )
    _create(
        "processeddelivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(), nullable=False),
        sa.Column("delivery_id", sa.String(), nullable=False),
        sa.Column("received_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "delivery_id"),
    )
    _create(
        "slack_installation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(), nullable=False),
        sa.Column("app_id", sa.String(), nullable=True),
        sa.Column("enterprise_id", sa.String(), nullable=True),
        sa.Column("enterprise_name", sa.String(), nullable=True),
        sa.Column("enterprise_url", sa.String(), nullable=True),
        sa.Column("team_id", sa.String(), nullable=True),
        sa.Column("team_name", sa.String(), nullable=True),
        sa.Column("bot_token_encrypted", sa.String(), nullable=True),
        sa.Column("bot_id", sa.String(), nullable=True),
        sa.Column("bot_user_id", sa.String(), nullable=True),
        sa.Column("bot_scopes", sa.String(), nullable=True),
        sa.Column("bot_refresh_token_encrypted", sa.String(), nullable=True),
        sa.Column("bot_token_expires_at", _TIME, nullable=True),
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("user_token_encrypted", sa.String(), nullable=True),
        sa.Column("user_scopes", sa.String(), nullable=True),
        sa.Column("user_refresh_token_encrypted", sa.String(), nullable=True),
        sa.Column("user_token_expires_at", _TIME, nullable=True),
        sa.Column("incoming_webhook_url_encrypted", sa.String(), nullable=True),
        sa.Column("incoming_webhook_channel", sa.String(), nullable=True),
        sa.Column("incoming_webhook_channel_id", sa.String(), nullable=True),
        sa.Column("incoming_webhook_configuration_url", sa.String(), nullable=True),
        sa.Column("is_enterprise_install", sa.Boolean(), nullable=False),
        sa.Column("token_type", sa.String(), nullable=True),
        sa.Column("installed_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        indexes=[
            (
                "slack_installation_lookup",
                ["client_id", "enterprise_id", "team_id", "user_id", "installed_at"],
                False,
            )
        ],
    )
    _create(
        "slack_bot_installation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(), nullable=False),
        sa.Column("app_id", sa.String(), nullable=True),
        sa.Column("enterprise_id", sa.String(), nullable=True),
        sa.Column("enterprise_name", sa.String(), nullable=True),
        sa.Column("team_id", sa.String(), nullable=True),
        sa.Column("team_name", sa.String(), nullable=True),
        sa.Column("bot_token_encrypted", sa.String(), nullable=True),
        sa.Column("bot_id", sa.String(), nullable=True),
        sa.Column("bot_user_id", sa.String(), nullable=True),
        sa.Column("bot_scopes", sa.String(), nullable=True),
        sa.Column("bot_refresh_token_encrypted", sa.String(), nullable=True),
        sa.Column("bot_token_expires_at", _TIME, nullable=True),
        sa.Column("is_enterprise_install", sa.Boolean(), nullable=False),
        sa.Column("installed_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        indexes=[
            (
                "slack_bot_installation_lookup",
                ["client_id", "enterprise_id", "team_id", "installed_at"],
                False,
            )
        ],
    )
    _create(
        "slack_oauth_state",
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("state"),
        indexes=[("ix_slack_oauth_state_expires_at", ["expires_at"], False)],
    )
    _create(
        "interaction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace", sa.String(), nullable=False),
        sa.Column("platform", sa.String(), nullable=False),
        sa.Column("channel_id", sa.String(), nullable=False),
        sa.Column("thread_id", sa.String(), nullable=False),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("user_hash", sa.String(), nullable=False),
        sa.Column("question", sa.String(), nullable=False),
        sa.Column("standalone_question", sa.String(), nullable=False),
        sa.Column("retrieved", sa.JSON(), nullable=True),
        sa.Column("answer", sa.String(), nullable=False),
        sa.Column("mode", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        indexes=[("ix_interaction_workspace", ["workspace"], False)],
    )
    _create(
        "rating",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("user_hash", sa.String(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(["interaction_id"], ["interaction.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("interaction_id", "user_hash"),
        indexes=[("ix_rating_interaction_id", ["interaction_id"], False)],
    )


def downgrade() -> None:
    for name in (
        "rating",
        "interaction",
        "slack_oauth_state",
        "slack_bot_installation",
        "slack_installation",
        "processeddelivery",
        "directmessagechoice",
        "channelsetting",
        "botreply",
        "platformidentity",
        "workspace",
    ):
        op.drop_table(name)
