"""Streamed answers end to end: the real bolt and discord.py clients against the Slack and
Discord simulators, the real store and embedder, and a stand-in chat model that streams.

What is checked: text shows while the model writes, intermediate text is already rendered
safe, the final message(s) equal the non-streamed rendering of the same answer, sources and
controls come at the end, Slack's refusal of streaming falls back to edits (and is
remembered), a long answer grows into Discord message parts, and a failure mid-stream ends
in the apology with no stream left open.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import discord
import httpx
import pytest
from aiohttp import web
from discord.gateway import DiscordWebSocket
from sqlmodel import Session, select

from bot.discord import DiscordBot
from bot.formatting import answer_parts
from bot.reply import AnswerControls
from bot.service import APOLOGY
from bot.slack.app import SlackBot, slack_web_client
from bot.slack.outbound import answer_messages, control_blocks
from feedback.models import Interaction
from retrieval.chain import Answer
from retrieval.workspaces import IdentityKind
from supportbot.app import App
from tests.conftest import SAMPLE_KB, make_settings
from tests.servers.discord import DiscordSimulator
from tests.servers.openai_chat import OpenAIChatSimulator, default_responder
from tests.servers.slack import SlackSimulator, event_envelope, signed_event_request

pytestmark = pytest.mark.slow

SECRET = "stream-signing-secret"
TEAM, BOT_USER, TOKEN = "T511", "W511", "xoxb-t511"
GUILD, CHANNEL, ALICE = "2000000000000005100", "2000000000000005101", "2000000000000005201"
DISCORD_TOKEN = "discord-stream-token"

# A long answer with a code block in the middle: several paragraphs, then the citation.
LONG = (
    "\n\n".join(
        f"Step {n}: open the billing page and check the refund window for order {n}. "
        "Refunds are possible within 30 days of purchase, for the full amount."
        for n in range(1, 40)
    )
    + "\n\n```python\nprint('refund <@everyone>')\n```\n\nThat is all @here. [1]"
)


def long_responder(messages: list[dict[str, Any]]) -> str:
    return LONG


@pytest.fixture(scope="module")
def llm_server() -> Iterator[OpenAIChatSimulator]:
    with OpenAIChatSimulator(api_key="k") as server:
        yield server


@pytest.fixture(autouse=True)
def llm(llm_server: OpenAIChatSimulator) -> OpenAIChatSimulator:
    llm_server.reset_faults()
    llm_server.responder = default_responder
    llm_server.clear_requests()
    return llm_server


@pytest.fixture(scope="module")
def kb_app(
    weaviate_data_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    embedder: Any,
    llm_server: OpenAIChatSimulator,
) -> Iterator[App]:
    folder = tmp_path_factory.mktemp("streaming")
    settings = make_settings(
        weaviate_data_dir, folder / "db.sqlite", llm_model="sim", llm_base_url=llm_server.base_url,
        llm_api_key="k", llm_timeout_s=5,
    )  # fmt: skip
    with App(settings, local_embedder=embedder) as application:
        kb = application.knowledge
        kb.create_workspace(
            "stream", [(IdentityKind.SLACK_TEAM, TEAM), (IdentityKind.DISCORD_GUILD, GUILD)]
        )
        kb.ingest_paths("stream", [SAMPLE_KB / "en"])
        yield application


# --- Slack ---------------------------------------------------------------------------------

_slack_ts = itertools.count(1_720_000_000, 10_000)
_events = itertools.count(1)


@pytest.fixture
def slack() -> Iterator[SlackSimulator]:
    with SlackSimulator(ts_start=next(_slack_ts)) as sim:
        sim.add_workspace(TEAM, TOKEN, bot_user_id=BOT_USER, bot_id="B511")
        yield sim


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def slack_bot(kb_app: App, slack: SlackSimulator) -> AsyncIterator[str]:
    """The streaming Slack bot over HTTP; yields its events URL."""
    bot = SlackBot(
        kb_app.conversations,
        client=slack_web_client(token=TOKEN, api_url=slack.base_url),
        signing_secret=SECRET,
        streaming=True,
    )
    port = _free_port()
    runner = web.AppRunner(bot.app.web_app(path="/slack/events", port=port))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/slack/events"
    await runner.cleanup()


async def ask_slack(url: str, slack: SlackSimulator, text: str) -> dict[str, Any]:
    """Post a mention (the question is a real message in the simulator's channel first)."""
    question = slack.seed_message("C511", "U522", text)
    n = next(_events)
    event = {
        "type": "app_mention",
        "user": "U522",
        "text": f"<@{BOT_USER}> {text}",
        "ts": question["ts"],
        "channel": "C511",
        "event_ts": question["ts"],
        "team": TEAM,
    }
    body = event_envelope(event, team_id=TEAM, event_id=f"EvS{n:04d}", bot_user_id=BOT_USER)
    raw, headers = signed_event_request(body, SECRET)
    async with httpx.AsyncClient() as client:
        response = await client.post(url, content=raw, headers=headers)
    assert response.status_code == 200
    return question


def _stored(app: App, question_id: str) -> Interaction | None:
    with Session(app.engine) as session:
        query = select(Interaction).where(Interaction.message_id == question_id)
        return session.exec(query).first()


async def test_slack_streams_then_shows_the_non_streamed_rendering(
    slack_bot: str, slack: SlackSimulator, kb_app: App, llm: OpenAIChatSimulator
):
    llm.responder = long_responder
    llm.chunk_delay = 0.01
    question = await ask_slack(slack_bot, slack, "How do refunds work?")
    [stop] = await slack.async_wait_for("chat.stopStream", timeout=30)
    [start] = slack.calls_to("chat.startStream")
    assert start.args["thread_ts"] == question["ts"]
    assert start.args["recipient_team_id"] == TEAM and start.args["recipient_user_id"] == "U522"
    [stream] = slack.streams()
    assert stream["state"] == "completed" and len(stream["appends"]) >= 2  # shown as it came
    streamed = stream["text"]
    assert "<@everyone>" not in streamed and "@here" not in streamed.replace("@\u2060here", "")
    assert streamed.count("```") % 2 == 0  # fences balanced in what was shown
    # The controls came with the stop, and the message then became the usual rendering.
    assert stop.args["blocks"] == control_blocks(AnswerControls(feedback=True))
    [update] = await slack.async_wait_for("chat.update", timeout=10)
    assert update.args["ts"] == stream["ts"]
    row = _stored(kb_app, question["ts"])
    assert row is not None and row.answer.startswith("Step 1")
    final = slack.message("C511", stream["ts"])
    assert final is not None
    expected = answer_messages(_rebuilt(row), AnswerControls(feedback=True))
    assert (final["text"], final["blocks"]) == expected[0]
    assert slack.message("C511", _ts(slack.calls_to("chat.postMessage")[0])) is None


def _ts(call: Any) -> str:
    """The ``ts`` Slack answered a call with."""
    assert call.response is not None
    return str(call.response["ts"])


def _rebuilt(row: Interaction) -> Answer:
    """The stored answer as an :class:`Answer` with its sources, to render it again."""
    from retrieval.chain import Source

    sources = [
        Source(
            int(str(s["n"])),
            str(s["doc_id"]),
            str(s["source"]),
            str(s.get("title") or ""),
            str(s["url"]) if s.get("url") else None,
        )
        for s in row.sources
    ]
    return Answer(row.answer, sources, "llm", row.question)


async def test_slack_falls_back_to_edits_where_streaming_is_refused_and_remembers(
    slack_bot: str, slack: SlackSimulator, kb_app: App, llm: OpenAIChatSimulator
):
    slack.refuse_streaming(TEAM, "missing_scope")
    llm.responder = long_responder
    llm.chunk_delay = 0.01
    first = await ask_slack(slack_bot, slack, "How do refunds work?")
    await _eventually(lambda: _stored(kb_app, first["ts"]) is not None)
    [refused] = slack.calls_to("chat.startStream")
    assert refused.error == "missing_scope"
    [placeholder] = slack.calls_to("chat.postMessage")[:1]
    updates = await slack.async_wait_for("chat.update", count=2, timeout=20)
    assert len(updates) >= 2 and {u.args["ts"] for u in updates} == {_ts(placeholder)}
    row = _stored(kb_app, first["ts"])
    assert row is not None
    expected = answer_messages(_rebuilt(row), AnswerControls(feedback=True))

    def shown() -> tuple[str, list[Any]] | None:
        final = slack.message("C511", _ts(placeholder))
        return None if final is None else (final["text"], final["blocks"])

    await _eventually(lambda: shown() == expected[0])  # recorded first, then shown
    await asyncio.sleep(0.3)
    assert shown() == expected[0]  # and no partial edit came after the final one
    last = slack.calls_to("chat.update")[-1]
    assert last.args["blocks"][-1]["type"] == "context_actions"
    # The next answer in that team does not ask again.
    second = await ask_slack(slack_bot, slack, "Can I get a refund?")
    await _eventually(lambda: _stored(kb_app, second["ts"]) is not None)
    assert len(slack.calls_to("chat.startStream")) == 1


async def test_slack_failure_mid_stream_ends_in_the_apology(
    slack_bot: str, slack: SlackSimulator, kb_app: App, llm: OpenAIChatSimulator
):
    llm.responder = long_responder
    llm.chunk_delay = 0.01
    llm.break_stream_next(after_pieces=150)
    question = await ask_slack(slack_bot, slack, "How do refunds work?")
    [stop] = await slack.async_wait_for("chat.stopStream", timeout=30)
    assert "blocks" not in stop.args  # no controls on a failed answer
    [stream] = slack.streams()
    assert stream["state"] == "completed"
    await _eventually(lambda: bool(slack.calls_to("chat.update")))
    final = slack.message("C511", stream["ts"])
    assert final is not None and final["text"].startswith(APOLOGY["en"].split(",")[0])
    assert _stored(kb_app, question["ts"]) is None


# --- Discord -------------------------------------------------------------------------------

_clock_starts = itertools.count(1_760_000_000_000, 10_000_000)


@pytest.fixture
async def dsim() -> AsyncIterator[DiscordSimulator]:
    simulator = DiscordSimulator(
        token=DISCORD_TOKEN, heartbeat_interval_ms=500, clock_start_ms=next(_clock_starts)
    )
    simulator.add_user(ALICE, "alice")
    simulator.add_guild(GUILD, "Stream", channels=[(CHANNEL, "support")], members=[ALICE])
    async with simulator:
        yield simulator


@pytest.fixture
async def discord_bot(
    kb_app: App, dsim: DiscordSimulator, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[DiscordBot]:
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    bot = DiscordBot(
        kb_app.conversations,
        api_url=dsim.api_url,
        public_dm_workspace=None,
        message_content=False,
        guild_ready_timeout_s=0.05,
        streaming=True,
    )
    task = asyncio.create_task(bot.start(DISCORD_TOKEN))
    await asyncio.wait_for(bot.client.wait_until_ready(), 10)
    await dsim.wait_for_live_session()
    yield bot
    await bot.close()
    await asyncio.wait({task}, timeout=5)


async def ask_discord(dsim: DiscordSimulator, text: str) -> dict[str, Any]:
    message = dsim.message_create(CHANNEL, ALICE, text, mention_bot=True)
    await dsim.dispatch("MESSAGE_CREATE", message)
    return message


async def test_discord_streams_by_edits_into_parts_equal_to_the_non_streamed_answer(
    discord_bot: DiscordBot, dsim: DiscordSimulator, kb_app: App, llm: OpenAIChatSimulator
):
    llm.responder = long_responder
    llm.chunk_delay = 0.005
    question = await ask_discord(dsim, "How do refunds work?")
    await _eventually(lambda: _stored(kb_app, question["id"]) is not None, 40)
    row = _stored(kb_app, question["id"])
    assert row is not None
    expected = answer_parts(_rebuilt(row), "discord")
    assert len(expected) >= 2

    def final_contents() -> list[str]:
        return [m["content"] for m in dsim.sent_messages(CHANNEL)]

    await _eventually(lambda: final_contents() == expected, 20)
    sent = dsim.sent_messages(CHANNEL)
    first_id = sent[0]["id"]
    edits = dsim.message_edits(first_id)
    assert edits, "the first part was shown before the answer was complete"
    for call in edits:  # every intermediate text was rendered: no pings, balanced fences
        content = call.body["content"]
        assert len(content) <= 2000 and content.count("```") % 2 == 0
        assert "<@everyone>" not in content and "@everyone" not in content
    assert dsim.max_edits_within(first_id, 1.0) <= 2
    assert sent[0]["message_reference"]["message_id"] == question["id"]


async def test_discord_failure_mid_stream_ends_in_the_apology(
    discord_bot: DiscordBot, dsim: DiscordSimulator, kb_app: App, llm: OpenAIChatSimulator
):
    llm.responder = long_responder
    llm.chunk_delay = 0.005
    llm.break_stream_next(after_pieces=400)
    question = await ask_discord(dsim, "How do refunds work?")

    def contents() -> list[str]:
        return [m["content"] for m in dsim.sent_messages(CHANNEL)]

    await _eventually(lambda: any("Sorry" in c for c in contents()), 30)
    await asyncio.sleep(0.3)
    [only] = contents()
    assert only.startswith("Sorry")
    assert _stored(kb_app, question["id"]) is None


async def _eventually(check: Any, timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
