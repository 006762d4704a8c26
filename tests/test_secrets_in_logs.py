"""No secret reaches a log line, at any level.

The end to end tests run real flows at DEBUG with every logger on, the way ``main()`` sets up
logging (a root handler, then :func:`install_redaction` with the configured secrets), and grep
the output for every secret used and every piece of it of 8 characters or more: a Slack OAuth
install (slack_sdk logs the ``oauth.v2.access`` response with the new bot token), a Discord
login, and Notion syncs (with an OAuth token refresh).
"""

from __future__ import annotations

import asyncio
import html
import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import discord
import httpx
import pytest
from discord.gateway import DiscordWebSocket

from bot.discord import DiscordBot
from bot.slack.http import events_asgi_app
from supportbot.app import App
from supportbot.logredact import SecretRedactor, install_redaction
from supportbot.run import build_slack_bot
from sync.connectors.notion import NotionConnector
from tests.asgi_server import serving
from tests.conftest import make_settings
from tests.servers.discord import DiscordSimulator
from tests.servers.notion import NotionSimulator, notion_id, paragraph
from tests.servers.slack import SlackSimulator


def pieces(secret: str, size: int = 8) -> list[str]:
    """Every run of ``size`` characters of ``secret`` (any longer piece contains one)."""
    return [secret[i : i + size] for i in range(max(1, len(secret) - size + 1))]


def leaked(text: str, secrets: list[str]) -> list[str]:
    return [piece for secret in secrets for piece in pieces(secret) if piece in text]


class Capture:
    """The root handler main() would have, plus an unfiltered one that shows what the SDKs
    logged before redaction (so a test knows its flow really logs a secret)."""

    def __init__(self) -> None:
        self.redacted, self.raw = io.StringIO(), io.StringIO()

    def start(self, secrets: list[str]) -> SecretRedactor:
        root = logging.getLogger()
        fmt = logging.Formatter("%(levelname)s %(name)s: %(message)s")
        self._handler = logging.StreamHandler(self.redacted)
        self._handler.setFormatter(fmt)
        root.addHandler(self._handler)
        redactor = install_redaction(secrets)
        self._raw = logging.StreamHandler(self.raw)
        self._raw.setFormatter(fmt)
        root.handlers.insert(0, self._raw)  # sees each record before the filter rewrites it
        self._level = root.level
        root.setLevel(logging.DEBUG)
        self._sdk_levels = {}
        for name in ("slack_sdk", "slack_bolt", "discord", "httpx", "httpcore", "notion_client"):
            logger = logging.getLogger(name)
            self._sdk_levels[name] = logger.level
            logger.setLevel(logging.DEBUG)
        return redactor

    def stop(self) -> None:
        root = logging.getLogger()
        root.removeHandler(self._handler)
        root.removeHandler(self._raw)
        root.setLevel(self._level)
        for handler in root.handlers:
            for f in [f for f in handler.filters if isinstance(f, SecretRedactor)]:
                handler.removeFilter(f)
        for name, level in self._sdk_levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture
def capture() -> Iterator[Capture]:
    found = Capture()
    yield found
    found.stop()


# --- the filter itself ---------------------------------------------------------------------------

REDACTION_CASES = [
    "oauth.v2.access: {'ok': True, 'access_token': 'xoxb-17-29-AbCdEfGhIjKlMnOp'}",
    "user token xoxp-1234-5678-abcdefABCDEF in a sentence",
    "Socket Mode with xapp-1-A111-222-abcdef0123456789",
    "rotated to xoxe.xoxb-1-MTIzNDU2Nzg5 and refresh xoxe-1-My0xLTEyMzQ1Njc4",
    "headers={'Authorization': 'Bot MTIzNDU2Nzg5MDEyMzQ1Njc4OTAx.GaBcDe.abcdefghijklmnopqrstuvw'}",
    "token MTIzNDU2Nzg5MDEyMzQ1Njc4OTAx.GaBcDe.abcdefghijklmnopqrstuvwxyz0 on its own",
    'POST /v1/search {"authorization": "Bearer ntn_4Bc5De6Fg7Hi8Jk9Lm0No1Pq2Rs3"}',
    "notion token secret_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789 (old prefix)",
    "Authorization: Bearer opaque-7c1e0a55d9b34e1f",
    "body_params: {'client_id': '111.222', 'client_secret': 'f00dfacecafe', 'code': 'x'}",
    "refresh_token=opaque-refresh-9f8e7d6c&grant_type=refresh_token",
    '{"access_token":"opaque-access-1a2b3c4d","token_type":"bearer"}',
    "engine at postgresql://supportbot:opaque-db-pass@db.internal:5432/supportbot",
    "redis://:opaque-redis-pass@cache:6379/0 unreachable",
    "POST https://bot:opaque-proxy-pass@llm-proxy.example/v1/chat/completions",
    "request headers: {'x-api-key': 'opaque-7f3a9c2e1b', 'accept': '*/*'}",
    "api-key: opaque-azure-key-456",
]


@pytest.mark.parametrize(
    "line",
    [
        "max_tokens=1024 and tokens: 350 used",
        "https://example.com/people/a@b and mailto:help@example.com",
        "http://user@host.example/ has no password",
    ],
)
def test_ordinary_lines_are_left_alone(line: str):
    assert SecretRedactor().redact(line) == line


@pytest.mark.parametrize("line", REDACTION_CASES)
def test_token_shapes_are_redacted_wherever_they_appear(line: str):
    redacted = SecretRedactor().redact(line)

    assert "[redacted]" in redacted
    secrets = re.findall(
        r"xox[a-z.]*-[\w-]+|xapp-[\w-]+|MTIz[\w.-]+|ntn_\w+|secret_\w+|opaque-[\w-]+|f00dfacecafe",
        line,
    )
    assert secrets and leaked(redacted, secrets) == [], redacted


def test_configured_values_tracebacks_and_arguments_are_redacted(capture: Capture):
    signing = "plain-signing-secret-4242"
    capture.start([signing])
    logger = logging.getLogger("tests.redaction")

    logger.debug("verifying with %s", signing)
    try:
        raise RuntimeError(f"bad secret {signing}")
    except RuntimeError:
        logger.exception("failed")
    logger.info("ordinary words stay: the bot answered 3 questions, max_tokens=512")

    text = capture.redacted.getvalue()
    assert leaked(text, [signing]) == [], text
    assert signing in capture.raw.getvalue()  # it was logged: the filter removed it
    assert "RuntimeError: bad secret [redacted]" in text
    assert "the bot answered 3 questions, max_tokens=512" in text


# --- real flows at DEBUG ---------------------------------------------------------------------

CLIENT_ID, CLIENT_SECRET = "111.222", "slack-client-secret-0c9b8a7d"
SIGNING_SECRET = "slack-signing-secret-5e6f7a8b"
INSTALLED_TOKEN = "xoxb-777-888-InStAlLeDtOkEn0123"
CONFIGURED_BOT_TOKEN = "xoxb-999-000-ConfiguredIgnored42"


@pytest.mark.slow
async def test_a_slack_oauth_install_logs_no_token(
    weaviate_data_dir: Path, tmp_path: Path, embedder: Any, capture: Capture
):
    with SlackSimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as slack:
        slack.add_oauth_code("code-1", team_id="T777", bot_token=INSTALLED_TOKEN)
        settings = make_settings(
            weaviate_data_dir, tmp_path / "db.sqlite",
            slack_client_id=CLIENT_ID, slack_client_secret=CLIENT_SECRET,
            slack_signing_secret=SIGNING_SECRET, slack_api_url=slack.base_url,
            slack_bot_token=CONFIGURED_BOT_TOKEN,
        )  # fmt: skip
        capture.start(settings.secret_values())
        with App(settings, local_embedder=embedder) as application:
            bot = build_slack_bot(application, http=True)
            edge = events_asgi_app(bot.app, signing_secret=SIGNING_SECRET)
            async with serving(edge) as base, httpx.AsyncClient(base_url=base) as browser:
                page = await browser.get("/slack/install")
                [link] = [html.unescape(u) for u in re.findall(r'<a href="([^"]+)"', page.text)]
                [state] = parse_qs(urlparse(link).query)["state"]
                cookie = page.headers["set-cookie"].split(";")[0]
                done = await browser.get(
                    "/slack/oauth_redirect",
                    params={"code": "code-1", "state": state},
                    headers={"Cookie": cookie},
                )

    assert done.status_code == 200 and slack.calls_to("oauth.v2.access")
    secrets = [INSTALLED_TOKEN, CLIENT_SECRET, SIGNING_SECRET, CONFIGURED_BOT_TOKEN, "test-secret"]
    assert leaked(capture.raw.getvalue(), [INSTALLED_TOKEN]), "the SDK no longer logs it?"
    text = capture.redacted.getvalue()
    assert leaked(text, secrets) == [], [
        line for line in text.splitlines() if leaked(line, secrets)
    ][:5]


DISCORD_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAx.GaBcDe.abcdefghijklmnopqrstuvwxyz0123"


@pytest.mark.slow
async def test_a_discord_login_logs_no_token(
    app: App, capture: Capture, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    app.settings.discord_bot_token = DISCORD_TOKEN  # type: ignore[assignment]
    capture.start(app.settings.secret_values())
    sim = DiscordSimulator(token=DISCORD_TOKEN, heartbeat_interval_ms=300)
    sim.add_user("2000000000000001001", "alice")
    async with sim:
        bot = DiscordBot(
            app.conversations, api_url=sim.api_url, public_dm_workspace=None,
            message_content=False, guild_ready_timeout_s=0.05,
        )  # fmt: skip
        task = asyncio.create_task(bot.start(DISCORD_TOKEN))
        await asyncio.wait_for(bot.client.wait_until_ready(), timeout=10)
        await sim.wait_for_live_session()
        await asyncio.sleep(1.0)  # a few heartbeats
        await bot.close()
        await asyncio.wait({task}, timeout=5)

    text = capture.redacted.getvalue()
    assert "discord" in text  # the gateway and HTTP client did log at DEBUG
    assert leaked(text, [DISCORD_TOKEN]) == [], [
        line for line in text.splitlines() if leaked(line, [DISCORD_TOKEN])
    ][:5]


NOTION_TOKEN = "ntn_4Bc5De6Fg7Hi8Jk9Lm0No1Pq2Rs3Tu4Vw5Xy6Z"
NOTION_OLD_TOKEN = "secret_Expired0AbCdEfGhIjKlMnOpQrStUvWx"
NOTION_REFRESH = "nrt7d6c5b4a3f2e9d8c7b6a"
NOTION_CLIENT_SECRET = "ncs1a2b3c4d5e6f7a8b9c0d"


@pytest.mark.slow
async def test_notion_syncs_with_a_token_refresh_log_no_secret(
    app: App, ws_name: str, capture: Capture
):
    with NotionSimulator() as notion:
        notion.tokens.add(NOTION_TOKEN)
        notion.clients["notion-client"] = NOTION_CLIENT_SECRET
        notion.refresh_tokens[NOTION_REFRESH] = NOTION_TOKEN
        notion.tokens.add(NOTION_OLD_TOKEN)
        notion.expired.add(NOTION_OLD_TOKEN)
        notion.add_page("handbook", "Support handbook", [paragraph("How support works.")])
        app.settings.notion_api_url = notion.url
        capture.start(app.settings.secret_values())
        app.knowledge.create_workspace(ws_name)
        credentials = {
            "token": NOTION_OLD_TOKEN, "refresh_token": NOTION_REFRESH,
            "client_id": "notion-client", "client_secret": NOTION_CLIENT_SECRET,
        }  # fmt: skip
        app.sync_sources.add(
            ws_name, "wiki", kind="notion",
            config=NotionConnector.validate_config({"pages": [notion_id("handbook")]}),
            credentials=credentials, schedule=None, requests_per_second=500,
        )  # fmt: skip
        run = await app.sync_engine.sync(ws_name, "wiki")
        assert run.status == "ok" and notion.requests_to("/v1/oauth/token")

    secrets = [NOTION_TOKEN, NOTION_OLD_TOKEN, NOTION_REFRESH, NOTION_CLIENT_SECRET]
    text = capture.redacted.getvalue()
    assert "notion" in text.lower()
    assert leaked(text, secrets) == [], [
        line for line in text.splitlines() if leaked(line, secrets)
    ][:5]
