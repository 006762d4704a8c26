"""The issue's "Done when", end to end, as a new operator does it: the real CLI as subprocesses
and the real browser against a real ``supportbot web`` process.

``supportbot demo`` (what ``./dev demo`` runs) answers four questions in English and Korean
read from stdin, rated 👍/👎; ``supportbot admin add-user`` and ``supportbot web`` follow; the
browser signs in, sees the demo's answers in the overview's charts, fixes the disliked answer
in the review queue, and syncs one of the demo's sources; ``supportbot ask`` then cites the
published answer. A second user of another workspace sees none of it (pages, guessed ids,
exports). One browser, one web process; about a minute here.

Also what a new operator hits on the way, each checked quickly without the browser: a port in
use, signing in over plain HTTP from another machine, switching between workspaces.
"""

from __future__ import annotations

import io
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from starlette.testclient import TestClient

from console.app import build_console
from console.models import Role
from console.users import ConsoleUsers
from supportbot.app import App
from supportbot.settings import Settings
from tests.browser import browser, fresh, screenshot  # noqa: F401
from tests.test_cli import SUPPORTBOT, assert_one_error_line, cli_env

LEAD, LEAD_PASSWORD = "lead@example.com", "a long password 1"
OTHER, OTHER_PASSWORD = "bob@acme.example", "another long password"
# The chat reads a question, then a rating, until the end of stdin.
DEMO_INPUT = (
    "How do I reset my password?\n+\n"
    "비밀번호를 어떻게 재설정하나요?\n+\n"
    "Can I pay with bitcoin?\n-\n"
    "환불은 어떻게 받나요?\n👍\n"
)
FIX = "We do not accept Bitcoin or other cryptocurrencies: pay by card (Visa, Mastercard, JCB)."


class Operator:
    """Runs ``supportbot`` as a person at a terminal would, in one data directory."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd

    def __call__(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SUPPORTBOT), *args],
            env=self.env,
            cwd=self.cwd,
            input=stdin,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=300,
            check=False,
        )

    def ok(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        result = self(*args, stdin=stdin)
        assert result.returncode == 0, f"supportbot {' '.join(args)}:\n{result.stderr}"
        return result


@pytest.fixture
def operator(weaviate_data_dir: Path, tmp_path: Path) -> Operator:
    return Operator(cli_env(weaviate_data_dir, tmp_path / "supportbot.db"), tmp_path)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def web_process(operator: Operator) -> Iterator[tuple[str, int]]:
    """``supportbot web`` as its own process; yields the URL it printed, and its port."""
    port = _free_port()
    process = subprocess.Popen(
        [str(SUPPORTBOT), "web", "--port", str(port)],
        env=operator.env,
        cwd=operator.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    try:
        assert process.stdout is not None
        printed = process.stdout.readline().strip()  # "console at http://127.0.0.1:PORT/"
        assert printed == f"console at http://127.0.0.1:{port}/", printed
        url = printed.removeprefix("console at ").rstrip("/")
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/login", timeout=5) as response:
                    assert response.status == 200
                break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "supportbot web did not answer"
                time.sleep(0.2)
        yield url, port
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def sign_in(driver: Any, url: str, email: str, password: str) -> None:
    fresh(driver)
    driver.get(f"{url}/")
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "sign-in").click()
    WebDriverWait(driver, 10).until(lambda d: "/login" not in d.current_url)


def fetch(driver: Any, url: str) -> tuple[int, bytes]:
    """GET ``url`` with the browser's cookies (a download the browser would save)."""
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in driver.get_cookies())
    request = urllib.request.Request(url, headers={"Cookie": cookies})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def drawn_pixels(driver: Any, canvas_id: str) -> int:
    """How many pixels of the canvas are drawn (-1: no such canvas)."""
    return int(
        driver.execute_script(
            "const c = document.getElementById(arguments[0]); if (!c) return -1;"
            "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            "let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n;",
            canvas_id,
        )
    )


def zip_text(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return "".join(archive.read(n).decode("utf-8") for n in archive.namelist())


@pytest.mark.slow
def test_done_when(operator: Operator, browser: Any) -> None:  # noqa: F811
    driver = browser
    # ./dev demo: the sample knowledge base as sources, four rated answers (one 👎)
    demo = operator.ok("demo", stdin=DEMO_INPUT)
    assert demo.stdout.count("thanks, noted") == 4, demo.stdout
    assert "sample-en, sample-ko" in demo.stderr
    assert "ResourceWarning" not in demo.stderr
    operator.ok(
        "admin", "add-user", LEAD, "--workspace", "demo", "--role", "admin", "--password-stdin",
        stdin=LEAD_PASSWORD + "\n",
    )  # fmt: skip
    operator.ok("workspace", "create", "acme")
    operator.ok(
        "admin", "add-user", OTHER, "-w", "acme", "--role", "admin", "--password-stdin",
        stdin=OTHER_PASSWORD + "\n",
    )  # fmt: skip
    with web_process(operator) as (url, _port):
        # Sign in: one workspace, so straight to its overview, with the demo's answers.
        sign_in(driver, url, LEAD, LEAD_PASSWORD)
        assert driver.current_url == f"{url}/w/demo/overview"
        assert driver.find_element(By.ID, "fig-answers").text == "4"
        assert driver.find_element(By.ID, "fig-like-rate").text == "75%"
        for canvas in ("chart-answers", "chart-sources"):
            WebDriverWait(driver, 10).until(lambda d, c=canvas: drawn_pixels(d, c) > 500)  # type: ignore[misc]
        cited = driver.find_element(By.CSS_SELECTOR, "ol.sources").text
        assert "결제 및 환불 안내" in cited and "Passwords" in cited  # Korean and English
        screenshot(driver, "walkthrough-overview")

        # Review the disliked answer, write the right one and publish it.
        driver.get(f"{url}/w/demo/review")
        driver.find_element(By.LINK_TEXT, "Can I pay with bitcoin?").click()
        review_url = driver.current_url
        answer = driver.find_element(By.ID, "answer")
        answer.clear()
        answer.send_keys(FIX)
        driver.find_element(By.ID, "publish").click()
        WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "published"))
        asked = operator.ok("ask", "-w", "demo", "Can I pay with bitcoin?", "--json").stdout
        assert '"doc_id": "verified-answer:' in asked and "cryptocurrencies" in asked

        # Sync one of the demo's sources now, and see it finish on the page.
        driver.get(f"{url}/w/demo/sources")
        row = driver.find_element(By.XPATH, "//tr[td/a[text()='sample-en']]")
        row_id = row.get_attribute("id")
        runs_before = len(row.find_elements(By.CSS_SELECTOR, "a.tag"))
        row.find_element(By.TAG_NAME, "button").click()
        WebDriverWait(driver, 60).until(
            lambda d: (
                d.find_element(By.ID, row_id).get_attribute("data-status") == "ok"
                and len(d.find_element(By.ID, row_id).find_elements(By.CSS_SELECTOR, "a.tag"))
                > runs_before
            )
        )
        demo_export = f"{url}/w/demo/exports/download?format=kto"
        status, body = fetch(driver, demo_export)
        assert status == 200 and "bitcoin" in zip_text(body)
        answer_id = review_url.split("?")[0].rsplit("/", 1)[1]
        guessed = [
            f"{url}/w/demo/overview",
            f"{url}/w/demo/review/{answer_id}",
            f"{url}/w/acme/review/{answer_id}",  # the id under one's own workspace
            f"{url}/w/demo/conversations/{answer_id}",
            f"{url}/w/acme/conversations/{answer_id}",
            f"{url}/w/demo/sources",
            f"{url}/w/demo/exports",
        ]

        # Another workspace's user sees none of it.
        sign_in(driver, url, OTHER, OTHER_PASSWORD)
        assert driver.current_url == f"{url}/w/acme/overview"
        assert driver.find_elements(By.ID, "answers-empty")  # says so, not empty axes
        assert "demo" not in driver.find_element(By.TAG_NAME, "header").text
        driver.get(f"{url}/")
        assert driver.current_url == f"{url}/w/acme/overview"  # no picker offering demo
        for page in guessed:
            driver.get(page)
            assert driver.title.startswith("Not found"), page
        source_id = row_id.removeprefix("source-")
        driver.get(f"{url}/w/acme/sources/{source_id}")
        assert driver.title.startswith("Not found")
        assert fetch(driver, demo_export)[0] == 404
        status, body = fetch(driver, f"{url}/w/acme/exports/download?format=kto")
        assert status == 200 and "bitcoin" not in zip_text(body)


# --- what a new operator hits on the way -----------------------------------------------------


def test_web_on_a_port_in_use_is_one_line_and_prints_no_url(tmp_path: Path) -> None:
    operator = Operator(cli_env(tmp_path / "data", tmp_path / "supportbot.db"), tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = operator("web", "--port", str(port))
    line = assert_one_error_line(result)  # nothing on stdout: no URL that would not work
    assert f"port {port}" in line and "already in use" in line and "--port" in line


@pytest.fixture
def console_app(tmp_path: Path) -> Iterator[App]:
    settings = Settings(
        data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'console.db'}"
    )  # Secure cookies: the default
    with App(settings) as application:
        users = ConsoleUsers(application.engine)
        users.add_user(LEAD, password=LEAD_PASSWORD, workspace="demo", role=Role.ADMIN)
        users.add_user(OTHER, password=OTHER_PASSWORD, workspace="acme", role=Role.VIEWER)
        users.grant(OTHER, "globex", Role.VIEWER)
        yield application


@pytest.mark.parametrize(
    ("base_url", "says_why"),
    [
        ("http://192.0.2.10:8080", True),  # another machine, plain HTTP
        ("http://support.example.com", True),
        ("http://[2001:db8::1]:8080", True),
        ("https://support.example.com", False),  # a form that really expired
        ("http://localhost:8080", False),  # browsers keep Secure cookies on localhost
        ("http://127.0.0.1:8080", False),
    ],
)
def test_sign_in_without_the_cookie_over_plain_http_says_why(
    console_app: App, base_url: str, says_why: bool
) -> None:
    """Browsers drop Secure cookies of a plain-HTTP page: the form comes back without its
    CSRF cookie. The answer must say so (and what to change), not "reload and try again",
    which loops forever."""
    client = TestClient(build_console(console_app), base_url=base_url, follow_redirects=False)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    client.cookies.clear()  # what the browser does with a Secure cookie over plain HTTP
    refused = client.post(
        "/login",
        data={"email": LEAD, "password": LEAD_PASSWORD, "csrf_token": token.group(1)},
    )
    assert refused.status_code == 403
    assert ("CONSOLE_SECURE_COOKIES=false" in refused.text) is says_why
    assert ("reload the page" in refused.text) is not says_why


def test_switch_workspace_link_only_with_several_workspaces(console_app: App) -> None:
    client = TestClient(build_console(console_app), base_url="https://testserver")
    for email, password, workspace, several in (
        (LEAD, LEAD_PASSWORD, "demo", False),
        (OTHER, OTHER_PASSWORD, "acme", True),
    ):
        client.cookies.clear()
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        client.post(
            "/login", data={"email": email, "password": password, "csrf_token": token.group(1)}
        )
        overview = client.get(f"/w/{workspace}/overview")
        assert overview.status_code == 200
        assert ('id="switch-workspace"' in overview.text) is several
        assert 'id="answers-empty"' in overview.text  # no answers: said in words
        assert 'id="chart-answers"' not in overview.text
