"""``/w/{workspace}/overview``: answers per day, like and "not found" rates, handoffs, the
evaluation figure and the top cited sources, for 7, 30 or 90 days (``?days=``); the same
figures as JSON at ``/w/{workspace}/overview.json``."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from console.access import engine_of, render, workspace_of
from console.queries.overview import PERIODS, Overview, overview


def _days(request: Request) -> int:
    try:
        days = int(request.query_params.get("days", "30"))
    except ValueError:
        return 30
    return days if days in PERIODS else 30


def chart_data(figures: Overview) -> dict[str, Any]:
    """What overview.js draws (and what the JSON endpoint returns)."""
    return {
        "days": [d.isoformat() for d in figures.days],
        "answers": figures.answers_per_day,
        "not_found": figures.not_found_per_day,
        "answers_total": figures.answers,
        "liked": figures.liked,
        "disliked": figures.disliked,
        "like_rate": figures.like_rate,
        "not_found_rate": figures.not_found_rate,
        "handoffs": None
        if figures.handoffs is None
        else {
            "total": figures.handoffs.total,
            "replied": figures.handoffs.replied,
            "per_day": figures.handoffs.per_day,
            "median_first_reply_s": figures.handoffs.median_first_reply_s,
        },
        "evaluation": None
        if figures.evaluation is None
        else [{"at": at.isoformat(), "hit_at_5": hit} for at, hit in figures.evaluation],
        "top_sources": [
            {"title": title, "url": url, "count": count}
            for title, url, count in figures.top_sources
        ],
    }


async def overview_page(request: Request) -> Response:
    workspace = workspace_of(request)
    days = _days(request)
    figures = await run_in_threadpool(overview, engine_of(request), workspace, days=days)
    return render(
        request,
        "overview.html",
        {"figures": figures, "days": days, "periods": PERIODS, "chart": chart_data(figures)},
    )


async def overview_json(request: Request) -> Response:
    workspace = workspace_of(request)
    figures = await run_in_threadpool(overview, engine_of(request), workspace, days=_days(request))
    return JSONResponse(chart_data(figures))


routes: list[BaseRoute] = [
    Route("/w/{workspace}/overview", overview_page, methods=["GET"]),
    Route("/w/{workspace}/overview.json", overview_json, methods=["GET"]),
]
