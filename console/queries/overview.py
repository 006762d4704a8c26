"""The overview's figures for one workspace over the last 7, 30 or 90 days.

Days are UTC calendar days, oldest first, ending today. Rates are fractions (0..1), None when
there is nothing to divide by. Handoff figures and the evaluation series are None when the
workspace has none in the period, so the page shows them only where they exist.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from feedback.handoffs import Handoff
from feedback.learning_models import EvalRun
from feedback.models import Interaction, Rating

PERIODS = (7, 30, 90)
TOP_SOURCES = 8


@dataclass(frozen=True, slots=True)
class HandoffFigures:
    total: int
    replied: int
    per_day: list[int]
    # Median seconds from the request to the first human reply (None: none replied yet).
    median_first_reply_s: float | None


@dataclass(frozen=True, slots=True)
class Overview:
    workspace: str
    days: list[date]
    answers_per_day: list[int]
    not_found_per_day: list[int]
    answers: int
    liked: int
    disliked: int
    like_rate: float | None  # liked / rated answers
    not_found_rate: float | None  # "not found" answers / answers
    handoffs: HandoffFigures | None
    # (when, hit@5) of each evaluation run in the period, oldest first.
    evaluation: list[tuple[datetime, float]] | None
    # (title, url or source, times cited), most cited first.
    top_sources: list[tuple[str, str, int]]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def overview(engine: Engine, workspace: str, *, days: int, now: datetime | None = None) -> Overview:
    """The figures of ``workspace`` for the ``days`` (7, 30 or 90) days ending today (UTC).

    Raises ValueError for another number of days.
    """
    if days not in PERIODS:
        raise ValueError(f"days must be one of {PERIODS}")
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, time.min, tzinfo=UTC)
    calendar = [first + timedelta(days=i) for i in range(days)]
    index = {d: i for i, d in enumerate(calendar)}
    per_day = [0] * days
    not_found = [0] * days
    cited: Counter[tuple[str, str]] = Counter()
    with Session(engine) as session:
        rows = session.exec(
            select(
                Interaction.id, Interaction.created_at, Interaction.found, Interaction.sources
            ).where(Interaction.workspace == workspace, col(Interaction.created_at) >= since)
        ).all()
        ids = [r[0] for r in rows]
        scores: dict[int, int] = {}
        for start in range(0, len(ids), 500):
            for interaction_id, value in session.exec(
                select(Rating.interaction_id, Rating.value).where(
                    col(Rating.interaction_id).in_(ids[start : start + 500])
                )
            ).all():
                scores[interaction_id] = scores.get(interaction_id, 0) + value
        handoff_rows = session.exec(
            select(Handoff.requested_at, Handoff.first_human_reply_at).where(
                Handoff.workspace == workspace, col(Handoff.requested_at) >= since
            )
        ).all()
        runs = session.exec(
            select(EvalRun.created_at, EvalRun.hit_at_5)
            .where(EvalRun.workspace == workspace, col(EvalRun.created_at) >= since)
            .order_by(col(EvalRun.created_at))
        ).all()
    for _id, created_at, found, sources in rows:
        i = index.get(_aware(created_at).date())
        if i is None:
            continue
        per_day[i] += 1
        if not found:
            not_found[i] += 1
        seen: set[tuple[str, str]] = set()
        for source in sources or []:
            key = (
                str(source.get("title") or source.get("source") or "?"),
                str(source.get("url") or source.get("source") or ""),
            )
            if key not in seen:  # a document cited twice in one answer counts once
                seen.add(key)
                cited[key] += 1
    answers = sum(per_day)
    liked = sum(1 for s in scores.values() if s > 0)
    disliked = sum(1 for s in scores.values() if s < 0)
    rated = liked + disliked
    return Overview(
        workspace=workspace,
        days=calendar,
        answers_per_day=per_day,
        not_found_per_day=not_found,
        answers=answers,
        liked=liked,
        disliked=disliked,
        like_rate=liked / rated if rated else None,
        not_found_rate=sum(not_found) / answers if answers else None,
        handoffs=_handoffs([(r[0], r[1]) for r in handoff_rows], index, days),
        evaluation=[(_aware(at), hit) for at, hit in runs if hit is not None] or None,
        top_sources=[(t, u, n) for (t, u), n in cited.most_common(TOP_SOURCES)],
    )


def _handoffs(
    rows: Sequence[tuple[datetime, datetime | None]], index: dict[date, int], days: int
) -> HandoffFigures | None:
    listed = list(rows)
    if not listed:
        return None
    per_day = [0] * days
    waits: list[float] = []
    for requested_at, replied_at in listed:
        i = index.get(_aware(requested_at).date())
        if i is not None:
            per_day[i] += 1
        if replied_at is not None:
            waits.append((_aware(replied_at) - _aware(requested_at)).total_seconds())
    return HandoffFigures(
        total=len(listed),
        replied=len(waits),
        per_day=per_day,
        median_first_reply_s=statistics.median(waits) if waits else None,
    )
