"""The overview of one workspace (filled in below the skeleton)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from console.access import render, workspace_of


async def overview(request: Request) -> Response:
    workspace = workspace_of(request)
    return render(request, "overview.html", {"workspace_name": workspace})


routes: list[BaseRoute] = [Route("/w/{workspace}/overview", overview, methods=["GET"])]
