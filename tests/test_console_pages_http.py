"""The console's review, gaps, sources, settings and exports pages over real HTTP (Starlette's
TestClient against :func:`console.app.build_console`, with the real store, embedder, Weaviate
and in-process sync queue): each page and action, viewers read-only, and another workspace's
user getting 404 on the pages, the POSTs and on guessed object ids."""

from __future__ import annotations

import io
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlmodel import Session, col, select
from starlette.testclient import TestClient

from console.app import build_console
from console.models import Role
from console.users import ConsoleUsers
from feedback.models import Interaction
from retrieval.embeddings import LocalE5Embeddings
from retrieval.workspaces import IdentityKind
from supportbot.app import App
from supportbot.chat import run_chat
from supportbot.settings import Settings
from tests.conftest import SAMPLE_KB, make_settings

A, B = "acme-console", "globex-console"
PASSWORD = "correct horse battery staple"
RESET = "How long is the password reset link valid?"
MARS = "Do you deliver parcels to Mars?"
FIXED = "Password reset links are valid for 30 minutes and work once; request a new one after."


@pytest.fixture
def console_app(settings: Settings, embedder: LocalE5Embeddings, tmp_path: Path) -> Iterator[App]:
    folders = tmp_path / "folders"
    (folders / "handbook").mkdir(parents=True)
    (folders / "handbook" / "leave.md").write_text(
        "# Leave policy\n\nEveryone gets 25 days of paid leave a year.\n", encoding="utf-8"
    )
    configured = make_settings(
        settings.data_dir,
        tmp_path / "console.db",
        console_secure_cookies=False,
        console_folder_roots=str(folders),
        sync_default_schedule="manual",
    )
    with App(configured, local_embedder=embedder) as application:
        application.knowledge.create_workspace(A, [(IdentityKind.SLACK_TEAM, "TACME")])
        application.knowledge.ingest_paths(A, [SAMPLE_KB / "en"])
        application.knowledge.create_workspace(B)
        users = ConsoleUsers(application.engine)
        users.add_user("admin@acme.test", password=PASSWORD, workspace=A, role=Role.ADMIN)
        users.add_user("viewer@acme.test", password=PASSWORD, workspace=A, role=Role.VIEWER)
        users.add_user("admin@globex.test", password=PASSWORD, workspace=B, role=Role.ADMIN)
        yield application


def chat(application: App, workspace: str, lines: list[str]) -> str:
    feed = iter(lines)

    def read(_prompt: str) -> str:
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    screen = io.StringIO()
    run_chat(application, workspace, console=Console(file=screen, width=200), read=read)
    return screen.getvalue()


class Browser:
    """A signed-in TestClient and its CSRF token."""

    def __init__(self, client: TestClient, email: str) -> None:
        self.client = client
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        self.token = token.group(1)
        signed_in = client.post(
            "/login",
            data={"email": email, "password": PASSWORD, "csrf_token": self.token, "next": "/"},
            follow_redirects=False,
        )
        assert signed_in.status_code == 303, signed_in.text

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, **kwargs)

    def post(self, url: str, data: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return self.client.post(
            url,
            data={**(data or {}), "csrf_token": self.token},
            follow_redirects=False,
            **kwargs,
        )


@pytest.fixture
def browsers(console_app: App) -> Iterator[dict[str, Browser]]:
    web = build_console(console_app)
    clients = [TestClient(web) for _ in range(3)]
    with clients[0], clients[1], clients[2]:
        yield {
            "admin": Browser(clients[0], "admin@acme.test"),
            "viewer": Browser(clients[1], "viewer@acme.test"),
            "other": Browser(clients[2], "admin@globex.test"),
        }


def _ids(application: App, workspace: str) -> list[int]:
    with Session(application.engine) as session:
        return [
            i or 0
            for i in session.exec(
                select(Interaction.id)
                .where(Interaction.workspace == workspace)
                .order_by(col(Interaction.id))
            )
        ]


@pytest.mark.slow
def test_review_publish_is_cited_by_the_chat_and_isolated(
    console_app: App, browsers: dict[str, Browser]
) -> None:
    chat(console_app, A, [RESET, "-"])
    chat(console_app, B, ["Globex question?", "-"])
    (disliked,) = _ids(console_app, A)
    (other_answer,) = _ids(console_app, B)
    admin, viewer, other = browsers["admin"], browsers["viewer"], browsers["other"]

    queue = admin.get(f"/w/{A}/review")
    assert queue.status_code == 200 and RESET in queue.text
    korean = admin.get(f"/w/{A}/review", headers={"Accept-Language": "ko-KR,ko;q=0.9,en;q=0.5"})
    assert "검토 대기열" in korean.text and "Review queue" not in korean.text
    item = admin.get(f"/w/{A}/review/{disliked}")
    assert item.status_code == 200
    assert "30 minutes" in item.text  # the retrieved context is shown
    assert 'id="publish-form"' in item.text

    # A viewer sees it all and changes nothing.
    seen = viewer.get(f"/w/{A}/review/{disliked}")
    assert seen.status_code == 200 and 'id="publish-form"' not in seen.text
    for action in ("publish", "reviewed", "reopen"):
        assert viewer.post(f"/w/{A}/review/{disliked}/{action}", {"answer": "x"}).status_code == 403

    # Another workspace's admin: 404 on the pages, the POSTs and on guessed ids.
    assert other.get(f"/w/{A}/review").status_code == 404
    assert other.get(f"/w/{A}/review/{disliked}").status_code == 404
    assert other.get(f"/w/{B}/review/{disliked}").status_code == 404
    for action in ("publish", "reviewed", "reopen"):
        assert other.post(f"/w/{B}/review/{disliked}/{action}", {"answer": "x"}).status_code == 404
        assert other.post(f"/w/{A}/review/{disliked}/{action}", {"answer": "x"}).status_code == 404
    assert admin.get(f"/w/{A}/review/{other_answer}").status_code == 404
    assert admin.post(f"/w/{A}/review/{other_answer}/reviewed").status_code == 404
    assert admin.get(f"/w/{A}/review/999999").status_code == 404

    # An empty answer is refused with the reason; the right one is published.
    empty = admin.post(f"/w/{A}/review/{disliked}/publish", {"answer": "   "})
    assert empty.status_code == 400 and "no answer written" in empty.text
    done = admin.post(f"/w/{A}/review/{disliked}/publish", {"answer": FIXED})
    assert done.status_code == 303
    assert done.headers["location"] == f"/w/{A}/review/{disliked}?published=1"
    assert "reviewed-by" in admin.get(done.headers["location"]).text
    assert RESET not in admin.get(f"/w/{A}/review").text  # reviewed: out of the queue
    assert RESET in admin.get(f"/w/{A}/review?all=1").text

    # Asked again in the terminal chat: answered from the verified answer, and cited.
    screen = chat(console_app, A, [RESET, ""])
    sources = screen.split("sources:")[-1]
    assert "Verified answer" in sources.splitlines()[1]
    assert "request a new one after" in screen

    # Back into the queue, then marked reviewed without publishing.
    assert admin.post(f"/w/{A}/review/{disliked}/reopen").status_code == 303
    assert RESET in admin.get(f"/w/{A}/review").text
    assert admin.post(f"/w/{A}/review/{disliked}/reviewed").status_code == 303
    assert RESET not in admin.get(f"/w/{A}/review").text


def _wait_status(browser: Browser, url: str, wanted: set[str], timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        row = browser.get(url)
        status = re.search(r'data-status="([a-z]+)"', row.text)
        assert status is not None, row.text
        if status.group(1) in wanted or time.monotonic() > deadline:
            return row.text
        time.sleep(0.3)


@pytest.mark.slow
def test_sources_add_sync_now_runs_and_isolation(
    console_app: App, browsers: dict[str, Browser]
) -> None:
    admin, viewer, other = browsers["admin"], browsers["viewer"], browsers["other"]
    folders = Path(console_app.settings.console_folder_roots)

    # Adding: the connector's and the address policy's refusals, shown; a folder outside the
    # configured roots refused; then a folder source added.
    for form, reason in [
        ({"name": "site", "kind": "web", "urls": "http://127.0.0.1:9/"}, "non-public address"),
        ({"name": "site", "kind": "web", "urls": "file:///etc/passwd"}, "not an http"),
        ({"name": "etc", "kind": "folder", "path": "/etc"}, "not under a folder"),
        ({"name": "bad name", "kind": "web", "urls": "https://e.example/"}, "invalid source name"),
    ]:
        refused = admin.post(f"/w/{A}/sources", form)
        assert refused.status_code == 400 and reason in refused.text, refused.text
    assert viewer.post(f"/w/{A}/sources", {"name": "x", "kind": "web"}).status_code == 403
    assert other.post(f"/w/{A}/sources", {"name": "x", "kind": "web"}).status_code == 404
    added = admin.post(
        f"/w/{A}/sources", {"name": "handbook", "kind": "folder", "path": str(folders / "handbook")}
    )
    assert added.status_code == 303
    page = admin.get(f"/w/{A}/sources")
    assert "handbook" in page.text and 'data-status="never"' in page.text
    source_id = int(re.search(r'id="source-(\d+)"', page.text).group(1))  # type: ignore[union-attr]
    assert viewer.get(f"/w/{A}/sources").status_code == 200
    assert 'id="sync-' not in viewer.get(f"/w/{A}/sources").text

    # Sync now: answered at once with the row, queued or running, polling itself.
    assert viewer.post(f"/w/{A}/sources/{source_id}/sync").status_code == 403
    queued = admin.post(f"/w/{A}/sources/{source_id}/sync", headers={"HX-Request": "true"})
    assert queued.status_code == 200
    assert re.search(r'data-status="(queued|running|ok)"', queued.text)
    row_url = f"/w/{A}/sources/{source_id}/row"
    if 'data-status="ok"' not in queued.text:
        assert f'hx-get="{row_url}"' in queued.text and "every 2s" in queued.text
    final = _wait_status(admin, row_url, {"ok", "failed"})
    assert 'data-status="ok"' in final and "hx-get" not in final  # polling stops
    assert console_app.knowledge.chunk_count(A) > 0
    detail = admin.get(f"/w/{A}/sources/{source_id}")
    run_id = int(re.search(rf"/w/{A}/sources/{source_id}/runs/(\d+)", detail.text).group(1))  # type: ignore[union-attr]
    run = admin.get(f"/w/{A}/sources/{source_id}/runs/{run_id}")
    assert run.status_code == 200 and "console" in run.text

    # Another workspace's admin: 404 everywhere, including by guessing ids under their own.
    for url in (
        f"/w/{A}/sources",
        f"/w/{A}/sources/{source_id}",
        f"/w/{B}/sources/{source_id}",
        f"/w/{B}/sources/{source_id}/row",
        f"/w/{B}/sources/{source_id}/runs/{run_id}",
        f"/w/{A}/sources/{source_id}/runs/{run_id}",
    ):
        assert other.get(url).status_code == 404, url
    assert other.post(f"/w/{B}/sources/{source_id}/sync").status_code == 404
    assert other.post(f"/w/{A}/sources/{source_id}/sync").status_code == 404
    assert admin.get(f"/w/{A}/sources/{source_id}/runs/{run_id + 1000}").status_code == 404


@pytest.mark.slow
def test_gaps_settings_exports_and_isolation(
    console_app: App, browsers: dict[str, Browser]
) -> None:
    admin, viewer, other = browsers["admin"], browsers["viewer"], browsers["other"]
    chat(console_app, A, [MARS, "-", RESET, "+"])
    chat(console_app, B, ["Globex secret?", "-"])

    # Knowledge gaps: listed, grouped into a draft by an admin, approved with a written entry.
    page = admin.get(f"/w/{A}/gaps")
    assert page.status_code == 200 and MARS in page.text
    assert viewer.post(f"/w/{A}/gaps/draft").status_code == 403
    assert other.post(f"/w/{A}/gaps/draft").status_code == 404
    assert admin.post(f"/w/{A}/gaps/draft").status_code == 303
    assert other.post(f"/w/{B}/gaps/draft").status_code == 303
    drafts = admin.get(f"/w/{A}/gaps")
    draft_id = int(re.search(rf"/w/{A}/gaps/(\d+)", drafts.text).group(1))  # type: ignore[union-attr]
    other_draft = int(re.search(rf"/w/{B}/gaps/(\d+)", other.get(f"/w/{B}/gaps").text).group(1))  # type: ignore[union-attr]
    assert admin.get(f"/w/{A}/gaps/{other_draft}").status_code == 404
    assert admin.post(f"/w/{A}/gaps/{other_draft}/approve", {"answer": "x"}).status_code == 404
    assert other.get(f"/w/{B}/gaps/{draft_id}").status_code == 404
    assert viewer.post(f"/w/{A}/gaps/{draft_id}/approve", {"answer": "x"}).status_code == 403
    no_text = admin.post(f"/w/{A}/gaps/{draft_id}/approve", {"answer": ""})
    assert no_text.status_code == 400 and "has no answer" in no_text.text
    approved = admin.post(f"/w/{A}/gaps/{draft_id}/approve", {"answer": "We only ship on Earth."})
    assert approved.status_code == 303
    assert "published" in admin.get(f"/w/{A}/gaps").text

    # Settings: channel modes of the workspace's own team only; escalation; prompts.
    assert admin.get(f"/w/{A}/settings").status_code == 200
    assert viewer.get(f"/w/{A}/settings").status_code == 200
    saved = admin.post(
        f"/w/{A}/settings/channel",
        {"team": "slack:TACME", "channel_id": "C0SUPPORT", "mode": "all_questions"},
    )
    assert saved.status_code == 303
    assert "C0SUPPORT" in admin.get(f"/w/{A}/settings").text
    foreign = admin.post(
        f"/w/{A}/settings/channel", {"team": "slack:TOTHER", "channel_id": "C1", "mode": "mention"}
    )
    assert foreign.status_code == 400
    bad = admin.post(f"/w/{A}/settings/escalation", {"slack_channels": "#support"})
    assert bad.status_code == 400 and "no Slack channel id" in bad.text
    assert (
        admin.post(f"/w/{A}/settings/escalation", {"slack_channels": "C024BE91L"}).status_code
        == 303
    )
    assert "C024BE91L" in admin.get(f"/w/{A}/settings").text
    assert (
        admin.post(
            f"/w/{A}/settings/prompts", {"prompts": "Refunds=How do refunds work?"}
        ).status_code
        == 303
    )
    assert "Refunds=How do refunds work?" in admin.get(f"/w/{A}/settings").text
    for path in ("channel", "escalation", "prompts"):
        assert viewer.post(f"/w/{A}/settings/{path}").status_code == 403
        assert other.post(f"/w/{A}/settings/{path}").status_code == 404
    assert other.get(f"/w/{A}/settings").status_code == 404
    assert "C024BE91L" not in other.get(f"/w/{B}/settings").text

    # Exports: this workspace's rated answers only, as a zip; viewers may download scrubbed.
    assert admin.get(f"/w/{A}/exports").status_code == 200
    download = viewer.get(f"/w/{A}/exports/download?format=sft&split=100/0/0")
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(download.content))
    assert "manifest.json" in archive.namelist() and "train.jsonl" in archive.namelist()
    rows = archive.read("train.jsonl").decode()
    assert "reset link" in rows and "Globex" not in rows
    assert viewer.get(f"/w/{A}/exports/download?format=sft&scrub=off").status_code == 403
    assert admin.get(f"/w/{A}/exports/download?format=sft&scrub=off").status_code == 200
    bad_split = admin.get(f"/w/{A}/exports/download?format=sft&split=1/2")
    assert bad_split.status_code == 400 and "three numbers" in bad_split.text
    assert other.get(f"/w/{A}/exports").status_code == 404
    assert other.get(f"/w/{A}/exports/download?format=sft").status_code == 404
