"""The console's ASGI application: sessions, CSRF, pages, templates and static assets.

:func:`build_console` mounts the routes of every page module named in :data:`PAGES`; each
``console/pages/<name>.py`` exposes ``routes: list[starlette.routing.BaseRoute]``. A page
module that is not there (a build without it) is skipped with a warning in the log, never
silently. Static assets (``console/static``, htmx and Chart.js vendored with their licences)
are served from ``/static/`` with no sign-in: they hold no data.

``app.state.console`` is a :class:`console.access.ConsoleState` (the process's ``App``, the
settings, the user store, the loaded page names); ``app.state.templates`` the Jinja2
templates of ``console/templates``.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import logging
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from console.access import VIEWER_SCOPE_KEY, ConsoleState, LoginRequired, render
from console.security import CsrfMiddleware, cookie_value
from console.slack_signin import SlackSignIn
from console.users import ConsoleUsers

if TYPE_CHECKING:
    from supportbot.app import App
    from supportbot.settings import Settings

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "supportbot_session"
# Page modules, in mounting order; "auth" serves /login, /logout and the workspace picker.
PAGES = (
    "auth",
    "overview",
    "conversations",
    "review",
    "gaps",
    "sources",
    "settings",
    "exports",
)


def console_key(application: App, settings: Settings) -> bytes:
    """The console's signing key: CONSOLE_SECRET_KEY, else derived from the installation's
    secret (SUPPORTBOT_SECRET_KEY or the one generated, owner-only, in the data directory)."""
    configured = settings.console_secret_key
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value().encode()
    return hmac.new(application.secret_key(), b"supportbot-console", hashlib.sha256).digest()


def session_lifetime(settings: Settings) -> timedelta:
    return timedelta(hours=settings.console_session_hours)


class SessionMiddleware:
    """Loads the signed-in user (``scope["console.viewer"]``) from the session cookie.

    The cookie holds a random token; the user, their grants and the expiry come from the
    database on every request, so a revoked grant or an ended session takes effect at once.
    """

    def __init__(self, app: ASGIApp, *, users: ConsoleUsers) -> None:
        self.app = app
        self.users = users

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/static/"):
            token = cookie_value(scope, SESSION_COOKIE)
            scope[VIEWER_SCOPE_KEY] = (
                await run_in_threadpool(self.users.viewer_of, token) if token else None
            )
        await self.app(scope, receive, send)


def build_console(application: App, settings: Settings | None = None) -> Starlette:
    """The console for ``application``'s database and knowledge (``settings``: its own by
    default). Serve it with any ASGI server (``supportbot web`` uses uvicorn)."""
    settings = settings or application.settings
    users = ConsoleUsers(
        application.engine,
        attempts=settings.console_login_attempts,
        attempts_per_ip=settings.console_login_attempts_per_ip,
    )
    key = console_key(application, settings)
    routes: list[BaseRoute] = []
    loaded: list[str] = []
    for name in PAGES:
        module_name = f"console.pages.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:
                raise  # the page is there but something it imports is not: a real error
            logger.warning("console page %r is not installed; its URLs answer 404", name)
            continue
        routes.extend(module.routes)
        loaded.append(name)
    routes.append(Mount("/static", StaticFiles(directory=HERE / "static"), name="static"))
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                CsrfMiddleware,
                key=key,
                secure=settings.console_secure_cookies,
            ),
            Middleware(SessionMiddleware, users=users),
        ],
        exception_handlers={
            LoginRequired: _login_required,
            HTTPException: _http_error,
        },
    )
    slack = None
    if settings.slack_client_id and settings.slack_client_secret:
        slack = SlackSignIn(
            client_id=settings.slack_client_id,
            client_secret=settings.slack_client_secret.get_secret_value(),
            api_url=settings.slack_api_url,
            key=key,
        )
    app.state.console = ConsoleState(application, settings, users, tuple(loaded), slack)
    app.state.templates = Jinja2Templates(directory=HERE / "templates")
    return app


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


async def _login_required(request: Request, exc: Exception) -> Response:
    if _wants_json(request) or request.method != "GET":
        return JSONResponse({"error": "sign in first"}, status_code=401)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


_TITLES = {403: "Not allowed", 404: "Not found", 405: "Not allowed", 429: "Too many requests"}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code < 400:
        return Response(status_code=exc.status_code, headers=exc.headers)
    if _wants_json(request):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
    detail = exc.detail if exc.status_code == 403 else None
    return render(
        request,
        "error.html",
        {
            "status": exc.status_code,
            "title": _TITLES.get(exc.status_code, "Error"),
            "detail": detail,
        },
        status_code=exc.status_code,
    )
