"""Settings (``/w/{workspace}/settings``): channel modes of the workspace's Slack teams and
Discord servers, the escalation target of human handoffs, and Slack's suggested prompts.
Admins change them; the same checks as the CLI commands. Data: :mod:`console.queries.settings`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from console.access import application_of, render, workspace_of
from console.errors import InvalidInputError
from console.queries.settings import (
    MODES,
    channel_modes,
    escalation_target,
    set_channel_mode,
    set_escalation_target,
    set_suggested_prompts,
    suggested_prompts,
    workspace_teams,
)

MAX_FIELD = 10_000


def _context(request: Request, workspace: str) -> dict[str, Any]:
    application = application_of(request)
    engine, registry = application.engine, application.registry
    return {
        "teams": workspace_teams(registry, workspace),
        "channels": channel_modes(engine, registry, workspace),
        "modes": MODES,
        "target": escalation_target(engine, workspace),
        "prompts": suggested_prompts(engine, workspace),
    }


async def settings_page(
    request: Request, *, error: str | None = None, saved: str | None = None, status: int = 200
) -> Response:
    workspace = workspace_of(request)
    context = await run_in_threadpool(_context, request, workspace)
    saved = saved or request.query_params.get("saved")
    return render(
        request,
        "settings.html",
        {**context, "error": error, "saved": saved},
        status_code=status,
    )


async def _change(request: Request, what: str, action: Callable[[dict[str, str]], Any]) -> Response:
    workspace = workspace_of(request, write=True)
    raw = await request.form()
    form = {k: v for k, v in raw.items() if isinstance(v, str)}
    if any(len(v) > MAX_FIELD for v in form.values()):  # refused whole, never cut off
        error = f"A field is too long: at most {MAX_FIELD:,} characters."
        return await settings_page(request, error=error, status=400)
    try:
        await run_in_threadpool(action, form)
    except InvalidInputError as e:
        return await settings_page(request, error=str(e), status=400)
    return RedirectResponse(f"/w/{workspace}/settings?saved={what}", status_code=303)


async def channel(request: Request) -> Response:
    application = application_of(request)
    workspace = str(request.path_params["workspace"])
    return await _change(
        request,
        "channel",
        lambda form: set_channel_mode(
            application.engine,
            application.registry,
            workspace,
            team=form.get("team", ""),
            channel_id=form.get("channel_id", ""),
            mode=form.get("mode", ""),
        ),
    )


async def escalation(request: Request) -> Response:
    engine = application_of(request).engine
    workspace = str(request.path_params["workspace"])
    return await _change(
        request,
        "escalation",
        lambda form: set_escalation_target(
            engine,
            workspace,
            slack_channels=form.get("slack_channels", ""),
            slack_usergroups=form.get("slack_usergroups", ""),
            discord_channel=form.get("discord_channel", ""),
            discord_role=form.get("discord_role", ""),
        ),
    )


async def prompts(request: Request) -> Response:
    engine = application_of(request).engine
    workspace = str(request.path_params["workspace"])
    return await _change(
        request,
        "prompts",
        lambda form: set_suggested_prompts(engine, workspace, form.get("prompts", "")),
    )


routes: list[BaseRoute] = [
    Route("/w/{workspace}/settings", settings_page, methods=["GET"]),
    Route("/w/{workspace}/settings/channel", channel, methods=["POST"]),
    Route("/w/{workspace}/settings/escalation", escalation, methods=["POST"]),
    Route("/w/{workspace}/settings/prompts", prompts, methods=["POST"]),
]
