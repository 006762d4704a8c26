"""Breaking the conversation as real users would (issue 12's features, attacked): streaming
with Korean, code, tables, mentions and links cut anywhere, stalls, concurrent answers and a
stream refused half-way; handoffs asked in new ways, from DMs, to targets the bot cannot
reach. The real bolt and discord.py clients against the simulators, the real store, embedder
and a stand-in chat model (the fixtures of ``tests/test_streaming.py``).

The rule checked on every streaming test: nothing partially shown may ping anyone, at ANY
intermediate call (every start/append/stop/update/post on Slack, every send and edit on
Discord), including a mention assembled across two appends.
"""

# ruff: noqa: F811  (fixtures imported from tests.test_streaming)
from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from bot.formatting import answer_parts
from bot.reply import AnswerControls
from bot.reply.partial import partial_parts, stream_markdown
from bot.service import APOLOGY
from bot.slack.outbound import answer_messages
from supportbot.app import App
from tests.servers.discord import DiscordSimulator
from tests.servers.openai_chat import OpenAIChatSimulator
from tests.servers.slack import SlackSimulator
from tests.test_streaming import (  # noqa: F401  (fixtures)
    CHANNEL,
    _eventually,
    _rebuilt,
    _stored,
    ask_discord,
    ask_slack,
    discord_bot,
    dsim,
    kb_app,
    llm,
    llm_server,
    slack,
    slack_bot,
)

pytestmark = pytest.mark.slow

# What Slack would notify: <@U…>, <@W…>, <!subteam^…>, <!here>, <!channel>, <!everyone>.
SLACK_PING = re.compile(r"<(@[UW][A-Z0-9]+|!subteam\^[A-Z0-9]+|!here|!channel|!everyone)")
# What Discord would notify were allowed_mentions not limited: @everyone, @here, <@id>, <@&id>.
DISCORD_PING = re.compile(r"@everyone|@here|<@[!&]?\d+>")
CODE = re.compile(r"```.*?(?:```|$)|`[^`\n]*`", re.S)

# A long Korean answer: paragraphs, a code fence, a table, mentions and a link in the model's
# own words (as if copied from retrieved text), a citation at the end.
KOREAN = (
    "\n\n".join(
        f"{n}단계: 결제 페이지를 열고 주문 {n}번의 환불 기간을 확인하세요. 구매 후 30일 이내에는 "
        "전액 환불이 가능하며, 부분 환불은 고객센터를 통해 요청할 수 있습니다."
        for n in range(1, 25)
    )
    + "\n\n급하면 <!channel> 또는 <@U0ADMIN1> 에게 알려 주세요 @everyone.\n\n"
    + "```bash\ncurl -X POST https://api.example.com/refunds \\\n"
    + '  -d \'{"notify": "<!here>", "owner": "<@U0OWNER2>"}\'\n'
    + "# 주석: 여기서 @here 를 부르지 마세요\n```\n\n"
    + "| 항목 | 기간 | 담당 |\n|---|---|---|\n| 전액 환불 | 30일 | <!subteam^S0FIN> |\n"
    + "| 부분 환불 | 60일 | <@U0CS> |\n\n"
    + "자세한 내용은 [환불 정책](https://docs.example.com/refunds) 문서를 보세요 [1].\n\n"
    + "\n\n".join(  # more text after them: the code and the table are shown mid-stream
        f"참고 {n}: 환불이 처리되면 이메일로 안내가 발송됩니다. 영업일 기준 3~5일이 걸립니다."
        for n in range(1, 15)
    )
)


def korean_responder(messages: list[dict[str, Any]]) -> str:
    return KOREAN


def _slack_texts(args: dict[str, Any]) -> list[str]:
    """Every text a Slack call would show: text, markdown_text, chunks, block texts."""
    texts = [str(args.get(k) or "") for k in ("text", "markdown_text")]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                texts.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for key in ("blocks", "chunks"):
        walk(args.get(key))
    return texts


def assert_no_slack_pings(slack: SlackSimulator, *, allowed: tuple[str, ...] = ()) -> int:
    """Every showing call and every stream's text so far pings nobody; returns how many
    calls were checked."""
    shown = ("chat.postMessage", "chat.update", "chat.startStream", "chat.appendStream")
    checked = 0
    for call in slack.calls:
        if call.method not in (*shown, "chat.stopStream"):
            continue
        checked += 1
        for text in _slack_texts(call.args):
            found = [m for m in SLACK_PING.findall(text) if m not in allowed]
            assert not found, f"{call.method} would ping {found}: {text[:200]!r}"
    for stream in slack.streams():  # a mention assembled across appends
        so_far = ""
        for piece in stream["appends"]:
            so_far += piece
            assert not SLACK_PING.search(so_far), f"stream text pings: {so_far[-200:]!r}"
            assert so_far.count("```") % 2 == 0 or not so_far.endswith("\n\n")
    return checked


def assert_no_discord_pings(dsim: DiscordSimulator, channel: str) -> int:
    """Every send and edit in ``channel`` carries no mention and lets none through."""
    checked = 0
    for call in dsim.calls():
        if call.method not in ("POST", "PATCH") or f"/channels/{channel}/messages" not in call.path:
            continue
        body = call.body or {}
        if "content" not in body:
            continue
        checked += 1
        content = str(body["content"])
        prose = CODE.sub("", content)  # Discord shows mentions in code as text
        assert not DISCORD_PING.search(prose), f"{call.method} shows a ping: {content!r}"
        allowed = body.get("allowed_mentions") or {}
        assert (
            allowed.get("parse") == [] and not allowed.get("users") and not allowed.get("roles")
        ), allowed
        assert len(content) <= 2000 and content.count("```") % 2 == 0, content[-300:]
    return checked


# --- streaming: Slack ----------------------------------------------------------------------


@pytest.mark.parametrize("pieces", ["words", "characters"])
async def test_slack_korean_code_table_mentions_never_ping_at_any_update(
    slack_bot: str,
    slack: SlackSimulator,
    kb_app: App,
    llm: OpenAIChatSimulator,
    pieces: str,
):
    llm.responder = korean_responder
    llm.chunk_delay = 0.01  # slow enough for the code and the table to be streamed
    if pieces == "characters":  # mentions, links and citations split across tokens
        llm.chunk_delay = 0.005
        llm.stream_piece = re.compile(r".{1,3}", re.S)
    question = await ask_slack(slack_bot, slack, "환불은 어떻게 하나요?")
    await slack.async_wait_for("chat.stopStream", timeout=60)
    await _eventually(lambda: _stored(kb_app, question["ts"]) is not None, 20)
    row = _stored(kb_app, question["ts"])
    assert row is not None
    expected = answer_messages(_rebuilt(row), AnswerControls(feedback=True))
    [stream] = slack.streams()
    await _eventually(
        lambda: (
            (m := slack.message("C511", stream["ts"])) is not None
            and (m.get("text"), m.get("blocks")) == expected[0]
        )
    )
    assert len(stream["appends"]) >= 3  # it was shown as it came
    assert "curl" in stream["text"] and "부분 환불" in stream["text"]  # code and table too
    assert assert_no_slack_pings(slack) >= 5
    assert slack.pings("C511") == [] or all(p[1] == question["ts"] for p in slack.pings("C511"))


def test_stream_markdown_breaks_mentions_inside_code_too():
    """Code spans and fences keep their text verbatim in CommonMark, so a mention inside
    one reached Slack's stream untouched (``<!here>`` in a shell example)."""
    for text in (
        "`<!channel>` and `<@U0ABC>`",
        "```\n<!here> <@W0ABC> <!subteam^S1|team>\n```",
        "~~~\n<!everyone>\n~~~",
        "    <!channel> indented code",
    ):
        shown = stream_markdown(text)
        assert not SLACK_PING.search(shown), shown
        visible = shown.replace("\u2060", "")
        assert all(word in visible for word in re.findall(r"<([!@][\w^]+)", text)), shown


async def test_slack_stall_of_5_s_mid_answer_still_ends_in_the_answer(
    slack_bot: str, slack: SlackSimulator, kb_app: App, llm: OpenAIChatSimulator
):
    llm.responder = korean_responder
    llm.chunk_delay = 0.002
    llm.stall_stream_next(after_pieces=40, seconds=4.5)  # under the 5 s read timeout
    question = await ask_slack(slack_bot, slack, "환불은 어떻게 하나요?")
    await _eventually(lambda: _stored(kb_app, question["ts"]) is not None, 40)
    await _eventually(lambda: [s["state"] for s in slack.streams()] == ["completed"])
    [stream] = slack.streams()
    row = _stored(kb_app, question["ts"])
    assert row is not None
    expected = answer_messages(_rebuilt(row), AnswerControls(feedback=True))
    await _eventually(
        lambda: (
            (m := slack.message("C511", stream["ts"])) is not None
            and (m.get("text"), m.get("blocks")) == expected[0]
        )
    )
    assert_no_slack_pings(slack)


async def test_slack_two_questions_streamed_in_the_same_thread_at_once(
    slack_bot: str, slack: SlackSimulator, kb_app: App, llm: OpenAIChatSimulator
):
    llm.responder = korean_responder
    llm.chunk_delay = 0.003
    first, second = await asyncio.gather(
        ask_slack(slack_bot, slack, "환불은 어떻게 하나요?"),
        ask_slack(slack_bot, slack, "부분 환불은요?"),
    )
    await _eventually(
        lambda: (
            _stored(kb_app, first["ts"]) is not None and _stored(kb_app, second["ts"]) is not None
        ),
        60,
    )
    # The answer is recorded before its stream is stopped (the controls carry its id).
    await _eventually(
        lambda: [s["state"] for s in slack.streams()] == ["completed", "completed"], 20
    )
    streams = slack.streams()
    assert {s["thread_ts"] for s in streams} == {first["ts"], second["ts"]}
    for question in (first, second):
        row = _stored(kb_app, question["ts"])
        assert row is not None
        expected = answer_messages(_rebuilt(row), AnswerControls(feedback=True))
        [mine] = [s for s in streams if s["thread_ts"] == question["ts"]]
        await _eventually(
            lambda mine=mine, expected=expected: (
                (m := slack.message("C511", mine["ts"])) is not None
                and (m.get("text"), m.get("blocks")) == expected[0]
            )
        )
    assert_no_slack_pings(slack)


@pytest.mark.parametrize("error", ["message_not_in_streaming_state", "ratelimited", "not_allowed"])
async def test_slack_stream_refused_half_way_still_shows_the_whole_answer(
    slack_bot: str, slack: SlackSimulator, kb_app: App, llm: OpenAIChatSimulator, error: str
):
    """appendStream fails after startStream succeeded (Slack ended the stream, a rate limit,
    the feature turned off): the model's answer is fine, so it is shown and recorded, not
    replaced by an apology."""
    llm.responder = korean_responder
    llm.chunk_delay = 0.004
    slack.fail("chat.appendStream", times=1, error=error)
    question = await ask_slack(slack_bot, slack, "환불은 어떻게 하나요?")
    await _eventually(lambda: _stored(kb_app, question["ts"]) is not None, 40)
    row = _stored(kb_app, question["ts"])
    assert row is not None
    expected = answer_messages(_rebuilt(row), AnswerControls(feedback=True))
    [stream] = slack.streams()
    await _eventually(
        lambda: (
            (m := slack.message("C511", stream["ts"])) is not None
            and (m.get("text"), m.get("blocks")) == expected[0]
        )
    )
    assert next(c for c in slack.calls_to("chat.appendStream") if not c.ok).error == error
    # The stream was stopped, not left open (read again: streams() returns a snapshot, taken
    # above when the answer was recorded, which is before the stop).
    assert [s["state"] for s in slack.streams()] == ["completed"]
    texts = [m.get("text", "") for m in slack.thread("C511", question["ts"])]
    assert not any(t.startswith("Sorry") for t in texts)
    assert_no_slack_pings(slack)


# --- streaming: Discord --------------------------------------------------------------------

# A long answer whose code block crosses the 2,000-character message limit.
CODE_ACROSS = (
    "설정 방법은 아래와 같습니다 <@&1234567890123456> @here.\n\n```python\n"
    + "\n".join(
        f"step_{n} = configure('refund', notify='@everyone', owner='<@{n}>')" for n in range(60)
    )
    + "\n```\n\n끝났습니다 @everyone [1]."
)


@pytest.mark.parametrize("pieces", ["words", "characters"])
async def test_discord_code_block_across_2000_characters_never_pings(
    discord_bot: Any,
    dsim: DiscordSimulator,
    kb_app: App,
    llm: OpenAIChatSimulator,
    pieces: str,
):
    llm.responder = lambda messages: CODE_ACROSS
    llm.chunk_delay = 0.001 if pieces == "characters" else 0.004
    if pieces == "characters":
        llm.stream_piece = re.compile(r".{1,4}", re.S)
    question = await ask_discord(dsim, "환불 설정은 어떻게 하나요?")
    await _eventually(lambda: _stored(kb_app, question["id"]) is not None, 60)
    row = _stored(kb_app, question["id"])
    assert row is not None
    expected = answer_parts(_rebuilt(row), "discord")
    assert len(expected) >= 2
    await _eventually(lambda: [m["content"] for m in dsim.sent_messages(CHANNEL)] == expected, 20)
    assert assert_no_discord_pings(dsim, CHANNEL) >= 3
    assert dsim.pings() == []
    for part in partial_parts(CODE_ACROSS[: len(CODE_ACROSS) // 2], "discord"):
        assert part.count("```") % 2 == 0


async def test_discord_stall_of_5_s_mid_answer_still_ends_in_the_answer(
    discord_bot: Any, dsim: DiscordSimulator, kb_app: App, llm: OpenAIChatSimulator
):
    llm.responder = korean_responder
    llm.chunk_delay = 0.002
    llm.stall_stream_next(after_pieces=30, seconds=4.5)
    question = await ask_discord(dsim, "환불은 어떻게 하나요?")
    await _eventually(lambda: _stored(kb_app, question["id"]) is not None, 40)
    contents = [m["content"] for m in dsim.sent_messages(CHANNEL)]
    assert contents and not any(c.startswith(APOLOGY["ko"][:10]) for c in contents)
    assert_no_discord_pings(dsim, CHANNEL)
