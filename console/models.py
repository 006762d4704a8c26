"""Tables of the console: users, their grants per workspace, sessions and failed sign-ins.

A user signs in with a password (``supportbot admin add-user``) or with Slack (OpenID
Connect); ``password_hash`` is NULL for a Slack-only user. A grant gives one user one role in
one workspace (by name, as every other table keys workspaces) and goes with the workspace
(:mod:`supportbot.workspace_purge`). A session row holds only the SHA-256 of the cookie's
token, so a leaked database signs nobody in. Failed sign-ins are kept for the rate limit
(:mod:`console.users`). Schema changes go through a migration (revision
``0008_console_users``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel


class Role(StrEnum):
    """What a grant allows: ``admin`` reads and changes, ``viewer`` only reads."""

    ADMIN = "admin"
    VIEWER = "viewer"


class ConsoleUser(SQLModel, table=True):
    __tablename__ = "console_user"

    id: int | None = Field(default=None, primary_key=True)
    # Lower-cased; the sign-in name.
    email: str = Field(unique=True)
    password_hash: str | None = None
    # The Slack user id ("sub" of Sign in with Slack), once they signed in with Slack.
    slack_user_id: str | None = None
    created_at: datetime


class ConsoleGrant(SQLModel, table=True):
    __tablename__ = "console_grant"
    __table_args__ = (UniqueConstraint("user_id", "workspace"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="console_user.id", ondelete="CASCADE", index=True)
    workspace: str = Field(index=True)
    role: str
    created_at: datetime


class ConsoleSession(SQLModel, table=True):
    __tablename__ = "console_session"

    id: int | None = Field(default=None, primary_key=True)
    # SHA-256 (hex) of the random token in the session cookie.
    token_hash: str = Field(unique=True)
    user_id: int = Field(foreign_key="console_user.id", ondelete="CASCADE", index=True)
    created_at: datetime
    expires_at: datetime


class ConsoleLoginFailure(SQLModel, table=True):
    """One failed sign-in: the account name tried (lower-cased) and the client address."""

    __tablename__ = "console_login_failure"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(index=True)
    ip: str = Field(index=True)
    at: datetime


class ReviewMark(SQLModel, table=True):
    """An answer a person of its workspace marked reviewed in the review queue (one per answer;
    :mod:`console.queries.review`). Goes with the answer and with the workspace."""

    __tablename__ = "review_mark"

    id: int | None = Field(default=None, primary_key=True)
    workspace: str = Field(index=True)
    interaction_id: int = Field(foreign_key="interaction.id", ondelete="CASCADE", unique=True)
    reviewed_by: str
    reviewed_at: datetime
