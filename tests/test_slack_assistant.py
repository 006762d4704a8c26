"""Slack's AI app surface end to end: real bolt and slack_sdk against the Slack simulator,
the real store, embedder and a local chat model (the fixtures of ``tests/test_slack_bot.py``).

Assistant threads (suggested prompts, status while answering, a title), ``/ask`` answered
privately then shared, the App Home tab with the workspace's sources, and the native
``feedback_buttons`` rating an answer.
"""

# ruff: noqa: F811  (the fixtures imported from tests.test_slack_bot)
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from bot.slack.blocks import FEEDBACK_ACTION_ID, SHARE_ACTION_ID
from bot.slack.prompts import PromptStore, SuggestedPrompt
from feedback.models import Interaction, Rating
from retrieval.workspaces import Workspace
from supportbot.app import App
from sync.models import SyncSource
from tests.servers.slack import SlackSimulator, event_envelope, signed_command_request
from tests.test_slack_bot import (  # noqa: F401  (fixtures)
    ACME,
    BOT_USER,
    SECRET,
    HttpBot,
    _eventually,
    answered,
    http_bot,
    kb_app,
    llm,
    llm_server,
    mention,
    slack,
)

pytestmark = pytest.mark.slow

DM = "D0ASK1"
ASKER = "U0ASKER"
_ids = iter(range(1, 10_000))


def _event(inner: dict[str, Any], team: str = ACME) -> dict[str, Any]:
    return event_envelope(
        inner, team_id=team, event_id=f"EvAs{next(_ids):05d}", bot_user_id=BOT_USER
    )


async def test_assistant_thread_prompts_status_and_title(
    http_bot: HttpBot, slack: SlackSimulator, kb_app: App
):
    slack.add_user(ASKER, team_id=ACME, locale="en-US")
    started = slack.start_assistant_thread(ACME, ASKER, DM, context_channel="C111")
    thread_ts = started["assistant_thread"]["thread_ts"]

    assert (await http_bot.post(_event(started))).status_code == 200
    await slack.async_wait_for("assistant.threads.setSuggestedPrompts")
    thread = slack.assistant_thread(DM, thread_ts)
    assert thread is not None and thread["prompts_title"] == "Try asking"
    assert [p["title"] for p in thread["prompts"]][:1] == ["What can you help with?"]

    # The user asks in the thread (a DM message with thread_ts): the same flow answers.
    question_ts = f"{float(thread_ts) + 1:.6f}"
    await http_bot.post(
        _event(
            {
                "type": "message", "channel": DM, "channel_type": "im", "user": ASKER,
                "text": "How long is the password reset link valid?", "ts": question_ts,
                "event_ts": question_ts, "thread_ts": thread_ts, "team": ACME,
            }
        )
    )  # fmt: skip
    [update] = await answered(slack)
    assert "password-and-sso.md" in update.args["text"]
    await _eventually(lambda: (slack.assistant_thread(DM, thread_ts) or {})["statuses"][-1] == "")
    thread = slack.assistant_thread(DM, thread_ts)
    assert thread is not None
    assert thread["statuses"] == ["is thinking…", ""]
    assert thread["title"] == "How long is the password reset link valid?"
    # The status was set before the answer went out and cleared after it.
    calls = [c.method for c in slack.calls]
    first_status = calls.index("assistant.threads.setStatus")
    last_status = len(calls) - 1 - calls[::-1].index("assistant.threads.setStatus")
    assert first_status < calls.index("chat.update") < last_status


async def test_workspace_prompts_replace_the_defaults_and_korean_users_get_korean(
    http_bot: HttpBot, slack: SlackSimulator, kb_app: App
):
    slack.add_user("U0KO", team_id=ACME, locale="ko-KR")
    started = slack.start_assistant_thread(ACME, "U0KO", "D0KO")
    await http_bot.post(_event(started))
    await slack.async_wait_for("assistant.threads.setSuggestedPrompts")
    thread = slack.assistant_thread("D0KO", started["assistant_thread"]["thread_ts"])
    assert thread is not None and thread["prompts_title"] == "이렇게 물어보세요"

    store = PromptStore(kb_app.engine)
    store.set("acme", [SuggestedPrompt("Rate limits", "What is the API rate limit?")])
    try:
        again = slack.start_assistant_thread(ACME, ASKER, DM)
        await http_bot.post(_event(again))
        await slack.async_wait_for("assistant.threads.setSuggestedPrompts", count=2)
        thread = slack.assistant_thread(DM, again["assistant_thread"]["thread_ts"])
        assert thread is not None
        assert thread["prompts"] == [
            {"title": "Rate limits", "message": "What is the API rate limit?"}
        ]
    finally:
        store.clear("acme")

    # A team with no workspace gets no prompts (its first question gets the setup notice).
    unmapped = slack.start_assistant_thread("T999", "U0X", "D0X")
    await http_bot.post(_event(unmapped, team="T999"))
    time.sleep(0.5)
    assert slack.assistant_thread("D0X", unmapped["assistant_thread"]["thread_ts"]) is None


async def _command(http_bot: HttpBot, fields: dict[str, Any]) -> httpx.Response:
    raw, headers = signed_command_request(fields, SECRET)
    async with httpx.AsyncClient() as client:
        return await client.post(http_bot.url, content=raw, headers=headers)


async def test_ask_is_private_then_shared_in_the_channel_and_takes_ratings(
    http_bot: HttpBot, slack: SlackSimulator, kb_app: App
):
    fields = slack.slash_command(
        "/ask", "What is the API rate limit?", team_id=ACME, channel_id="C111", user_id=ASKER
    )
    started = time.monotonic()
    ack = await _command(http_bot, fields)
    assert ack.status_code == 200 and time.monotonic() - started < 3
    assert ack.json()["response_type"] == "ephemeral" and "Looking" in ack.json()["text"]

    [private] = await slack.wait_for_responses(1, timeout=20)
    body = private["body"]
    assert body["response_type"] == "ephemeral" and body["replace_original"] is True
    assert "api-and-limits.md" in body["text"]
    share = body["blocks"][-1]["elements"][0]
    assert share["action_id"] == SHARE_ACTION_ID
    assert slack.calls_to("chat.postMessage") == []  # nothing public yet

    click_url = slack.response_url_for(ACME, "C111", ASKER)
    await http_bot.click(
        {
            "type": "block_actions", "team": {"id": ACME}, "user": {"id": ASKER},
            "channel": {"id": "C111"}, "api_app_id": "A111", "trigger_id": "9.9.9",
            "container": {"type": "message", "message_ts": "1", "channel_id": "C111",
                          "is_ephemeral": True},
            "response_url": click_url,
            "actions": [{"action_id": SHARE_ACTION_ID, "block_id": "s", "type": "button",
                         "value": share["value"], "action_ts": "1700009000.000000"}],
        }
    )  # fmt: skip
    [posted] = await slack.async_wait_for("chat.postMessage", timeout=10)
    assert posted.args["channel"] == "C111" and "api-and-limits.md" in posted.args["text"]
    [update] = await slack.async_wait_for("chat.update", timeout=10)
    assert update.args["blocks"][-1]["type"] == "context_actions"
    await slack.wait_for_responses(2)
    assert slack.responses[-1]["body"].get("delete_original") is True

    # The public copy is the interaction's reply: the native 👎 rates it.
    public_ts = posted.response["ts"]
    await http_bot.click(_feedback_click(public_ts, "not_helpful", "U0RATER"))
    interaction_id = int(share["value"])

    def ratings() -> list[int]:
        with Session(kb_app.engine) as session:
            rows = session.exec(select(Rating.value).where(Rating.interaction_id == interaction_id))
            return list(rows)

    await _eventually(lambda: ratings() == [-1])
    with Session(kb_app.engine) as session:
        row = session.get(Interaction, interaction_id)
    assert row is not None and row.workspace == "acme" and row.channel_id == "C111"


async def test_ask_errors_are_one_private_line(http_bot: HttpBot, slack: SlackSimulator):
    in_dm = slack.slash_command("/ask", "hi there", team_id=ACME, channel_id="D0Q", user_id=ASKER)
    empty = slack.slash_command("/ask", "  ", team_id=ACME, channel_id="C111", user_id=ASKER)
    for fields, words in ((in_dm, "direct message"), (empty, "Type your question")):
        ack = await _command(http_bot, fields)
        assert ack.json()["response_type"] == "ephemeral" and words in ack.json()["text"]
    unmapped = slack.slash_command(
        "/ask", "What is the API rate limit?", team_id="T999", channel_id="C9", user_id="U9"
    )
    await _command(http_bot, unmapped)
    [response] = await slack.wait_for_responses(1)
    assert "not connected" in response["body"]["text"]
    assert "\n" not in response["body"]["text"]
    # Another team's /ask answer cannot be shared from here (tenant check on the button).


def _feedback_click(message_ts: str, value: str, user: str) -> dict[str, Any]:
    return {
        "type": "block_actions", "team": {"id": ACME}, "user": {"id": user},
        "channel": {"id": "C111"}, "api_app_id": "A111", "trigger_id": "1.2.3",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": "C111"},
        "message": {"ts": message_ts, "text": ""},
        "actions": [{"action_id": FEEDBACK_ACTION_ID, "block_id": "f",
                     "type": "feedback_buttons", "value": value,
                     "text": {"type": "plain_text", "text": "👍"},
                     "action_ts": "1700008001.000000"}],
    }  # fmt: skip


async def test_native_feedback_buttons_rate_the_answer(
    http_bot: HttpBot, slack: SlackSimulator, kb_app: App
):
    question_ts = "1700008000.000100"
    await http_bot.post(mention("What is the API rate limit?", ts=question_ts))
    [update] = await answered(slack)
    control = update.args["blocks"][-1]
    assert control["type"] == "context_actions"
    assert control["elements"][0]["type"] == "feedback_buttons"

    await http_bot.click(_feedback_click(update.args["ts"], "helpful", "U1"))
    await http_bot.click(_feedback_click(update.args["ts"], "not_helpful", "U2"))

    def ratings() -> list[int]:
        with Session(kb_app.engine) as session:
            interaction = session.exec(
                select(Interaction).where(Interaction.message_id == question_ts)
            ).one()
            rows = session.exec(select(Rating.value).where(Rating.interaction_id == interaction.id))
            return sorted(rows)

    await _eventually(lambda: ratings() == [-1, 1])


async def test_app_home_shows_the_sources_and_how_to_ask(
    http_bot: HttpBot, slack: SlackSimulator, kb_app: App
):
    now = datetime.now(UTC)
    with Session(kb_app.engine) as session:
        acme_id = session.exec(select(Workspace.id).where(Workspace.name == "acme")).one()
        for name, status, last in (
            ("help-center", "ok", now - timedelta(hours=2)),
            ("old-wiki", "ok", now - timedelta(days=30)),
        ):
            session.add(
                SyncSource(
                    workspace_id=acme_id, name=name, kind="web", config_json="{}",
                    requests_per_second=1.0, created_at=now, status=status,
                    last_success_at=last,
                )
            )  # fmt: skip
        session.commit()
    slack.add_user("U0HOME", team_id=ACME)
    slack.add_user("U0HOMEKO", team_id=ACME, locale="ko-KR")
    try:
        for user in ("U0HOME", "U0HOMEKO"):
            await http_bot.post(
                _event({"type": "app_home_opened", "user": user, "channel": "D0H",
                        "tab": "home", "event_ts": "1700000000.000200"})
            )  # fmt: skip
        await slack.async_wait_for("views.publish", count=2)
        view = slack.home_view("U0HOME")
        assert view is not None and view["type"] == "home"
        shown = str(view["blocks"])
        assert "help-center" in shown and "2 h ago" in shown and "fresh" in shown
        assert "old-wiki" in shown and "stale" in shown and "/ask" in shown
        korean = str(slack.home_view("U0HOMEKO"))
        assert "지식 출처" in korean and "최신" in korean

        await http_bot.post(
            _event({"type": "app_home_opened", "user": "U0NEW", "channel": "D0N",
                    "tab": "home", "event_ts": "1700000000.000300"}, team="T999")
        )  # fmt: skip
        await slack.async_wait_for("views.publish", count=3)
        assert "Not set up yet" in str(slack.home_view("U0NEW"))
    finally:
        with Session(kb_app.engine) as session:
            for row in session.exec(select(SyncSource).where(SyncSource.workspace_id == acme_id)):
                session.delete(row)
            session.commit()
