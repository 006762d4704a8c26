"""Knowledge gaps: the questions the bot could not answer, grouped, and their drafted entries.

Everything here is :mod:`feedback.gaps` (what ``supportbot feedback gaps`` runs): the gap
questions, the clustering and drafting, and approval as a verified answer. This module only
keeps each call inside one workspace: a draft id of another workspace is :class:`NotFoundError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine

from console.errors import InvalidInputError, NotFoundError
from feedback.errors import FeedbackError
from feedback.gaps import (
    Condense,
    Embed,
    GapQuestion,
    ReferenceAnswers,
    approve,
    draft_gaps,
    gap_questions,
    get_draft,
    list_drafts,
)
from feedback.learning_models import GapDraft
from feedback.promote import KnowledgeWriter

AfterChange = Callable[[str, Sequence[str], str], None]


@dataclass(frozen=True, slots=True)
class GapsView:
    """The page: drafts waiting for review, published ones, and the gap questions no pending
    draft holds yet (new since the last drafting, or never drafted)."""

    pending: list[GapDraft]
    approved: list[GapDraft]
    undrafted: list[GapQuestion]


def gaps_view(engine: Engine, workspace: str) -> GapsView:
    drafts = list_drafts(engine, workspace)
    pending = [d for d in drafts if d.status == "pending"]
    approved = [d for d in drafts if d.status == "approved"]
    drafted = {i for d in pending for i in d.interaction_ids or []}
    undrafted = [q for q in gap_questions(engine, workspace) if q.interaction_id not in drafted]
    undrafted.sort(key=lambda q: q.created_at, reverse=True)
    return GapsView(pending=pending, approved=approved, undrafted=undrafted)


def draft(
    engine: Engine,
    workspace: str,
    *,
    embed: Embed,
    references: ReferenceAnswers,
    condense: Condense | None,
    threshold: float,
    now: datetime,
) -> list[GapDraft]:
    """Cluster and (re)draft the workspace's gaps, as ``supportbot feedback gaps`` does."""
    return draft_gaps(
        engine,
        workspace,
        embed=embed,
        references=references,
        condense=condense,
        threshold=threshold,
        now=now,
    )


def gap_draft(engine: Engine, workspace: str, draft_id: int) -> GapDraft:
    """One draft of the workspace; :class:`NotFoundError` for another workspace's id."""
    try:
        row = get_draft(engine, draft_id)
    except FeedbackError:
        row = None
    if row is None or row.workspace != workspace:
        raise NotFoundError(f"no FAQ draft {draft_id} in workspace {workspace}")
    return row


def approve_draft(
    engine: Engine,
    knowledge: KnowledgeWriter,
    workspace: str,
    draft_id: int,
    *,
    answer: str | None,
    now: datetime,
    after_change: AfterChange | None = None,
) -> GapDraft:
    """Publish the draft (``answer`` replaces its text when given) as a verified answer.

    Raises :class:`NotFoundError` or :class:`InvalidInputError` (no text, already approved).
    """
    gap_draft(engine, workspace, draft_id)
    text = answer if answer is not None and answer.strip() else None
    try:
        done = approve(engine, knowledge, draft_id, answer=text, now=now)
    except FeedbackError as e:
        raise InvalidInputError(str(e)) from e
    if after_change is not None and done.doc_id:
        after_change(workspace, [done.doc_id], "console-gaps")
    return done
