"""``supportbot feedback``: the report, the review of disliked answers, verified answers, and
fine-tuning exports.

Errors are :class:`feedback.errors.FeedbackError` (and the retrieval errors of the knowledge
base), which ``supportbot.cli.main`` turns into one line on stderr.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path, PurePath
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from feedback.errors import FeedbackError
from feedback.export import ExportOptions, export_dataset
from feedback.gaps import approve, draft_gaps, get_draft, model_condenser, stored_references
from feedback.learning_models import GapDraft
from feedback.pii import Scrubber
from feedback.promote import promote
from feedback.report import Report, Totals, build_report
from feedback.review import ReviewItem, disliked_answers
from feedback.splits import SPLITS, SplitRatios
from retrieval.store import heading_path
from supportbot.app import App
from supportbot.eval_cli import quality_warning
from supportbot.workspace_option import WorkspaceOption, workspace_name

feedback_app = typer.Typer(
    help="Answers and their 👍/👎: report, review, verified answers, fine-tuning exports.",
    no_args_is_help=True,
)

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


class ExportFormat(StrEnum):
    SFT = "sft"
    KTO = "kto"
    DPO = "dpo"
    OPENAI_SFT = "openai-sft"
    OPENAI_DPO = "openai-dpo"


class LabelSource(StrEnum):
    EXPLICIT = "explicit"
    IMPLICIT = "implicit"
    ALL = "all"


def _now() -> datetime:
    return datetime.now(UTC)


def _known(application: App, workspace: str) -> set[str]:
    """The registered workspaces, after checking that ``workspace`` is one of them: a deleted
    workspace's name is unknown, like any other (nothing of it is left to report)."""
    application.registry.get(workspace)
    return {w.name for w in application.registry.list()}


@feedback_app.command("export")
def export_command(
    ctx: typer.Context,
    workspace: WorkspaceOption,
    format_name: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="Dataset format.", case_sensitive=False)
    ],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder to write into.")],
    scrub: Annotated[
        bool, typer.Option("--scrub/--no-scrub", help="Replace PII and secrets (default: on).")
    ] = True,
    split: Annotated[
        str, typer.Option(help="train/validation/test ratios, e.g. 80/10/10.")
    ] = "80/10/10",
    seed: Annotated[str, typer.Option(help="Seed of the deterministic split.")] = "supportbot",
    llm_only: Annotated[
        bool, typer.Option("--llm-only", help="Only answers a language model wrote.")
    ] = False,
    labels: Annotated[
        LabelSource,
        typer.Option(
            "--labels",
            help="explicit: 👍/👎 ratings; implicit: what conversations said (signals, "
            "teammates' replies as preferred answers); all: both.",
            case_sensitive=False,
        ),
    ] = LabelSource.EXPLICIT,
) -> None:
    """Export rated answers as TRL (sft, kto, dpo) or OpenAI (openai-sft, openai-dpo) JSONL."""
    try:
        ratios = SplitRatios.parse(split)
    except ValueError as e:
        raise FeedbackError(str(e)) from e
    with App(ctx.obj) as application:
        options = ExportOptions(
            format=format_name.value,
            scrub=scrub,
            ratios=ratios,
            seed=seed,
            similarity=application.settings.feedback_dpo_similarity,
            llm_only=llm_only,
            labels=labels.value,
        )
        known = _known(application, workspace)
        manifest = export_dataset(
            application.engine,
            workspace,
            out_dir,
            options,
            embed=lambda texts: application.embedder.embed_queries(list(texts)),
            clock=_now,
            known_workspaces=known,
        )
    counts = manifest["counts"]
    total = sum(counts[s]["rows"] for s in SPLITS)
    per_split = ", ".join(f"{s} {counts[s]['rows']}" for s in SPLITS)
    out.print(
        f"wrote {total} {format_name.value} rows ({per_split}) to {out_dir}; "
        f"rules and hashes in {out_dir / 'manifest.json'}",
        markup=False,
        highlight=False,
    )
    if total == 0:
        source = manifest["source"]
        out.print(
            f"nothing to export yet: {source['answers']} answers, {source['liked']} liked, "
            f"{source['disliked']} disliked",
            markup=False,
            highlight=False,
        )


@feedback_app.command("report")
def report_command(
    ctx: typer.Context,
    workspace: WorkspaceOption,
    days: Annotated[
        int | None, typer.Option(min=1, help="Only the last N days (default: all time).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Lines per list.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """Answers, rating rate, like rate by day, disliked questions, knowledge gaps, sources."""
    with App(ctx.obj) as application:
        report = build_report(
            application.engine,
            workspace,
            now=_now(),
            days=days,
            limit=limit,
            known_workspaces=_known(application, workspace),
        )
        warning = quality_warning(application, workspace)
    if as_json:
        payload = {**report.as_dict(), "quality_warning": warning and warning.as_dict()}
        print(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    _print_report(report)
    if warning is not None:
        out.print(warning.line, markup=False, highlight=False)


@feedback_app.command("promote")
def promote_command(
    ctx: typer.Context,
    interaction_id: Annotated[int, typer.Argument(help="The answer's id (see report/review).")],
    force: Annotated[
        bool, typer.Option("--force", help="Promote even an answer that is not liked.")
    ] = False,
) -> None:
    """Make a liked answer a verified answer in its workspace's knowledge (replacing an
    earlier one to the same question)."""
    with App(ctx.obj) as application:
        promotion = promote(
            application.engine, application.knowledge, interaction_id, force=force, clock=_now
        )
        # The evaluation gate, as after a sync: the stored figure gains the promoted question.
        application.after_knowledge_change(promotion.workspace, [promotion.doc_id], "promote")
    replaced = (
        f"; it replaces the verified answer from answer {promotion.replaced_interaction_id}"
        if promotion.replaced
        else ""
    )
    out.print(
        f"answer {interaction_id} is now a verified answer in workspace {promotion.workspace} "
        f"({promotion.doc_id}){replaced}",
        markup=False,
        highlight=False,
    )


@feedback_app.command("review")
def review_command(
    ctx: typer.Context,
    workspace: WorkspaceOption,
    limit: Annotated[int, typer.Option(min=1, help="Answers to show.")] = 20,
    as_json: JsonOption = False,
    scrub: Annotated[
        bool, typer.Option("--scrub/--no-scrub", help="Replace PII and secrets (default: on).")
    ] = True,
) -> None:
    """Disliked answers with the context they were given: did retrieval or generation fail?"""
    with App(ctx.obj) as application:
        items = disliked_answers(
            application.engine,
            workspace,
            min_relevance=application.settings.min_relevance,
            limit=limit,
            known_workspaces=_known(application, workspace),
            scrub=Scrubber(enabled=scrub),
        )
    if as_json:
        print(
            json.dumps(
                {"workspace": workspace, "answers": [i.as_dict() for i in items]},
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    if not items:
        out.print(f"no disliked answers in workspace {workspace}", markup=False)
    for item in items:
        _print_review_item(item)


# --- rendering ---------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _print_report(report: Report) -> None:
    t = report.totals
    period = f"since {report.since:%Y-%m-%d}" if report.since else "all time"
    out.print(f"[bold]Feedback report[/] — workspace [bold]{report.workspace}[/], {period}")
    out.print(
        f"answers {t.answers} · rated {t.rated} ({_percent(t.rated_share)}) · "
        f"👍 {t.liked} · 👎 {t.disliked} · tied {t.tied} · like rate {_percent(t.like_rate)} · "
        f"not found {t.not_found}",
        highlight=False,
    )
    if report.handoffs is not None:
        h = report.handoffs
        wait = h.median_seconds_to_first_human_reply
        median = "—" if wait is None else f"{int(wait // 60)}m {int(wait % 60):02d}s"
        out.print(
            f"handoffs {h.count} · replied by a person {h.replied} · resolved {h.resolved} · "
            f"median time to first human reply {median}",
            highlight=False,
        )
    days = Table(title="By day (UTC)", title_justify="left")
    for column in ("day", "answers", "rated", "👍", "👎", "like rate"):
        days.add_column(column, justify="left" if column == "day" else "right")
    for day, d in report.by_day:
        days.add_row(day.isoformat(), *_day_cells(d))
    out.print(days)
    _question_table("Most disliked questions", report, disliked=True)
    _question_table("Knowledge gaps (answered 'not found')", report, disliked=False)
    sources = Table(title="Top cited sources", title_justify="left")
    for column in ("source", "cited", "👍", "👎"):
        sources.add_column(column, justify="left" if column == "source" else "right")
    for s in report.top_sources:
        name = s.source if "://" in s.source else PurePath(s.source).name
        label = s.title if s.title in (name, "") else f"{s.title} ({name})"
        sources.add_row(label, str(s.cited), str(s.liked), str(s.disliked))
    out.print(sources)


def _day_cells(d: Totals) -> list[str]:
    return [str(d.answers), str(d.rated), str(d.liked), str(d.disliked), _percent(d.like_rate)]


def _question_table(title: str, report: Report, *, disliked: bool) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("question")
    table.add_column("asked", justify="right")
    if disliked:
        table.add_column("👎", justify="right")
    table.add_column("answer ids")
    lines = report.most_disliked if disliked else report.knowledge_gaps
    for q in lines:
        ids = ", ".join(str(i) for i in q.interaction_ids[-5:])
        cells = [q.question, str(q.asked), *([str(q.dislikes)] if disliked else []), ids]
        table.add_row(*cells)
    out.print(table)


def _print_review_item(item: ReviewItem) -> None:
    a = item.answer
    out.print(
        f"\n[bold]answer {a.id}[/] · {a.created_at:%Y-%m-%d %H:%M} · {a.platform} · "
        f"👍 {a.likes} 👎 {a.dislikes} · {a.mode}",
        highlight=False,
    )
    _field("question", a.question)
    if a.standalone_question != a.question:
        _field("searched as", a.standalone_question)
    _field("answer", a.answer)
    _field("hint", item.hint)
    if not a.retrieved:
        _field("retrieved", "nothing")
    for n, chunk in enumerate(a.retrieved, start=1):
        _print_chunk(n, chunk)


def _field(name: str, value: str) -> None:
    out.print(f"  [dim]{name}:[/] ", end="")
    out.print(value, markup=False, highlight=False)


def _print_chunk(n: int, chunk: dict[str, Any]) -> None:
    similarity = chunk.get("similarity")
    score = f"{similarity:.2f}" if isinstance(similarity, int | float) else "?"
    where = heading_path(str(chunk.get("title") or ""), str(chunk.get("heading") or ""))
    text = " ".join(str(chunk.get("text") or "").split())
    excerpt = text if len(text) <= 240 else text[:239] + "…"
    out.print(f"  [{n}] similarity {score} {where or chunk.get('doc_id', '')}", markup=False)
    out.print(f"      {excerpt}", markup=False, highlight=False)


# --- knowledge gaps ----------------------------------------------------------------------------

gaps_app = typer.Typer(
    help="Unanswered questions clustered by meaning, drafted into FAQ entries for review.",
    invoke_without_command=True,
)
feedback_app.add_typer(gaps_app, name="gaps")


@gaps_app.callback()
def gaps_command(
    ctx: typer.Context,
    workspace: Annotated[
        str | None,
        typer.Option("--workspace", "-w", help="Workspace name.", callback=_optional_workspace),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Cluster the workspace's "not found", disliked and negatively signalled questions, draft
    one FAQ entry per cluster from the human answers to them, and list the review queue."""
    if ctx.invoked_subcommand is not None:
        return
    if workspace is None:
        raise FeedbackError("give --workspace W (or a sub-command: show ID, approve ID)")
    with App(ctx.obj) as application:
        _known(application, workspace)
        chat = application.chat_model
        drafts = draft_gaps(
            application.engine,
            workspace,
            embed=lambda texts: application.local_embedder.embed_queries(list(texts)),
            references=stored_references(application.engine, workspace),
            condense=model_condenser(chat) if chat is not None else None,
            threshold=application.settings.gaps_similarity,
            now=_now(),
        )
    if as_json:
        print(
            json.dumps(
                {"workspace": workspace, "drafts": [_draft_dict(d) for d in drafts]},
                ensure_ascii=False,
            )
        )
        return
    if not drafts:
        out.print(f"no knowledge gaps to draft in workspace {workspace}", markup=False)
        return
    table = Table(title=f"FAQ drafts — workspace {workspace}", title_justify="left")
    for column in ("id", "asked", "question", "drafted"):
        table.add_column(column, justify="right" if column in ("id", "asked") else "left")
    for d in drafts:
        table.add_row(str(d.id), str(d.asked), d.question, d.drafted_by)
    out.print(table)
    out.print("see one with `supportbot feedback gaps show ID`; publish it with `... approve ID`")


@gaps_app.command("show")
def gaps_show(
    ctx: typer.Context,
    draft_id: Annotated[int, typer.Argument(help="The draft's id (see `feedback gaps`).")],
    as_json: JsonOption = False,
) -> None:
    """One FAQ draft: its questions, the human answers found, the drafted entry."""
    with App(ctx.obj) as application:
        draft = get_draft(application.engine, draft_id)
    if as_json:
        print(json.dumps(_draft_dict(draft), ensure_ascii=False))
        return
    out.print(
        f"[bold]draft {draft.id}[/] · {draft.status} · asked {draft.asked} · {draft.drafted_by}",
        highlight=False,
    )
    _field("question", draft.question)
    for question in draft.questions:
        _field("asked as", question)
    for reference in draft.references:
        _field("human answer", reference)
    _field("entry", draft.answer or "(none drafted: approve with --edit to write it)")


@gaps_app.command("approve")
def gaps_approve(
    ctx: typer.Context,
    draft_id: Annotated[int, typer.Argument(help="The draft's id (see `feedback gaps`).")],
    edit: Annotated[
        bool,
        typer.Option(
            "--edit",
            help="Write the entry first: from standard input when it is not a terminal, "
            "else in $EDITOR.",
        ),
    ] = False,
) -> None:
    """Publish a draft as a verified answer: the next such question is answered from it."""
    with App(ctx.obj) as application:
        answer: str | None = None
        if edit:
            draft = get_draft(application.engine, draft_id)
            terminal = sys.stdin.isatty()
            answer = _in_editor(draft.answer or "") if terminal else sys.stdin.read()
            if answer is None or not answer.strip():
                raise FeedbackError(f"no answer written; FAQ draft {draft_id} left as it was")
        done = approve(
            application.engine, application.knowledge, draft_id, answer=answer, now=_now()
        )
        # The evaluation gate, as after a sync: the stored figure gains the entry's questions.
        changed = [done.doc_id] if done.doc_id else []
        application.after_knowledge_change(done.workspace, changed, "gaps-approve")
    out.print(
        f"FAQ draft {done.id} is now a verified answer in workspace {done.workspace} "
        f"({done.doc_id})",
        markup=False,
        highlight=False,
    )


def _in_editor(text: str) -> str:
    """``text`` edited in $EDITOR (vi when unset); what was saved."""
    editor = shlex.split(os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "faq-entry.md"
        path.write_text(text, encoding="utf-8")
        try:
            done = subprocess.run([*editor, str(path)], check=False)
        except OSError as e:
            raise FeedbackError(f"cannot start the editor {editor[0]!r}: {e}") from e
        if done.returncode != 0:
            raise FeedbackError(f"the editor exited with status {done.returncode}; nothing saved")
        return path.read_text(encoding="utf-8")


def _optional_workspace(value: str | None) -> str | None:
    return None if value is None else workspace_name(value)


def _draft_dict(d: GapDraft) -> dict[str, Any]:
    return {
        "id": d.id,
        "status": d.status,
        "asked": d.asked,
        "question": d.question,
        "questions": d.questions,
        "interaction_ids": d.interaction_ids,
        "answer": d.answer,
        "references": d.references,
        "drafted_by": d.drafted_by,
        "doc_id": d.doc_id,
        "updated_at": d.updated_at.isoformat(),
    }
