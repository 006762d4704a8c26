"""Tables of the feedback store: one interaction per answer, one current rating per user, the
history of every rating change, the signals messages gave about answers, and teammates'
replies to them (reference answers).

Unique constraints, not luck, keep duplicates out: an answered platform message is one
interaction, a user has one current rating per interaction, and a platform event id is
recorded once. Schema changes go through a migration (supportbot/migrations).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

# Terminal-chat answers have no platform message; only real message ids must be unique.
_HAS_MESSAGE = text("message_id <> ''")


class Interaction(SQLModel, table=True):
    """An answer as it was given: the question, what was retrieved, the exact prompt, the text."""

    __table_args__ = (
        Index(
            "uq_interaction_message",
            "workspace",
            "platform",
            "channel_id",
            "message_id",
            unique=True,
            sqlite_where=_HAS_MESSAGE,
            postgresql_where=_HAS_MESSAGE,
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace: str = Field(index=True)
    platform: str
    channel_id: str = ""
    thread_id: str = ""
    message_id: str = ""
    user_hash: str = ""
    question: str
    standalone_question: str
    retrieved: list[dict[str, object]] = Field(default_factory=list, sa_column=Column(JSON))
    # The cited sources ({n, doc_id, source, title, url}), for the report's top sources.
    sources: list[dict[str, object]] = Field(default_factory=list, sa_column=Column(JSON))
    # The chat messages sent to the model ({role, content}); empty for extractive answers.
    prompt_messages: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON))
    answer: str
    mode: str
    # False for "not found in the documentation" answers: the knowledge gaps.
    found: bool = True
    model: str = ""
    latency_ms: int = 0
    created_at: datetime


class Rating(SQLModel, table=True):
    """A user's one current rating of an answer; removing the reaction deletes it."""

    __table_args__ = (UniqueConstraint("interaction_id", "user_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    interaction_id: int = Field(foreign_key="interaction.id", ondelete="CASCADE", index=True)
    user_hash: str
    value: int
    source: str
    created_at: datetime
    updated_at: datetime


class RatingEvent(SQLModel, table=True):
    """One rating event as received, append-only: the history behind :class:`Rating`.

    ``event_at`` is when the user acted (the platform's event time, else when it was received);
    a stale event (older than the last one applied for that user) is kept but not applied.
    ``event_id`` is the platform's id of the event when known: NULL otherwise, so unknown ids
    never collide, while a repeated known id cannot make a second row.
    """

    __tablename__ = "rating_event"
    __table_args__ = (UniqueConstraint("interaction_id", "event_id"),)

    id: int | None = Field(default=None, primary_key=True)
    interaction_id: int = Field(foreign_key="interaction.id", ondelete="CASCADE", index=True)
    user_hash: str
    old_value: int
    new_value: int
    source: str
    event_id: str | None = None
    event_at: datetime
    recorded_at: datetime
    stale: bool = False


class VerifiedAnswer(SQLModel, table=True):
    """A liked answer promoted into the workspace's knowledge, one per normalized question."""

    __tablename__ = "verified_answer"
    __table_args__ = (UniqueConstraint("workspace", "question_key"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace: str
    question_key: str
    doc_id: str
    question: str
    answer: str
    interaction_id: int | None = Field(
        default=None, foreign_key="interaction.id", ondelete="SET NULL"
    )
    promoted_at: datetime


class Signal(SQLModel, table=True):
    """What a user's message said about the answer before it: "thanks 👍" in the answer's
    thread is an acknowledgement (+1), a lone 👎 a disapproval (-1).

    Kept apart from :class:`Rating`: a rating is a deliberate vote on an answer, a signal is
    read from the conversation. ``event_id`` is the platform message it was read from
    (``platform:team:channel:ts``), recorded once however often the message is delivered.
    """

    __table_args__ = (UniqueConstraint("interaction_id", "event_id"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace: str = Field(index=True)
    interaction_id: int = Field(foreign_key="interaction.id", ondelete="CASCADE", index=True)
    kind: str
    weight: float
    platform: str
    event_id: str
    user_hash: str = ""
    created_at: datetime
    # When the user acted (the platform message's or reaction's time); NULL for signals
    # recorded before revision 0006.
    event_at: datetime | None = None


class ReferenceAnswer(SQLModel, table=True):
    """A teammate's reply in the thread of a bot answer: how a person answered the question.

    Read from the conversation (:mod:`bot.signals`): a teammate is neither the asker nor a
    bot. ``agrees``: the reply only agreed with the bot ("+1", "맞아요"), so it says the answer
    was right rather than giving another. ``event_id``: the platform message, recorded once.
    Exported as the *chosen* side of a preference pair (``feedback export --labels implicit``).
    """

    __tablename__ = "reference_answer"
    __table_args__ = (UniqueConstraint("interaction_id", "event_id"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace: str = Field(index=True)
    interaction_id: int = Field(foreign_key="interaction.id", ondelete="CASCADE", index=True)
    text: str
    agrees: bool = False
    platform: str
    event_id: str
    author_hash: str = ""
    event_at: datetime
    created_at: datetime
