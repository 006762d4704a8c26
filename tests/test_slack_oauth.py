"""Multi-workspace Slack: the encrypted installation store, the OAuth state store, and the whole
install -> answer -> uninstall path against the local Slack simulator.

The store tests run on in-memory SQLite and on a real PostgreSQL (as tests/test_registry.py);
the end-to-end ones drive bolt's real OAuth pages over HTTP, with every Web API call (the code
exchange included) going to the simulator through SLACK_API_URL.
"""

from __future__ import annotations

import asyncio
import html
import re
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from aiohttp import web
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bot.slack.installations import (
    InstallationKeyError,
    SqlInstallationStore,
    SqlOAuthStateStore,
)
from retrieval.workspaces import IdentityKind
from supportbot.app import App
from supportbot.database import make_engine
from supportbot.run import RunError, build_slack_bot
from supportbot.settings import DEFAULT_SLACK_SCOPES
from tests.conftest import make_settings
from tests.servers.slack import SlackSimulator, load_shared_fixture, signed_event_request
from tests.test_slack_bot import BOT_USER, SECRET, mention

CLIENT_ID, CLIENT_SECRET = "111.222", "client-secret"
KEY = b"installation-secret"
INSTALLED_AT = 1_750_000_000.5

# Every credential the store is given; none may appear in the database as written.
BOT_TOKEN = "xoxb-plain-bot-token-0001"
BOT_REFRESH = "xoxe-1-plain-bot-refresh-0001"
USER_TOKEN = "xoxp-plain-user-token-0001"
USER_REFRESH = "xoxe-1-plain-user-refresh-0001"
WEBHOOK = "https://hooks.slack.com/services/T1/B1/plainwebhooksecret"
SECRETS = [BOT_TOKEN, BOT_REFRESH, USER_TOKEN, USER_REFRESH, WEBHOOK]


# --- the stores, on SQLite and PostgreSQL ---------------------------------------------------------


@pytest.fixture
def store(engine: Engine) -> SqlInstallationStore:
    return SqlInstallationStore(engine, client_id=CLIENT_ID, secret_key=KEY)


def team_install(**overrides: Any) -> Installation:
    values: dict[str, Any] = {
        "app_id": "A111",
        "team_id": "T111",
        "team_name": "Acme",
        "bot_token": BOT_TOKEN,
        "bot_id": "B111",
        "bot_user_id": "W111",
        "bot_scopes": "app_mentions:read,chat:write",
        "user_id": "U111",
        "user_token": USER_TOKEN,
        "user_scopes": "search:read",
        "incoming_webhook_url": WEBHOOK,
        "incoming_webhook_channel": "#general",
        "incoming_webhook_channel_id": "C111",
        "token_type": "bot",
        "installed_at": INSTALLED_AT,
    }
    values.update(overrides)
    return Installation(**values)


def raw_rows(engine: Engine) -> list[dict[str, Any]]:
    """Every row of the installation tables, as the database holds them."""
    with engine.connect() as connection:
        return [
            dict(row._mapping)
            for table in ("slack_installation", "slack_bot_installation")
            for row in connection.execute(text(f"SELECT * FROM {table}"))
        ]


async def test_team_install_is_saved_found_and_deleted(
    store: SqlInstallationStore, engine: Engine
) -> None:
    await store.async_save(team_install())

    found = await store.async_find_installation(enterprise_id=None, team_id="T111")
    assert found is not None
    assert (found.team_id, found.team_name, found.app_id) == ("T111", "Acme", "A111")
    assert (found.bot_token, found.bot_id, found.bot_user_id) == (BOT_TOKEN, "B111", "W111")
    assert found.bot_scopes == ["app_mentions:read", "chat:write"]
    assert (found.user_id, found.user_token, found.user_scopes) == (
        "U111",
        USER_TOKEN,
        ["search:read"],
    )
    assert found.incoming_webhook_url == WEBHOOK and found.incoming_webhook_channel_id == "C111"
    assert found.installed_at == INSTALLED_AT and found.is_enterprise_install is False
    bot = await store.async_find_bot(enterprise_id=None, team_id="T111")
    assert bot is not None and bot.bot_token == BOT_TOKEN and bot.installed_at == INSTALLED_AT
    by_user = await store.async_find_installation(
        enterprise_id=None, team_id="T111", user_id="U111"
    )
    assert by_user is not None and by_user.user_token == USER_TOKEN
    assert (
        await store.async_find_installation(enterprise_id=None, team_id="T111", user_id="U9")
        is None
    )
    assert await store.async_find_installation(enterprise_id=None, team_id="T222") is None
    assert await store.async_find_installation(enterprise_id="E111", team_id="T111") is None

    await store.async_save(team_install())  # the same install again: updated, not duplicated
    assert len(raw_rows(engine)) == 2

    await store.async_delete_installation(enterprise_id=None, team_id="T111")
    assert await store.async_find_installation(enterprise_id=None, team_id="T111") is None
    assert await store.async_find_bot(enterprise_id=None, team_id="T111") is not None
    await store.async_delete_bot(enterprise_id=None, team_id="T111")
    assert await store.async_find_bot(enterprise_id=None, team_id="T111") is None
    assert raw_rows(engine) == []


async def test_the_latest_install_wins_and_delete_all_forgets_the_team(
    store: SqlInstallationStore, engine: Engine
) -> None:
    await store.async_save(team_install(bot_token="xoxb-old", installed_at=INSTALLED_AT))
    await store.async_save(
        team_install(bot_token="xoxb-new", user_id="U222", installed_at=INSTALLED_AT + 60)
    )
    await store.async_save(team_install(team_id="T222", bot_token="xoxb-other"))

    latest = await store.async_find_installation(enterprise_id=None, team_id="T111")
    assert latest is not None and latest.bot_token == "xoxb-new" and latest.user_id == "U222"
    # The first installer's own installation carries the latest bot token, as in slack_sdk.
    first = await store.async_find_installation(enterprise_id=None, team_id="T111", user_id="U111")
    assert first is not None and first.installed_at == INSTALLED_AT
    assert first.bot_token == "xoxb-new"

    await store.async_delete_all(enterprise_id=None, team_id="T111")

    assert await store.async_find_installation(enterprise_id=None, team_id="T111") is None
    assert await store.async_find_bot(enterprise_id=None, team_id="T111") is None
    other = await store.async_find_bot(enterprise_id=None, team_id="T222")
    assert other is not None and other.bot_token == "xoxb-other"


async def test_enterprise_grid_org_wide_install_is_found_from_any_team_of_the_org(
    store: SqlInstallationStore,
) -> None:
    org = team_install(
        enterprise_id="E111",
        enterprise_name="Acme Org",
        enterprise_url="https://acme-org.enterprise.slack.com/",
        team_id=None,
        team_name=None,
        bot_token="xoxb-org",
        is_enterprise_install=True,
    )
    await store.async_save(org)
    # A workspace of the same org that installed the app on its own.
    await store.async_save(
        team_install(enterprise_id="E111", team_id="T333", bot_token="xoxb-t333")
    )

    for team_id in ("T111", "T999", None):
        found = await store.async_find_installation(
            enterprise_id="E111", team_id=team_id, is_enterprise_install=True
        )
        assert found is not None and found.bot_token == "xoxb-org"
        assert found.is_enterprise_install and found.team_id is None
        assert found.enterprise_url == "https://acme-org.enterprise.slack.com/"
        bot = await store.async_find_bot(
            enterprise_id="E111", team_id=team_id, is_enterprise_install=True
        )
        assert bot is not None and bot.bot_token == "xoxb-org" and bot.is_enterprise_install
    single = await store.async_find_installation(enterprise_id="E111", team_id="T333")
    assert single is not None and single.bot_token == "xoxb-t333"
    assert await store.async_find_installation(enterprise_id="E111", team_id="T111") is None
    assert await store.async_find_installation(enterprise_id="E222", team_id=None) is None

    await store.async_delete_all(enterprise_id="E111", team_id=None)

    assert (
        await store.async_find_installation(
            enterprise_id="E111", team_id=None, is_enterprise_install=True
        )
        is None
    )
    assert await store.async_find_bot(enterprise_id="E111", team_id="T333") is not None


async def test_token_rotation_fields_round_trip_and_a_rotated_bot_replaces_its_row(
    store: SqlInstallationStore, engine: Engine
) -> None:
    await store.async_save(
        team_install(
            bot_refresh_token=BOT_REFRESH,
            bot_token_expires_at=1_750_043_200,
            user_refresh_token=USER_REFRESH,
            user_token_expires_at=1_750_050_000,
        )
    )
    found = await store.async_find_installation(enterprise_id=None, team_id="T111")
    assert found is not None
    assert (found.bot_refresh_token, found.bot_token_expires_at) == (BOT_REFRESH, 1_750_043_200)
    assert (found.user_refresh_token, found.user_token_expires_at) == (USER_REFRESH, 1_750_050_000)
    bot = await store.async_find_bot(enterprise_id=None, team_id="T111")
    assert bot is not None
    assert (bot.bot_refresh_token, bot.bot_token_expires_at) == (BOT_REFRESH, 1_750_043_200)

    # What bolt's token rotator saves: a copy with new tokens and the same installed_at.
    rotated = Bot(**bot.to_dict_for_copying())
    rotated.bot_token, rotated.bot_refresh_token = "xoxe.xoxb-rotated", "xoxe-1-rotated"
    rotated.bot_token_expires_at = 1_750_090_000
    await store.async_save_bot(rotated)

    again = await store.async_find_bot(enterprise_id=None, team_id="T111")
    assert again is not None and again.bot_token == "xoxe.xoxb-rotated"
    assert (again.bot_refresh_token, again.bot_token_expires_at) == (
        "xoxe-1-rotated",
        1_750_090_000,
    )
    with engine.connect() as connection:
        bots = connection.execute(text("SELECT count(*) FROM slack_bot_installation")).scalar()
    assert bots == 1


async def test_no_token_is_stored_in_plaintext(store: SqlInstallationStore, engine: Engine) -> None:
    await store.async_save(
        team_install(bot_refresh_token=BOT_REFRESH, user_refresh_token=USER_REFRESH)
    )

    rows = raw_rows(engine)
    values = [str(v) for row in rows for v in row.values() if v is not None]
    for secret in SECRETS:
        assert not any(secret in value for value in values), secret
    encrypted = [v for row in rows for k, v in row.items() if k.endswith("_encrypted") and v]
    assert len(encrypted) == 7  # 5 in the installation, 2 in the bot row
    assert all(value.startswith("gAAAAA") for value in encrypted)  # Fernet tokens


async def test_no_token_is_in_the_sqlite_file(tmp_path: Path) -> None:
    database = tmp_path / "supportbot.db"
    file_engine = make_engine(f"sqlite:///{database}")
    try:
        store = SqlInstallationStore(file_engine, client_id=CLIENT_ID, secret_key=KEY)
        await store.async_save(
            team_install(bot_refresh_token=BOT_REFRESH, user_refresh_token=USER_REFRESH)
        )
        found = await store.async_find_installation(enterprise_id=None, team_id="T111")
        assert found is not None and found.bot_token == BOT_TOKEN
    finally:
        file_engine.dispose()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("supportbot.db"))
    assert b"T111" in raw  # the data is there...
    for secret in SECRETS:
        assert secret.encode() not in raw, secret  # ...the credentials are not


async def test_a_changed_secret_key_is_one_clear_error(
    store: SqlInstallationStore, engine: Engine
) -> None:
    other = SqlInstallationStore(engine, client_id=CLIENT_ID, secret_key=b"another-secret")
    other.check_key()  # nothing stored yet: nothing to fail on
    await store.async_save(team_install())

    with pytest.raises(InstallationKeyError) as error:
        await other.async_find_installation(enterprise_id=None, team_id="T111")
    with pytest.raises(InstallationKeyError):
        await other.async_find_bot(enterprise_id=None, team_id="T111")
    with pytest.raises(InstallationKeyError):
        other.check_key()

    message = str(error.value)
    assert "SUPPORTBOT_SECRET_KEY changed" in message and "\n" not in message
    assert error.value.__cause__ is None and error.value.__suppress_context__
    store.check_key()  # the right key still works


async def test_revoking_the_bot_clears_every_copy_of_its_token(
    store: SqlInstallationStore, engine: Engine
) -> None:
    await store.async_save(team_install(bot_refresh_token=BOT_REFRESH))

    await store.async_delete_bot(enterprise_id=None, team_id="T111")

    found = await store.async_find_installation(enterprise_id=None, team_id="T111")
    assert found is not None and found.bot_token is None and found.bot_refresh_token is None
    assert found.user_token == USER_TOKEN  # the installer's own token was not revoked
    [row] = raw_rows(engine)
    assert row["bot_token_encrypted"] is None and row["bot_refresh_token_encrypted"] is None


async def test_revoking_a_user_token_deletes_only_that_users_installation(
    store: SqlInstallationStore,
) -> None:
    await store.async_save(team_install(user_id="U111", installed_at=INSTALLED_AT))
    await store.async_save(
        team_install(user_id="U222", user_token="xoxp-u222", installed_at=INSTALLED_AT + 60)
    )

    await store.async_delete_installation(enterprise_id=None, team_id="T111", user_id="U111")

    assert (
        await store.async_find_installation(enterprise_id=None, team_id="T111", user_id="U111")
        is None
    )
    latest = await store.async_find_installation(enterprise_id=None, team_id="T111")
    assert latest is not None and latest.user_token == "xoxp-u222" and latest.bot_token == BOT_TOKEN


async def test_installations_are_scoped_to_the_app(
    store: SqlInstallationStore, engine: Engine
) -> None:
    await store.async_save(team_install())
    another_app = SqlInstallationStore(engine, client_id="999.999", secret_key=KEY)

    assert await another_app.async_find_installation(enterprise_id=None, team_id="T111") is None
    await another_app.async_delete_all(enterprise_id=None, team_id="T111")
    assert await store.async_find_bot(enterprise_id=None, team_id="T111") is not None


async def test_oauth_state_is_consumed_once_and_expires(engine: Engine) -> None:
    now = [datetime(2026, 1, 1, 9, 0, tzinfo=UTC)]
    clock: Callable[[], datetime] = lambda: now[0]  # noqa: E731
    states = SqlOAuthStateStore(engine, expiration_seconds=600, clock=clock)

    first = await states.async_issue()
    second = await states.async_issue()
    assert first != second and len(first) >= 40

    assert await states.async_consume(first) is True
    assert await states.async_consume(first) is False  # used
    assert await states.async_consume("never-issued") is False
    assert await states.async_consume("") is False

    now[0] += timedelta(seconds=601)
    assert await states.async_consume(second) is False  # expired
    await states.async_issue()  # sweeps expired states
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM slack_oauth_state")).scalar() == 1


# --- choosing the mode at start ---------------------------------------------------------------


def _app(tmp_path: Path, **overrides: object) -> App:
    settings = make_settings(
        tmp_path / "data", tmp_path / "db.sqlite", slack_signing_secret=SECRET, **overrides
    )
    return App(settings)


def test_oauth_needs_both_credentials_and_http(tmp_path: Path) -> None:
    with (
        _app(tmp_path, slack_client_id=CLIENT_ID) as application,
        pytest.raises(RunError, match="SLACK_CLIENT_SECRET is not set"),
    ):
        build_slack_bot(application, http=True)
    with (
        _app(tmp_path, slack_client_id=CLIENT_ID, slack_client_secret="s") as application,
        pytest.raises(RunError, match="needs --slack-http"),
    ):
        build_slack_bot(application, http=False)


def test_a_changed_secret_key_stops_the_bot_at_start(tmp_path: Path) -> None:
    with _app(tmp_path, secret_key="the-old-key") as application:
        old = SqlInstallationStore(
            application.engine, client_id=CLIENT_ID, secret_key=application.secret_key()
        )
        old.save(team_install())
    oauth = {"slack_client_id": CLIENT_ID, "slack_client_secret": CLIENT_SECRET}
    with (
        _app(tmp_path, secret_key="a-new-key", **oauth) as application,
        pytest.raises(RunError) as error,
    ):
        build_slack_bot(application, http=True)
    assert "SUPPORTBOT_SECRET_KEY changed" in str(error.value) and "\n" not in str(error.value)


# --- end to end: install over OAuth, answer, uninstall --------------------------------------------

TEAM = "T777"
INSTALLED_TOKEN = "xoxb-t777-installed"


@pytest.fixture(scope="module")
def oauth_data(
    weaviate_data_dir: Path, tmp_path_factory: pytest.TempPathFactory, embedder: Any
) -> Path:
    """A database where team T777 maps to a workspace with one page of knowledge."""
    folder = tmp_path_factory.mktemp("slack-oauth")
    doc = folder / "initech.md"
    doc.write_text(
        "# Initech printers\n\nThe TPS printer on floor 3 is reset by holding the red button "
        "for ten seconds.\n",
        encoding="utf-8",
    )
    settings = make_settings(weaviate_data_dir, folder / "db.sqlite")
    with App(settings, local_embedder=embedder) as application:
        application.knowledge.create_workspace("initech", [(IdentityKind.SLACK_TEAM, TEAM)])
        application.knowledge.ingest_paths("initech", [doc])
    return folder / "db.sqlite"


_simulators = iter(range(1, 1_000))


@pytest.fixture
def slack() -> Iterator[SlackSimulator]:
    # Message ts must not repeat in the shared database (see tests/test_slack_bot.py).
    start = 1_720_000_000 + 10_000 * next(_simulators)
    with SlackSimulator(ts_start=start, client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as sim:
        yield sim


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OAuthBot:
    """`supportbot run --slack-http` in OAuth mode, built by the product's own build_slack_bot."""

    def __init__(self, application: App, base: str) -> None:
        self.application = application
        self.base = base
        assert application.settings.slack_client_id is not None
        self.store = SqlInstallationStore(
            application.engine,
            client_id=application.settings.slack_client_id,
            secret_key=application.secret_key(),
        )

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.base) as client:
            return await client.get(path, **kw)

    async def post_event(self, body: dict[str, Any]) -> httpx.Response:
        raw, headers = signed_event_request(body, SECRET)
        async with httpx.AsyncClient(base_url=self.base) as client:
            return await client.post("/slack/events", content=raw, headers=headers)

    async def install(self, code: str) -> httpx.Response:
        """What an admin's browser does: open the install page, approve, follow the redirect."""
        page = await self.get("/slack/install")
        assert page.status_code == 200
        [link] = [html.unescape(u) for u in re.findall(r'<a href="([^"]+)"', page.text)]
        query = parse_qs(urlparse(link).query)
        assert query["client_id"] == [CLIENT_ID]
        assert query["scope"] == [DEFAULT_SLACK_SCOPES]
        [state] = query["state"]
        # The state cookie is `Secure` (production is HTTPS), so send it as the browser would.
        cookie = page.headers["set-cookie"].split(";")[0]
        assert cookie == f"slack-app-oauth-state={state}"
        return await self.get(
            "/slack/oauth_redirect",
            params={"code": code, "state": state},
            headers={"Cookie": cookie},
        )

    async def installed(self, team: str) -> Installation | None:
        return await self.store.async_find_installation(enterprise_id=None, team_id=team)


@pytest.fixture
async def oauth_bot(
    oauth_data: Path, weaviate_data_dir: Path, embedder: Any, slack: SlackSimulator
) -> AsyncIterator[OAuthBot]:
    settings = make_settings(
        weaviate_data_dir,
        oauth_data,
        slack_client_id=CLIENT_ID,
        slack_client_secret=CLIENT_SECRET,
        slack_signing_secret=SECRET,
        slack_api_url=slack.base_url,
    )
    with App(settings, local_embedder=embedder) as application:
        bot = build_slack_bot(application, http=True)
        port = _free_port()
        runner = web.AppRunner(bot.app.web_app(path="/slack/events", port=port))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            yield OAuthBot(application, f"http://127.0.0.1:{port}")
        finally:
            await runner.cleanup()


def _event(name: str, team: str, **event: Any) -> dict[str, Any]:
    body = load_shared_fixture(name)
    body.pop("enterprise_id", None)
    body["team_id"] = team
    body["event_id"] = f"Ev-{name[-20:]}-{time.monotonic_ns()}"
    body["event"].update(event)
    return body


async def _eventually(check: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.mark.slow
async def test_install_answer_then_uninstall(oauth_bot: OAuthBot, slack: SlackSimulator) -> None:
    slack.add_oauth_code(
        "code-777", team_id=TEAM, bot_token=INSTALLED_TOKEN, bot_user_id=BOT_USER, bot_id="B777"
    )

    done = await oauth_bot.install("code-777")

    assert done.status_code == 200
    [exchange] = slack.calls_to("oauth.v2.access")  # reached the simulator: SLACK_API_URL
    assert exchange.ok and exchange.args["code"] == "code-777"
    installation = await oauth_bot.installed(TEAM)
    assert installation is not None
    assert (installation.bot_token, installation.bot_id) == (INSTALLED_TOKEN, "B777")
    assert installation.bot_user_id == BOT_USER and installation.user_id == "U0INSTALLER"

    # An event of that team is authorized with the stored token, and answered.
    await oauth_bot.post_event(mention("How do I reset the TPS printer?", team=TEAM))
    [update] = await slack.async_wait_for("chat.update", timeout=20)
    [placeholder] = slack.calls_to("chat.postMessage")
    assert placeholder.token == INSTALLED_TOKEN and update.token == INSTALLED_TOKEN
    assert "initech.md" in update.args["text"]

    # Uninstalled: every token of the team is deleted, and its events are no longer answered.
    response = await oauth_bot.post_event(
        _event("scenario_tests__test_events__app_uninstalled_body__L299", TEAM)
    )
    assert response.status_code == 200

    async def forgotten() -> bool:
        bot = await oauth_bot.store.async_find_bot(enterprise_id=None, team_id=TEAM)
        return bot is None and await oauth_bot.installed(TEAM) is None

    await _eventually(forgotten)
    await oauth_bot.post_event(mention("Are you still there?", team=TEAM))
    await asyncio.sleep(1.0)
    assert len(slack.calls_to("chat.postMessage")) == 1


@pytest.mark.slow
async def test_a_state_is_good_for_one_install_only(
    oauth_bot: OAuthBot, slack: SlackSimulator
) -> None:
    slack.add_oauth_code("code-1", team_id="T778", bot_token="xoxb-t778")
    page = await oauth_bot.get("/slack/install")
    cookie = page.headers["set-cookie"].split(";")[0]
    state = cookie.partition("=")[2]

    first = await oauth_bot.get(
        "/slack/oauth_redirect",
        params={"code": "code-1", "state": state},
        headers={"Cookie": cookie},
    )
    replay = await oauth_bot.get(
        "/slack/oauth_redirect",
        params={"code": "code-1", "state": state},
        headers={"Cookie": cookie},
    )
    forged = await oauth_bot.get(
        "/slack/oauth_redirect",
        params={"code": "code-1", "state": "made-up"},
        headers={"Cookie": "slack-app-oauth-state=made-up"},
    )

    assert first.status_code == 200
    assert replay.status_code == 401 and forged.status_code == 401
    assert len(slack.calls_to("oauth.v2.access")) == 1


@pytest.mark.slow
async def test_revoked_bot_token_is_deleted_and_events_are_not_answered(
    oauth_bot: OAuthBot, slack: SlackSimulator
) -> None:
    slack.add_oauth_code(
        "code-779", team_id="T779", bot_token="xoxb-t779", bot_user_id=BOT_USER, bot_id="B779"
    )
    assert (await oauth_bot.install("code-779")).status_code == 200
    assert await oauth_bot.store.async_find_bot(enterprise_id=None, team_id="T779") is not None

    slack.revoke("xoxb-t779")
    await oauth_bot.post_event(
        _event(
            "scenario_tests__test_events__tokens_revoked_body__L315",
            "T779",
            tokens={"bot": [BOT_USER]},
        )
    )

    async def bot_token_gone() -> bool:
        bot = await oauth_bot.store.async_find_bot(enterprise_id=None, team_id="T779")
        installation = await oauth_bot.installed("T779")
        return bot is None and installation is not None and installation.bot_token is None

    await _eventually(bot_token_gone)
    await oauth_bot.post_event(mention("hello?", team="T779"))
    await asyncio.sleep(1.0)
    assert slack.calls_to("chat.postMessage") == []
    assert not any(c.token == "xoxb-t779" for c in slack.calls_to("auth.test")[1:])
