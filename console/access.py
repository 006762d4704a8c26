"""Who is signed in, which workspace a request may touch, and rendering with both.

Every page under ``/w/{workspace}/`` calls :func:`workspace_of` first: a workspace the user has
no grant for is 404, exactly as a workspace that does not exist, so guessing URLs tells
nothing; a change asked by a viewer is 403. Pages render through :func:`render`, which gives
templates the user, the language, the CSRF token and the navigation.

How a page module uses it::

    async def page(request: Request) -> Response:
        workspace = workspace_of(request)               # 404 unless granted
        rows = await run_in_threadpool(my_query, engine_of(request), workspace)
        return render(request, "mine.html", {"rows": rows})

    async def change(request: Request) -> Response:
        workspace = workspace_of(request, write=True)   # 403 for viewers
        ...

Forms include ``{{ csrf_field() }}``; htmx requests carry the token by themselves (the
``hx-headers`` of ``<body>`` in base.html); :mod:`console.security` checks every POST.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape
from sqlalchemy.engine import Engine
from starlette.convertors import IntegerConvertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse

from console.i18n import language, translate
from console.models import Role
from console.security import CSRF_FIELD
from console.users import ConsoleUsers, Viewer

if TYPE_CHECKING:
    from console.slack_signin import SlackSignIn
    from supportbot.app import App
    from supportbot.settings import Settings

__all__ = [
    "NAV",
    "LoginRequired",
    "Viewer",
    "application_of",
    "engine_of",
    "render",
    "viewer",
    "workspace_of",
]

# The pages of a workspace, in the navigation's order: (page module, URL segment, label).
NAV: list[tuple[str, str]] = [
    ("overview", "Overview"),
    ("conversations", "Conversations"),
    ("review", "Review"),
    ("gaps", "Knowledge gaps"),
    ("sources", "Sources"),
    ("settings", "Settings"),
    ("exports", "Exports"),
]
VIEWER_SCOPE_KEY = "console.viewer"


class IdConvertor(IntegerConvertor):
    """``{name:id}`` in a route: a database id, 1 to 18 digits (a signed 64-bit integer holds
    it). A longer number matches no route (404) instead of overflowing the database driver."""

    regex = "[0-9]{1,18}"


register_url_convertor("id", IdConvertor())


class LoginRequired(Exception):
    """Nobody is signed in: pages redirect to /login, JSON endpoints answer 401."""


@dataclass(frozen=True, slots=True)
class ConsoleState:
    """What ``build_console`` puts on ``app.state.console``."""

    application: App
    settings: Settings
    users: ConsoleUsers
    pages: tuple[str, ...]
    # Sign in with Slack, when SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set.
    slack: SlackSignIn | None = None


def state_of(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


def application_of(request: Request) -> App:
    """The process's :class:`supportbot.app.App` (engine, registry, knowledge...)."""
    return state_of(request).application


def engine_of(request: Request) -> Engine:
    return state_of(request).application.engine


def current_viewer(request: Request) -> Viewer | None:
    found: Viewer | None = request.scope.get(VIEWER_SCOPE_KEY)
    return found


async def viewer(request: Request) -> Viewer:
    """The signed-in user with their grants; raises :class:`LoginRequired` if none."""
    found = current_viewer(request)
    if found is None:
        raise LoginRequired
    return found


def workspace_of(request: Request, *, write: bool = False) -> str:
    """The ``{workspace}`` of the URL, once the user may use it.

    404 when the user has no grant on it (whether or not it exists); 403 when ``write`` and
    their role there is viewer; :class:`LoginRequired` when nobody is signed in.
    """
    found = current_viewer(request)
    if found is None:
        raise LoginRequired
    workspace = str(request.path_params.get("workspace", ""))
    role = found.grants.get(workspace)
    if role is None:
        raise HTTPException(404)
    if write and role != Role.ADMIN:
        raise HTTPException(403, "Viewers cannot change anything in this workspace.")
    return workspace


def lang_of(request: Request) -> str:
    return language(request.headers.get("accept-language"))


def render(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """``template`` (which extends base.html) with ``context`` plus: ``viewer``, ``lang``,
    ``_`` (translate), ``csrf_token``, ``csrf_field()``, ``workspace`` (from the URL, when
    granted), ``role``, ``can_write``, ``nav`` [(label, url, current)] and ``workspaces``."""
    lang = lang_of(request)
    found = current_viewer(request)
    token = str(request.scope.get("console.csrf_token", ""))
    workspace = request.path_params.get("workspace")
    if found is None or workspace not in found.grants:
        workspace = None
    nav: list[tuple[str, str, bool]] = []
    if workspace is not None:
        loaded = state_of(request).pages
        for name, label in NAV:
            if name in loaded:
                url = f"/w/{workspace}/{name}"
                nav.append((translate(lang, label), url, request.url.path.startswith(url)))
    full = {
        "request": request,
        "viewer": found,
        "lang": lang,
        "_": lambda text, **values: translate(lang, text, **values),
        "csrf_token": token,
        "csrf_field": lambda: Markup(
            f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(token)}">'
        ),
        "workspace": workspace,
        "role": found.grants.get(workspace) if found and workspace else None,
        "can_write": bool(found and workspace and found.grants.get(workspace) == Role.ADMIN),
        "nav": nav,
        "workspaces": sorted(found.grants) if found else [],
        **context,
    }
    templates = request.app.state.templates
    response: HTMLResponse = templates.TemplateResponse(
        request, template, full, status_code=status_code
    )
    return response
