"""``supportbot eval``: replay a workspace's known questions against its knowledge as it is now.

``--json`` prints one object ``{"workspace", "questions", "retrieval_questions", "hit_at_5",
"mrr_at_10", "answer_agreement", "judge_agreement", "results": [...], "warning"}`` (a contract
for CI scripts); ``--fail-under X`` exits 1 when hit@5 is below X. Each run's figure is stored,
so the next sync or ingest that makes it drop is shown as a warning.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from feedback.errors import FeedbackError
from feedback.eval_store import DropWarning, drop_warning, record_run
from feedback.evaluation import (
    SEARCH_CHUNKS,
    AnswerFn,
    EvalResult,
    Judge,
    evaluate,
    llm_judge,
    question_set,
    read_questions,
)
from supportbot.app import App
from supportbot.workspace_option import WorkspaceOption

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def eval_command(
    ctx: typer.Context,
    workspace: WorkspaceOption,
    questions: Annotated[
        Path | None,
        typer.Option(
            "--questions",
            help='Extra JSON lines {"question", "expected_doc_ids"?, "expected_answer"?}.',
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    fail_under: Annotated[
        float | None,
        typer.Option(
            "--fail-under",
            min=0.0,
            max=1.0,
            help="Exit 1 when retrieval hit@5 (share of questions whose expected document is "
            "among the first 5 documents found, 0-1) is below this floor.",
        ),
    ] = None,
) -> None:
    """Replay verified and liked answers (and --questions) against the workspace now: retrieval
    hit@5 and MRR@10, and answer agreement when a chat model is set."""
    extra = read_questions(questions) if questions is not None else []
    with App(ctx.obj) as application:
        kb = application.knowledge
        kb.workspace(workspace)
        items = question_set(application.engine, workspace, extra=extra)
        answer: AnswerFn | None = None
        judge: Judge | None = None
        if application.chat_model is not None:
            chain = application.answer_chain(workspace)
            answer = lambda question: chain.answer(question).text  # noqa: E731
            if application.settings.eval_llm_judge:
                judge = llm_judge(application.chat_model)
        embedder = application.local_embedder
        result = evaluate(
            workspace,
            items,
            search=lambda qs: kb.search_many(workspace, qs, k=SEARCH_CHUNKS),
            answer=answer,
            embed=lambda texts: embedder.embed_queries(list(texts)),
            judge=judge,
        )
        if result.questions:
            record_run(
                application.engine, result, trigger="eval", changed_docs=[], now=datetime.now(UTC)
            )
        warning = drop_warning(
            application.engine, workspace, margin=application.settings.eval_drop_margin
        )
    if as_json:
        payload = result.as_dict()
        payload["warning"] = warning.as_dict() if warning else None
        print(json.dumps(payload, ensure_ascii=False))
    else:
        _print(result)
        if warning is not None:
            err.print(warning.line, markup=False, highlight=False)
    if fail_under is not None:
        if result.hit_at_5 is None:
            raise FeedbackError(
                f"no question with expected documents in workspace {workspace}: nothing to hold "
                "to --fail-under (promote verified answers, or pass --questions)"
            )
        if result.hit_at_5 < fail_under:
            err.print(
                f"hit@5 {result.hit_at_5:.3f} is below --fail-under {fail_under:.3f}",
                markup=False,
                highlight=False,
            )
            raise typer.Exit(1)


def _figure(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _print(result: EvalResult) -> None:
    retrieval = sum(1 for r in result.results if r.expected_doc_ids)
    out.print(
        f"workspace {result.workspace}: {result.questions} questions "
        f"({retrieval} with expected documents)",
        markup=False,
        highlight=False,
    )
    out.print(
        f"hit@5 {_figure(result.hit_at_5)} · MRR@10 {_figure(result.mrr_at_10)} · "
        f"answer agreement {_figure(result.answer_agreement)}"
        + (
            f" · judge {_figure(result.judge_agreement)}"
            if result.judge_agreement is not None
            else ""
        ),
        markup=False,
        highlight=False,
    )
    for r in result.results:
        if r.expected_doc_ids and (r.rank is None or r.rank > 5):
            found = "not found" if r.rank is None else f"rank {r.rank}"
            out.print(
                f"  missed ({found}): {r.question} — expected {', '.join(r.expected_doc_ids)}",
                markup=False,
                highlight=False,
            )


def quality_warning(application: App, workspace: str) -> DropWarning | None:
    """The evaluation gate's warning for ``source status`` and ``feedback report``."""
    return drop_warning(application.engine, workspace, margin=application.settings.eval_drop_margin)
