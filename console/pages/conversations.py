"""``/w/{workspace}/conversations``: the answers, searched and filtered (query string: ``q``,
``platform``, ``channel``, ``rating`` liked|disliked|unrated, ``not_found=1``, ``from`` and
``to`` as YYYY-MM-DD, ``page``); ``/w/{workspace}/conversations/{id}``: one in full."""

from __future__ import annotations

from datetime import date
from typing import cast

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from console.access import engine_of, render, workspace_of
from console.queries.conversations import (
    PAGE_SIZE,
    ConversationFilters,
    RatingFilter,
    conversation,
    search,
)

MAX_PAGE = 100_000  # a bigger page number would overflow the database's OFFSET


def _date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def filters_of(request: Request) -> ConversationFilters:
    params = request.query_params
    rating = params.get("rating", "")
    return ConversationFilters(
        q=params.get("q", "")[:200],
        platform=params.get("platform", ""),
        channel=params.get("channel", ""),
        rating=cast(RatingFilter, rating if rating in ("liked", "disliked", "unrated") else ""),
        not_found=params.get("not_found") in ("1", "on", "true"),
        date_from=_date(params.get("from")),
        date_to=_date(params.get("to")),
    )


async def conversations_page(request: Request) -> Response:
    workspace = workspace_of(request)
    filters = filters_of(request)
    try:
        page = min(max(int(request.query_params.get("page", "1")), 1), MAX_PAGE)
    except ValueError:
        page = 1
    found = await run_in_threadpool(
        search,
        engine_of(request),
        workspace,
        filters,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    query = request.url.query
    base = "&".join(p for p in query.split("&") if p and not p.startswith("page="))
    return render(
        request,
        "conversations.html",
        {
            "found": found,
            "filters": filters,
            "page": page,
            "pages": max((found.total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
            "base_query": base,
        },
    )


async def conversation_page(request: Request) -> Response:
    workspace = workspace_of(request)
    try:
        interaction_id = int(request.path_params["id"])
    except ValueError:
        raise HTTPException(404) from None
    detail = await run_in_threadpool(conversation, engine_of(request), workspace, interaction_id)
    if detail is None:
        raise HTTPException(404)
    return render(request, "conversation.html", {"detail": detail, "i": detail.interaction})


routes: list[BaseRoute] = [
    Route("/w/{workspace}/conversations", conversations_page, methods=["GET"]),
    Route("/w/{workspace}/conversations/{id:id}", conversation_page, methods=["GET"]),
]
