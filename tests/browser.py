"""A real browser for the console's tests: Debian's Chromium driven by Selenium, headless.

Fixtures (import them into a test module: ``from tests.browser import browser, serve``):

- ``browser``: one Chromium session per test module (starting one takes about a second);
  cookies are cleared between uses with :func:`fresh`. Skipped when Chromium or its driver
  is missing, except in CI (``CI`` set), where a missing browser fails: ``./dev test`` runs
  ``scripts/install-chromium`` there.
- :func:`serve`: runs an ASGI app (the console) with uvicorn on a free local port, in a
  thread, as a context manager yielding its base URL (``http://localhost:PORT``; browsers
  treat localhost as secure, so Secure cookies work without TLS).
- :func:`screenshot`: saves the page as PNG into ``$SUPPORTBOT_SCREENSHOTS`` (a directory)
  when that variable is set, else does nothing (``docs/screenshots`` is made this way).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from starlette.types import ASGIApp

CHROMIUM = os.environ.get("SUPPORTBOT_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SUPPORTBOT_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
WINDOW = (1280, 900)


def _missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).is_file() or shutil.which(path)):
            return f"{path} is missing (run scripts/install-chromium as root)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    problem = _missing()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI containers run as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def fresh(driver: object) -> None:
    """Forget every cookie (a new, signed-out visitor)."""
    driver.delete_all_cookies()  # type: ignore[attr-defined]


@contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the console server did not start")
        time.sleep(0.02)
    try:
        yield f"http://localhost:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def screenshot(driver: object, name: str) -> Path | None:
    """``$SUPPORTBOT_SCREENSHOTS/<name>.png`` of the current page, when asked for."""
    directory = os.environ.get("SUPPORTBOT_SCREENSHOTS")
    if not directory:
        return None
    path = Path(directory) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    return path
