"""The data of the console's overview and conversations pages, on SQLite and PostgreSQL: the
figures are right, filters narrow as asked, and no function reads another workspace's rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from console.queries.conversations import ConversationFilters, conversation, search
from console.queries.overview import overview
from feedback.handoffs import Handoff
from feedback.learning_models import EvalRun
from feedback.store import AnswerRecord, SqlFeedbackStore

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
A, B = "acme", "acme2"  # a name that contains the other: exact matches only


def store_at(engine: Engine, when: datetime) -> SqlFeedbackStore:
    return SqlFeedbackStore(engine, user_hash_key=b"k", clock=lambda: when)


def answer(
    engine: Engine,
    ws: str,
    question: str,
    *,
    days_ago: int = 0,
    found: bool = True,
    platform: str = "slack",
    channel: str = "C1",
    source: str = "Refund policy",
) -> int:
    record = AnswerRecord(
        workspace=ws,
        platform=platform,
        channel_id=channel,
        question=question,
        standalone_question=question,
        answer=f"The answer to {question}",
        mode="generative",
        found=found,
        retrieved=[{"doc_id": "d1", "title": source, "text": "passage", "score": 0.7}],
        sources=[{"n": 1, "doc_id": "d1", "source": "kb/x.md", "title": source, "url": ""}],
        prompt_messages=[{"role": "system", "content": "Answer from the passages."}],
    )
    made = store_at(engine, NOW - timedelta(days=days_ago)).record_answer(record)
    assert made is not None
    return made


@pytest.fixture
def seeded(engine: Engine) -> dict[str, int]:
    ids = {
        "refund": answer(engine, A, "How do refunds work?"),
        "invoice": answer(engine, A, "Where is my invoice?", days_ago=3, channel="C2"),
        "mars": answer(engine, A, "Do you ship to Mars?", days_ago=3, found=False),
        "old": answer(engine, A, "An old refund question", days_ago=20, platform="discord"),
        "b": answer(engine, B, "Globex refund secret?", source="Globex secrets"),
    }
    store = store_at(engine, NOW)
    store.rate(ids["refund"], user_id="u1", value=1, source="t")
    store.rate(ids["invoice"], user_id="u1", value=-1, source="t")
    store.rate(ids["b"], user_id="u2", value=1, source="t")
    return ids


def test_overview_figures_for_7_and_30_days(engine: Engine, seeded: dict[str, int]) -> None:
    week = overview(engine, A, days=7, now=NOW)
    assert len(week.days) == 7 and week.days[-1] == date(2026, 11, 30)
    assert week.answers == 3 and week.answers_per_day[-1] == 1 and week.answers_per_day[-4] == 2
    assert week.not_found_per_day[-4] == 1 and week.not_found_rate == pytest.approx(1 / 3)
    assert (week.liked, week.disliked, week.like_rate) == (1, 1, 0.5)
    assert week.top_sources[0] == ("Refund policy", "kb/x.md", 3)
    assert week.handoffs is None and week.evaluation is None  # none exist: not shown

    month = overview(engine, A, days=30, now=NOW)
    assert month.answers == 4 and len(month.days) == 30
    with pytest.raises(ValueError):
        overview(engine, A, days=12, now=NOW)


def test_overview_never_counts_another_workspace(engine: Engine, seeded: dict[str, int]):
    other = overview(engine, B, days=7, now=NOW)
    assert other.answers == 1 and other.top_sources == [("Globex secrets", "kb/x.md", 1)]
    assert overview(engine, "acm", days=90, now=NOW).answers == 0


def test_overview_handoffs_and_evaluation_when_they_exist(
    engine: Engine, seeded: dict[str, int]
) -> None:
    with Session(engine) as session:
        for minutes in (4, 10, None):
            session.add(
                Handoff(
                    workspace=A,
                    platform="slack",
                    team_id="T1",
                    channel_id="C1",
                    thread_id=f"1.{minutes}",
                    reason="not_found",
                    requested_at=NOW - timedelta(hours=1),
                    first_human_reply_at=None
                    if minutes is None
                    else NOW - timedelta(hours=1) + timedelta(minutes=minutes),
                )
            )
        session.add(
            EvalRun(workspace=A, trigger="sync", questions=10, hit_at_5=0.8, created_at=NOW)
        )
        session.add(
            EvalRun(workspace=B, trigger="sync", questions=10, hit_at_5=0.1, created_at=NOW)
        )
        session.commit()
    week = overview(engine, A, days=7, now=NOW)
    assert week.handoffs is not None
    assert (week.handoffs.total, week.handoffs.replied) == (3, 2)
    assert week.handoffs.median_first_reply_s == pytest.approx(7 * 60)
    assert week.handoffs.per_day[-1] == 3
    assert week.evaluation is not None and [h for _, h in week.evaluation] == [0.8]
    assert overview(engine, B, days=7, now=NOW).handoffs is None


def test_conversation_filters(engine: Engine, seeded: dict[str, int]) -> None:
    def ids(**kw: object) -> set[int]:
        return {r.id for r in search(engine, A, ConversationFilters(**kw)).rows}  # type: ignore[arg-type]

    assert ids() == {seeded[k] for k in ("refund", "invoice", "mars", "old")}
    assert ids(q="REFUND") == {seeded["refund"], seeded["old"]}
    assert ids(q="100%_") == set()  # LIKE wildcards are taken literally
    assert ids(platform="discord") == {seeded["old"]}
    assert ids(channel="C2") == {seeded["invoice"]}
    assert ids(rating="liked") == {seeded["refund"]}
    assert ids(rating="disliked") == {seeded["invoice"]}
    assert ids(rating="unrated") == {seeded["mars"], seeded["old"]}
    assert ids(not_found=True) == {seeded["mars"]}
    three_days_ago = (NOW - timedelta(days=3)).date()
    assert ids(date_from=three_days_ago, date_to=three_days_ago) == {
        seeded["invoice"],
        seeded["mars"],
    }
    page = search(engine, A, ConversationFilters())
    assert page.platforms == ["discord", "slack"] and page.channels == ["C1", "C2"]
    assert page.rows[0].id == seeded["refund"]  # newest first


def test_a_conversation_of_another_workspace_is_not_found(
    engine: Engine, seeded: dict[str, int]
) -> None:
    detail = conversation(engine, A, seeded["refund"])
    assert detail is not None and detail.liked == 1
    assert detail.interaction.prompt_messages[0]["role"] == "system"
    assert detail.interaction.retrieved[0]["score"] == 0.7
    assert conversation(engine, A, seeded["b"]) is None
    assert conversation(engine, B, seeded["refund"]) is None
    assert search(engine, A, ConversationFilters(q="Globex")).total == 0
