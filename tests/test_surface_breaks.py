"""Breaking the Slack AI app surface and the Discord forum/button surface as real users would
(issue 12's features, attacked; the cases helper B12 did not reach).

Pure rules first (suggested prompts at Slack's limits, the question of ``/ask``, the Home tab
with many sources, the registration backoff over hours with an injected sleep), then end to end
with the real bolt and discord.py clients against the simulators, the real store, embedder and a
local chat model (the fixtures of ``tests/test_slack_bot.py`` and ``tests/discord_harness.py``).
"""

# ruff: noqa: F811  (fixtures imported from tests.test_slack_bot / tests.discord_harness)
from __future__ import annotations

import asyncio
import logging
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from discord import app_commands

from bot.discord.registration import Backoff, CommandRegistration
from bot.slack.blocks import SHARE_ACTION_ID
from bot.slack.commands import command_question
from bot.slack.home import MAX_BLOCKS, MAX_LISTED_SOURCES, SourceState, home_view
from bot.slack.prompts import (
    MAX_TITLE,
    PromptError,
    SuggestedPrompt,
    checked,
    parse_prompt,
)
from supportbot.app import App
from tests.servers.slack import SlackSimulator, event_envelope, signed_command_request
from tests.test_cli import Cli, assert_one_error_line, cli_env
from tests.test_slack_bot import (  # noqa: F401  (fixtures)
    ACME,
    BOT_USER,
    SECRET,
    HttpBot,
    http_bot,
    kb_app,
    llm,
    llm_server,
    slack,
)

# --- suggested prompts at Slack's limits, in Korean --------------------------------------------

KO_TITLE_75 = ("비밀번호 재설정 방법 " * 8)[:MAX_TITLE]


def test_korean_prompt_titles_are_counted_as_people_see_them():
    assert len(KO_TITLE_75) == MAX_TITLE
    assert checked(SuggestedPrompt(KO_TITLE_75, "비밀번호는?")).title == KO_TITLE_75
    # Pasted from macOS: decomposed Hangul (NFD) is 2-3 code points a syllable; it is the
    # same 75 characters on screen, accepted and stored composed.
    decomposed = unicodedata.normalize("NFD", KO_TITLE_75)
    assert len(decomposed) > 2 * MAX_TITLE
    stored = parse_prompt(f"{decomposed}={unicodedata.normalize('NFD', '비밀번호는?')}")
    assert stored.title == KO_TITLE_75 and stored.message == "비밀번호는?"
    # A title typed over two lines is one line on its button.
    assert parse_prompt("환불\n  정책=환불은 어떻게 하나요?").title == "환불 정책"


@pytest.mark.parametrize(
    "text",
    [
        KO_TITLE_75 + "요=질문",  # 76 characters
        "   =질문",  # a blank title
        "제목=   ",  # a blank message
        "\n\t=질문",  # only spacing
        "환불=" + "가" * 2001,  # a message over the limit
        "제목 없이 질문만",  # no '='
    ],
)
def test_prompts_slack_would_refuse_are_refused_in_one_line(text: str):
    with pytest.raises(PromptError) as refused:
        parse_prompt(text)
    assert "\n" not in str(refused.value)


@pytest.mark.slow
def test_the_cli_refuses_a_korean_title_over_the_limit_in_one_line(
    weaviate_data_dir: Path, tmp_path: Path
):
    cli = Cli(cli_env(weaviate_data_dir, tmp_path / "supportbot.db"), tmp_path)
    cli.ok("workspace", "create", "kr")
    line = assert_one_error_line(
        cli("workspace", "prompts", "kr", "환불=환불은?", KO_TITLE_75 + "요=질문")
    )
    assert "76 characters" in line and str(MAX_TITLE) in line
    assert "no suggested prompts set" in cli.ok("workspace", "prompts", "kr").stdout  # nothing kept
    five = [f"질문 {n}=질문 {n}?" for n in range(5)]
    assert "at most 4" in assert_one_error_line(cli("workspace", "prompts", "kr", *five))
    nfd = unicodedata.normalize("NFD", KO_TITLE_75)
    shown = cli.ok("workspace", "prompts", "kr", f"{nfd}=비밀번호는?").stdout
    assert KO_TITLE_75 in shown


# --- the question of /ask ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["", "   ", "<@U0BOT|supportbot>", "@supportbot", " @supportbot ?", "<!here>", "<@U1> <#C1>"],
)
def test_an_ask_of_only_mentions_asks_nothing(text: str):
    assert command_question(text) == ""


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("what is A &amp; B?", "what is A & B?"),  # Slack escapes &, <, > in command text
        ("<https://x.example/a|the docs> 404?", "the docs 404?"),
        ("@supportbot 비밀번호 재설정?", "@supportbot 비밀번호 재설정?"),
    ],
)
def test_an_ask_question_is_read_like_a_message(text: str, question: str):
    assert command_question(text) == question


# --- the Home tab with many sources ------------------------------------------------------------

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def _sources(
    count: int, *, failed: frozenset[int] = frozenset(), stale: frozenset[int] = frozenset()
) -> list[SourceState]:
    return [
        SourceState(
            name=f"source-{n:03d}",
            kind="web",
            status="failed" if n in failed else "ok",
            last_success_at=NOW - (timedelta(days=30) if n in stale else timedelta(hours=1)),
        )
        for n in range(count)
    ]


@pytest.mark.parametrize("count", [41, 60, 500])
def test_a_home_tab_with_many_sources_lists_failures_first_and_says_what_is_left(count: int):
    # The failing and stale sources sort last by name: a cut by name would hide them.
    sources = _sources(
        count, failed=frozenset({count - 1}), stale=frozenset({count - 2, count - 3})
    )
    view = home_view("acme", sources, ready=True, now=NOW)
    assert len(view["blocks"]) <= MAX_BLOCKS
    texts = [str(b) for b in view["blocks"]]
    listed = [t for t in texts if "source-" in t and "more sources" not in t]
    assert len(listed) == MAX_LISTED_SOURCES
    assert f"source-{count - 1:03d}" in listed[0] and "failed" in listed[0]
    assert all("stale" in t for t in listed[1:3])
    [more] = [t for t in texts if "more sources" in t]
    hidden = count - MAX_LISTED_SOURCES
    assert f"{hidden} more sources, {hidden} of them fresh" in more
    assert "supportbot source list -w acme" in more
    korean = str(home_view("acme", sources, ready=True, now=NOW, language="ko"))
    assert f"외 {hidden}개 출처" in korean


def test_a_home_tab_with_few_sources_keeps_their_order():
    sources = _sources(5, failed=frozenset({4}))
    view = home_view("acme", sources, ready=True, now=NOW)
    listed = [str(b) for b in view["blocks"] if "source-" in str(b)]
    assert [f"source-{n:03d}" in t for n, t in enumerate(listed)] == [True] * 5


# --- slash-command registration failing for hours, then recovering ----------------------------


def _tree() -> app_commands.CommandTree[Any]:
    import discord

    tree: app_commands.CommandTree[Any] = app_commands.CommandTree(
        discord.Client(intents=discord.Intents.none())
    )

    @tree.command(name="ask", description="Ask")
    async def ask(interaction: discord.Interaction) -> None:  # pragma: no cover
        return None

    return tree


@pytest.mark.parametrize("rng", [lambda: 1.0, lambda: 0.0, lambda: 0.5])
def test_the_backoff_never_passes_its_cap_whatever_the_jitter(rng: Any):
    backoff = Backoff()
    delays = [d for _, d in zip(range(40), backoff.delays(rng), strict=False)]
    assert max(delays) <= backoff.max_s
    assert delays[-1] >= backoff.max_s * (1 - backoff.jitter)  # it does reach the cap


async def test_registration_failing_for_a_day_then_recovering(
    caplog: pytest.LogCaptureFixture,
):
    tree = _tree()
    slept: list[float] = []
    failures = 60

    async def sleep(seconds: float) -> None:  # the injected clock: time passes, nobody waits
        slept.append(seconds)

    async def sync() -> list[Any]:
        if len(slept) < failures:
            raise TypeError("string indices must be integers")  # a proxy's HTML page
        return [app_commands.Command(name="ask", description="Ask", callback=_noop)]

    registration = CommandRegistration(tree, sync=sync, sleep=sleep)
    with caplog.at_level(logging.WARNING, logger="bot.discord.registration"):
        await asyncio.wait_for(registration.run(), timeout=5)
    assert registration.registered.is_set() and registration.attempts == failures + 1
    assert registration.last_error is None
    assert max(slept) <= 1800 and sum(slept) > 24 * 3600  # a day of failures, capped
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "bot.discord.registration" and r.levelno == logging.WARNING
    ]
    assert len(warnings) == failures  # one line an attempt, never a traceback
    assert all("\n" not in w and "retrying in" in w for w in warnings)
    assert all(f"retrying in {round(d)} s" in w for d, w in zip(slept, warnings, strict=True))


async def _noop(interaction: Any) -> None:  # pragma: no cover
    return None


# --- end to end on Slack: real bolt and slack_sdk against the simulator -----------------------

_ids = iter(range(1, 10_000))


def _event(inner: dict[str, Any], team: str = ACME) -> dict[str, Any]:
    return event_envelope(
        inner, team_id=team, event_id=f"EvSb{next(_ids):05d}", bot_user_id=BOT_USER
    )


async def _command(http_bot: HttpBot, fields: dict[str, Any]) -> httpx.Response:
    raw, headers = signed_command_request(fields, SECRET)
    async with httpx.AsyncClient() as client:
        return await client.post(http_bot.url, content=raw, headers=headers)


@pytest.mark.slow
async def test_an_assistant_thread_without_knowledge_offers_no_prompts_and_says_why(
    http_bot: HttpBot, slack: SlackSimulator, kb_app: App
):
    # "empty" (T333) is a workspace with no knowledge; T999 maps to no workspace.
    for team, user, dm in (("T333", "U0EMPTY", "D0EMPTY"), ("T999", "U0NONE", "D0NONE")):
        slack.add_user(user, team_id=team, locale="en-US")
        started = slack.start_assistant_thread(team, user, dm)
        assert (await http_bot.post(_event(started, team=team))).status_code == 200
    await asyncio.sleep(0.5)
    assert slack.calls_to("assistant.threads.setSuggestedPrompts") == []

    # A question typed there anyway gets the setup notice, and no status is left spinning.
    thread_ts = started["assistant_thread"]["thread_ts"]
    empty_started = slack.start_assistant_thread("T333", "U0EMPTY", "D0EMPTY2")
    await http_bot.post(_event(empty_started, team="T333"))
    empty_ts = empty_started["assistant_thread"]["thread_ts"]
    question_ts = f"{float(empty_ts) + 1:.6f}"
    await http_bot.post(
        _event(
            {
                "type": "message", "channel": "D0EMPTY2", "channel_type": "im",
                "user": "U0EMPTY", "text": "How do I reset my password?", "ts": question_ts,
                "event_ts": question_ts, "thread_ts": empty_ts, "team": "T333",
            },
            team="T333",
        )
    )  # fmt: skip
    [notice] = await slack.async_wait_for("chat.postMessage", timeout=20)
    assert "knowledge" in notice.args["text"].lower() or "set up" in notice.args["text"].lower()
    await asyncio.sleep(0.3)
    statuses = (slack.assistant_thread("D0EMPTY2", empty_ts) or {}).get("statuses") or []
    assert statuses == [] or statuses[-1] == "", statuses
    assert thread_ts  # the unmapped team's thread got nothing at all
    assert slack.assistant_thread("D0NONE", thread_ts) is None


@pytest.mark.slow
@pytest.mark.parametrize("text", [f"<@{BOT_USER}|supportbot>", "@supportbot", "<@W111> ?"])
async def test_ask_with_only_a_mention_asks_for_the_question(
    http_bot: HttpBot, slack: SlackSimulator, text: str
):
    fields = slack.slash_command("/ask", text, team_id=ACME, channel_id="C111", user_id="U0M")
    ack = await _command(http_bot, fields)
    assert ack.json()["response_type"] == "ephemeral"
    assert "Type your question" in ack.json()["text"]
    await asyncio.sleep(0.3)
    assert slack.responses == []  # nothing answered, nothing stored


@pytest.mark.slow
async def test_a_very_long_ask_is_answered_privately(
    http_bot: HttpBot, slack: SlackSimulator, kb_app: App
):
    question = (
        "What is the API rate limit? "
        + "We call the API from many workers and keep hitting errors, so here is our log. " * 45
    )
    assert len(question) > 3000
    fields = slack.slash_command("/ask", question, team_id=ACME, channel_id="C111", user_id="U0L")
    ack = await _command(http_bot, fields)
    assert "Looking" in ack.json()["text"]
    [private] = await slack.wait_for_responses(1, timeout=30)
    body = private["body"]
    assert body["response_type"] == "ephemeral" and body["replace_original"] is True
    assert slack.calls_to("chat.postMessage") == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("channel", "private", "archived", "words"),
    [
        ("G0SBPRIV1", True, False, "invite me"),  # Slack: channel_not_found
        ("C0SBPUB01", False, False, "invite me"),  # Slack: not_in_channel
        ("C0SBARCH1", False, True, "archived"),  # Slack: is_archived
    ],
)
async def test_sharing_where_the_bot_cannot_post_says_why_privately(
    http_bot: HttpBot,
    slack: SlackSimulator,
    kb_app: App,
    channel: str,
    private: bool,
    archived: bool,
    words: str,
):
    slack.add_channel(
        channel, is_private=private, is_member=archived, is_archived=archived, team_id=ACME
    )
    fields = slack.slash_command(
        "/ask", "What is the API rate limit?", team_id=ACME, channel_id=channel, user_id="U0S"
    )
    await _command(http_bot, fields)
    [answer] = await slack.wait_for_responses(1, timeout=20)
    share = answer["body"]["blocks"][-1]["elements"][0]
    assert share["action_id"] == SHARE_ACTION_ID

    await http_bot.click(
        {
            "type": "block_actions", "team": {"id": ACME}, "user": {"id": "U0S"},
            "channel": {"id": channel}, "api_app_id": "A111", "trigger_id": "9.9.8",
            "container": {"type": "message", "message_ts": "1", "channel_id": channel,
                          "is_ephemeral": True},
            "response_url": slack.response_url_for(ACME, channel, "U0S"),
            "actions": [{"action_id": SHARE_ACTION_ID, "block_id": "s", "type": "button",
                         "value": share["value"], "action_ts": "1700009100.000000"}],
        }
    )  # fmt: skip
    [_, refusal] = await slack.wait_for_responses(2, timeout=10)
    said = refusal["body"]
    assert said["response_type"] == "ephemeral" and words in said["text"]
    assert "\n" not in said["text"] and not said.get("delete_original")  # the answer stays
    assert [(c.response or {}).get("ok") for c in slack.calls_to("chat.postMessage")] == [False]
