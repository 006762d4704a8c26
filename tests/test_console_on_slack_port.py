"""The web console on the port of ``supportbot run --slack-http``, next to ``/slack/events``.

The product's own serving code (:func:`supportbot.run._run_slack`: one uvicorn server for
:func:`supportbot.run.slack_http_app`) on a free port, reached over real HTTP: sign in, the
overview and conversations, a static file and the streamed export zip (it hung behind the old
aiohttp-to-ASGI bridge), the security headers on every console response (static files too),
while a signed Slack event is still answered and an unsigned one refused.
"""

from __future__ import annotations

import asyncio
import io
import re
import socket
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from bot.slack.app import SlackBot, slack_web_client
from console.models import Role
from console.users import ConsoleUsers
from feedback.store import AnswerRecord, SqlFeedbackStore
from supportbot.app import App
from supportbot.run import RunError, _run_slack
from supportbot.settings import Settings
from tests.servers.slack import signed_event_request

pytestmark = pytest.mark.slow  # each test serves the console and the bot over HTTP

SECRET = "port-signing-secret"
PASSWORD = "a long password"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def application(tmp_path: Path, weaviate_data_dir: Path) -> Iterator[App]:
    # The tests' shared Weaviate (its data directory): a data directory of its own would start
    # an embedded Weaviate per test that outlives it (it runs detached, by design).
    settings = Settings(
        data_dir=weaviate_data_dir,
        database_url=f"sqlite:///{tmp_path / 'port.db'}",
        slack_signing_secret=SecretStr(SECRET),
        console_secure_cookies=False,  # plain HTTP to 127.0.0.1 in this test
    )
    with App(settings) as app:
        ConsoleUsers(app.engine).add_user(
            "lead@acme.test", password=PASSWORD, workspace="acme", role=Role.ADMIN
        )
        store = SqlFeedbackStore(app.engine, user_hash_key=b"k")
        for n in range(30):
            made = store.record_answer(
                AnswerRecord(
                    workspace="acme",
                    platform="slack",
                    question=f"How do I reset my password, case {n}?",
                    standalone_question=f"How do I reset my password, case {n}?",
                    answer=f"Open Settings, then Security (answer {n}).",
                    mode="extractive",
                    user_id=f"U{n}",
                )
            )
            assert made is not None
            store.rate(made, user_id=f"U{n}", value=1, source="reaction")
        yield app


@pytest.fixture
async def base_url(application: App) -> AsyncIterator[str]:
    bot = SlackBot(
        application.conversations,
        client=slack_web_client(token="xoxb-port", api_url="http://127.0.0.1:9/api/"),
        signing_secret=SECRET,
    )
    port = _free_port()
    serving = asyncio.create_task(
        _run_slack(application, bot, http=True, host="127.0.0.1", port=port)
    )
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as probe:
        for _ in range(200):
            assert not serving.done(), serving.exception()
            try:
                await probe.get(f"{url}/login")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    yield url
    serving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await serving


async def sign_in(c: httpx.AsyncClient) -> None:
    page = await c.get("/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found
    response = await c.post(
        "/login", data={"email": "lead@acme.test", "password": PASSWORD, "csrf_token": found[1]}
    )
    assert response.status_code == 303, response.text


def assert_console_headers(response: httpx.Response) -> None:
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


async def test_the_console_and_slack_events_share_the_port(base_url: str):
    async with httpx.AsyncClient(base_url=base_url, timeout=20) as c:
        await sign_in(c)
        overview = await c.get("/w/acme/overview")
        assert overview.status_code == 200 and "lead@acme.test" in overview.text
        assert_console_headers(overview)
        listing = await c.get("/w/acme/conversations")
        assert listing.status_code == 200 and "case 7" in listing.text

        static = await c.get("/static/console.css")
        assert static.status_code == 200 and static.headers["content-type"].startswith("text/css")
        assert len(static.content) > 100
        assert_console_headers(static)
        assert (await c.get("/static/nothing-here.js")).status_code == 404

        export = await asyncio.wait_for(
            c.get("/w/acme/exports/download", params={"format": "sft", "split": "100/0/0"}), 30
        )
        assert export.status_code == 200, export.text[:300]
        assert export.headers["content-type"] == "application/zip"
        assert_console_headers(export)
        with zipfile.ZipFile(io.BytesIO(export.content)) as archive:
            names = archive.namelist()
            assert names and archive.testzip() is None
            text = "".join(archive.read(name).decode() for name in names)
        assert "case 29" in text

    challenge = {"type": "url_verification", "challenge": "port-challenge-1"}
    raw, headers = signed_event_request(challenge, SECRET)
    async with httpx.AsyncClient(base_url=base_url) as slack:
        answered = await slack.post("/slack/events", content=raw, headers=headers)
        assert answered.status_code == 200
        assert answered.json() == {"challenge": "port-challenge-1"}
        assert "content-security-policy" not in answered.headers  # not a console response
        unsigned = await slack.post(
            "/slack/events", content=raw, headers={"Content-Type": "application/json"}
        )
        assert unsigned.status_code == 401
        assert (await slack.get("/slack/events")).status_code == 405


async def test_signed_out_visitors_are_sent_to_sign_in_on_the_slack_port(base_url: str):
    async with httpx.AsyncClient(base_url=base_url) as c:
        response = await c.get("/w/acme/exports/download?format=sft")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")
        assert_console_headers(response)


async def test_a_port_in_use_is_a_one_line_error(application: App):
    bot = SlackBot(
        application.conversations,
        client=slack_web_client(token="xoxb-port", api_url="http://127.0.0.1:9/api/"),
        signing_secret=SECRET,
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        with pytest.raises(RunError, match=f"cannot listen on 127.0.0.1:{port}"):
            await _run_slack(application, bot, http=True, host="127.0.0.1", port=port)
