"""Sign-in, sign-out and the workspace picker (``/login``, ``/logout``, ``/``)."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from console.access import current_viewer, render, state_of, viewer
from console.security import cookie_value
from console.users import SignInRefused


def _safe_next(target: str | None) -> str:
    """Only a path of this site (never //host or a scheme): no open redirect."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target:
        return "/"
    return target


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def session_cookie_response(request: Request, target: str, token: str) -> Response:
    from console.app import SESSION_COOKIE, session_lifetime

    settings = state_of(request).settings
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(session_lifetime(settings).total_seconds()),
        path="/",
        secure=settings.console_secure_cookies,
        httponly=True,
        samesite="lax",
    )
    return response


async def login_page(request: Request) -> Response:
    if current_viewer(request) is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    return _login_form(request)


def _login_form(
    request: Request, *, error: str | None = None, email: str = "", status: int = 200
) -> Response:
    settings = state_of(request).settings
    slack = bool(settings.slack_client_id and settings.slack_client_secret)
    return render(
        request,
        "login.html",
        {
            "error": error,
            "email": email,
            "next": _safe_next(request.query_params.get("next")),
            "slack": slack,
        },
        status_code=status,
    )


async def login(request: Request) -> Response:
    from console.access import lang_of
    from console.app import session_lifetime
    from console.i18n import translate

    form = await request.form()
    email = str(form.get("email", ""))[:320]
    password = str(form.get("password", ""))[:1024]
    target = _safe_next(str(form.get("next", "")) or None)
    state = state_of(request)
    lang = lang_of(request)
    try:
        user_id = await run_in_threadpool(
            state.users.authenticate, email, password, ip=client_ip(request)
        )
    except SignInRefused as e:
        response = _login_form(request, error=str(e), email=email, status=429)
        response.headers["Retry-After"] = str(e.retry_after_s)
        return response
    if user_id is None:
        return _login_form(
            request,
            error=translate(lang, "Wrong email or password."),
            email=email,
            status=401,
        )
    token = await run_in_threadpool(
        state.users.start_session, user_id, session_lifetime(state.settings)
    )
    return session_cookie_response(request, target, token)


async def logout(request: Request) -> Response:
    from console.app import SESSION_COOKIE

    token = cookie_value(request.scope, SESSION_COOKIE)
    if token:
        await run_in_threadpool(state_of(request).users.end_session, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def picker(request: Request) -> Response:
    """The workspaces granted to the user; straight to the overview when there is one."""
    found = await viewer(request)
    if len(found.grants) == 1:
        (only,) = found.grants
        return RedirectResponse(f"/w/{only}/overview", status_code=303)
    return render(request, "picker.html", {"grants": sorted(found.grants.items())})


routes: list[BaseRoute] = [
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/", picker, methods=["GET"]),
]
