"""Tables of the feedback store: one interaction per answer, one current rating per user.

This is the first cut the terminal chat needs; the feedback issue extends it (prompt messages,
rating history, exports) with migrations.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel


class Interaction(SQLModel, table=True):
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
    answer: str
    mode: str
    model: str = ""
    latency_ms: int = 0
    created_at: datetime


class Rating(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("interaction_id", "user_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    interaction_id: int = Field(foreign_key="interaction.id", ondelete="CASCADE", index=True)
    user_hash: str
    value: int
    source: str
    created_at: datetime
    updated_at: datetime
