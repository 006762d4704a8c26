"""What the bots remember between events, in the relational database.

Unique constraints, not luck, make a delivery processed once: two replicas (or one replica
receiving a retry) race to insert the same ``(platform, delivery_id)`` and only one wins.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel


class ProcessedDelivery(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("platform", "delivery_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str
    delivery_id: str
    received_at: datetime


class BotReply(SQLModel, table=True):
    """A message the bot posted as an answer: its thread, and the interaction it records."""

    __table_args__ = (UniqueConstraint("platform", "channel_id", "reply_message_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str
    team_id: str = Field(index=True)
    channel_id: str
    thread_id: str = Field(index=True)
    reply_message_id: str
    interaction_id: int | None = None
    created_at: datetime


class ChannelSetting(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("platform", "team_id", "channel_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str
    team_id: str
    channel_id: str
    mode: str


class DirectMessageChoice(SQLModel, table=True):
    """The workspace a user chose (``/workspace``) for DMs when several would fit.

    A DM carries no server, so when the user shares several servers with the bot the choice
    has to be remembered; it is honoured only while the user still shares a server that maps
    to that workspace.
    """

    __table_args__ = (UniqueConstraint("platform", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str
    user_id: str
    workspace: str
    chosen_at: datetime
