"""The console in a real browser (headless Chromium, tests/browser.py): sign-in, the overview
with its charts drawn, filtering conversations, and isolation: a user of another workspace
gets 404 on this one's pages by URL guessing, and a viewer's POST is refused.

One browser and one server for the module. ``SUPPORTBOT_SCREENSHOTS=docs/screenshots`` saves
the main pages as PNG (how the README's screenshots are made).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from console.app import build_console
from console.models import Role
from console.users import ConsoleUsers
from feedback.handoffs import Handoff
from feedback.learning_models import EvalRun
from feedback.store import AnswerRecord, SqlFeedbackStore
from supportbot.app import App
from supportbot.settings import Settings
from tests.browser import browser, fresh, screenshot, serve  # noqa: F401

pytestmark = pytest.mark.slow

A, B = "acme", "globex"
PASSWORD = "correct horse battery"
NOW = datetime.now(UTC)
QUESTIONS = [
    ("How do I reset my password?", True, 1, 0, "Account guide"),
    ("Can I get a refund after 30 days?", True, -1, 1, "Refund policy"),
    ("Where do I find my invoices?", True, 1, 2, "Billing FAQ"),
    ("Do you ship to Mars?", False, -1, 2, ""),
    ("How do I add a teammate?", True, 0, 4, "Account guide"),
    ("What payment methods do you accept?", True, 1, 5, "Billing FAQ"),
    ("Is there an API rate limit?", False, 0, 6, ""),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, int]]]:
    tmp = tmp_path_factory.mktemp("console-browser")
    settings = Settings(data_dir=tmp / "data", database_url=f"sqlite:///{tmp / 'c.db'}")
    with App(settings) as application:
        users = ConsoleUsers(application.engine)
        users.add_user("lead@acme.test", password=PASSWORD, workspace=A, role=Role.ADMIN)
        users.add_user("viewer@acme.test", password=PASSWORD, workspace=A, role=Role.VIEWER)
        users.add_user("lead@globex.test", password=PASSWORD, workspace=B, role=Role.ADMIN)
        ids = _seed(application)
        with serve(build_console(application)) as url:
            yield url, ids


def _seed(application: App) -> dict[str, int]:
    ids: dict[str, int] = {}
    for n, (question, found, rating, days_ago, source) in enumerate(QUESTIONS):
        when = NOW - timedelta(days=days_ago, hours=n)
        store = SqlFeedbackStore(application.engine, user_hash_key=b"k", clock=lambda w=when: w)
        made = store.record_answer(
            AnswerRecord(
                workspace=A,
                platform="slack" if n % 3 else "discord",
                channel_id="C-support" if n % 2 else "C-general",
                question=question,
                standalone_question=question,
                answer="I could not find this in the documentation."
                if not found
                else f"See the {source} [1].",
                mode="generative",
                found=found,
                retrieved=[{"title": source or "Nothing close", "text": "…", "score": 0.61}],
                sources=[{"n": 1, "title": source, "source": f"kb/{source}.md", "url": ""}]
                if found
                else [],
                prompt_messages=[{"role": "system", "content": "Answer only from the passages."}],
            )
        )
        assert made is not None
        ids[question] = made
        if rating:
            store.rate(made, user_id=f"u{n}", value=rating, source="reaction")
    store = SqlFeedbackStore(application.engine, user_hash_key=b"k")
    other = store.record_answer(
        AnswerRecord(
            workspace=B,
            platform="slack",
            question="Globex launch date?",
            standalone_question="Globex launch date?",
            answer="Globex secret",
            mode="generative",
        )
    )
    assert other is not None
    ids["globex"] = other
    from sqlmodel import Session

    with Session(application.engine) as session:
        for minutes, days_ago in ((6, 1), (15, 3), (9, 5)):
            asked = NOW - timedelta(days=days_ago)
            session.add(
                Handoff(
                    workspace=A,
                    platform="slack",
                    team_id="T1",
                    channel_id="C-support",
                    thread_id=f"{days_ago}.1",
                    reason="not_found",
                    requested_at=asked,
                    first_human_reply_at=asked + timedelta(minutes=minutes),
                )
            )
        for days_ago, hit in ((6, 0.72), (3, 0.78), (1, 0.84)):
            session.add(
                EvalRun(
                    workspace=A,
                    trigger="sync",
                    questions=40,
                    hit_at_5=hit,
                    created_at=NOW - timedelta(days=days_ago),
                )
            )
        session.commit()
    return ids


def sign_in(driver: Any, url: str, email: str) -> None:
    fresh(driver)
    driver.get(f"{url}/login")
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "sign-in").click()
    WebDriverWait(driver, 10).until(lambda d: "/login" not in d.current_url)


def drawn_pixels(driver: Any, canvas_id: str) -> int:
    """How many pixels of the canvas are not transparent (0: nothing drawn)."""
    return int(
        driver.execute_script(
            "const c = document.getElementById(arguments[0]); if (!c) return -1;"
            "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            "let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n;",
            canvas_id,
        )
    )


def test_sign_in_and_the_overview_charts_are_drawn(browser: Any, site: Any) -> None:  # noqa: F811
    url, _ = site
    driver = browser
    driver.get(f"{url}/w/{A}/overview")
    assert "/login" in driver.current_url
    screenshot(driver, "login")
    sign_in(driver, url, "lead@acme.test")
    WebDriverWait(driver, 10).until(lambda d: d.current_url.endswith(f"/w/{A}/overview"))
    assert driver.find_element(By.ID, "fig-answers").text == "7"
    assert driver.find_element(By.ID, "fig-handoffs").text == "3"
    for canvas in ("chart-answers", "chart-handoffs", "chart-eval", "chart-sources"):
        WebDriverWait(driver, 10).until(lambda d, c=canvas: drawn_pixels(d, c) > 500)
    screenshot(driver, "overview")
    driver.find_element(By.LINK_TEXT, "90 days").click()  # the period switch, by keyboard too
    WebDriverWait(driver, 10).until(lambda d: "days=90" in d.current_url)
    assert drawn_pixels(driver, "chart-answers") > 500


def test_filtering_conversations_and_opening_one(browser: Any, site: Any) -> None:  # noqa: F811
    url, ids = site
    driver = browser
    sign_in(driver, url, "lead@acme.test")
    driver.get(f"{url}/w/{A}/conversations")
    rows = driver.find_elements(By.CSS_SELECTOR, "#conversations tbody tr[data-id]")
    assert len(rows) == len(QUESTIONS)
    screenshot(driver, "conversations")
    Select(driver.find_element(By.ID, "rating")).select_by_value("disliked")
    driver.find_element(By.ID, "apply-filters").click()
    WebDriverWait(driver, 10).until(lambda d: "rating=disliked" in d.current_url)
    shown = {
        int(r.get_attribute("data-id"))
        for r in driver.find_elements(By.CSS_SELECTOR, "#conversations tbody tr[data-id]")
    }
    assert shown == {ids["Can I get a refund after 30 days?"], ids["Do you ship to Mars?"]}
    driver.find_element(By.ID, "not_found").click()
    driver.find_element(By.ID, "apply-filters").click()
    WebDriverWait(driver, 10).until(lambda d: "not_found=1" in d.current_url)
    links = driver.find_elements(By.CSS_SELECTOR, "#conversations tbody a")
    assert [a.text for a in links] == ["Do you ship to Mars?"]
    links[0].click()
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "question"))
    assert driver.find_element(By.ID, "question").text == "Do you ship to Mars?"
    assert "Answer only from the passages." in driver.page_source
    assert driver.find_element(By.ID, "passages").text.count("0.610") == 1
    screenshot(driver, "conversation")


def test_another_workspaces_user_gets_404_by_url_guessing(
    browser: Any,  # noqa: F811
    site: Any,
) -> None:
    url, ids = site
    driver = browser
    sign_in(driver, url, "lead@globex.test")
    for path in (
        f"/w/{A}/overview",
        f"/w/{A}/conversations",
        f"/w/{A}/conversations/{ids['Do you ship to Mars?']}",
        f"/w/{B}/conversations/{ids['Do you ship to Mars?']}",
        f"/w/{A}/sources",
        f"/w/{A}/exports",
        f"/w/{A}/overview.json",
    ):
        driver.get(url + path)
        assert "404" in driver.find_element(By.TAG_NAME, "h1").text, path
        assert "Mars" not in driver.page_source


def test_a_viewer_cannot_post(browser: Any, site: Any) -> None:  # noqa: F811
    url, _ = site
    driver = browser
    sign_in(driver, url, "viewer@acme.test")
    driver.get(f"{url}/w/{A}/overview")
    assert "viewer" in driver.find_element(By.CSS_SELECTOR, "header .role").text
    status = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const token = JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token'];"
        "fetch(arguments[0], {method: 'POST', headers: {'X-CSRF-Token': token,"
        " 'Content-Type': 'application/x-www-form-urlencoded'}, body: 'kind=web&url=x'})"
        ".then(r => done(r.status));",
        f"{url}/w/{A}/sources",
    )
    assert status == 403


def test_screenshots_are_small_pngs_when_asked(site: Any) -> None:
    directory = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
    for png in directory.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size < 400_000, png
