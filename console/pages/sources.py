"""Knowledge sources (``/w/{workspace}/sources``): each source's status, last runs, errors and
next run; *Sync now* queues a sync and the row follows it (htmx polls the row while it is
queued or running; the request itself never waits for a sync); admins add a web or folder
source. Data: :mod:`console.queries.sources`.

The queue is the process's sync queue: ``app.state.sync_queue`` when whoever serves the console
set it (``supportbot run`` hands over its background sync's queue), else one made on first use
the way the background sync makes it: arq on Redis when ``REDIS_URL`` is set (a worker runs the
job), in-process otherwise.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from console.access import application_of, render, workspace_of
from console.errors import InvalidInputError, NotFoundError
from console.queries.sources import (
    NewSource,
    SourceView,
    SyncQueue,
    add_source,
    list_sources,
    run_info,
    source_view,
    sync_now,
)

POLL_S = 2
MAX_FIELD = 4000
_QUEUE_LOCK = asyncio.Lock()


async def sync_queue(request: Request) -> SyncQueue:
    """The queue *Sync now* puts jobs on (see the module docstring)."""
    state = request.app.state
    found: SyncQueue | None = getattr(state, "sync_queue", None)
    if found is not None:
        return found
    async with _QUEUE_LOCK:
        found = getattr(state, "sync_queue", None)
        if found is None:
            application = application_of(request)
            settings = application.settings
            if settings.redis_url is not None:
                from sync.queue import RedisQueue

                found = await RedisQueue.connect(settings.redis_url.get_secret_value())
            else:
                from sync.queue import InProcessQueue

                engine = await run_in_threadpool(lambda: application.sync_engine)
                found = InProcessQueue(engine, max_jobs=settings.sync_max_jobs)
            state.sync_queue = found
    return found


def _source(request: Request, workspace: str, *, runs: int = 3) -> SourceView:
    try:
        return source_view(
            application_of(request).sync_sources,
            workspace,
            int(request.path_params["source_id"]),
            runs=runs,
        )
    except NotFoundError as e:
        raise HTTPException(404) from e


def _folder_roots(request: Request) -> list[Path]:
    text = application_of(request).settings.console_folder_roots
    return [Path(p.strip()) for p in text.split(",") if p.strip()]


async def sources(
    request: Request,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    workspace = workspace_of(request)
    repo = application_of(request).sync_sources
    views = await run_in_threadpool(list_sources, repo, workspace)
    return render(
        request,
        "sources.html",
        {
            "sources": views,
            "poll_s": POLL_S,
            "error": error,
            "form": form or {},
            "folders_allowed": bool(_folder_roots(request)),
        },
        status_code=status,
    )


async def sources_page(request: Request) -> Response:
    return await sources(request)


async def detail(request: Request) -> Response:
    workspace = workspace_of(request)
    view = await run_in_threadpool(_source, request, workspace, runs=20)
    return render(request, "sources_detail.html", {"source": view, "poll_s": POLL_S})


async def row(request: Request) -> Response:
    """One source's row (htmx polls it while the source is queued or running)."""
    workspace = workspace_of(request)
    view = await run_in_threadpool(_source, request, workspace)
    return render(request, "sources_row.html", {"s": view, "poll_s": POLL_S})


async def run_page(request: Request) -> Response:
    workspace = workspace_of(request)
    application = application_of(request)
    view = await run_in_threadpool(_source, request, workspace, runs=0)
    try:
        found = await run_in_threadpool(
            run_info,
            application.engine,
            application.sync_sources,
            workspace,
            view.info.id,
            int(request.path_params["run_id"]),
        )
    except NotFoundError as e:
        raise HTTPException(404) from e
    return render(request, "sources_run.html", {"source": view, "run": found})


async def sync(request: Request) -> Response:
    workspace = workspace_of(request, write=True)
    repo = application_of(request).sync_sources
    queue = await sync_queue(request)
    try:
        await sync_now(repo, queue, workspace, int(request.path_params["source_id"]))
    except NotFoundError as e:
        raise HTTPException(404) from e
    if request.headers.get("hx-request") == "true":
        return await row(request)
    return RedirectResponse(f"/w/{workspace}/sources", status_code=303)


async def add(request: Request) -> Response:
    workspace = workspace_of(request, write=True)
    application = application_of(request)
    settings = application.settings
    raw = await request.form()
    form = {k: str(raw.get(k, "")) for k in ("name", "kind", "urls", "sitemap", "path", "schedule")}
    if any(len(v) > MAX_FIELD for v in form.values()):  # refused whole: no URL cut in half
        error = f"A field is too long: at most {MAX_FIELD:,} characters."
        shown = {k: v[:MAX_FIELD] for k, v in form.items()}
        return await sources(request, error=error, form=shown, status=400)
    new = NewSource(
        name=form["name"],
        kind=form["kind"],
        urls=form["urls"].split(),
        sitemap=form["sitemap"] or None,
        path=form["path"] or None,
        schedule=form["schedule"] or None,
    )
    try:
        await add_source(
            application.sync_sources,
            workspace,
            new,
            default_schedule=settings.sync_default_schedule,
            requests_per_second=settings.sync_requests_per_second,
            addresses=application.sync_engine_options.addresses,
            folder_roots=_folder_roots(request),
        )
    except InvalidInputError as e:
        return await sources(request, error=str(e), form=form, status=400)
    return RedirectResponse(f"/w/{workspace}/sources", status_code=303)


routes: list[BaseRoute] = [
    Route("/w/{workspace}/sources", sources_page, methods=["GET"]),
    Route("/w/{workspace}/sources", add, methods=["POST"]),
    Route("/w/{workspace}/sources/{source_id:id}", detail, methods=["GET"]),
    Route("/w/{workspace}/sources/{source_id:id}/row", row, methods=["GET"]),
    Route("/w/{workspace}/sources/{source_id:id}/sync", sync, methods=["POST"]),
    Route("/w/{workspace}/sources/{source_id:id}/runs/{run_id:id}", run_page, methods=["GET"]),
]
