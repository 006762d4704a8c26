"""Implicit feedback end to end, on Slack and on Discord: the bot answers, the asker rephrases,
a teammate answers in the thread, the asker says thanks (and, on Slack, marks it ✅). The
signals are stored with their kinds, weights and times, the teammate's reply is a reference
answer the bot did not answer, and ``feedback export --labels implicit`` makes it the *chosen*
side of a DPO pair against the bot's answer.

Real components: bolt and discord.py against the local Slack and Discord servers, the real
store, embedder and detector, a local chat model.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import discord
import httpx
import pytest
from aiohttp import web
from discord.gateway import DiscordWebSocket
from sqlmodel import Session, col, select

from bot.discord import DiscordBot
from bot.slack.app import SlackBot, slack_web_client
from feedback.export import ExportOptions, export_dataset
from feedback.models import Interaction, ReferenceAnswer, Signal
from retrieval.workspaces import IdentityKind
from supportbot.app import App
from tests.conftest import SAMPLE_KB, make_settings
from tests.servers.discord import DiscordSimulator, Intent
from tests.servers.openai_chat import OpenAIChatSimulator, default_responder
from tests.servers.slack import SlackSimulator, event_envelope, signed_event_request

pytestmark = pytest.mark.slow

SECRET = "test-signing-secret"
TEAM, BOT_USER, TOKEN = "T0SIG", "W0SIG", "xoxb-sig"
ASKER, TEAMMATE = "U0ASK", "U0MATE"
GUILD, SUPPORT, THREAD = "2100000000000000100", "2100000000000000101", "2100000000000003001"
ALICE, BOB = "2100000000000001001", "2100000000000001002"
DISCORD_TOKEN = "discord-sig-token"

QUESTION = "How do I request a refund?"
REPHRASED = "how can I get my money back"
TEAMMATE_REPLY = (
    "Open Billing > Refunds and press Request refund; finance approves it within 5 days."
)


@pytest.fixture(scope="module")
def llm_server() -> Iterator[OpenAIChatSimulator]:
    with OpenAIChatSimulator(api_key="k") as server:
        # The stand-in model; it also rewrites a follow-up as a standalone question (as asked).
        server.responder = default_responder
        yield server


@pytest.fixture(scope="module")
def kb_app(
    weaviate_data_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    embedder: Any,
    llm_server: OpenAIChatSimulator,
) -> Iterator[App]:
    folder = tmp_path_factory.mktemp("signals-flow")
    settings = make_settings(
        weaviate_data_dir, folder / "db.sqlite", llm_model="sim", llm_base_url=llm_server.base_url,
        llm_api_key="k", llm_timeout_s=5,
    )  # fmt: skip
    with App(settings, local_embedder=embedder) as application:
        application.knowledge.create_workspace(
            "sigs", [(IdentityKind.SLACK_TEAM, TEAM), (IdentityKind.DISCORD_GUILD, GUILD)]
        )
        application.knowledge.ingest_paths("sigs", [SAMPLE_KB / "en"])
        yield application


async def _eventually(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


def _interactions(app: App, platform: str) -> list[Interaction]:
    with Session(app.engine) as session:
        return list(
            session.exec(
                select(Interaction)
                .where(Interaction.platform == platform)
                .order_by(col(Interaction.id))
            )
        )


def _signals(app: App, platform: str) -> list[Signal]:
    with Session(app.engine) as session:
        return list(
            session.exec(select(Signal).where(Signal.platform == platform).order_by(col(Signal.id)))
        )


def _references(app: App, platform: str) -> list[ReferenceAnswer]:
    with Session(app.engine) as session:
        return list(
            session.exec(select(ReferenceAnswer).where(ReferenceAnswer.platform == platform))
        )


def _dpo_rows(app: App, out: Path) -> list[dict[str, Any]]:
    export_dataset(
        app.engine,
        "sigs",
        out,
        ExportOptions(format="dpo", labels="implicit"),
        embed=app.embedder.embed_queries,
        clock=lambda: time_now(),
        known_workspaces={"sigs"},
    )
    return [
        json.loads(line)
        for path in sorted(out.glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


def time_now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


# --- Slack --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def slack_bot(kb_app: App) -> AsyncIterator[tuple[SlackSimulator, str]]:
    # Message times are now-ish: a rephrase must come soon after the answer.
    with SlackSimulator(ts_start=int(time.time())) as slack:
        slack.add_workspace(TEAM, TOKEN, bot_user_id=BOT_USER, bot_id="B0SIG")
        bot = SlackBot(
            kb_app.conversations,
            client=slack_web_client(token=TOKEN, api_url=slack.base_url),
            signing_secret=SECRET,
        )
        port = _free_port()
        runner = web.AppRunner(bot.app.web_app(path="/slack/events", port=port))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield slack, f"http://127.0.0.1:{port}/slack/events"
        await runner.cleanup()


async def _post(url: str, event: dict[str, Any], event_id: str) -> None:
    body = event_envelope(event, team_id=TEAM, event_id=event_id, bot_user_id=BOT_USER)
    raw, headers = signed_event_request(body, SECRET)
    async with httpx.AsyncClient() as client:
        response = await client.post(url, content=raw, headers=headers)
    assert response.status_code == 200


async def _say(
    slack: SlackSimulator, url: str, user: str, text: str, thread: str | None
) -> dict[str, Any]:
    """A user's message, as it is in Slack (for the thread history) and as its event."""
    seeded = slack.seed_message("C0SIG", user, text, thread_ts=thread)
    event = {"type": "app_mention" if thread is None else "message", "channel": "C0SIG",
             "channel_type": "channel", "user": user, "text": text, "ts": seeded["ts"],
             "event_ts": seeded["ts"], "team": TEAM}  # fmt: skip
    if thread:
        event["thread_ts"] = thread
    await _post(url, event, f"Ev{seeded['ts']}")
    return seeded


async def test_slack_thread_signals_and_the_teammates_reply_as_chosen(
    slack_bot: tuple[SlackSimulator, str], kb_app: App, tmp_path: Path
):
    slack, url = slack_bot
    question = await _say(slack, url, ASKER, f"<@{BOT_USER}> {QUESTION}", None)
    await slack.async_wait_for("chat.update", count=1, timeout=30)
    thread = question["ts"]

    await _say(slack, url, ASKER, REPHRASED, thread)  # asked again: answered again
    await slack.async_wait_for("chat.update", count=2, timeout=30)
    await _eventually(lambda: len(_interactions(kb_app, "slack")) == 2)
    mate = await _say(slack, url, TEAMMATE, TEAMMATE_REPLY, thread)
    await _eventually(lambda: len(_references(kb_app, "slack")) == 1)
    await _say(slack, url, ASKER, "thanks, that worked!", thread)
    answer_ts = slack.calls_to("chat.update")[-1].args["ts"]
    await _post(url, {"type": "reaction_added", "user": ASKER, "reaction": "white_check_mark",
                      "item": {"type": "message", "channel": "C0SIG", "ts": answer_ts},
                      "event_ts": f"{time.time():.6f}"}, "EvCheck")  # fmt: skip
    await _eventually(lambda: len(_signals(kb_app, "slack")) == 4)
    await asyncio.sleep(0.5)

    first, second = _interactions(kb_app, "slack")
    assert len(slack.calls_to("chat.postMessage")) == 2  # the teammate and thanks: no answer
    kinds = [(s.interaction_id, s.kind, s.weight) for s in _signals(kb_app, "slack")]
    assert kinds == [
        (first.id, "rephrase", -0.5),
        (second.id, "teammate_answer", -1.0),
        (second.id, "acknowledgement", 1.0),
        (second.id, "resolved", 0.0),  # ✅ after a person answered: the person resolved it
    ]
    assert all(s.event_at is not None for s in _signals(kb_app, "slack"))
    [reference] = _references(kb_app, "slack")
    assert reference.text == TEAMMATE_REPLY and not reference.agrees
    assert reference.event_id == f"slack:{TEAM}:C0SIG:{mate['ts']}"

    rows = _dpo_rows(kb_app, tmp_path / "export")
    [row] = [r for r in rows if r["chosen"][0]["content"] == TEAMMATE_REPLY]
    assert row["rejected"][0]["content"] == second.answer
    assert row["label_source"] == "implicit" and "teammate_answer" in row["signal_kinds"]


# --- Discord ------------------------------------------------------------------------------------


@pytest.fixture
async def discord_sim() -> AsyncIterator[DiscordSimulator]:
    simulator = DiscordSimulator(
        token=DISCORD_TOKEN, heartbeat_interval_ms=500, clock_start_ms=int(time.time() * 1000)
    )
    simulator.add_user(ALICE, "alice")
    simulator.add_user(BOB, "bob")
    simulator.add_guild(GUILD, "Sigs", channels=[(SUPPORT, "support")], members=[ALICE, BOB])
    simulator.add_thread(SUPPORT, THREAD, "refund question", owner_id=ALICE)
    # Unaddressed thread messages carry their text only with Message Content.
    simulator.privileged_intents = int(Intent.MESSAGE_CONTENT)
    async with simulator:
        yield simulator


@pytest.fixture
async def discord_bot(
    kb_app: App, discord_sim: DiscordSimulator, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[DiscordBot]:
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    bot = DiscordBot(
        kb_app.conversations, api_url=discord_sim.api_url, public_dm_workspace=None,
        message_content=True, guild_ready_timeout_s=0.05,
    )  # fmt: skip
    task = asyncio.create_task(bot.start(DISCORD_TOKEN))
    await asyncio.wait_for(bot.client.wait_until_ready(), timeout=10)
    await discord_sim.wait_for_live_session()
    yield bot
    await bot.close()
    await asyncio.wait({task}, timeout=5)


async def test_discord_thread_signals_and_the_teammates_reply_as_chosen(
    discord_bot: DiscordBot, discord_sim: DiscordSimulator, kb_app: App, tmp_path: Path
):
    sim = discord_sim
    await sim.dispatch(
        "MESSAGE_CREATE", sim.message_create(THREAD, ALICE, QUESTION, mention_bot=True)
    )
    await sim.wait_for_sent_message(THREAD, count=1, timeout=30)
    await _eventually(lambda: len(_interactions(kb_app, "discord")) == 1)

    await sim.dispatch("MESSAGE_CREATE", sim.message_create(THREAD, ALICE, REPHRASED))
    await sim.wait_for_sent_message(THREAD, count=2, timeout=30)
    await _eventually(lambda: len(_interactions(kb_app, "discord")) == 2)
    await sim.dispatch("MESSAGE_CREATE", sim.message_create(THREAD, BOB, TEAMMATE_REPLY))
    await _eventually(lambda: len(_references(kb_app, "discord")) == 1)
    await sim.dispatch("MESSAGE_CREATE", sim.message_create(THREAD, ALICE, "고마워요, 해결됐어요!"))
    await _eventually(lambda: len(_signals(kb_app, "discord")) == 3)
    await asyncio.sleep(0.5)

    first, second = _interactions(kb_app, "discord")
    assert len(sim.sent_messages(THREAD)) == 2  # the teammate and thanks: no answer
    kinds = [(s.interaction_id, s.kind, s.weight) for s in _signals(kb_app, "discord")]
    assert kinds == [
        (first.id, "rephrase", -0.5),
        (second.id, "teammate_answer", -1.0),
        (second.id, "acknowledgement", 1.0),
    ]
    rows = _dpo_rows(kb_app, tmp_path / "export")
    # One pair per thread with a teammate's answer (the Slack test's thread may be there too).
    pairs = [r for r in rows if r["chosen"][0]["content"] == TEAMMATE_REPLY]
    assert pairs and len(pairs) == len({r.interaction_id for r in _all_references(kb_app)})
    assert all(r["rejected"][0]["content"] == second.answer for r in pairs)
    assert all(r["label_source"] == "implicit" for r in pairs)


def _all_references(app: App) -> list[ReferenceAnswer]:
    with Session(app.engine) as session:
        return list(session.exec(select(ReferenceAnswer)))
