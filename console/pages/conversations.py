"""Conversations of one workspace (filled in below the skeleton)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from console.access import render, workspace_of


async def conversations(request: Request) -> Response:
    workspace_of(request)
    return render(request, "conversations.html", {})


routes: list[BaseRoute] = [
    Route("/w/{workspace}/conversations", conversations, methods=["GET"]),
]
