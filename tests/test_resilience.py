"""The bots heal when Weaviate goes away and comes back, on new ports.

The unit tests drive :class:`WeaviateConnection` with a fake clock and fake servers. The end to
end tests run the real Slack and Discord bots (real bolt and discord.py against the local
simulators) on a Weaviate of their own (its own data directory, not the session's shared one),
kill it with SIGKILL under the running bot, ask, start it again on new ports, and ask again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord
import httpx
import pytest
from aiohttp import web
from discord.gateway import DiscordWebSocket
from weaviate.exceptions import WeaviateConnectionError, WeaviateQueryError

from bot.discord import DiscordBot
from bot.service import APOLOGY, SETUP_MESSAGE
from bot.slack.app import SlackBot, slack_web_client
from retrieval.connection import WeaviateConnection
from retrieval.errors import WeaviateUnreachableError
from retrieval.weaviate_server import EmbeddedWeaviate, ServerAddress
from retrieval.workspaces import IdentityKind
from supportbot.app import App
from supportbot.settings import WEAVIATE_VERSION, Settings
from tests.conftest import SAMPLE_KB, make_settings
from tests.servers.discord import DiscordSimulator
from tests.servers.slack import SlackSimulator, event_envelope, signed_event_request

CONNECTION_LOGGER = "retrieval.connection"

# --- the connection's rules, with a fake clock -------------------------------------------------


class FakeClient:
    """Stands in for a WeaviateClient: the connection only builds, hands out and closes it."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.closed = False

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeWorld:
    """Where the server is (None: down), a clock that only moves when slept or told to."""

    address: str | None = "127.0.0.1:8080"
    now: float = 1000.0
    locates: int = 0
    sleeps: list[float] = field(default_factory=list)

    def locate(self) -> str | None:
        self.locates += 1
        return self.address

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def connection(self, **options: Any) -> WeaviateConnection[str]:
        return WeaviateConnection(
            locate=self.locate,
            connect=FakeClient,  # type: ignore[arg-type]
            where="the test Weaviate",
            clock=lambda: self.now,
            sleep=self.sleep,
            **options,
        )


def connection_records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == CONNECTION_LOGGER and r.levelno == level
    ]


def test_an_outage_is_logged_once_and_calls_fail_fast_with_capped_back_off(
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.DEBUG, logger=CONNECTION_LOGGER)
    world = FakeWorld()
    connection = world.connection(initial_backoff_s=0.5, max_backoff_s=4.0, grace_s=1.0)
    first = connection.client()

    world.address = None
    world.now += 10  # the last success is stale: the next call checks
    with pytest.raises(WeaviateUnreachableError, match="not answering"):
        connection.client()
    assert world.sleeps == [0.5]  # one retry inside the grace second, then it gave up
    assert first.closed  # type: ignore[attr-defined]

    # Inside the back-off the server is not even asked: the call fails at once.
    locates = world.locates
    with pytest.raises(WeaviateUnreachableError):
        connection.client()
    assert world.locates == locates

    waits = []
    for _ in range(6):  # each failed attempt doubles the wait, up to the cap
        due = world.now
        while True:
            world.now += 0.25
            try:
                connection.client()
            except WeaviateUnreachableError:
                if world.locates > locates:
                    break
        locates = world.locates
        waits.append(world.now - due)
    assert waits == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert len(connection_records(caplog, logging.WARNING)) == 1

    world.address = "127.0.0.1:9090"  # back, on new ports
    world.now += 4.0
    client = connection.client()
    assert client.address == "127.0.0.1:9090"  # type: ignore[attr-defined]
    assert connection.client() is client
    [back] = connection_records(caplog, logging.INFO)
    assert "Weaviate is back" in back
    assert len(connection_records(caplog, logging.WARNING)) == 1


def test_a_blip_shorter_than_the_grace_is_retried_in_the_call_and_never_logged(
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.DEBUG, logger=CONNECTION_LOGGER)
    world = FakeWorld()
    connection = world.connection(initial_backoff_s=0.25, grace_s=2.0)
    connection.client()
    world.address = None
    world.now += 5

    def back_after_two_sleeps(seconds: float) -> None:
        FakeWorld.sleep(world, seconds)
        if len(world.sleeps) == 2:
            world.address = "127.0.0.1:8081"

    connection._sleep = back_after_two_sleeps

    client = connection.client()

    assert client.address == "127.0.0.1:8081"  # type: ignore[attr-defined]
    assert world.sleeps == [0.25, 0.5]
    assert connection_records(caplog, logging.WARNING) == []


def test_a_fresh_success_skips_the_check_and_a_stale_one_rechecks():
    world = FakeWorld()
    connection = world.connection(fresh_s=1.0)
    connection.client()
    checks = world.locates
    world.now += 0.5
    connection.client()
    assert world.locates == checks
    connection.mark_alive()
    world.now += 0.9
    connection.client()
    assert world.locates == checks
    world.now += 0.2
    connection.client()
    assert world.locates == checks + 1


def test_a_failed_call_rebuilds_the_client_only_when_the_connection_is_to_blame():
    world = FakeWorld()
    connection = world.connection()
    first = connection.client()

    # The server answers and the error is the request's own: keep the client, no retry.
    assert not connection.failed(WeaviateQueryError("invalid filter", "GRPC search"))
    assert connection.client() is first

    # Same address, but the client's channel broke: a new client, and a retry is worth it.
    assert connection.failed(WeaviateConnectionError("connection reset"))
    second = connection.client()
    assert second is not first and first.closed  # type: ignore[attr-defined]

    # The server restarted on the same ports (a new process): a new client too.
    world.address = "127.0.0.1:8080#pid2"
    assert connection.failed(WeaviateQueryError("StatusCode.UNAVAILABLE", "GRPC search"))
    assert connection.client() is not second

    # Gone: the caller gets the outage, not the query error.
    world.address = None
    with pytest.raises(WeaviateUnreachableError):
        connection.failed(WeaviateQueryError("StatusCode.UNAVAILABLE", "GRPC search"))


# --- a running bot, a Weaviate killed under it -------------------------------------------------

SLACK_TEAM, SLACK_OTHER_TEAM, BOT_USER, SLACK_TOKEN = "T111", "T222", "W111", "xoxb-t111"
SECRET = "test-signing-secret"
DISCORD_TOKEN = "discord-bot-token"
GUILD, GUILD_CHANNEL = "2000000000000000100", "2000000000000000101"
OTHER_GUILD, OTHER_CHANNEL = "2000000000000000200", "2000000000000000201"
ALICE, BOB = "2000000000000001001", "2000000000000001002"
ANSWER_MARK = "password-and-sso.md"
# After Weaviate is back, the bot answers within this many seconds (the back-off caps at 5 s).
BACK_WITHIN_S = 10.0


@dataclass
class OwnWeaviate:
    """A Weaviate of this module only: killing it disturbs no other test."""

    data_dir: Path
    server: EmbeddedWeaviate

    def kill(self) -> int:
        """SIGKILL the server (no clean shutdown); returns the HTTP port it had."""
        record = json.loads((self.server_dir / "server.json").read_text())
        os.kill(record["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(record["pid"], os.WNOHANG)  # started by this process: reap it
            if not Path(f"/proc/{record['pid']}").exists():
                break
            time.sleep(0.05)
        return int(record["http_port"])

    async def start_on_new_ports(self) -> ServerAddress:
        (self.server_dir / "ports.json").unlink()  # forget the ports: new ones are chosen
        return await asyncio.to_thread(self.server.ensure_running)

    @property
    def server_dir(self) -> Path:
        return self.data_dir / "weaviate"


@pytest.fixture(scope="module")
def own_weaviate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnWeaviate]:
    data_dir = tmp_path_factory.mktemp("resilience")
    server = EmbeddedWeaviate(
        data_dir / "weaviate",
        binary_path=Settings(_env_file=None).weaviate_binary_path,  # type: ignore[call-arg]
        version=WEAVIATE_VERSION,
        startup_timeout_s=120,
    )
    server.ensure_running()
    yield OwnWeaviate(data_dir, server)
    server.stop()


@pytest.fixture(scope="module")
def kb_app(own_weaviate: OwnWeaviate, embedder: Any) -> Iterator[App]:
    """Two workspaces per platform; extractive answers (no chat model needed)."""
    settings = make_settings(own_weaviate.data_dir, own_weaviate.data_dir / "db.sqlite")
    other_doc = own_weaviate.data_dir / "globex.md"
    other_doc.write_text("# Globex shipping\n\nGlobex ships rocket parts in 2 days.\n")
    with App(settings, local_embedder=embedder) as application:
        kb = application.knowledge
        kb.create_workspace(
            "acme", [(IdentityKind.SLACK_TEAM, SLACK_TEAM), (IdentityKind.DISCORD_GUILD, GUILD)]
        )
        kb.ingest_paths("acme", [SAMPLE_KB / "en"])
        kb.create_workspace(
            "globex",
            [
                (IdentityKind.SLACK_TEAM, SLACK_OTHER_TEAM),
                (IdentityKind.DISCORD_GUILD, OTHER_GUILD),
            ],
        )
        kb.ingest_paths("globex", [other_doc])
        yield application


@pytest.fixture
def outage_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING)
    caplog.set_level(logging.INFO, logger=CONNECTION_LOGGER)
    return caplog


def assert_outage_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    warnings = connection_records(caplog, logging.WARNING)
    assert len(warnings) == 1 and "lost Weaviate" in warnings[0], warnings
    backs = [m for m in connection_records(caplog, logging.INFO) if "Weaviate is back" in m]
    assert len(backs) == 1, backs
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


# --- Slack -----------------------------------------------------------------------------------

_slack_events = itertools.count(1)


def mention(text: str, team: str = SLACK_TEAM) -> dict[str, Any]:
    n = next(_slack_events)
    ts = f"1700009{n:03d}.000100"
    event = {
        "type": "app_mention",
        "user": "U222",
        "text": f"<@{BOT_USER}> {text}",
        "ts": ts,
        "event_ts": ts,
        "channel": "C111",
        "team": team,
    }
    return event_envelope(event, team_id=team, event_id=f"EvR{n:04d}", bot_user_id=BOT_USER)


@pytest.fixture
async def slack() -> AsyncIterator[SlackSimulator]:
    with SlackSimulator(ts_start=1_720_000_000) as sim:
        sim.add_workspace(SLACK_TEAM, SLACK_TOKEN, bot_user_id=BOT_USER, bot_id="B111")
        yield sim


@pytest.fixture
async def slack_bot_url(kb_app: App, slack: SlackSimulator) -> AsyncIterator[str]:
    bot = SlackBot(
        kb_app.conversations,
        client=slack_web_client(token=SLACK_TOKEN, api_url=slack.base_url),
        signing_secret=SECRET,
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    runner = web.AppRunner(bot.app.web_app(path="/slack/events", port=port))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/slack/events"
    await runner.cleanup()


async def slack_ask(url: str, slack: SlackSimulator, text: str, team: str = SLACK_TEAM) -> str:
    """Ask over signed HTTP; the text the placeholder was replaced with."""
    before = len(slack.calls_to("chat.update"))
    raw, headers = signed_event_request(mention(text, team), SECRET)
    async with httpx.AsyncClient() as client:
        response = await client.post(url, content=raw, headers=headers)
    assert response.status_code == 200
    updates = await slack.async_wait_for("chat.update", count=before + 1, timeout=30)
    return str(updates[before].args["text"])


@pytest.mark.slow
async def test_slack_bot_apologises_during_a_weaviate_outage_and_answers_once_it_is_back(
    kb_app: App,
    own_weaviate: OwnWeaviate,
    slack: SlackSimulator,
    slack_bot_url: str,
    outage_logs: pytest.LogCaptureFixture,
):
    healthy = await slack_ask(slack_bot_url, slack, "How long is the password reset link valid?")
    assert ANSWER_MARK in healthy

    old_port = own_weaviate.kill()
    during = [
        await slack_ask(slack_bot_url, slack, "What is the API rate limit?"),
        # A team not asked before: its readiness is unknown, and still no "not set up".
        await slack_ask(slack_bot_url, slack, "How fast is shipping?", team=SLACK_OTHER_TEAM),
        await slack_ask(slack_bot_url, slack, "How do I reset my password?"),
    ]
    assert all(text == APOLOGY["en"] for text in during), during
    posted = [c.args["text"] for c in slack.calls_to("chat.postMessage")]
    assert SETUP_MESSAGE not in posted

    address = await own_weaviate.start_on_new_ports()
    assert address.http_port != old_port
    back_at = time.monotonic()
    answer = APOLOGY["en"]
    while answer == APOLOGY["en"] and time.monotonic() - back_at < BACK_WITHIN_S:
        answer = await slack_ask(slack_bot_url, slack, "How long is the password reset link valid?")
        if answer == APOLOGY["en"]:
            await asyncio.sleep(0.5)
    assert ANSWER_MARK in answer, f"no answer {BACK_WITHIN_S:.0f} s after Weaviate was back"
    assert_outage_logged_once(outage_logs)


# --- Discord ---------------------------------------------------------------------------------


@pytest.fixture
async def discord_sim() -> AsyncIterator[DiscordSimulator]:
    sim = DiscordSimulator(
        token=DISCORD_TOKEN, heartbeat_interval_ms=500, clock_start_ms=1_760_000_000_000
    )
    sim.add_user(ALICE, "alice")
    sim.add_user(BOB, "bob")
    sim.add_guild(GUILD, "Acme", channels=[(GUILD_CHANNEL, "support")], members=[ALICE])
    sim.add_guild(OTHER_GUILD, "Globex", channels=[(OTHER_CHANNEL, "help")], members=[BOB])
    async with sim:
        yield sim


@pytest.fixture
async def discord_bot(
    kb_app: App, discord_sim: DiscordSimulator, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[DiscordBot]:
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    bot = DiscordBot(
        kb_app.conversations,
        api_url=discord_sim.api_url,
        public_dm_workspace=None,
        message_content=False,
        guild_ready_timeout_s=0.05,
    )
    task = asyncio.create_task(bot.start(DISCORD_TOKEN))
    await asyncio.wait_for(bot.client.wait_until_ready(), timeout=10)
    await discord_sim.wait_for_live_session()
    yield bot
    await bot.close()
    await asyncio.wait({task}, timeout=5)


async def discord_ask(sim: DiscordSimulator, channel: str, user: str, text: str) -> str:
    before = len(sim.sent_messages(channel))
    await sim.dispatch("MESSAGE_CREATE", sim.message_create(channel, user, text, mention_bot=True))
    await sim.wait_for_sent_message(channel, count=before + 1, timeout=30)
    await asyncio.sleep(0.5)  # a long answer comes in parts: the sources come last
    return "\n".join(str(m["content"]) for m in sim.sent_messages(channel)[before:])


@pytest.mark.slow
async def test_discord_bot_apologises_during_a_weaviate_outage_and_answers_once_it_is_back(
    kb_app: App,
    own_weaviate: OwnWeaviate,
    discord_sim: DiscordSimulator,
    discord_bot: DiscordBot,
    outage_logs: pytest.LogCaptureFixture,
):
    sim = discord_sim
    healthy = await discord_ask(sim, GUILD_CHANNEL, ALICE, "How long is the reset link valid?")
    assert ANSWER_MARK in healthy

    old_port = own_weaviate.kill()
    during = [
        await discord_ask(sim, GUILD_CHANNEL, ALICE, "What is the API rate limit?"),
        await discord_ask(sim, OTHER_CHANNEL, BOB, "How fast is shipping?"),
        await discord_ask(sim, GUILD_CHANNEL, ALICE, "How do I reset my password?"),
    ]
    assert all(text == APOLOGY["en"] for text in during), during
    assert not any(SETUP_MESSAGE in m["content"] for m in sim.sent_messages())

    address = await own_weaviate.start_on_new_ports()
    assert address.http_port != old_port
    back_at = time.monotonic()
    answer = APOLOGY["en"]
    while answer == APOLOGY["en"] and time.monotonic() - back_at < BACK_WITHIN_S:
        answer = await discord_ask(sim, GUILD_CHANNEL, ALICE, "How long is the reset link valid?")
        if answer == APOLOGY["en"]:
            await asyncio.sleep(0.5)
    assert ANSWER_MARK in answer, f"no answer {BACK_WITHIN_S:.0f} s after Weaviate was back"
    assert_outage_logged_once(outage_logs)
