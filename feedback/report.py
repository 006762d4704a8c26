"""The feedback report of one workspace: how much is answered, rated and liked, and where the
knowledge falls short.

Figures (README "Feedback and fine-tuning data"):

- an answer is *rated* when at least one user's current rating stands on it, *liked* /
  *disliked* by the net of those ratings (ties count as rated, neither liked nor disliked);
- like rate = liked answers / rated answers;
- most disliked questions: questions (normalized) by the number of 👎 on their answers;
- knowledge gaps: questions answered "not found in the documentation";
- top cited sources: documents by the number of answers that cited them;
- handoffs to people: how many were requested in the period, how many a person replied to
  and were resolved, and the median time from the request to the first human reply.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from feedback.answers import RatedAnswer, load_answers, normalize_question, require_workspace
from feedback.handoffs import HandoffStore, HandoffSummary


@dataclass(frozen=True, slots=True)
class Totals:
    answers: int
    rated: int
    liked: int
    disliked: int
    tied: int
    not_found: int

    @property
    def rated_share(self) -> float | None:
        return self.rated / self.answers if self.answers else None

    @property
    def like_rate(self) -> float | None:
        return self.liked / self.rated if self.rated else None

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "rated_share": _rounded(self.rated_share),
            "like_rate": _rounded(self.like_rate),
        }


@dataclass(frozen=True, slots=True)
class QuestionLine:
    """One question as asked (the latest wording), with how often and how it fared."""

    question: str
    asked: int
    dislikes: int
    last_asked: datetime
    interaction_ids: list[int]


@dataclass(frozen=True, slots=True)
class SourceLine:
    doc_id: str
    title: str
    source: str
    cited: int
    liked: int
    disliked: int


@dataclass(frozen=True, slots=True)
class Report:
    workspace: str
    since: datetime | None
    until: datetime
    totals: Totals
    by_day: list[tuple[date, Totals]]
    most_disliked: list[QuestionLine]
    knowledge_gaps: list[QuestionLine]
    top_sources: list[SourceLine]
    handoffs: HandoffSummary | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "workspace": self.workspace,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat(),
            **self.totals.as_dict(),
            "by_day": [{"day": day.isoformat(), **t.as_dict()} for day, t in self.by_day],
            "most_disliked": [_question_dict(q) for q in self.most_disliked],
            "knowledge_gaps": [_question_dict(q) for q in self.knowledge_gaps],
            "top_sources": [asdict(s) for s in self.top_sources],
            "handoffs": asdict(self.handoffs) if self.handoffs else None,
        }


def build_report(
    engine: Engine,
    workspace: str,
    *,
    now: datetime,
    days: int | None = None,
    limit: int = 10,
    known_workspaces: set[str],
) -> Report:
    """The report over the last ``days`` days (all time when None)."""
    require_workspace(engine, workspace, known_workspaces)
    since = None
    if days is not None:
        start = (now - timedelta(days=days - 1)).date()
        since = datetime(start.year, start.month, start.day, tzinfo=now.tzinfo)
    answers = load_answers(engine, workspace, since=since)
    days_of: dict[date, list[RatedAnswer]] = defaultdict(list)
    for answer in answers:
        days_of[answer.created_at.date()].append(answer)
    return Report(
        workspace=workspace,
        since=since,
        until=now,
        totals=_totals(answers),
        by_day=[(day, _totals(days_of[day])) for day in sorted(days_of)],
        most_disliked=_questions([a for a in answers if a.dislikes], limit, by_dislikes=True),
        knowledge_gaps=_questions([a for a in answers if not a.found], limit, by_dislikes=False),
        top_sources=_sources(answers, limit),
        handoffs=HandoffStore(engine, user_hash=str).summary(workspace, since=since),
    )


def _totals(answers: Iterable[RatedAnswer]) -> Totals:
    items = list(answers)
    labels = [a.label for a in items]
    return Totals(
        answers=len(items),
        rated=sum(label != "unrated" for label in labels),
        liked=labels.count("liked"),
        disliked=labels.count("disliked"),
        tied=labels.count("tied"),
        not_found=sum(not a.found for a in items),
    )


def _questions(answers: list[RatedAnswer], limit: int, *, by_dislikes: bool) -> list[QuestionLine]:
    grouped: dict[str, list[RatedAnswer]] = defaultdict(list)
    for answer in answers:
        grouped[normalize_question(answer.standalone_question)].append(answer)
    lines = [
        QuestionLine(
            question=group[-1].question,
            asked=len(group),
            dislikes=sum(a.dislikes for a in group),
            last_asked=group[-1].created_at,
            interaction_ids=[a.id for a in group],
        )
        for group in grouped.values()
    ]

    def rank(line: QuestionLine) -> tuple[int, int, datetime]:
        first, second = (line.dislikes, line.asked) if by_dislikes else (line.asked, line.dislikes)
        return (first, second, line.last_asked)

    return sorted(lines, key=rank, reverse=True)[:limit]


def _sources(answers: list[RatedAnswer], limit: int) -> list[SourceLine]:
    cited: dict[str, dict[str, Any]] = {}
    for answer in answers:
        for doc_id in dict.fromkeys(str(s.get("doc_id", "")) for s in answer.sources):
            source = next(s for s in answer.sources if str(s.get("doc_id", "")) == doc_id)
            line = cited.setdefault(
                doc_id,
                {
                    "doc_id": doc_id,
                    "title": str(source.get("title") or ""),
                    "source": str(source.get("source") or ""),
                    "cited": 0,
                    "liked": 0,
                    "disliked": 0,
                },
            )
            line["cited"] += 1
            line["liked"] += answer.label == "liked"
            line["disliked"] += answer.label == "disliked"
    lines = [SourceLine(**line) for line in cited.values()]
    return sorted(lines, key=lambda s: (-s.cited, -s.liked, s.title, s.doc_id))[:limit]


def _question_dict(line: QuestionLine) -> dict[str, Any]:
    return {**asdict(line), "last_asked": line.last_asked.isoformat()}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
