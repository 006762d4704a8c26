"""Stores answers and their 👍/👎 so they become preference data.

Bots and the terminal chat talk to the :class:`FeedbackSink` protocol only, so the storage can
grow (rating history, exports) without touching them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from feedback.errors import FeedbackError
from feedback.models import Interaction, Rating
from retrieval.store import SearchResult


@dataclass(frozen=True, slots=True)
class AnswerRecord:
    """An answer as it was given, with what was retrieved for it."""

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


def retrieved_snapshot(results: Sequence[SearchResult]) -> list[dict[str, object]]:
    """What was retrieved for an answer, as it was then (the knowledge may change later)."""
    return [
        {
            "chunk_id": r.chunk_id,
            "doc_id": r.doc_id,
            "text": r.text,
            "score": r.score,
            "similarity": r.similarity,
        }
        for r in results
    ]


class FeedbackSink(Protocol):
    def record_answer(self, record: AnswerRecord) -> int: ...

    def rate(self, interaction_id: int, *, user_id: str, value: int, source: str) -> None: ...


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

    def _hash(self, user_id: str) -> str:
        if not user_id:
            return ""
        return hmac.new(self._key, user_id.encode(), hashlib.sha256).hexdigest()

    def record_answer(self, record: AnswerRecord) -> int:
        with Session(self._engine) as session:
            row = Interaction(
                workspace=record.workspace,
                platform=record.platform,
                channel_id=record.channel_id,
                thread_id=record.thread_id,
                message_id=record.message_id,
                user_hash=self._hash(record.user_id),
                question=record.question,
                standalone_question=record.standalone_question,
                retrieved=record.retrieved,
                answer=record.answer,
                mode=record.mode,
                model=record.model,
                latency_ms=record.latency_ms,
                created_at=self._clock(),
            )
            session.add(row)
            session.commit()
            assert row.id is not None
            return row.id

    def rate(self, interaction_id: int, *, user_id: str, value: int, source: str) -> None:
        """Set this user's one current rating; 0 removes it."""
        if value not in (-1, 0, 1):
            raise FeedbackError(f"a rating is +1, -1 or 0 (removed), not {value}")
        user_hash = self._hash(user_id)
        now = self._clock()
        with Session(self._engine) as session:
            if session.get(Interaction, interaction_id) is None:
                raise FeedbackError(f"no answer with id {interaction_id} to rate")
            current = session.exec(
                select(Rating)
                .where(Rating.interaction_id == interaction_id)
                .where(Rating.user_hash == user_hash)
            ).first()
            if value == 0:
                if current is not None:
                    session.delete(current)
            elif current is None:
                session.add(
                    Rating(
                        interaction_id=interaction_id,
                        user_hash=user_hash,
                        value=value,
                        source=source,
                        created_at=now,
                        updated_at=now,
                    )
                )
            else:
                current.value = value
                current.source = source
                current.updated_at = now
                session.add(current)
            session.commit()

    def ratings(self, interaction_id: int) -> list[int]:
        with Session(self._engine) as session:
            return list(
                session.exec(select(Rating.value).where(Rating.interaction_id == interaction_id))
            )
