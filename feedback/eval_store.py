"""Evaluation figures kept over time, and the warning when a knowledge change made them drop.

After every sync or ingest that changed documents, :class:`EvalGate` replays a bounded,
stable sample of the workspace's question set (:mod:`feedback.evaluation`) and stores the
figure with the documents that changed (:class:`feedback.learning_models.EvalRun`).
:func:`drop_warning` then compares runs on the questions they share: when hit@5 fell by more
than the margin in some run and has not come back to within the margin of the figure before
it, the warning names the documents changed since that last good figure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from feedback.evaluation import (
    HIT_AT,
    SEARCH_CHUNKS,
    EvalResult,
    drop_on_shared,
    evaluate,
    hit_at,
    question_set,
    sample,
)
from feedback.learning_models import EvalRun
from retrieval.store import SearchResult

logger = logging.getLogger(__name__)

HISTORY = 20
"""Runs looked back over for the last good figure."""


class Searcher(Protocol):
    def search_many(
        self, name: str, queries: Sequence[str], *, k: int
    ) -> list[list[SearchResult]]: ...


@dataclass(frozen=True, slots=True)
class DropWarning:
    """hit@5 fell from ``before`` to ``now`` (on shared questions) after ``changed_docs``."""

    workspace: str
    before: float
    now: float
    drop: float
    changed_docs: list[str]
    since: datetime

    @property
    def line(self) -> str:
        docs = ", ".join(self.changed_docs[:10]) or "none recorded"
        more = f" (+{len(self.changed_docs) - 10} more)" if len(self.changed_docs) > 10 else ""
        return (
            f"warning: answer quality dropped in workspace {self.workspace}: hit@{HIT_AT} "
            f"{self.before:.0%} → {self.now:.0%} on the same questions since "
            f"{self.since:%Y-%m-%d %H:%M} UTC; documents changed: {docs}{more} "
            f"(see `supportbot eval --workspace {self.workspace}`)"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "workspace": self.workspace,
            "hit_at_5_before": round(self.before, 4),
            "hit_at_5_now": round(self.now, 4),
            "drop": round(self.drop, 4),
            "changed_docs": self.changed_docs,
            "since": self.since.isoformat(),
            "message": self.line,
        }


def record_run(
    engine: Engine,
    result: EvalResult,
    *,
    trigger: str,
    changed_docs: Sequence[str],
    now: datetime,
) -> int:
    """Store one run's figures; returns its id."""
    row = EvalRun(
        workspace=result.workspace,
        trigger=trigger,
        questions=result.questions,
        hit_at_5=result.hit_at_5,
        mrr_at_10=result.mrr_at_10,
        answer_agreement=result.answer_agreement,
        changed_docs=list(dict.fromkeys(changed_docs)),
        results=[
            {"key": _key(r.question), "rank": r.rank} for r in result.results if r.expected_doc_ids
        ],
        created_at=now,
    )
    with Session(engine) as session:
        session.add(row)
        session.commit()
        assert row.id is not None
        return row.id


def recent_runs(engine: Engine, workspace: str, *, limit: int = HISTORY) -> list[EvalRun]:
    """The workspace's latest runs, newest first."""
    with Session(engine) as session:
        return list(
            session.exec(
                select(EvalRun)
                .where(EvalRun.workspace == workspace)
                .order_by(col(EvalRun.created_at).desc(), col(EvalRun.id).desc())
                .limit(limit)
            )
        )


def drop_warning(engine: Engine, workspace: str, *, margin: float) -> DropWarning | None:
    """The warning to show, if the newest figure is below the last good one by > ``margin``."""
    runs = recent_runs(engine, workspace)
    if len(runs) < 2:
        return None
    latest = runs[0]
    for i in range(len(runs) - 1):
        if drop_on_shared(runs[i + 1].results, runs[i].results) > margin:
            baseline = runs[i + 1]
            fall = drop_on_shared(baseline.results, latest.results)
            if fall <= margin:
                return None  # it came back
            changed = [doc for run in runs[: i + 1] for doc in run.changed_docs]
            before, now = _shared_hits(baseline.results, latest.results)
            return DropWarning(
                workspace=workspace,
                before=before,
                now=now,
                drop=fall,
                changed_docs=list(dict.fromkeys(changed)),
                since=runs[i].created_at,
            )
    return None


def _shared_hits(
    before: Sequence[dict[str, Any]], after: Sequence[dict[str, Any]]
) -> tuple[float, float]:
    """hit@5 of each run over the questions both have."""
    old = {str(r["key"]): r.get("rank") for r in before}
    new = {str(r["key"]): r.get("rank") for r in after}
    shared = [k for k in new if k in old]
    if not shared:
        return 0.0, 0.0
    old_hit = hit_at([_rank(old[k]) for k in shared], HIT_AT) or 0.0
    new_hit = hit_at([_rank(new[k]) for k in shared], HIT_AT) or 0.0
    return old_hit, new_hit


def _rank(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _key(question: str) -> str:
    from feedback.evaluation import question_hash

    return question_hash(question)


class EvalGate:
    """Runs the bounded evaluation after a knowledge change and stores its figure.

    ``sample_size``: at most this many questions per run (0 turns the gate off). Never raises:
    a failing evaluation is logged, and the sync or ingest that triggered it stands.
    """

    def __init__(
        self,
        engine: Engine,
        knowledge: Searcher,
        *,
        sample_size: int,
        clock: Callable[[], datetime],
    ) -> None:
        self._engine = engine
        self._knowledge = knowledge
        self._size = sample_size
        self._clock = clock

    def after_change(self, workspace: str, changed_docs: Sequence[str], *, trigger: str) -> None:
        if self._size <= 0 or not changed_docs:
            return
        try:
            questions = sample(question_set(self._engine, workspace), self._size)
            if not questions:
                return
            result = evaluate(
                workspace,
                questions,
                search=lambda qs: self._knowledge.search_many(workspace, qs, k=SEARCH_CHUNKS),
            )
            record_run(
                self._engine, result, trigger=trigger, changed_docs=changed_docs, now=self._clock()
            )
            logger.info(
                "evaluation of %s after %s: %d questions, hit@5 %s",
                workspace,
                trigger,
                result.questions,
                "n/a" if result.hit_at_5 is None else f"{result.hit_at_5:.2f}",
            )
        except Exception:
            logger.warning("evaluation of %s after %s failed", workspace, trigger, exc_info=True)
