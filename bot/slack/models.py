"""The Slack app's installations and OAuth states, in the project's relational database.

Rows mirror slack_sdk's own SQLAlchemy installation store (one row per install, the latest
``installed_at`` wins), except that every credential column holds a Fernet token, never the
credential itself: a copy of the database (a backup, a dump attached to a ticket) must not be
enough to post as the bot in a customer's workspace. The ``*_encrypted`` names say so to anyone
reading the tables.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel


class SlackInstallation(SQLModel, table=True):
    """One OAuth installation (bot and, when granted, installer user tokens) of one team/org."""

    __tablename__ = "slack_installation"
    __table_args__ = (
        Index(
            "slack_installation_lookup",
            "client_id",
            "enterprise_id",
            "team_id",
            "user_id",
            "installed_at",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    client_id: str
    app_id: str | None = None
    enterprise_id: str | None = None
    enterprise_name: str | None = None
    enterprise_url: str | None = None
    team_id: str | None = None
    team_name: str | None = None
    bot_token_encrypted: str | None = None
    bot_id: str | None = None
    bot_user_id: str | None = None
    bot_scopes: str | None = None
    bot_refresh_token_encrypted: str | None = None
    bot_token_expires_at: datetime | None = None
    user_id: str
    user_token_encrypted: str | None = None
    user_scopes: str | None = None
    user_refresh_token_encrypted: str | None = None
    user_token_expires_at: datetime | None = None
    incoming_webhook_url_encrypted: str | None = None
    incoming_webhook_channel: str | None = None
    incoming_webhook_channel_id: str | None = None
    incoming_webhook_configuration_url: str | None = None
    is_enterprise_install: bool = False
    token_type: str | None = None
    installed_at: datetime


class SlackBotInstallation(SQLModel, table=True):
    """The bot token of a team/org; what authorizes events when only the bot is installed."""

    __tablename__ = "slack_bot_installation"
    __table_args__ = (
        Index(
            "slack_bot_installation_lookup", "client_id", "enterprise_id", "team_id", "installed_at"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    client_id: str
    app_id: str | None = None
    enterprise_id: str | None = None
    enterprise_name: str | None = None
    team_id: str | None = None
    team_name: str | None = None
    bot_token_encrypted: str | None = None
    bot_id: str | None = None
    bot_user_id: str | None = None
    bot_scopes: str | None = None
    bot_refresh_token_encrypted: str | None = None
    bot_token_expires_at: datetime | None = None
    is_enterprise_install: bool = False
    installed_at: datetime


class SlackOAuthState(SQLModel, table=True):
    """An OAuth ``state`` handed to an installer's browser; valid once, until ``expires_at``."""

    __tablename__ = "slack_oauth_state"

    state: str = Field(primary_key=True)
    expires_at: datetime = Field(index=True)
