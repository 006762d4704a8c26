"""The review queue: disliked answers and answers whose conversation said they were wrong.

Built on :func:`feedback.review.disliked_answers` (the same items, hints and PII scrubbing as
``supportbot feedback review``), with the answers whose signals add up below zero
(:func:`feedback.signals.load_implicit`) added. Publishing goes through
:func:`feedback.promote.promote`, so a published answer is the same verified-answer document the
CLI writes: retrieved and cited by the answer chain from then on.

A person marks an item reviewed (:class:`console.models.ReviewMark`); reviewed items leave the
queue but stay reachable by id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from console.errors import NotFoundError
from console.models import ReviewMark
from feedback.models import Interaction, VerifiedAnswer
from feedback.pii import Scrubber
from feedback.promote import KnowledgeWriter, Promotion, promote
from feedback.review import ReviewItem, disliked_answers
from feedback.signals import load_implicit

AfterChange = Callable[[str, Sequence[str], str], None]
"""``(workspace, changed doc ids, trigger)``: :meth:`supportbot.app.App.after_knowledge_change`."""


@dataclass(frozen=True, slots=True)
class ReviewEntry:
    """One item of the queue: the review item, its signals and whether it was handled.

    ``signal_kinds``/``signal_net``: what the conversation said (empty/0 without signals);
    ``verified_doc``: the verified answer published from it, when one was.
    """

    item: ReviewItem
    signal_kinds: list[str]
    signal_net: float
    reviewed_by: str | None
    reviewed_at: datetime | None
    verified_doc: str | None

    @property
    def id(self) -> int:
        return self.item.answer.id

    @property
    def reviewed(self) -> bool:
        return self.reviewed_at is not None


def review_queue(
    engine: Engine,
    workspace: str,
    *,
    min_relevance: float,
    known_workspaces: set[str],
    include_reviewed: bool = False,
    limit: int = 50,
    scrub: Scrubber | None = None,
) -> list[ReviewEntry]:
    """The workspace's disliked and negatively signalled answers, most disliked and newest
    first; reviewed ones only with ``include_reviewed``."""
    implicit = load_implicit(engine, workspace)
    negative = {i for i, f in implicit.items() if f.net < 0}
    marks = _marks(engine, workspace)
    verified = _verified(engine, workspace)
    items = disliked_answers(
        engine,
        workspace,
        min_relevance=min_relevance,
        limit=1_000_000,
        known_workspaces=known_workspaces,
        scrub=scrub,
        also=negative,
    )
    entries: list[ReviewEntry] = []
    for item in items:
        mark = marks.get(item.answer.id)
        if mark is not None and not include_reviewed:
            continue
        feedback = implicit.get(item.answer.id)
        entries.append(
            ReviewEntry(
                item=item,
                signal_kinds=list(feedback.kinds) if feedback else [],
                signal_net=feedback.net if feedback else 0.0,
                reviewed_by=mark.reviewed_by if mark else None,
                reviewed_at=mark.reviewed_at if mark else None,
                verified_doc=verified.get(item.answer.id),
            )
        )
        if len(entries) >= limit:
            break
    return entries


def review_entry(
    engine: Engine,
    workspace: str,
    interaction_id: int,
    *,
    min_relevance: float,
    known_workspaces: set[str],
    scrub: Scrubber | None = None,
) -> ReviewEntry:
    """One answer of the workspace as a review item (any answer of it, queued or not).

    Raises :class:`NotFoundError` for an id that is not an answer of ``workspace``.
    """
    _require_answer(engine, workspace, interaction_id)
    implicit = load_implicit(engine, workspace)
    items = disliked_answers(
        engine,
        workspace,
        min_relevance=min_relevance,
        limit=1_000_000,
        known_workspaces=known_workspaces,
        scrub=scrub,
        also={interaction_id},
    )
    item = next(i for i in items if i.answer.id == interaction_id)
    mark = _marks(engine, workspace).get(interaction_id)
    feedback = implicit.get(interaction_id)
    return ReviewEntry(
        item=item,
        signal_kinds=list(feedback.kinds) if feedback else [],
        signal_net=feedback.net if feedback else 0.0,
        reviewed_by=mark.reviewed_by if mark else None,
        reviewed_at=mark.reviewed_at if mark else None,
        verified_doc=_verified(engine, workspace).get(interaction_id),
    )


def publish_answer(
    engine: Engine,
    knowledge: KnowledgeWriter,
    workspace: str,
    interaction_id: int,
    text: str,
    *,
    reviewer: str,
    now: datetime,
    after_change: AfterChange | None = None,
) -> Promotion:
    """Publish ``text`` as the verified answer to the answer's question and mark it reviewed.

    The same document and record as ``supportbot feedback promote`` (replacing an earlier
    verified answer to the same question); ``after_change`` runs the evaluation gate as the
    CLI does. Raises :class:`NotFoundError` (not this workspace's answer) or
    :class:`feedback.errors.FeedbackError` (an empty text).
    """
    _require_answer(engine, workspace, interaction_id)
    promotion = promote(engine, knowledge, interaction_id, clock=lambda: now, text=text)
    if after_change is not None:
        after_change(workspace, [promotion.doc_id], "console-review")
    mark_reviewed(engine, workspace, interaction_id, reviewer=reviewer, now=now)
    return promotion


def mark_reviewed(
    engine: Engine, workspace: str, interaction_id: int, *, reviewer: str, now: datetime
) -> None:
    """Mark the answer reviewed (again: the newest reviewer and time win)."""
    _require_answer(engine, workspace, interaction_id)
    for _ in range(2):
        with Session(engine) as session:
            row = session.exec(
                select(ReviewMark).where(ReviewMark.interaction_id == interaction_id)
            ).first() or ReviewMark(
                workspace=workspace,
                interaction_id=interaction_id,
                reviewed_by=reviewer,
                reviewed_at=now,
            )
            row.reviewed_by, row.reviewed_at = reviewer, now
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                continue  # marked at the same moment elsewhere: update that row
            return


def unmark_reviewed(engine: Engine, workspace: str, interaction_id: int) -> None:
    """Put the answer back into the queue."""
    _require_answer(engine, workspace, interaction_id)
    with Session(engine) as session:
        for row in session.exec(
            select(ReviewMark)
            .where(ReviewMark.workspace == workspace)
            .where(ReviewMark.interaction_id == interaction_id)
        ):
            session.delete(row)
        session.commit()


def _require_answer(engine: Engine, workspace: str, interaction_id: int) -> None:
    with Session(engine) as session:
        found = session.exec(
            select(Interaction.id)
            .where(Interaction.id == interaction_id)
            .where(Interaction.workspace == workspace)
        ).first()
    if found is None:
        raise NotFoundError(f"no answer {interaction_id} in workspace {workspace}")


def _marks(engine: Engine, workspace: str) -> dict[int, ReviewMark]:
    with Session(engine) as session:
        rows = session.exec(select(ReviewMark).where(ReviewMark.workspace == workspace)).all()
    return {row.interaction_id: row for row in rows}


def _verified(engine: Engine, workspace: str) -> dict[int, str]:
    with Session(engine) as session:
        rows = session.exec(
            select(VerifiedAnswer.interaction_id, VerifiedAnswer.doc_id)
            .where(VerifiedAnswer.workspace == workspace)
            .where(col(VerifiedAnswer.interaction_id).is_not(None))
        ).all()
    return {int(i): doc for i, doc in rows if i is not None}
