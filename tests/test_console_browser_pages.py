"""The review, gaps, sources, settings and exports pages in a real browser (headless Chromium,
tests/browser.py) against the real console served by uvicorn, with the real database, Weaviate
and embedding model: a disliked answer fixed from the review queue is then answered from the
verified answer, and cited, in the terminal chat; *Sync now* on the Sources page turns the row
from queued to running or finished through htmx polling, without reloading the page.

One browser and one server for the module. ``SUPPORTBOT_SCREENSHOTS=docs/screenshots`` saves
these pages as PNG (the README's screenshots).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from console.app import build_console
from console.models import Role
from console.users import ConsoleUsers
from retrieval.embeddings import LocalE5Embeddings
from retrieval.workspaces import IdentityKind
from supportbot.app import App
from supportbot.chat import run_chat
from tests.browser import browser, fresh, screenshot, serve  # noqa: F401
from tests.conftest import SAMPLE_KB, make_settings

pytestmark = pytest.mark.slow

A, B = "acme-pages-browser", "globex-pages-browser"
PASSWORD = "correct horse battery staple"
RESET = "How long is the password reset link valid?"
MARS = "Do you deliver parcels to Mars?"
FIXED = "Password reset links are valid for 30 minutes and work once; request a new one after."


def chat(application: App, workspace: str, lines: list[str]) -> str:
    """What the terminal chat (``supportbot chat``) prints for ``lines`` typed in turn."""
    feed = iter(lines)

    def read(_prompt: str) -> str:
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    screen = io.StringIO()
    run_chat(application, workspace, console=Console(file=screen, width=200), read=read)
    return screen.getvalue()


@pytest.fixture(scope="module")
def site(
    weaviate_data_dir: Path, embedder: LocalE5Embeddings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, App, Path]]:
    tmp = tmp_path_factory.mktemp("console-pages-browser")
    handbook = tmp / "folders" / "handbook"
    handbook.mkdir(parents=True)
    (handbook / "leave.md").write_text(
        "# Leave policy\n\nEveryone gets 25 days of paid leave a year.\n", encoding="utf-8"
    )
    settings = make_settings(
        weaviate_data_dir,
        tmp / "console.db",
        console_folder_roots=str(tmp / "folders"),
        sync_default_schedule="manual",
    )
    with App(settings, local_embedder=embedder) as application:
        application.knowledge.create_workspace(A, [(IdentityKind.SLACK_TEAM, "TACMEB")])
        application.knowledge.ingest_paths(A, [SAMPLE_KB / "en"])
        application.knowledge.create_workspace(B)
        users = ConsoleUsers(application.engine)
        users.add_user("lead@acme.test", password=PASSWORD, workspace=A, role=Role.ADMIN)
        users.add_user("lead@globex.test", password=PASSWORD, workspace=B, role=Role.ADMIN)
        # A disliked answer, a question it could not answer (a gap), a liked one.
        chat(application, A, [RESET, "-", MARS, "-", "How do I reset my password?", "+"])
        chat(application, B, ["Globex launch date?", "-"])
        with serve(build_console(application)) as url:
            yield url, application, handbook


def sign_in(driver: Any, url: str, email: str) -> None:
    fresh(driver)
    driver.get(f"{url}/login")
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "sign-in").click()
    WebDriverWait(driver, 10).until(lambda d: "/login" not in d.current_url)


def _queue(driver: Any) -> list[str]:
    rows = driver.find_elements(By.CSS_SELECTOR, "#review-queue tbody tr")
    return [r.find_element(By.TAG_NAME, "a").text for r in rows]


def test_publish_a_verified_answer_from_the_review_queue_then_the_chat_cites_it(
    browser: Any,  # noqa: F811
    site: Any,
) -> None:
    url, application, _ = site
    driver = browser
    sign_in(driver, url, "lead@acme.test")
    driver.get(f"{url}/w/{A}/review")
    assert set(_queue(driver)) == {RESET, MARS}  # the two disliked answers
    assert "Globex" not in driver.page_source
    screenshot(driver, "review")

    driver.find_element(By.LINK_TEXT, RESET).click()
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "publish-form"))
    assert driver.find_element(By.ID, "question").text == RESET
    assert "30 minutes" in driver.find_element(By.ID, "retrieved").text  # its context
    answer = driver.find_element(By.ID, "answer")
    answer.clear()
    answer.send_keys(FIXED)
    driver.execute_script("window.scrollTo(0, 0)")
    screenshot(driver, "review-item")
    driver.find_element(By.ID, "publish").click()
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "published"))
    assert "published=1" in driver.current_url
    assert driver.find_element(By.ID, "reviewed-by").text.startswith("lead@acme.test")

    driver.get(f"{url}/w/{A}/review")  # out of the queue once fixed
    assert _queue(driver) == [MARS]

    # Asked again in the terminal chat: answered from the verified answer, and cited.
    screen = chat(application, A, [RESET, ""])
    cited = screen.split("sources:")[-1].strip().splitlines()
    assert cited and "Verified answer" in cited[0], screen
    assert "request a new one after" in screen


def test_sync_now_follows_the_row_from_queued_to_finished_without_reloading(
    browser: Any,  # noqa: F811
    site: Any,
) -> None:
    url, application, handbook = site
    driver = browser
    sign_in(driver, url, "lead@acme.test")
    driver.get(f"{url}/w/{A}/sources")
    driver.find_element(By.ID, "source-name").send_keys("handbook")
    Select(driver.find_element(By.ID, "source-kind")).select_by_value("folder")
    driver.find_element(By.ID, "source-path").send_keys(str(handbook))
    driver.find_element(By.ID, "add-source-submit").click()
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#sources tr"))
    row = driver.find_element(By.CSS_SELECTOR, "#sources tbody tr")
    row_id = row.get_attribute("id")
    assert row.get_attribute("data-status") == "never"

    # Every status the row shows from now on, and a mark that a reload would wipe out.
    driver.execute_script(
        "window.stayed = true; window.seen = [];"
        "const id = arguments[0];"
        "const note = () => { const r = document.getElementById(id);"
        "  if (r && window.seen[window.seen.length - 1] !== r.dataset.status)"
        "    window.seen.push(r.dataset.status); };"
        "new MutationObserver(note).observe(document.body,"
        "  {subtree: true, childList: true, attributes: true});",
        row_id,
    )
    driver.find_element(By.ID, f"sync-{row_id.removeprefix('source-')}").click()
    WebDriverWait(driver, 60).until(
        lambda d: d.execute_script("return window.seen[window.seen.length - 1]") in ("ok", "failed")
    )
    seen = [s for s in driver.execute_script("return window.seen") if s != "never"]
    assert seen[0] in ("queued", "running"), seen  # answered at once, before the sync ran
    assert seen[-1] == "ok", seen
    assert driver.execute_script("return window.stayed === true")  # no reload: htmx did it
    assert "/sources" in driver.current_url
    assert application.knowledge.chunk_count(A) > 0
    row = driver.find_element(By.ID, row_id)
    assert row.get_attribute("hx-get") is None  # polling stopped once finished
    assert row.get_attribute("data-status") == "ok"
    screenshot(driver, "sources")


def test_gaps_settings_and_exports_pages(browser: Any, site: Any) -> None:  # noqa: F811
    url, _, _ = site
    driver = browser
    sign_in(driver, url, "lead@acme.test")
    driver.get(f"{url}/w/{A}/gaps")
    assert MARS in driver.find_element(By.ID, "gap-questions").text
    driver.find_element(By.ID, "draft-gaps").click()
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, "gap-drafts"))
    drafts = driver.find_element(By.ID, "gap-drafts").text
    assert MARS in drafts and "drafted_by_" not in drafts
    assert "Globex" not in driver.page_source
    screenshot(driver, "gaps")

    driver.get(f"{url}/w/{A}/settings")
    driver.find_element(By.ID, "channel-id").send_keys("C0SUPPORT")
    Select(driver.find_element(By.ID, "channel-mode")).select_by_value("all_questions")
    driver.find_element(By.ID, "channel-save").click()
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "settings-saved"))
    modes = driver.find_element(By.ID, "channel-modes").text
    assert "C0SUPPORT" in modes and "Every question" in modes and "mode_" not in modes
    screenshot(driver, "settings")

    driver.get(f"{url}/w/{A}/exports")
    assert driver.find_element(By.ID, "export-download").is_enabled()
    screenshot(driver, "exports")
