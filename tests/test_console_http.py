"""The console's sign-in, sessions, CSRF and isolation over HTTP (Starlette's TestClient
against :func:`console.app.build_console`, a real SQLite database, no mocks).

Covers: cookie flags; server-side expiry; CSRF on every unsafe request; failed sign-ins
limited per account and per address with a clear message; a user of one workspace getting
404 on another's pages, JSON and conversation ids (never 403: the URL reveals nothing); a
viewer getting 403 on every POST of a workspace page; the language following the browser.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import Session
from starlette.routing import Route
from starlette.testclient import TestClient

from console.app import SESSION_COOKIE, build_console
from console.models import ConsoleSession, Role
from console.users import ConsoleUsers
from feedback.store import AnswerRecord, SqlFeedbackStore
from supportbot.app import App
from supportbot.settings import Settings

A, B = "acme", "globex"
PASSWORD = "correct horse battery"


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[App, dict[str, int]]]:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'console.db'}",
        console_login_attempts=3,
        console_login_attempts_per_ip=5,
    )
    with App(settings) as application:
        users = ConsoleUsers(application.engine)
        users.add_user("admin@acme.test", password=PASSWORD, workspace=A, role=Role.ADMIN)
        users.add_user("viewer@acme.test", password=PASSWORD, workspace=A, role=Role.VIEWER)
        users.add_user("admin@globex.test", password=PASSWORD, workspace=B, role=Role.ADMIN)
        store = SqlFeedbackStore(application.engine, user_hash_key=b"k")
        ids = {}
        for ws in (A, B):
            made = store.record_answer(
                AnswerRecord(
                    workspace=ws,
                    platform="slack",
                    question=f"{ws} question",
                    standalone_question=f"{ws} question",
                    answer=f"{ws} secret answer",
                    mode="extractive",
                )
            )
            assert made is not None
            ids[ws] = made
        yield application, ids


def client(application: App, **headers: str) -> TestClient:
    return TestClient(
        build_console(application),
        base_url="https://testserver",
        follow_redirects=False,
        headers=headers,
    )


def token_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page[:500]
    return found.group(1)


def sign_in(c: TestClient, email: str, password: str = PASSWORD) -> object:
    token = token_of(c.get("/login").text)
    return c.post("/login", data={"email": email, "password": password, "csrf_token": token})


def test_sign_in_sets_a_secure_http_only_expiring_cookie(console):
    application, _ = console
    c = client(application)
    assert c.get("/w/acme/overview").headers["location"] == "/login?next=/w/acme/overview"
    response = sign_in(c, "Admin@Acme.test")
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE)
    )
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "secure", "samesite", "max-age"} <= flags
    assert "max-age=43200" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert c.get("/").headers["location"] == "/w/acme/overview"
    page = c.get("/w/acme/overview")
    assert page.status_code == 200 and "admin@acme.test" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_the_server_expires_sessions_and_sign_out_ends_them(console):
    application, _ = console
    c = client(application)
    sign_in(c, "admin@acme.test")
    assert c.get("/w/acme/overview").status_code == 200
    with Session(application.engine) as session:  # the cookie is still sent, but too old
        session.execute(
            update(ConsoleSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        session.commit()
    assert c.get("/w/acme/overview").status_code == 303

    sign_in(c, "admin@acme.test")
    stolen = c.cookies.get(SESSION_COOKIE)
    token = token_of(c.get("/w/acme/overview").text)
    assert c.post("/logout", data={"csrf_token": token}).status_code == 303
    replay = client(application)
    replay.cookies.set(SESSION_COOKIE, stolen or "")
    assert replay.get("/w/acme/overview").status_code == 303  # ended on the server too


def test_every_unsafe_request_needs_the_csrf_token(console):
    application, _ = console
    c = client(application)
    page = c.get("/login").text
    good = token_of(page)
    data = {"email": "admin@acme.test", "password": PASSWORD}
    assert c.post("/login", data=data).status_code == 403  # no token
    assert c.post("/login", data={**data, "csrf_token": "0" * 64}).status_code == 403
    other = client(application)  # another browser's token does not fit this browser's cookie
    other.get("/login")
    assert other.post("/login", data={**data, "csrf_token": good}).status_code == 403
    fresh = client(application)  # no cookie at all: refused, and given one
    refused = fresh.post("/login", data={**data, "csrf_token": good})
    assert refused.status_code == 403 and "CSRF" in refused.text
    assert c.post("/login", data=data, headers={"X-CSRF-Token": good}).status_code == 303
    token = token_of(c.get("/w/acme/overview").text)
    assert c.post("/logout").status_code == 403
    assert c.post("/logout", data={"csrf_token": token}).status_code == 303


def test_failed_sign_ins_are_limited_per_account_with_a_clear_message(console):
    application, _ = console
    c = client(application)
    for _ in range(3):
        assert sign_in(c, "admin@acme.test", "wrong password!").status_code == 401
    refused = sign_in(c, "admin@acme.test")  # the right password, but too late
    assert refused.status_code == 429
    assert "Too many failed sign-ins for this account" in refused.text
    assert int(refused.headers["retry-after"]) > 0
    assert sign_in(c, "viewer@acme.test").status_code == 303  # other accounts still sign in


def test_failed_sign_ins_are_limited_per_address(console):
    application, _ = console
    c = client(application)
    for n in range(5):  # a different account each time: the address limit still counts
        assert sign_in(c, f"nobody{n}@acme.test", "guess guess guess").status_code == 401
    refused = sign_in(c, "admin@acme.test")
    assert refused.status_code == 429 and "this address" in refused.text


def test_another_workspace_is_404_by_any_url(console):
    application, ids = console
    c = client(application)
    sign_in(c, "admin@globex.test")
    assert c.get("/w/globex/overview").status_code == 200
    paths = [
        "/w/acme/overview",
        "/w/acme/overview.json",
        "/w/acme/conversations",
        f"/w/acme/conversations/{ids[A]}",
        "/w/acme/review",
        "/w/acme/gaps",
        "/w/acme/sources",
        "/w/acme/sources/1",
        "/w/acme/settings",
        "/w/acme/exports",
        "/w/nonexistent/overview",
    ]
    for path in paths:
        response = c.get(path)
        assert response.status_code == 404, path
        assert "acme secret answer" not in response.text
    # Its own workspace's URL with the other's conversation id: not found either.
    assert c.get(f"/w/globex/conversations/{ids[A]}").status_code == 404
    own = c.get(f"/w/globex/conversations/{ids[B]}")
    assert own.status_code == 200 and "globex secret answer" in own.text
    json = c.get("/w/acme/overview.json", headers={"accept": "application/json"})
    assert json.status_code == 404 and json.json() == {"error": "Not Found"}


def workspace_posts(application: App) -> list[str]:
    """Every POST route under /w/{workspace}/ of the built console, with ids filled in."""
    paths = []
    for route in build_console(application).routes:
        posts = isinstance(route, Route) and "POST" in (route.methods or set())
        if posts and route.path.startswith("/w/{workspace}/"):
            paths.append(re.sub(r"\{(?!workspace)[^}]+\}", "1", route.path))
    return paths


def test_a_viewer_cannot_post_and_another_workspace_gets_404_on_posts(console):
    application, _ = console
    posts = workspace_posts(application)
    assert "/w/{workspace}/sources" in posts  # the pages' POSTs are found
    viewer = client(application)
    sign_in(viewer, "viewer@acme.test")
    token = token_of(viewer.get("/w/acme/overview").text)
    stranger = client(application)
    sign_in(stranger, "admin@globex.test")
    stranger_token = token_of(stranger.get("/w/globex/overview").text)
    for path in posts:
        url = path.replace("{workspace}", A)
        assert viewer.post(url, data={"csrf_token": token}).status_code == 403, url
        assert stranger.post(url, data={"csrf_token": stranger_token}).status_code == 404, url


def test_the_interface_follows_the_browsers_language(console):
    application, _ = console
    korean = client(application, **{"accept-language": "ko-KR,ko;q=0.9,en;q=0.5"})
    page = korean.get("/login").text
    assert 'lang="ko"' in page and "로그인" in page
    english = client(application, **{"accept-language": "fr-FR, en;q=0.8, ko;q=0.2"})
    page = english.get("/login").text
    assert 'lang="en"' in page and "Sign in" in page
