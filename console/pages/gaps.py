"""Knowledge gaps (``/w/{workspace}/gaps``): the questions the bot could not answer, grouped by
meaning into drafted FAQ entries (what ``supportbot feedback gaps`` does), and approving an
entry as a verified answer (admins). Data: :mod:`console.queries.gaps`."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from console.access import application_of, render, workspace_of
from console.errors import InvalidInputError, NotFoundError
from console.queries.gaps import approve_draft, draft, gap_draft, gaps_view
from feedback.gaps import model_condenser, stored_references
from feedback.learning_models import GapDraft

MAX_ANSWER_CHARS = 20_000


async def gaps(request: Request) -> Response:
    workspace = workspace_of(request)
    view = await run_in_threadpool(gaps_view, application_of(request).engine, workspace)
    return render(request, "gaps.html", {"view": view})


def _draft(request: Request, workspace: str) -> GapDraft:
    try:
        return gap_draft(
            application_of(request).engine, workspace, int(request.path_params["draft_id"])
        )
    except NotFoundError as e:
        raise HTTPException(404) from e


async def detail(request: Request) -> Response:
    workspace = workspace_of(request)
    row = await run_in_threadpool(_draft, request, workspace)
    return render(request, "gaps_draft.html", {"draft": row})


async def redraft(request: Request) -> Response:
    """Group the gap questions and (re)write the pending drafts, as the CLI does."""
    workspace = workspace_of(request, write=True)
    application = application_of(request)

    def run() -> None:
        chat = application.chat_model
        draft(
            application.engine,
            workspace,
            embed=lambda texts: application.local_embedder.embed_queries(list(texts)),
            references=stored_references(application.engine, workspace),
            condense=model_condenser(chat) if chat is not None else None,
            threshold=application.settings.gaps_similarity,
            now=datetime.now(UTC),
        )

    await run_in_threadpool(run)
    return RedirectResponse(f"/w/{workspace}/gaps", status_code=303)


async def approve(request: Request) -> Response:
    workspace = workspace_of(request, write=True)
    application = application_of(request)
    row = await run_in_threadpool(_draft, request, workspace)
    form = await request.form()
    text = str(form.get("answer", ""))
    if len(text) > MAX_ANSWER_CHARS:  # refused whole: never a cut-off entry published
        error = f"The entry is too long: at most {MAX_ANSWER_CHARS:,} characters."
        context = {"draft": row, "error": error, "text": text[:MAX_ANSWER_CHARS]}
        return render(request, "gaps_draft.html", context, status_code=400)
    assert row.id is not None
    try:
        await run_in_threadpool(
            lambda: approve_draft(
                application.engine,
                application.knowledge,
                workspace,
                row.id or 0,
                answer=text,
                now=datetime.now(UTC),
                after_change=application.after_knowledge_change,
            )
        )
    except InvalidInputError as e:
        context = {"draft": row, "error": str(e), "text": text}
        return render(request, "gaps_draft.html", context, status_code=400)
    return RedirectResponse(f"/w/{workspace}/gaps/{row.id}", status_code=303)


routes: list[BaseRoute] = [
    Route("/w/{workspace}/gaps", gaps, methods=["GET"]),
    Route("/w/{workspace}/gaps/draft", redraft, methods=["POST"]),
    Route("/w/{workspace}/gaps/{draft_id:id}", detail, methods=["GET"]),
    Route("/w/{workspace}/gaps/{draft_id:id}/approve", approve, methods=["POST"]),
]
