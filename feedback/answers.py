"""Reading one workspace's answers back with their ratings: the input of exports and reports.

Always one workspace per call: an export or a report of one customer can never carry another
customer's rows.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import case, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from feedback.errors import FeedbackError
from feedback.models import Interaction, Rating

Label = Literal["liked", "disliked", "tied", "unrated"]


@dataclass(frozen=True, slots=True)
class RatedAnswer:
    """An interaction with the count of its users' current 👍 and 👎."""

    id: int
    workspace: str
    platform: str
    channel_id: str
    thread_id: str
    message_id: str
    question: str
    standalone_question: str
    answer: str
    mode: str
    model: str
    found: bool
    retrieved: list[dict[str, object]]
    sources: list[dict[str, object]]
    prompt_messages: list[dict[str, str]]
    latency_ms: int
    created_at: datetime
    likes: int
    dislikes: int

    @property
    def net(self) -> int:
        return self.likes - self.dislikes

    @property
    def label(self) -> Label:
        """The conflict rule: the net of the users' current ratings decides; a tie decides
        nothing."""
        if self.likes == 0 and self.dislikes == 0:
            return "unrated"
        if self.net > 0:
            return "liked"
        if self.net < 0:
            return "disliked"
        return "tied"

    @property
    def conversation(self) -> str:
        """The conversation the answer belongs to: its thread, else its own message."""
        thread = self.thread_id or self.message_id or f"interaction-{self.id}"
        return "\x1f".join((self.workspace, self.platform, self.channel_id, thread))


def load_answers(
    engine: Engine, workspace: str, *, since: datetime | None = None
) -> list[RatedAnswer]:
    """Every answer of ``workspace`` (from ``since`` on), oldest first, with rating counts."""
    like_count = func.coalesce(func.sum(case((col(Rating.value) > 0, 1), else_=0)), 0)
    dislike_count = func.coalesce(func.sum(case((col(Rating.value) < 0, 1), else_=0)), 0)
    counts = (
        select(Rating.interaction_id, like_count.label("likes"), dislike_count.label("dislikes"))
        .group_by(col(Rating.interaction_id))
        .subquery()
    )
    statement = (
        select(Interaction, counts.c.likes, counts.c.dislikes)
        .outerjoin(counts, counts.c.interaction_id == Interaction.id)
        .where(Interaction.workspace == workspace)
        .order_by(col(Interaction.created_at), col(Interaction.id))
    )
    if since is not None:
        statement = statement.where(Interaction.created_at >= since)
    with Session(engine) as session:
        rows = session.exec(statement).all()
    return [_rated(row, int(likes or 0), int(dislikes or 0)) for row, likes, dislikes in rows]


def require_workspace(engine: Engine, workspace: str, known: set[str]) -> None:
    """Refuse a workspace that is neither registered nor has any recorded answer."""
    if workspace in known:
        return
    with Session(engine) as session:
        found = session.exec(
            select(Interaction.id).where(Interaction.workspace == workspace).limit(1)
        ).first()
    if found is None:
        raise FeedbackError(
            f"unknown workspace {workspace!r}: it is not registered and has no recorded answers; "
            "see `supportbot workspace list`"
        )


def _rated(row: Interaction, likes: int, dislikes: int) -> RatedAnswer:
    assert row.id is not None
    return RatedAnswer(
        id=row.id,
        workspace=row.workspace,
        platform=row.platform,
        channel_id=row.channel_id,
        thread_id=row.thread_id,
        message_id=row.message_id,
        question=row.question,
        standalone_question=row.standalone_question or row.question,
        answer=row.answer,
        mode=row.mode,
        model=row.model,
        found=row.found,
        retrieved=list(row.retrieved or []),
        sources=list(row.sources or []),
        prompt_messages=list(row.prompt_messages or []),
        latency_ms=row.latency_ms,
        created_at=row.created_at,
        likes=likes,
        dislikes=dislikes,
    )


_SPACE = re.compile(r"\s+")
_TRAILING = re.compile(r"[\s?!.。？！~]+$")


def normalize_question(text: str) -> str:
    """The form under which two questions count as the same one (case, width, spacing and
    final punctuation aside)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _TRAILING.sub("", _SPACE.sub(" ", folded).strip())
