"""The console attacked, over real HTTP (Starlette's TestClient on https://, the real database and
Weaviate), the way an attacker or a careless operator would.

- Stored markup: every text a user, a document or a source can put in the database (questions,
  answers, retrieved passages and their URLs, prompts, channel ids, source names and errors,
  gap drafts, suggested prompts) holds HTML, JavaScript, htmx attributes and ``javascript:``
  URLs; every page is parsed and must carry none of it as markup.
- Every route of the app, enumerated (a new route is checked without editing this file): a
  user of another workspace gets 404 and no data, also by guessing ids under their own
  workspace; a signed-out visitor is sent to sign in; a viewer's unsafe request is 403; an
  unsafe request without this browser's CSRF token is 403.
- Sign-in: no open redirect through ``next``; a new session id at sign-in; cookie flags.
- Big inputs: a 10 MB form body, an answer longer than allowed, a huge search string, ids
  too big for the database: a clear error, never a crash, nothing half-stored.
- Korean: every page renders in Korean, with Korean data, and every string has its translation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from sqlmodel import Session
from starlette.routing import Route
from starlette.testclient import TestClient

from console.app import SESSION_COOKIE, build_console
from console.i18n import catalog
from console.models import Role
from console.queries.settings import set_channel_mode, set_suggested_prompts
from console.security import CSRF_COOKIE
from console.users import ConsoleUsers
from feedback.learning_models import GapDraft
from feedback.store import AnswerRecord, SqlFeedbackStore
from retrieval.embeddings import LocalE5Embeddings
from retrieval.workspaces import IdentityKind
from supportbot.app import App
from tests.conftest import make_settings

pytestmark = pytest.mark.slow

A, B = "acme-attacks", "globex-attacks"
PASSWORD = "correct horse battery staple"
BASE = "https://testserver"
CONSOLE = Path(__file__).resolve().parent.parent / "console"
# Markup of every kind a page could be tricked into: tags, an attribute breakout in both
# quotes, htmx attributes that would fire requests, and a template expression.
X = (
    "<script>alert('x')</script><img src=x onerror=alert(1)>"
    '"\' onmouseover="alert(2)" hx-post="/logout" hx-trigger="load" {{7*7}}'
)
KO = "비밀번호 재설정 링크는 얼마 동안 유효한가요?"
BAD_URLS = [
    "javascript:alert(1)",
    " JavaScript:alert(1)",
    "jav\tascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
]
FORM = {"answer": "x", "name": "x", "kind": "web", "prompts": "", "team": "", "channel_id": "x"}


@dataclass
class Site:
    application: App
    ids: dict[str, dict[str, int]]  # workspace → route parameter → an id of that workspace


@pytest.fixture(scope="module")
def site(
    weaviate_data_dir: Path, embedder: LocalE5Embeddings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("console-attacks")
    settings = make_settings(weaviate_data_dir, tmp / "console.db", sync_default_schedule="manual")
    with App(settings, local_embedder=embedder) as application:
        application.knowledge.create_workspace(A, [(IdentityKind.SLACK_TEAM, "TATTACK")])
        application.knowledge.create_workspace(B)
        users = ConsoleUsers(application.engine)
        users.add_user("admin@acme.test", password=PASSWORD, workspace=A, role=Role.ADMIN)
        users.add_user("viewer@acme.test", password=PASSWORD, workspace=A, role=Role.VIEWER)
        users.add_user("admin@globex.test", password=PASSWORD, workspace=B, role=Role.ADMIN)
        ids = {A: _seed(application, A, X), B: _seed(application, B, "Globex secret")}
        set_suggested_prompts(application.engine, A, f"{KO} {X[:20]}={X}")
        set_channel_mode(
            application.engine,
            application.registry,
            A,
            team="slack:TATTACK",
            channel_id="C0KOREAN",
            mode="all_questions",
        )
        yield Site(application, ids)


def _seed(application: App, workspace: str, text: str) -> dict[str, int]:
    """An answer (disliked, not found), a failed web source with a run, a gap draft: each
    full of ``text`` where a person or a document could write it."""
    store = SqlFeedbackStore(application.engine, user_hash_key=b"k")
    retrieved: list[dict[str, object]] = [
        {
            "title": f"{text} {KO}",
            "heading": text,
            "text": f"{text}\n{KO}",
            "source": text,
            "doc_id": text,
            "url": url,
            "score": 0.5,
            "similarity": 0.5,
        }
        for url in [*BAD_URLS, "https://docs.example/ok"]
    ]
    interaction = store.record_answer(
        AnswerRecord(
            workspace=workspace,
            platform="slack",
            channel_id=text,
            question=f"{KO} {text}",
            standalone_question=f"{text}?",
            answer=f"{text} {KO}",
            mode="generative",
            model=text,
            found=False,
            retrieved=retrieved,
            sources=[
                {"n": i, "title": text, "source": text, "url": u} for i, u in enumerate(BAD_URLS)
            ],
            prompt_messages=[{"role": text, "content": f"{text} {KO}"}],
        )
    )
    assert interaction is not None
    store.rate(interaction, user_id="u1", value=-1, source="reaction")
    repo = application.sync_sources
    source = repo.add(
        workspace,
        "docs.site",
        kind="web",
        config={"urls": [f"https://docs.example/{text}", *BAD_URLS], "sitemap": None},
        credentials=None,
        schedule=None,
        requests_per_second=1.0,
    )
    run = repo.start_run(source.id, full=True, trigger=text, worker=text)
    repo.finish_run(run, failed=True, error=f"{text} {KO}", counts={}, chunks=None)
    now = datetime.now(UTC)
    with Session(application.engine) as session:
        gap = GapDraft(
            workspace=workspace,
            cluster_key=text,
            question=f"{KO} {text}",
            questions=[f"{KO} {text}", text],
            interaction_ids=[interaction],
            asked=2,
            answer=f"{text} {KO}",
            references=[text],
            drafted_by="quote",
            created_at=now,
            updated_at=now,
        )
        session.add(gap)
        session.commit()
        session.refresh(gap)
        assert gap.id is not None
        draft = gap.id
    return {
        "interaction_id": interaction,
        "id": interaction,
        "source_id": source.id,
        "run_id": run,
        "draft_id": draft,
    }


class Client:
    """A browser's cookie jar over TestClient, signed in or not, with its CSRF token."""

    def __init__(self, site: Site, email: str | None = None, *, lang: str = "en") -> None:
        self.http = TestClient(build_console(site.application), base_url=BASE)
        self.http.headers["Accept-Language"] = "ko-KR,ko;q=0.9" if lang == "ko" else "en-US"
        login = self.http.get("/login")
        found = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert found is not None
        self.token = found.group(1)
        if email is not None:
            signed = self.post("/login", {"email": email, "password": PASSWORD, "next": "/"})
            assert signed.status_code == 303, signed.text

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.http.get(url, follow_redirects=False, **kwargs)

    def post(self, url: str, data: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return self.http.post(
            url, data={**(data or {}), "csrf_token": self.token}, follow_redirects=False, **kwargs
        )


def routes(site: Site) -> list[tuple[str, str, Route]]:
    """(method, path template, route) for every route of the app (static files aside)."""
    found = []
    for route in build_console(site.application).routes:
        if isinstance(route, Route):
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    found.append((method, route.path, route))
    return found


PUBLIC = {
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/login/slack"),
    ("GET", "/login/slack/callback"),
    ("POST", "/logout"),
    ("GET", "/"),
}


def fill(path: str, workspace: str, ids: dict[str, int]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "workspace":
            return workspace
        assert name in ids, f"route parameter {name!r} of {path}: give it an id in _seed"
        return str(ids[name])

    return re.sub(r"\{(\w+)(?::\w+)?\}", value, path)


def workspace_routes(site: Site) -> list[tuple[str, str]]:
    found = []
    for method, path, _ in routes(site):
        if (method, path) in PUBLIC:
            continue
        assert path.startswith("/w/{workspace}/"), (
            f"{method} {path} is neither public nor under /w/{{workspace}}/: "
            "check who may use it, then list it in PUBLIC"
        )
        found.append((method, path))
    assert len(found) >= 20
    return found


# --- stored markup ---------------------------------------------------------------------------


class _Markup(HTMLParser):
    """Every start tag with its attributes, and the text inside <script> elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.scripts.append(data)


HTMX = {"hx-get", "hx-post", "hx-trigger", "hx-target", "hx-swap", "hx-headers"}


def assert_no_markup_from_data(html: str, where: str) -> None:
    assert "<img src=x" not in html and "<script>alert" not in html, where
    page = _Markup()
    page.feed(html)
    for tag, attrs in page.tags:
        assert tag not in ("img", "iframe", "object", "embed"), (where, tag, attrs)
        for name, value in attrs.items():
            assert not name.startswith("on"), (where, tag, attrs)
            if name in ("href", "src", "action", "formaction"):
                target = urlsplit(urljoin(f"{BASE}/w/", value.strip()))
                assert target.scheme in ("http", "https"), (where, tag, attrs)
            if name.startswith("hx-"):
                assert name in HTMX, (where, tag, attrs)
                if name in ("hx-get", "hx-post"):
                    assert re.fullmatch(rf"/w/{A}/sources/\d+/(row|sync)", value), (where, value)
                if name == "hx-trigger":
                    assert re.fullmatch(r"every \d+s", value), (where, value)
                if name == "hx-headers":
                    assert list(json.loads(value)) == ["X-CSRF-Token"], (where, value)
        if tag == "script":
            assert attrs.get("type") == "application/json" or (
                attrs.get("src", "").startswith("/static/")
            ), (where, attrs)
    for script in page.scripts:  # JSON data islands: no way out of the element
        assert "</" not in script and "<!--" not in script, where
        json.loads(script)


def test_stored_markup_and_bad_urls_are_text_on_every_page(site: Site) -> None:
    admin = Client(site, "admin@acme.test")
    shown_escaped = set()
    for method, path in workspace_routes(site):
        if method != "GET":
            continue
        url = fill(path, A, site.ids[A])
        for lang in ("en", "ko"):
            page = admin.get(url, headers={"Accept-Language": lang})
            assert page.status_code == 200, (url, page.status_code, page.text[:300])
            if page.headers["content-type"].startswith("text/html"):
                assert_no_markup_from_data(page.text, url)
                assert page.headers["content-security-policy"].startswith("default-src 'self'")
                if "&lt;script&gt;alert(" in page.text:
                    shown_escaped.add(path)
    # The data was there to attack with: the pages that show it show it as text.
    for path in (
        "/w/{workspace}/review",
        "/w/{workspace}/review/{interaction_id:id}",
        "/w/{workspace}/conversations",
        "/w/{workspace}/conversations/{id:id}",
        "/w/{workspace}/gaps",
        "/w/{workspace}/gaps/{draft_id:id}",
        "/w/{workspace}/sources",
        "/w/{workspace}/sources/{source_id:id}",
        "/w/{workspace}/sources/{source_id:id}/runs/{run_id:id}",
        "/w/{workspace}/settings",
    ):
        assert any(p.replace(":id}", ":id}") == path for p in shown_escaped), path
    # Only the http(s) URL of the passages became a link.
    item = admin.get(f"/w/{A}/review/{site.ids[A]['interaction_id']}").text
    assert re.findall(r'class="source-link"', item) == ['class="source-link"']


def test_templates_autoescape_and_never_mark_data_safe() -> None:
    from starlette.templating import Jinja2Templates

    env = Jinja2Templates(directory=CONSOLE / "templates").env
    for template in (CONSOLE / "templates").glob("*"):
        assert template.suffix == ".html", template  # autoescape goes by the file name
        assert callable(env.autoescape) and env.autoescape(template.name), template
        text = template.read_text(encoding="utf-8")
        assert "|safe" not in text.replace(" ", ""), template
        assert "autoescape false" not in text, template
        assert "Markup(" not in text, template
    for module in (CONSOLE / "pages").glob("*.py"):
        assert "Markup(" not in module.read_text(encoding="utf-8"), module


# --- every route: isolation, viewers, CSRF ---------------------------------------------------


def test_every_route_is_404_to_another_workspaces_user(site: Site) -> None:
    other = Client(site, "admin@globex.test")
    admin = Client(site, "admin@acme.test")
    checked = 0
    for method, path in workspace_routes(site):
        has_ids = "{" in path.replace("{workspace}", "")
        attempts = [(other, fill(path, A, site.ids[A]))]  # their workspace, their ids
        if has_ids:  # guessing ids of the other workspace under one's own
            attempts += [
                (other, fill(path, B, site.ids[A])),
                (admin, fill(path, A, site.ids[B])),
            ]
        for client, url in attempts:
            answer = client.get(url) if method == "GET" else client.post(url, FORM)
            assert answer.status_code == 404, (method, url, answer.status_code)
            assert "<script>alert" not in answer.text and "Globex secret" not in answer.text
            assert "&lt;script&gt;" not in answer.text, (method, url)
            checked += 1
    assert checked >= 40


def test_every_route_needs_a_signed_in_user(site: Site) -> None:
    anonymous = Client(site)
    for method, path in workspace_routes(site):
        url = fill(path, A, site.ids[A])
        answer = anonymous.get(url) if method == "GET" else anonymous.post(url, FORM)
        if method == "GET":
            assert answer.status_code == 303, (url, answer.status_code)
            assert answer.headers["location"].startswith("/login?next=")
        else:
            assert answer.status_code == 401, (url, answer.status_code)
        assert "&lt;script&gt;" not in answer.text


def test_a_viewer_changes_nothing_on_any_route(site: Site) -> None:
    viewer = Client(site, "viewer@acme.test")
    unsafe = [(m, p) for m, p in workspace_routes(site) if m != "GET"]
    assert len(unsafe) >= 10
    for _, path in unsafe:
        url = fill(path, A, site.ids[A])
        refused = viewer.post(url, {**FORM, "answer": "A viewer's answer"})
        assert refused.status_code == 403, (url, refused.status_code)
    assert viewer.get(f"/w/{A}/exports/download?format=sft&scrub=off").status_code == 403
    item = viewer.get(f"/w/{A}/review/{site.ids[A]['interaction_id']}").text
    assert "A viewer&#39;s answer" not in item and "verified answer</code>" not in item


def test_every_unsafe_route_needs_this_browsers_csrf_token(site: Site) -> None:
    admin = Client(site, "admin@acme.test")
    stranger = Client(site)  # another browser: its own cookie and token
    for method, path in [*workspace_routes(site), ("POST", "/logout"), ("POST", "/login")]:
        if method == "GET":
            continue
        url = fill(path, A, site.ids[A])
        for data, headers in [
            (FORM, {}),
            ({**FORM, "csrf_token": stranger.token}, {}),
            ({**FORM, "csrf_token": ""}, {}),
            (FORM, {"X-CSRF-Token": stranger.token, "HX-Request": "true"}),
        ]:
            refused = admin.http.post(url, data=data, headers=headers, follow_redirects=False)
            assert refused.status_code == 403, (url, data, headers, refused.status_code)
            assert "CSRF" in refused.text
    assert admin.get(f"/w/{A}/overview").status_code == 200  # still signed in


# --- sign-in ---------------------------------------------------------------------------------

HOSTILE_NEXT = [
    "//evil.example/",
    "///evil.example/",
    "https://evil.example/",
    "http:evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    " //evil.example",
    "%2F%2Fevil.example",
    "javascript:alert(1)",
    "/%09/evil.example",
    "/\u3000/evil.example",
    "/w/../\\evil.example",
]


def _stays_here(location: str) -> bool:
    resolved = urlsplit(urljoin(f"{BASE}/login", location))
    # Browsers also drop tabs and newlines and read a backslash as a slash.
    browser_view = location.replace("\\", "/").translate({9: None, 10: None, 13: None}).strip()
    return (
        resolved.netloc == "testserver"
        and resolved.scheme == "https"
        and not browser_view.startswith("//")
        and not urlsplit(browser_view).scheme
    )


def test_no_open_redirect_after_sign_in(site: Site) -> None:
    for target in HOSTILE_NEXT:
        visitor = Client(site)
        signed = visitor.post(
            "/login", {"email": "admin@acme.test", "password": PASSWORD, "next": target}
        )
        assert signed.status_code == 303
        assert _stays_here(signed.headers["location"]), (target, signed.headers["location"])
        again = visitor.get("/login", params={"next": target})  # signed in: straight on
        assert again.status_code == 303
        assert _stays_here(again.headers["location"]), (target, again.headers["location"])
    fine = Client(site)
    kept = fine.post(
        "/login", {"email": "admin@acme.test", "password": PASSWORD, "next": f"/w/{A}/gaps?x=1"}
    )
    assert kept.headers["location"] == f"/w/{A}/gaps?x=1"


def _set_cookies(response: Any) -> dict[str, str]:
    return {header.split("=", 1)[0]: header for header in response.headers.get_list("set-cookie")}


def test_a_new_session_id_at_sign_in_and_cookie_flags(site: Site) -> None:
    visitor = Client(site)
    planted = "attacker-chosen-session-id-0123456789abcdefghijkl"
    visitor.http.cookies.set(SESSION_COOKIE, planted, domain="testserver.local")
    signed = visitor.post("/login", {"email": "admin@acme.test", "password": PASSWORD})
    cookies = _set_cookies(signed)
    session = cookies[SESSION_COOKIE]
    token = session.split("=", 1)[1].split(";", 1)[0]
    assert token != planted and len(token) >= 32
    flags = {f.strip().lower() for f in session.split(";")[1:]}
    assert {"httponly", "secure", "samesite=lax", "path=/"} <= flags, session
    assert any(f.startswith("max-age=") for f in flags)
    # The CSRF cookie of a new browser: HTTP-only, Secure, SameSite too.
    fresh = TestClient(build_console(site.application), base_url=BASE).get("/login")
    csrf = _set_cookies(fresh)[CSRF_COOKIE]
    assert {"httponly", "secure", "samesite=lax"} <= {f.strip().lower() for f in csrf.split(";")}
    # A second sign-in (another person at the same browser) gets yet another id.
    again = visitor.post("/login", {"email": "viewer@acme.test", "password": PASSWORD})
    assert _set_cookies(again)[SESSION_COOKIE].split(";")[0] != session.split(";")[0]
    # The planted id signs nobody in.
    intruder = TestClient(build_console(site.application), base_url=BASE)
    intruder.cookies.set(SESSION_COOKIE, planted)
    assert intruder.get(f"/w/{A}/overview", follow_redirects=False).status_code == 303


# --- big inputs ------------------------------------------------------------------------------


def test_big_inputs_get_a_clear_error(site: Site) -> None:
    admin = Client(site, "admin@acme.test")
    interaction = site.ids[A]["interaction_id"]
    publish = f"/w/{A}/review/{interaction}/publish"
    ten_mb = "a" * 10_000_000
    for headers in ({}, {"X-CSRF-Token": admin.token, "HX-Request": "true"}):
        refused = admin.post(publish, {"answer": ten_mb}, headers=headers)
        assert refused.status_code == 413, (headers, refused.status_code, refused.text[:200])
        assert "too large" in refused.text and "CSRF" not in refused.text
    too_long = admin.post(publish, {"answer": "한" * 20_001})
    assert too_long.status_code == 400 and "too long" in too_long.text, too_long.text[:300]
    assert "verified answer</code>" not in admin.get(f"/w/{A}/review/{interaction}").text
    gap = site.ids[A]["draft_id"]
    assert admin.post(f"/w/{A}/gaps/{gap}/approve", {"answer": "x" * 20_001}).status_code == 400
    for path, field in (("prompts", "prompts"), ("escalation", "slack_channels")):
        long_field = admin.post(f"/w/{A}/settings/{path}", {field: "C" * 10_001})
        assert long_field.status_code == 400 and "too long" in long_field.text
    many_urls = " ".join(f"https://docs.example/{n}" for n in range(400))
    assert len(many_urls) > 4000
    long_source = admin.post(f"/w/{A}/sources", {"name": "many", "kind": "web", "urls": many_urls})
    assert long_source.status_code == 400 and "too long" in long_source.text
    assert "many" not in {s.name for s in site.application.sync_sources.list(A)}

    huge = admin.get(f"/w/{A}/conversations", params={"q": "검색" * 2_000, "channel": "c" * 20_000})
    assert huge.status_code == 200
    assert admin.get(f"/w/{A}/conversations?page=99999999999999999999999").status_code == 200


def test_ids_too_big_for_the_database_are_404(site: Site) -> None:
    admin = Client(site, "admin@acme.test")
    huge = dict.fromkeys(site.ids[A], 10**30)
    for method, path in workspace_routes(site):
        if "{" not in path.replace("{workspace}", ""):
            continue
        url = fill(path, A, huge)
        answer = admin.get(url) if method == "GET" else admin.post(url, FORM)
        assert answer.status_code == 404, (method, url, answer.status_code)


# --- Korean ----------------------------------------------------------------------------------


def test_every_page_in_korean_with_korean_data(site: Site) -> None:
    admin = Client(site, "admin@acme.test", lang="ko")
    for method, path in workspace_routes(site):
        if method != "GET":
            continue
        url = fill(path, A, site.ids[A])
        page = admin.get(url)
        assert page.status_code == 200, url
        if not page.headers["content-type"].startswith("text/html"):
            continue
        if "sources/{source_id:id}/row" not in path:  # a fragment, not a page
            assert '<html lang="ko">' in page.text, url
            assert "개요" in page.text and "로그아웃" in page.text, url
        assert not re.search(r">\s*(mode|drafted_by|labels)_[a-z_]+\s*<", page.text), url
    for path in ("review/{interaction_id}", "conversations/{id}", "gaps/{draft_id}"):
        assert KO in admin.get(fill(f"/w/{A}/{path}", A, site.ids[A])).text, path


def test_every_template_string_has_a_korean_translation() -> None:
    korean = catalog("ko")
    missing = set()
    for template in (CONSOLE / "templates").glob("*.html"):
        text = template.read_text(encoding="utf-8")
        for literal in re.findall(r"""_\(\s*(?:"([^"]+)"|'([^']+)')\s*[,)]""", text):
            string = literal[0] or literal[1]
            if string not in korean:
                missing.add((template.name, string))
    assert not missing, sorted(missing)
