"""Stores answers and their 👍/👎 so they become preference data.

Bots and the terminal chat talk to the :class:`FeedbackSink` protocol only, so the storage can
grow (rating history, exports) without touching them.

Rating rules (README "Feedback and fine-tuning data"):

- each user has one current rating per answer (+1 or -1); 0 removes it, and a removal that
  names the vote it takes back (``withdrawn``) removes it only while that vote is current;
- every event that changes a rating, or that carries an event id or time, is appended to the
  history (``rating_event``); a repeated event id is recognised and makes no second row;
- an event older than the last one applied for that user and answer (by ``event_at``, the
  time the user acted, when the platform gives it) arrives out of order: it is kept in the
  history, flagged stale, and changes nothing. Events with equal times apply in arrival order.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from feedback.errors import FeedbackError
from feedback.models import Interaction, Rating, RatingEvent, ReferenceAnswer, Signal
from retrieval.chain import Answer, Source
from retrieval.store import SearchResult
from retrieval.workspaces import Workspace

logger = logging.getLogger(__name__)

# Concurrent writers that collide on a unique constraint retry this often before giving up.
_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class AnswerRecord:
    """An answer as it was given, with what was retrieved for it and the prompt it came from.

    ``tenant``: the tenant of the workspace the answer was made from (``WorkspaceInfo.tenant``,
    never reused). When given, the answer is stored only while the workspace registered as
    ``workspace`` still has that tenant, so an answer that was still being generated while its
    workspace was deleted (and perhaps created again under the same name) is never stored into
    a workspace it did not come from. None stores it unchecked (imports, tests).
    """

    workspace: str
    platform: str
    question: str
    standalone_question: str
    answer: str
    mode: str
    retrieved: list[dict[str, object]] = field(default_factory=list)
    user_id: str = ""
    channel_id: str = ""
    thread_id: str = ""
    message_id: str = ""
    model: str = ""
    latency_ms: int = 0
    sources: list[dict[str, object]] = field(default_factory=list)
    prompt_messages: list[dict[str, str]] = field(default_factory=list)
    found: bool = True
    tenant: str | None = None


def retrieved_snapshot(results: Sequence[SearchResult]) -> list[dict[str, object]]:
    """What was retrieved for an answer, as it was then (the knowledge may change later)."""
    return [
        {
            "chunk_id": r.chunk_id,
            "doc_id": r.doc_id,
            "source": r.source,
            "title": r.title,
            "heading": r.heading,
            "url": r.url,
            "text": r.text,
            "score": r.score,
            "similarity": r.similarity,
        }
        for r in results
    ]


def sources_snapshot(sources: Sequence[Source]) -> list[dict[str, object]]:
    return [
        {"n": s.n, "doc_id": s.doc_id, "source": s.source, "title": s.title, "url": s.url}
        for s in sources
    ]


def answer_record(
    answer: Answer,
    *,
    workspace: str,
    platform: str,
    question: str,
    user_id: str = "",
    channel_id: str = "",
    thread_id: str = "",
    message_id: str = "",
    tenant: str | None = None,
) -> AnswerRecord:
    """The record of ``answer``: one place that decides what of an answer is kept.

    ``tenant``: the tenant of the workspace it was answered from (see :class:`AnswerRecord`).
    """
    return AnswerRecord(
        workspace=workspace,
        platform=platform,
        question=question,
        standalone_question=answer.standalone_question,
        answer=answer.text,
        mode=answer.mode,
        retrieved=retrieved_snapshot(answer.retrieved),
        user_id=user_id,
        channel_id=channel_id,
        thread_id=thread_id,
        message_id=message_id,
        model=answer.model,
        latency_ms=answer.latency_ms,
        sources=sources_snapshot(answer.sources),
        prompt_messages=list(answer.prompt_messages),
        found=answer.found,
        tenant=tenant,
    )


class RateOutcome(StrEnum):
    APPLIED = "applied"  # the user's current rating changed
    UNCHANGED = "unchanged"  # it already had this value
    STALE = "stale"  # older than the last applied event: kept in the history only
    DUPLICATE = "duplicate"  # this event id was recorded before


class FeedbackSink(Protocol):
    def record_answer(self, record: AnswerRecord) -> int | None: ...

    def rate(
        self,
        interaction_id: int,
        *,
        user_id: str,
        value: int,
        source: str,
        event_id: str | None = None,
        event_at: datetime | None = None,
        withdrawn: int | None = None,
    ) -> RateOutcome: ...

    def record_signal(
        self,
        interaction_id: int,
        *,
        workspace: str,
        kind: str,
        weight: float,
        platform: str,
        event_id: str,
        user_id: str = "",
        event_at: datetime | None = None,
    ) -> bool: ...

    def record_reference(
        self,
        interaction_id: int,
        *,
        workspace: str,
        text: str,
        agrees: bool,
        platform: str,
        event_id: str,
        event_at: datetime,
        author_id: str = "",
    ) -> bool: ...

    def answer_context(self, interaction_id: int, *, user_id: str) -> AnswerContext | None: ...


@dataclass(frozen=True, slots=True)
class AnswerContext:
    """What reading a message about an answer needs: the question it answered and when
    (``answered_at``, UTC), whether the message's author asked it (``by_asker``), and whether
    a teammate has replied in its thread yet (``human_replied``)."""

    workspace: str
    question: str
    answered_at: datetime
    by_asker: bool
    human_replied: bool


class SqlFeedbackStore:
    """The sqlmodel implementation of :class:`FeedbackSink`.

    User ids are stored as keyed hashes: enough to keep one rating per user, not enough to
    identify the person from the data set.
    """

    def __init__(
        self, engine: Engine, *, user_hash_key: bytes, clock: Callable[[], datetime] | None = None
    ) -> None:
        self._engine = engine
        self._key = user_hash_key
        self._clock = clock or (lambda: datetime.now(UTC))
        # SQLite has one writer at a time anyway, and an in-memory database is one connection
        # shared by every thread: transactions must not interleave on it.
        self._sqlite_lock = threading.Lock() if engine.dialect.name == "sqlite" else None

    def _writing(self) -> AbstractContextManager[object]:
        return self._sqlite_lock if self._sqlite_lock is not None else nullcontext()

    def user_hash(self, user_id: str) -> str:
        if not user_id:
            return ""
        return hmac.new(self._key, user_id.encode(), hashlib.sha256).hexdigest()

    def record_answer(self, record: AnswerRecord) -> int | None:
        """Store the answer; the same platform message recorded again returns the first id.

        None, with nothing stored (logged at INFO), when ``record.tenant`` is given and the
        workspace named ``record.workspace`` is gone or is another one now (deleted and created
        again while the answer was being generated). The check runs in the transaction that
        inserts the row, after the insert, and holds the workspace row (``FOR SHARE`` on
        PostgreSQL; SQLite's write lock is taken by the insert): a concurrent ``workspace
        delete`` either sees the answer and deletes it with the workspace, or has committed
        and the answer is not stored.
        """
        row = Interaction(
            workspace=record.workspace,
            platform=record.platform,
            channel_id=record.channel_id,
            thread_id=record.thread_id,
            message_id=record.message_id,
            user_hash=self.user_hash(record.user_id),
            question=record.question,
            standalone_question=record.standalone_question,
            retrieved=record.retrieved,
            sources=record.sources,
            prompt_messages=record.prompt_messages,
            answer=record.answer,
            mode=record.mode,
            found=record.found,
            model=record.model,
            latency_ms=record.latency_ms,
            created_at=self._clock(),
        )
        with self._writing(), Session(self._engine) as session:
            session.add(row)
            try:
                session.flush()
                if record.tenant is not None and not self._still_registered(session, record):
                    session.rollback()
                    logger.info(
                        "answer in workspace %r not recorded: the workspace was deleted "
                        "while the answer was being made",
                        record.workspace,
                    )
                    return None
                session.commit()
            except IntegrityError:
                session.rollback()
                existing = self._recorded_id(session, record)
                if existing is None:
                    raise
                return existing
            assert row.id is not None
            return row.id

    @staticmethod
    def _still_registered(session: Session, record: AnswerRecord) -> bool:
        """Whether ``record.workspace`` is still the workspace with ``record.tenant``."""
        tenant = session.exec(
            select(Workspace.tenant)
            .where(Workspace.name == record.workspace)
            .with_for_update(read=True)
        ).first()
        return tenant == record.tenant

    @staticmethod
    def _recorded_id(session: Session, record: AnswerRecord) -> int | None:
        if not record.message_id:
            return None
        return session.exec(
            select(Interaction.id)
            .where(Interaction.workspace == record.workspace)
            .where(Interaction.platform == record.platform)
            .where(Interaction.channel_id == record.channel_id)
            .where(Interaction.message_id == record.message_id)
        ).first()

    def rate(
        self,
        interaction_id: int,
        *,
        user_id: str,
        value: int,
        source: str,
        event_id: str | None = None,
        event_at: datetime | None = None,
        withdrawn: int | None = None,
    ) -> RateOutcome:
        """Apply one rating event (see the module's rules); 0 removes the user's rating.

        ``withdrawn``: the vote a removal takes back (a removed 👍 is ``value=0,
        withdrawn=1``). It removes the rating only while that vote is the current one, so
        taking back an old 👍 does not erase the 👎 the user gave since.
        """
        if value not in (-1, 0, 1):
            raise FeedbackError(f"a rating is +1, -1 or 0 (removed), not {value}")
        if withdrawn is not None and (value != 0 or withdrawn not in (-1, 1)):
            raise FeedbackError("only a removal (value 0) withdraws a vote, and only +1 or -1")
        if event_at is not None and event_at.utcoffset() is None:
            raise FeedbackError("a rating's event time must carry its time zone")
        event = _Event(
            interaction_id=interaction_id,
            user_hash=self.user_hash(user_id),
            value=value,
            source=source,
            event_id=event_id or None,
            event_at=event_at,
            withdrawn=withdrawn,
        )
        for _ in range(_ATTEMPTS):
            with self._writing(), Session(self._engine) as session:
                outcome = self._apply(session, event)
                try:
                    session.commit()
                except IntegrityError:
                    # Another thread or replica stored this event, or this user's first
                    # rating, at the same moment: look again with its row in place.
                    session.rollback()
                    continue
                return outcome
        raise FeedbackError(
            f"could not store the rating of answer {interaction_id}: it kept colliding with "
            "concurrent ratings; try again"
        )

    def _apply(self, session: Session, event: _Event) -> RateOutcome:
        # Locking the interaction row makes ratings of one answer take turns on PostgreSQL
        # (SQLite writers take turns anyway).
        interaction = session.exec(
            select(Interaction.id).where(Interaction.id == event.interaction_id).with_for_update()
        ).first()
        if interaction is None:
            raise FeedbackError(f"no answer with id {event.interaction_id} to rate")
        if event.event_id is not None and (
            session.exec(
                select(RatingEvent.id)
                .where(RatingEvent.interaction_id == event.interaction_id)
                .where(RatingEvent.event_id == event.event_id)
            ).first()
            is not None
        ):
            return RateOutcome.DUPLICATE
        now = self._clock()
        event_at = event.event_at or now
        current = session.exec(
            select(Rating)
            .where(Rating.interaction_id == event.interaction_id)
            .where(Rating.user_hash == event.user_hash)
        ).first()
        old = current.value if current is not None else 0
        if event.withdrawn is not None and event.withdrawn != old:
            event = replace(event, value=old)  # takes back a vote that is no longer current
        last_applied = session.exec(
            select(RatingEvent.event_at)
            .where(RatingEvent.interaction_id == event.interaction_id)
            .where(RatingEvent.user_hash == event.user_hash)
            .where(col(RatingEvent.stale).is_(False))
            .order_by(col(RatingEvent.event_at).desc())
            .limit(1)
        ).first()
        stale = last_applied is not None and event_at < last_applied
        if not stale and event.value == old and event.event_id is None and event.event_at is None:
            return RateOutcome.UNCHANGED  # a plain repeat: nothing to remember
        session.add(
            RatingEvent(
                interaction_id=event.interaction_id,
                user_hash=event.user_hash,
                old_value=old,
                new_value=event.value,
                source=event.source,
                event_id=event.event_id,
                event_at=event_at,
                recorded_at=now,
                stale=stale,
            )
        )
        if stale:
            return RateOutcome.STALE
        if event.value == old:
            return RateOutcome.UNCHANGED
        if event.value == 0:
            assert current is not None
            session.delete(current)
        elif current is None:
            session.add(
                Rating(
                    interaction_id=event.interaction_id,
                    user_hash=event.user_hash,
                    value=event.value,
                    source=event.source,
                    created_at=now,
                    updated_at=now,
                )
            )
        else:
            current.value = event.value
            current.source = event.source
            current.updated_at = now
            session.add(current)
        return RateOutcome.APPLIED

    def record_signal(
        self,
        interaction_id: int,
        *,
        workspace: str,
        kind: str,
        weight: float,
        platform: str,
        event_id: str,
        user_id: str = "",
        event_at: datetime | None = None,
    ) -> bool:
        """Store what a message said about answer ``interaction_id`` (see :class:`Signal`).

        ``event_id``: the message (or reaction) it was read from; the same one again (a
        redelivery) stores nothing and returns False. ``event_at``: when the user acted.
        Raises :class:`FeedbackError` when the answer is not one of ``workspace``'s (a signal
        never crosses tenants).
        """
        row = Signal(
            event_at=event_at,
            workspace=workspace,
            interaction_id=interaction_id,
            kind=kind,
            weight=weight,
            platform=platform,
            event_id=event_id,
            user_hash=self.user_hash(user_id),
            created_at=self._clock(),
        )
        return self._insert_about_answer(row, interaction_id, workspace)

    def record_reference(
        self,
        interaction_id: int,
        *,
        workspace: str,
        text: str,
        agrees: bool,
        platform: str,
        event_id: str,
        event_at: datetime,
        author_id: str = "",
    ) -> bool:
        """Store a teammate's reply in answer ``interaction_id``'s thread (see
        :class:`ReferenceAnswer`); False for a message recorded before. Raises
        :class:`FeedbackError` when the answer is not one of ``workspace``'s."""
        row = ReferenceAnswer(
            workspace=workspace,
            interaction_id=interaction_id,
            text=text,
            agrees=agrees,
            platform=platform,
            event_id=event_id,
            author_hash=self.user_hash(author_id),
            event_at=event_at,
            created_at=self._clock(),
        )
        return self._insert_about_answer(row, interaction_id, workspace)

    def _insert_about_answer(
        self, row: Signal | ReferenceAnswer, interaction_id: int, workspace: str
    ) -> bool:
        """Insert ``row`` about answer ``interaction_id`` if that answer is ``workspace``'s.

        False when a unique constraint says the same platform event was recorded before;
        :class:`FeedbackError` when the answer belongs to another workspace (or none).
        """
        with self._writing(), Session(self._engine) as session:
            owner = session.exec(
                select(Interaction.workspace).where(Interaction.id == interaction_id)
            ).first()
            if owner != workspace:
                raise FeedbackError(f"no answer with id {interaction_id} in {workspace!r}")
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                return False
            return True

    def answer_context(self, interaction_id: int, *, user_id: str) -> AnswerContext | None:
        """The answer's question and time, and whether ``user_id`` asked it (None: no such
        answer). Users are compared by their keyed hashes, as they are stored."""
        with Session(self._engine) as session:
            row = session.get(Interaction, interaction_id)
            if row is None:
                return None
            replied = session.exec(
                select(ReferenceAnswer.id)
                .where(ReferenceAnswer.interaction_id == interaction_id)
                .where(col(ReferenceAnswer.agrees).is_(False))
                .limit(1)
            ).first()
        answered_at = row.created_at
        if answered_at.tzinfo is None:  # SQLite gives back naive UTC times
            answered_at = answered_at.replace(tzinfo=UTC)
        return AnswerContext(
            workspace=row.workspace,
            question=row.question,
            answered_at=answered_at,
            by_asker=bool(row.user_hash) and row.user_hash == self.user_hash(user_id),
            human_replied=replied is not None,
        )

    def references(self, interaction_id: int) -> list[ReferenceAnswer]:
        """Teammates' replies about one answer, in the order received."""
        with Session(self._engine) as session:
            return list(
                session.exec(
                    select(ReferenceAnswer)
                    .where(ReferenceAnswer.interaction_id == interaction_id)
                    .order_by(col(ReferenceAnswer.id))
                )
            )

    def signals(self, interaction_id: int) -> list[Signal]:
        """The signals about one answer, in the order received."""
        with Session(self._engine) as session:
            return list(
                session.exec(
                    select(Signal)
                    .where(Signal.interaction_id == interaction_id)
                    .order_by(col(Signal.id))
                )
            )

    def ratings(self, interaction_id: int) -> list[int]:
        """The current ratings of one answer, one per user who rated it."""
        with Session(self._engine) as session:
            return list(
                session.exec(select(Rating.value).where(Rating.interaction_id == interaction_id))
            )

    def history(self, interaction_id: int) -> list[RatingEvent]:
        """Every rating event of one answer, in the order received."""
        with Session(self._engine) as session:
            return list(
                session.exec(
                    select(RatingEvent)
                    .where(RatingEvent.interaction_id == interaction_id)
                    .order_by(col(RatingEvent.id))
                )
            )


@dataclass(frozen=True, slots=True)
class _Event:
    interaction_id: int
    user_hash: str
    value: int
    source: str
    event_id: str | None
    event_at: datetime | None
    withdrawn: int | None = None
