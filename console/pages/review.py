"""The review queue (``/w/{workspace}/review``): disliked and negatively signalled answers with
their retrieved context; an admin writes the right answer and publishes it as a verified
answer, or marks the item reviewed. Data: :mod:`console.queries.review`."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from console.access import application_of, render, viewer, workspace_of
from console.errors import NotFoundError
from console.queries.review import (
    ReviewEntry,
    mark_reviewed,
    publish_answer,
    review_entry,
    review_queue,
    unmark_reviewed,
)
from feedback.errors import FeedbackError

MAX_ANSWER_CHARS = 20_000


def _known(request: Request) -> set[str]:
    return {w.name for w in application_of(request).registry.list()}


def _entry(request: Request, workspace: str, interaction_id: int) -> ReviewEntry:
    application = application_of(request)
    try:
        return review_entry(
            application.engine,
            workspace,
            interaction_id,
            min_relevance=application.settings.min_relevance,
            known_workspaces=_known(request),
        )
    except (NotFoundError, FeedbackError) as e:
        raise HTTPException(404) from e


async def queue(request: Request) -> Response:
    workspace = workspace_of(request)
    application = application_of(request)
    everything = request.query_params.get("all") == "1"
    try:
        entries = await run_in_threadpool(
            lambda: review_queue(
                application.engine,
                workspace,
                min_relevance=application.settings.min_relevance,
                known_workspaces=_known(request),
                include_reviewed=everything,
                limit=200,
            )
        )
    except FeedbackError:  # granted, but no longer registered and without answers
        entries = []
    return render(request, "review.html", {"entries": entries, "everything": everything})


async def item(request: Request) -> Response:
    workspace = workspace_of(request)
    interaction_id = int(request.path_params["interaction_id"])
    entry = await run_in_threadpool(_entry, request, workspace, interaction_id)
    return render(
        request,
        "review_item.html",
        {"entry": entry, "published": request.query_params.get("published") == "1"},
    )


async def publish(request: Request) -> Response:
    workspace = workspace_of(request, write=True)
    interaction_id = int(request.path_params["interaction_id"])
    who = await viewer(request)
    form = await request.form()
    text = str(form.get("answer", ""))
    if len(text) > MAX_ANSWER_CHARS:  # refused whole: never a cut-off answer published
        entry = await run_in_threadpool(_entry, request, workspace, interaction_id)
        error = f"The answer is too long: at most {MAX_ANSWER_CHARS:,} characters."
        return render(
            request,
            "review_item.html",
            {"entry": entry, "error": error, "draft": text[:MAX_ANSWER_CHARS]},
            status_code=400,
        )
    application = application_of(request)
    try:
        await run_in_threadpool(
            publish_answer,
            application.engine,
            application.knowledge,
            workspace,
            interaction_id,
            text,
            reviewer=who.email,
            now=datetime.now(UTC),
            after_change=application.after_knowledge_change,
        )
    except NotFoundError as e:
        raise HTTPException(404) from e
    except FeedbackError as e:
        entry = await run_in_threadpool(_entry, request, workspace, interaction_id)
        return render(
            request,
            "review_item.html",
            {"entry": entry, "error": str(e), "draft": text},
            status_code=400,
        )
    return RedirectResponse(f"/w/{workspace}/review/{interaction_id}?published=1", status_code=303)


async def reviewed(request: Request) -> Response:
    workspace = workspace_of(request, write=True)
    interaction_id = int(request.path_params["interaction_id"])
    who = await viewer(request)
    engine = application_of(request).engine
    try:
        await run_in_threadpool(
            mark_reviewed,
            engine,
            workspace,
            interaction_id,
            reviewer=who.email,
            now=datetime.now(UTC),
        )
    except NotFoundError as e:
        raise HTTPException(404) from e
    return RedirectResponse(f"/w/{workspace}/review", status_code=303)


async def reopen(request: Request) -> Response:
    workspace = workspace_of(request, write=True)
    interaction_id = int(request.path_params["interaction_id"])
    try:
        await run_in_threadpool(
            unmark_reviewed, application_of(request).engine, workspace, interaction_id
        )
    except NotFoundError as e:
        raise HTTPException(404) from e
    return RedirectResponse(f"/w/{workspace}/review/{interaction_id}", status_code=303)


routes: list[BaseRoute] = [
    Route("/w/{workspace}/review", queue, methods=["GET"]),
    Route("/w/{workspace}/review/{interaction_id:id}", item, methods=["GET"]),
    Route("/w/{workspace}/review/{interaction_id:id}/publish", publish, methods=["POST"]),
    Route("/w/{workspace}/review/{interaction_id:id}/reviewed", reviewed, methods=["POST"]),
    Route("/w/{workspace}/review/{interaction_id:id}/reopen", reopen, methods=["POST"]),
]
