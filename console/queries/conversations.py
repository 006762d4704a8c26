"""Conversations (answered questions) of one workspace: search, filters and one in full.

Every function takes the workspace: an id of another workspace's answer is simply not found.
The texts shown (questions, answers, retrieved passages, the prompt) go through the PII
scrubber (``scrub``, default: :class:`feedback.pii.Scrubber`), as in the review queue
(:func:`feedback.review.disliked_answers`): what users pasted (e-mail addresses, phone and card
numbers...) is not shown to everyone who may read the console.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from sqlalchemy import func, or_
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from feedback.models import Interaction, Rating
from feedback.pii import Scrubber

RatingFilter = Literal["", "liked", "disliked", "unrated"]
PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class ConversationFilters:
    """What the list is narrowed to; empty strings and None mean "any"."""

    q: str = ""
    platform: str = ""
    channel: str = ""
    rating: RatingFilter = ""
    not_found: bool = False
    date_from: date | None = None
    date_to: date | None = None  # inclusive


@dataclass(frozen=True, slots=True)
class ConversationRow:
    id: int
    created_at: datetime
    platform: str
    channel_id: str
    question: str
    answer: str
    found: bool
    score: int  # sum of the current ratings (+1 like, -1 dislike); 0: unrated or even


@dataclass(frozen=True, slots=True)
class ConversationPage:
    rows: list[ConversationRow]
    total: int
    platforms: list[str]
    channels: list[str]


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def search(
    engine: Engine,
    workspace: str,
    filters: ConversationFilters,
    *,
    limit: int = PAGE_SIZE,
    offset: int = 0,
    scrub: Scrubber | None = None,
) -> ConversationPage:
    """The newest answers of ``workspace`` matching ``filters`` (``q``: words in the question
    or the answer, case-insensitive), with the platforms and channels to filter by."""
    score = (
        select(func.coalesce(func.sum(Rating.value), 0))
        .where(Rating.interaction_id == Interaction.id)
        .correlate(Interaction)
        .scalar_subquery()
    )
    rated = (
        select(func.count())
        .where(Rating.interaction_id == Interaction.id)
        .correlate(Interaction)
        .scalar_subquery()
    )
    conditions = [col(Interaction.workspace) == workspace]
    if filters.q.strip():
        pattern = _like(filters.q.strip())
        conditions.append(
            or_(
                col(Interaction.question).ilike(pattern, escape="\\"),
                col(Interaction.answer).ilike(pattern, escape="\\"),
            )
        )
    if filters.platform:
        conditions.append(col(Interaction.platform) == filters.platform)
    if filters.channel:
        conditions.append(col(Interaction.channel_id) == filters.channel)
    if filters.not_found:
        conditions.append(col(Interaction.found).is_(False))
    if filters.rating == "liked":
        conditions.append(score > 0)
    elif filters.rating == "disliked":
        conditions.append(score < 0)
    elif filters.rating == "unrated":
        conditions.append(rated == 0)
    if filters.date_from:
        conditions.append(
            col(Interaction.created_at) >= datetime.combine(filters.date_from, time.min, UTC)
        )
    if filters.date_to:
        end = datetime.combine(filters.date_to + timedelta(days=1), time.min, UTC)
        conditions.append(col(Interaction.created_at) < end)
    with Session(engine) as session:
        total = session.exec(select(func.count()).select_from(Interaction).where(*conditions)).one()
        found = session.execute(
            sa_select(
                col(Interaction.id),
                col(Interaction.created_at),
                col(Interaction.platform),
                col(Interaction.channel_id),
                col(Interaction.question),
                col(Interaction.answer),
                col(Interaction.found),
                score,
            )
            .where(*conditions)
            .order_by(col(Interaction.created_at).desc(), col(Interaction.id).desc())
            .limit(limit)
            .offset(offset)
        ).all()
        platforms = session.exec(
            select(Interaction.platform).where(Interaction.workspace == workspace).distinct()
        ).all()
        channels = session.exec(
            select(Interaction.channel_id)
            .where(Interaction.workspace == workspace, Interaction.channel_id != "")
            .distinct()
        ).all()
    scrub = scrub or Scrubber()
    return ConversationPage(
        rows=[
            ConversationRow(
                id=r[0] or 0,
                created_at=_aware(r[1]),
                platform=r[2],
                channel_id=r[3],
                question=scrub(r[4]),
                answer=scrub(r[5]),
                found=r[6],
                score=int(r[7] or 0),
            )
            for r in found
        ],
        total=int(total),
        platforms=sorted(platforms),
        channels=sorted(channels),
    )


@dataclass(frozen=True, slots=True)
class ConversationDetail:
    interaction: Interaction
    liked: int
    disliked: int


def conversation(
    engine: Engine, workspace: str, interaction_id: int, *, scrub: Scrubber | None = None
) -> ConversationDetail | None:
    """One answer in full (question, answer, passages with scores, the prompt sent), scrubbed,
    or None when ``workspace`` has no answer with that id."""
    with Session(engine) as session:
        found = session.exec(
            select(Interaction).where(
                Interaction.id == interaction_id, Interaction.workspace == workspace
            )
        ).first()
        if found is None:
            return None
        values = session.exec(
            select(Rating.value).where(Rating.interaction_id == interaction_id)
        ).all()
        session.expunge(found)  # detached: the scrubbed texts below are never written back
    _scrub_interaction(found, scrub or Scrubber())
    return ConversationDetail(
        interaction=found,
        liked=sum(1 for v in values if v > 0),
        disliked=sum(1 for v in values if v < 0),
    )


def _scrub_interaction(found: Interaction, scrub: Scrubber) -> None:
    found.question = scrub(found.question)
    found.standalone_question = scrub(found.standalone_question)
    found.answer = scrub(found.answer)
    chunks: list[dict[str, object]] = []
    for chunk in found.retrieved or []:
        text = chunk.get("text")
        chunks.append({**chunk, "text": scrub(text)} if isinstance(text, str) else chunk)
    found.retrieved = chunks
    found.prompt_messages = [
        {**m, "content": scrub(m["content"])} if isinstance(m.get("content"), str) else m
        for m in found.prompt_messages or []
    ]
