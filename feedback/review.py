"""Disliked answers, each with the context it was given, for a person to tell retrieval
failures (the right passage was not found) from generation failures (it was, and the answer
still went wrong)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.engine import Engine

from feedback.answers import RatedAnswer, load_answers, require_workspace
from feedback.pii import Scrubber


@dataclass(frozen=True, slots=True)
class ReviewItem:
    answer: RatedAnswer
    best_similarity: float | None
    hint: str

    def as_dict(self) -> dict[str, Any]:
        a = self.answer
        return {
            "interaction_id": a.id,
            "created_at": a.created_at.isoformat(),
            "platform": a.platform,
            "question": a.question,
            "standalone_question": a.standalone_question,
            "answer": a.answer,
            "mode": a.mode,
            "model": a.model,
            "found": a.found,
            "likes": a.likes,
            "dislikes": a.dislikes,
            "best_similarity": self.best_similarity,
            "hint": self.hint,
            "cited": a.sources,
            "retrieved": a.retrieved,
        }


def disliked_answers(
    engine: Engine,
    workspace: str,
    *,
    min_relevance: float,
    limit: int = 20,
    known_workspaces: set[str],
    scrub: Scrubber | None = None,
    also: Collection[int] = (),
) -> list[ReviewItem]:
    """Answers with at least one 👎, the most disliked (by net rating) and newest first.

    ``also``: ids of further answers of the workspace to include (the web console's review
    queue adds those whose signals were negative, :mod:`feedback.signals`).
    The texts (question, answer, retrieved passages) go through ``scrub`` (default: the
    default :class:`~feedback.pii.Scrubber`, as exports): a review is read by people who
    need the failure, not the user's card number."""
    require_workspace(engine, workspace, known_workspaces)
    answers = [a for a in load_answers(engine, workspace) if a.dislikes or a.id in also]
    answers.sort(key=lambda a: (a.net, -a.created_at.timestamp(), -a.id))
    scrub = scrub or Scrubber()
    return [_item(_scrubbed(a, scrub), min_relevance) for a in answers[:limit]]


def _scrubbed(answer: RatedAnswer, scrub: Scrubber) -> RatedAnswer:
    return replace(
        answer,
        question=scrub(answer.question),
        standalone_question=scrub(answer.standalone_question),
        answer=scrub(answer.answer),
        retrieved=[_scrubbed_chunk(chunk, scrub) for chunk in answer.retrieved],
        prompt_messages=[
            {**m, "content": scrub(m.get("content", ""))} for m in answer.prompt_messages
        ],
    )


def _scrubbed_chunk(chunk: dict[str, object], scrub: Scrubber) -> dict[str, object]:
    text = chunk.get("text")
    return {**chunk, "text": scrub(text)} if isinstance(text, str) else chunk


def _item(answer: RatedAnswer, min_relevance: float) -> ReviewItem:
    scores = [
        float(s) for s in (chunk.get("similarity") for chunk in answer.retrieved)
        if isinstance(s, int | float)
    ]  # fmt: skip
    best = max(scores) if scores else None
    if not answer.retrieved:
        hint = "retrieval: nothing was retrieved (an empty workspace, or a failed search)"
    elif not answer.found or (best is not None and best < min_relevance):
        shown = f"{best:.2f}" if best is not None else "?"
        hint = (
            f"retrieval: no passage was relevant enough (best similarity {shown} < "
            f"{min_relevance:.2f}): a knowledge gap, or the documents use other words"
        )
    else:
        hint = (
            "relevant passages were retrieved: if they hold the answer, generation failed; "
            "if not, retrieval missed the right document"
        )
    return ReviewItem(answer=answer, best_similarity=best, hint=hint)
