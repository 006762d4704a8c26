"""The feedback store on SQLite and PostgreSQL: answers recorded once, one current rating per
user, the history of every change, duplicate and out-of-order events, concurrent raters."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from feedback.errors import FeedbackError
from feedback.models import Interaction, Rating, RatingEvent
from feedback.store import AnswerRecord, RateOutcome, SqlFeedbackStore

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves: every reading is one second after the last."""

    def __init__(self) -> None:
        self._now = T0
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=1)
            return self._now


def _store(engine: Engine, clock: Callable[[], datetime] | None = None) -> SqlFeedbackStore:
    return SqlFeedbackStore(engine, user_hash_key=b"test-key", clock=clock or Clock())


def _record(store: SqlFeedbackStore, message_id: str = "M1", **overrides: object) -> int:
    values: dict[str, object] = {
        "workspace": "acme",
        "platform": "slack",
        "question": "How long is the reset link valid?",
        "standalone_question": "How long is the reset link valid?",
        "answer": "30 minutes [1].",
        "mode": "llm",
        "user_id": "slack:T1:U1",
        "channel_id": "C1",
        "thread_id": message_id,
        "message_id": message_id,
    }
    values.update(overrides)
    return store.record_answer(AnswerRecord(**values))  # type: ignore[arg-type]


def _current(engine: Engine, interaction_id: int) -> dict[str, tuple[int, str]]:
    with Session(engine) as session:
        rows = session.exec(select(Rating).where(Rating.interaction_id == interaction_id)).all()
    return {r.user_hash: (r.value, r.source) for r in rows}


def _events(engine: Engine, interaction_id: int) -> list[tuple[int, int, str | None, bool]]:
    with Session(engine) as session:
        rows = session.exec(
            select(RatingEvent)
            .where(RatingEvent.interaction_id == interaction_id)
            .order_by(col(RatingEvent.id))
        ).all()
    return [(e.old_value, e.new_value, e.event_id, e.stale) for e in rows]


def test_answer_is_stored_with_prompt_sources_and_found_flag(engine: Engine):
    store = _store(engine)
    prompt = [
        {"role": "system", "content": "Answer from <context>[1] (Reset) 30 minutes</context>"},
        {"role": "user", "content": "How long is the reset link valid?"},
    ]
    source = {"n": 1, "doc_id": "d1", "source": "reset.md", "title": "Reset", "url": None}
    chunk = {"chunk_id": "c1", "doc_id": "d1", "text": "The link expires after 30 minutes."}

    interaction_id = _record(
        store, prompt_messages=prompt, sources=[source], retrieved=[chunk], found=True
    )
    gap_id = _record(store, "M2", answer="I couldn't find that.", found=False)

    with Session(engine) as session:
        row = session.get(Interaction, interaction_id)
        gap = session.get(Interaction, gap_id)
    assert row is not None and gap is not None
    assert row.prompt_messages == prompt
    assert row.sources == [source]
    assert row.retrieved == [chunk]
    assert row.found is True and gap.found is False
    assert row.user_hash == store.user_hash("slack:T1:U1") != "slack:T1:U1"
    assert row.created_at.tzinfo is not None


def test_the_same_platform_message_is_one_interaction(engine: Engine):
    store = _store(engine)
    first = _record(store, "M1")
    again = _record(store, "M1", answer="a retried answer")  # a redelivered event
    other_channel = _record(store, "M1", channel_id="C2")
    terminal = [_record(store, "", platform="terminal") for _ in range(2)]

    assert again == first
    assert other_channel != first
    assert len(set(terminal)) == 2  # no message id: every answer is its own
    with Session(engine) as session:
        assert len(session.exec(select(Interaction)).all()) == 4


def test_reaction_add_change_and_remove_keep_one_current_rating_and_the_history(engine: Engine):
    store = _store(engine)
    interaction = _record(store)
    u1, u2 = store.user_hash("U1"), store.user_hash("U2")

    assert store.rate(interaction, user_id="U1", value=1, source="reaction") is RateOutcome.APPLIED
    assert store.rate(interaction, user_id="U2", value=-1, source="button") is RateOutcome.APPLIED
    assert _current(engine, interaction) == {u1: (1, "reaction"), u2: (-1, "button")}

    # U1 swaps 👍 for 👎 (Slack sends the removal and the new reaction), U2 changes their mind.
    assert store.rate(interaction, user_id="U1", value=0, source="reaction") is RateOutcome.APPLIED
    assert store.rate(interaction, user_id="U1", value=-1, source="reaction") is RateOutcome.APPLIED
    assert store.rate(interaction, user_id="U2", value=1, source="button") is RateOutcome.APPLIED
    assert _current(engine, interaction) == {u1: (-1, "reaction"), u2: (1, "button")}

    # A plain repeat changes nothing and leaves no row.
    assert store.rate(interaction, user_id="U2", value=1, source="button") is RateOutcome.UNCHANGED

    assert store.rate(interaction, user_id="U1", value=0, source="reaction") is RateOutcome.APPLIED
    assert _current(engine, interaction) == {u2: (1, "button")}
    assert sorted(store.ratings(interaction)) == [1]
    assert [(old, new) for old, new, _, _ in _events(engine, interaction)] == [
        (0, 1), (0, -1), (1, 0), (0, -1), (-1, 1), (-1, 0),
    ]  # fmt: skip


def test_taking_back_an_old_vote_keeps_the_newer_one(engine: Engine):
    store = _store(engine)
    interaction = _record(store)
    u1 = store.user_hash("U1")

    # 👍, then 👎 without removing the 👍 (both reactions stay on the message), then the 👍 goes.
    store.rate(interaction, user_id="U1", value=1, source="reaction")
    store.rate(interaction, user_id="U1", value=-1, source="reaction")
    taken_back = store.rate(interaction, user_id="U1", value=0, source="reaction", withdrawn=1)

    assert taken_back is RateOutcome.UNCHANGED
    assert _current(engine, interaction) == {u1: (-1, "reaction")}
    # Taking back the current vote removes it.
    assert (
        store.rate(interaction, user_id="U1", value=0, source="reaction", withdrawn=-1)
        is RateOutcome.APPLIED
    )
    assert _current(engine, interaction) == {}
    with pytest.raises(FeedbackError, match="only a removal"):
        store.rate(interaction, user_id="U1", value=1, source="reaction", withdrawn=1)


def test_a_duplicate_event_id_makes_no_second_row(engine: Engine):
    store = _store(engine)
    interaction = _record(store)

    first = store.rate(interaction, user_id="U1", value=1, source="reaction", event_id="Ev1")
    repeat = store.rate(interaction, user_id="U1", value=1, source="reaction", event_id="Ev1")
    # Even a repeat that would change the value is recognised by its id.
    replay = store.rate(interaction, user_id="U1", value=-1, source="reaction", event_id="Ev1")

    assert (first, repeat, replay) == (
        RateOutcome.APPLIED,
        RateOutcome.DUPLICATE,
        RateOutcome.DUPLICATE,
    )
    assert _events(engine, interaction) == [(0, 1, "Ev1", False)]
    assert store.ratings(interaction) == [1]


def test_an_older_event_arriving_late_is_kept_as_stale_and_changes_nothing(engine: Engine):
    store = _store(engine)
    interaction = _record(store)
    at = T0 + timedelta(hours=1)

    # The user added 👍 at :00 and removed it at :05; the removal arrives first.
    removed = store.rate(
        interaction, user_id="U1", value=0, source="reaction", event_id="Ev2",
        event_at=at + timedelta(minutes=5),
    )  # fmt: skip
    added = store.rate(
        interaction, user_id="U1", value=1, source="reaction", event_id="Ev1", event_at=at
    )

    assert (removed, added) == (RateOutcome.UNCHANGED, RateOutcome.STALE)
    assert store.ratings(interaction) == []
    assert _events(engine, interaction) == [(0, 0, "Ev2", False), (0, 1, "Ev1", True)]

    # Another user: 👎 at :10 then 👍 at :20, delivered in reverse: 👍 stands.
    store.rate(
        interaction, user_id="U2", value=1, source="button", event_at=at + timedelta(minutes=20)
    )
    late = store.rate(
        interaction, user_id="U2", value=-1, source="button", event_at=at + timedelta(minutes=10)
    )
    assert late is RateOutcome.STALE
    assert store.ratings(interaction) == [1]


def test_rating_errors_are_one_clear_line(engine: Engine):
    store = _store(engine)
    with pytest.raises(FeedbackError, match="no answer with id 999"):
        store.rate(999, user_id="U1", value=1, source="reaction")
    interaction = _record(store)
    with pytest.raises(FeedbackError, match=r"\+1, -1 or 0"):
        store.rate(interaction, user_id="U1", value=2, source="reaction")
    with pytest.raises(FeedbackError, match="time zone"):
        store.rate(
            interaction, user_id="U1", value=1, source="reaction", event_at=datetime(2026, 1, 1)
        )


def test_concurrent_ratings_from_many_users_all_land(engine: Engine):
    store = _store(engine)
    interaction = _record(store)
    users = [f"U{i}" for i in range(16)]
    barrier = threading.Barrier(8)

    def rate(user: str) -> RateOutcome:
        if int(user[1:]) < 8:
            barrier.wait(timeout=10)  # the first eight start at the same instant
        value = 1 if int(user[1:]) % 3 else -1
        return store.rate(interaction, user_id=user, value=value, source="reaction")

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(rate, users))

    assert outcomes == [RateOutcome.APPLIED] * 16
    expected = {store.user_hash(u): (1 if int(u[1:]) % 3 else -1, "reaction") for u in users}
    assert _current(engine, interaction) == expected
    assert len(_events(engine, interaction)) == 16


def test_concurrent_duplicates_of_one_event_make_one_row(engine: Engine):
    store = _store(engine)
    interaction = _record(store)
    barrier = threading.Barrier(6)

    def deliver(_: int) -> RateOutcome:
        barrier.wait(timeout=10)
        return store.rate(interaction, user_id="U1", value=1, source="reaction", event_id="EvX")

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(deliver, range(6)))

    assert sorted(outcomes) == sorted([RateOutcome.APPLIED] + [RateOutcome.DUPLICATE] * 5)
    assert _events(engine, interaction) == [(0, 1, "EvX", False)]
    assert store.ratings(interaction) == [1]


def test_concurrent_first_ratings_of_one_user_make_one_current_rating(engine: Engine):
    """Two replicas handle the same user's 👍 (no event id) at once: one row, not two."""
    store = _store(engine)
    interaction = _record(store)
    barrier = threading.Barrier(4)

    def deliver(_: int) -> RateOutcome:
        barrier.wait(timeout=10)
        return store.rate(interaction, user_id="U1", value=1, source="button")

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(deliver, range(4)))

    assert sorted(outcomes) == sorted([RateOutcome.APPLIED] + [RateOutcome.UNCHANGED] * 3)
    assert store.ratings(interaction) == [1]
    assert len(_events(engine, interaction)) == 1
