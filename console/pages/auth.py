"""Sign-in (password, or Slack: ``/login/slack``), sign-out and the workspace picker
(``/login``, ``/logout``, ``/``)."""

from __future__ import annotations

import functools
import logging
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from console.access import application_of, current_viewer, render, state_of, viewer
from console.errors import UserError
from console.security import cookie_value
from console.slack_signin import SlackSignInError
from console.users import SignInRefused

logger = logging.getLogger(__name__)


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


def _slack_redirect_uri(request: Request) -> str:
    """Where Slack sends the person back: CONSOLE_SLACK_REDIRECT_URI, else this server's URL
    (the same in both legs: Slack refuses a code whose redirect_uri differs)."""
    configured = state_of(request).settings.console_slack_redirect_uri
    return configured or str(request.url_for("slack_callback"))


def _slack_refused(request: Request, message: str, *, status: int) -> Response:
    from console.access import lang_of
    from console.i18n import translate

    return _login_form(request, error=translate(lang_of(request), message), status=status)


async def slack_start(request: Request) -> Response:
    """Off to Slack's authorize page, with a state bound to this browser."""
    state = state_of(request)
    if state.slack is None:
        raise HTTPException(404)
    try:
        await run_in_threadpool(state.users.check_address, client_ip(request))
    except SignInRefused as e:
        response = _slack_refused(request, str(e), status=429)
        response.headers["Retry-After"] = str(e.retry_after_s)
        return response
    target = state.slack.authorize_url(
        browser=str(request.scope.get("console.csrf_token", "")),
        next_path=_safe_next(request.query_params.get("next")),
        redirect_uri=_slack_redirect_uri(request),
    )
    return RedirectResponse(target, status_code=303)


async def slack_callback(request: Request) -> Response:
    """Back from Slack: check the state, exchange the code, verify the id_token, then sign
    in the person of an installed workspace with (at least) a viewer grant on it."""
    from console.app import session_lifetime
    from retrieval.workspaces import IdentityKind

    state = state_of(request)
    slack = state.slack
    if slack is None:
        raise HTTPException(404)
    ip = client_ip(request)
    params = request.query_params
    try:
        await run_in_threadpool(state.users.check_address, ip)
        if params.get("error"):  # the person declined on Slack's page
            raise SlackSignInError("Sign in with Slack was cancelled.")
        signed_state, code = params.get("state", ""), params.get("code", "")
        target = slack.check_state(
            signed_state, browser=str(request.scope.get("console.csrf_token", ""))
        )
        if not code:
            raise SlackSignInError("Slack sent no code: sign in again.", attack=True)
        who = await slack.identity(
            code=code, redirect_uri=_slack_redirect_uri(request), state=signed_state
        )
        found = await run_in_threadpool(
            application_of(request).registry.resolve, IdentityKind.SLACK_TEAM, who.team_id
        )
        if found is None:
            raise SlackSignInError(
                "Your Slack workspace has not installed this app: ask its admin to install it, "
                "or sign in with a password."
            )
        user_id = await run_in_threadpool(
            functools.partial(
                state.users.slack_user,
                email=who.email,
                email_verified=who.email_verified,
                slack_user_id=who.user_id,
                workspace=found.name,
            )
        )
    except SignInRefused as e:
        response = _slack_refused(request, str(e), status=429)
        response.headers["Retry-After"] = str(e.retry_after_s)
        return response
    except (SlackSignInError, UserError) as e:
        if isinstance(e, SlackSignInError) and e.attack:
            await run_in_threadpool(state.users.record_failure, "slack:", ip)
        logger.info("Sign in with Slack refused: %s", e)
        return _slack_refused(request, str(e), status=403)
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
    Route("/login/slack", slack_start, methods=["GET"]),
    Route("/login/slack/callback", slack_callback, methods=["GET"], name="slack_callback"),
    Route("/logout", logout, methods=["POST"]),
    Route("/", picker, methods=["GET"]),
]
