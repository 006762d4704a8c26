"""Promoting a liked answer to a *verified answer* in its workspace's knowledge.

A verified answer is an ordinary document of the workspace (retrieved, cited and re-indexed
like any other) titled "Verified answer", with the question as its heading. Its id comes from
the normalized question, so promoting another answer to the same question replaces it instead
of adding a second, possibly contradicting, one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from feedback.answers import RatedAnswer, load_answers, normalize_question
from feedback.errors import FeedbackError
from feedback.models import Interaction, VerifiedAnswer
from retrieval.documents import SourceDocument
from retrieval.prompts import EXTRACTIVE_LABEL

VERIFIED_TITLE = "Verified answer"
VERIFIED_ORIGIN = "verified-answer"
_CITATION = re.compile(r"[ \t]*\[\d{1,2}\]")


class KnowledgeWriter(Protocol):
    def upsert_documents(
        self, name: str, docs: Sequence[SourceDocument], *, origin: str
    ) -> object: ...


@dataclass(frozen=True, slots=True)
class Promotion:
    interaction_id: int
    workspace: str
    doc_id: str
    question: str
    replaced_interaction_id: int | None  # the answer it replaced, when there was one
    replaced: bool


def question_key(question: str) -> str:
    return hashlib.sha256(normalize_question(question).encode()).hexdigest()[:32]


def verified_document(question: str, answer: str) -> SourceDocument:
    """The document a promoted answer becomes.

    Its ``[n]`` citations pointed at a context that is not there any more, and the label of an
    extractive answer ("no language model is configured...") is no part of the answer: both go.
    """
    text = answer.strip()
    for label in EXTRACTIVE_LABEL.values():
        text = text.removeprefix(label).strip()
    text = _CITATION.sub("", text).strip()
    doc_id = f"{VERIFIED_ORIGIN}:{question_key(question)}"
    return SourceDocument(
        doc_id=doc_id,
        title=VERIFIED_TITLE,
        text=f"# {question.strip()}\n\n{text}",
        source=VERIFIED_TITLE,
    )


def promote(
    engine: Engine,
    knowledge: KnowledgeWriter,
    interaction_id: int,
    *,
    force: bool = False,
    clock: Callable[[], datetime],
    text: str | None = None,
) -> Promotion:
    """Write the answer into its workspace's knowledge as a verified answer.

    ``text``: the right answer as a reviewer wrote or edited it (the web console's review
    queue), published instead of the bot's; a reviewer vouches for it, so it needs no 👍.
    """
    answer = _answer(engine, interaction_id)
    if text is not None:
        if not text.strip():
            raise FeedbackError(f"no answer written for answer {interaction_id}; nothing published")
        answer = replace(answer, answer=text.strip())
    elif not force:
        if not answer.found:
            raise FeedbackError(
                f"answer {interaction_id} is a 'not found' answer, nothing to verify; "
                "pass --force to promote it anyway"
            )
        if answer.label != "liked":
            raise FeedbackError(
                f"answer {interaction_id} is not liked (👍 {answer.likes}, 👎 {answer.dislikes}); "
                "only liked answers are promoted, or pass --force"
            )
    question = answer.standalone_question
    document = verified_document(question, answer.answer)
    knowledge.upsert_documents(answer.workspace, [document], origin=VERIFIED_ORIGIN)
    replaced, previous = _record(engine, answer, question, document, clock())
    return Promotion(
        interaction_id=interaction_id,
        workspace=answer.workspace,
        doc_id=document.doc_id,
        question=question,
        replaced_interaction_id=previous,
        replaced=replaced,
    )


def _answer(engine: Engine, interaction_id: int) -> RatedAnswer:
    with Session(engine) as session:
        row = session.get(Interaction, interaction_id)
    if row is None:
        raise FeedbackError(f"no answer with id {interaction_id}; see `supportbot feedback review`")
    return next(a for a in load_answers(engine, row.workspace) if a.id == interaction_id)


def _record(
    engine: Engine, answer: RatedAnswer, question: str, document: SourceDocument, now: datetime
) -> tuple[bool, int | None]:
    """Remember the promotion: whether it replaced one, and the answer it replaced."""
    key = question_key(question)
    for _ in range(3):
        with Session(engine) as session:
            row = session.exec(
                select(VerifiedAnswer)
                .where(VerifiedAnswer.workspace == answer.workspace)
                .where(VerifiedAnswer.question_key == key)
            ).first()
            replaced = row is not None
            previous = row.interaction_id if row is not None else None
            if row is None:
                row = VerifiedAnswer(
                    workspace=answer.workspace,
                    question_key=key,
                    doc_id=document.doc_id,
                    question=question,
                    answer=answer.answer,
                    interaction_id=answer.id,
                    promoted_at=now,
                )
            else:
                row.question, row.answer, row.interaction_id = question, answer.answer, answer.id
                row.doc_id, row.promoted_at = document.doc_id, now
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                continue  # promoted at the same moment elsewhere: update that row instead
            return replaced, previous
    raise FeedbackError("could not record the promotion: concurrent promotions; try again")
