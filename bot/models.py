"""What the bots remember between events, in the relational database.

Unique constraints, not luck, make a delivery processed once: two replicas (or one replica
receiving a retry) race to insert the same ``(platform, delivery_id)`` and only one wins.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel


class ProcessedDelivery(SQLModel, table=True):
    """A claim on a delivery or a message: who answers it, until when, and whether it is done.

    A permanent claim (a setup notice's) is done when made. A message's claim is leased
    (:mod:`bot.claims`): ``holder`` (a replica id) holds it until ``lease_until`` and renews
    the lease while it answers; once the answer or notice is shown, ``done`` is set and
    ``message`` cleared. An unfinished claim whose lease ran out (its replica died) is taken
    over by another replica, which answers ``message`` (the neutral message as JSON) again
    after removing the placeholder ``progress_id`` its holder had posted; ``attempts`` counts
    the holders so far.
    """

    __table_args__ = (
        UniqueConstraint("platform", "delivery_id"),
        Index("ix_processeddelivery_open", "done", "lease_until"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str
    delivery_id: str
    received_at: datetime
    done: bool = True
    holder: str | None = None
    lease_until: datetime | None = None
    attempts: int = 1
    message: str | None = None
    progress_id: str | None = None


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
