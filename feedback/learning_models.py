"""Tables of the learning loop: evaluation runs of a workspace and drafted FAQ entries.

Kept in their own module (registered by :func:`supportbot.migrations.target_metadata`), so
the rating tables in :mod:`feedback.models` stay as they are. Both belong to one workspace by
name and go with it (:mod:`supportbot.workspace_purge`). Schema changes go through a
migration (revision ``0005_eval_runs``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel


class EvalRun(SQLModel, table=True):
    """One replay of a workspace's question set: its figures and what triggered it.

    ``results`` holds one ``{"key", "rank"}`` per question (``key``: the normalized question's
    hash, ``rank``: 1-based rank of the first expected document among distinct retrieved
    documents, or None), so two runs are compared on the questions they share even when the
    set grew in between. ``changed_docs``: the documents the sync or ingest that triggered the
    run changed (empty for a run from ``supportbot eval``).
    """

    __tablename__ = "eval_run"

    id: int | None = Field(default=None, primary_key=True)
    workspace: str = Field(index=True)
    trigger: str
    questions: int
    hit_at_5: float | None = None
    mrr_at_10: float | None = None
    answer_agreement: float | None = None
    changed_docs: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    results: list[dict[str, object]] = Field(default_factory=list, sa_column=Column(JSON))
    created_at: datetime


class GapDraft(SQLModel, table=True):
    """A drafted FAQ entry for one cluster of unanswered or disliked questions, for review.

    ``status``: ``pending`` until a reviewer approves it (``approved``, with the verified
    answer's ``doc_id``). ``questions``: the cluster's questions as asked, most frequent first;
    ``question`` is the one the entry is published under. ``drafted_by``: ``model`` (condensed
    by the chat model), ``quote`` (the human answers quoted) or ``none`` (no human answer was
    found: the reviewer writes it with ``approve --edit``).
    """

    __tablename__ = "gap_draft"

    id: int | None = Field(default=None, primary_key=True)
    workspace: str = Field(index=True)
    cluster_key: str
    question: str = Field(sa_column=Column(Text, nullable=False))
    questions: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    interaction_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON))
    asked: int
    answer: str = Field(sa_column=Column(Text, nullable=False))
    references: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    drafted_by: str
    status: str = "pending"
    doc_id: str | None = None
    created_at: datetime
    updated_at: datetime
    approved_at: datetime | None = None
