"""Incoming text decoded once: Slack's escaping and markup and Discord's markup become the plain
text a person reads, NFC, before routing, retrieval or storage see it (pure decoders, plus the
Slack event conversion on the shared case's payload)."""

from __future__ import annotations

import json
import re
import unicodedata

import pytest

from bot.markup import tidy
from bot.markup.discord import decode as discord_decode
from bot.markup.slack import decode as slack_decode
from bot.slack.events import history_from_replies, incoming_from_event
from tests.conftest import REPO

CASE = REPO.parent / "shared" / "cases" / "slack-escaped-text" / "slack_event_text.txt"
CASE_PLAIN = "Can I use <b> tags & emoji in saved replies? see status.example.com"
# Markup that would notify someone if echoed back to Slack.
PINGS = re.compile(r"<[@!#]")


def test_the_shared_case_decodes_to_plain_text():
    raw = CASE.read_text(encoding="utf-8").strip()
    assert slack_decode(raw, bot_user_id="U0BOT").text == CASE_PLAIN


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        # entities: only Slack's three, decoded once
        ("a &lt;div&gt; &amp;&amp; b", "a <div> && b"),
        ("literal &amp;lt; stays an entity", "literal &lt; stays an entity"),
        ("AT&amp;T &amp;copy", "AT&T &copy"),
        # links: the label when there is one, else the address
        ("see <https://status.example.com|status.example.com>", "see status.example.com"),
        ("<https://a.example/x?a=1&amp;b=2|the &lt;new&gt; page>", "the <new> page"),
        ("go to <https://a.example/x?a=1&amp;b=2>", "go to https://a.example/x?a=1&b=2"),
        ("mail <mailto:ann@a.example|Ann Lee> or <mailto:bo@a.example>",
         "mail Ann Lee or bo@a.example"),
        ("call <tel:+82212345678|02-1234-5678> or <tel:+821012345678>",
         "call 02-1234-5678 or +821012345678"),
        # mentions: names from the label, else a neutral placeholder; the bot's own removed
        ("<@U0BOT> ask <@U0ALICE|alice> or <@W0BOB>", "ask @alice or @user"),
        ("in <#C0SUP|support> and <#C0OPS> or <#C0X|>", "in #support and #channel or #channel"),
        ("cc <!subteam^S0ONCALL|@oncall> <!subteam^S0X>", "cc @oncall @group"),
        ("<!here> <!channel> <!everyone|everyone> is it down?",
         "@here @channel @everyone is it down?"),
        # dates: the fallback, else the moment in UTC
        ("due <!date^1700000000^{date_short}|Nov 14, 2023>", "due Nov 14, 2023"),
        ("due <!date^1700000000^{date_num}>", "due 2023-11-14 22:13 UTC"),
        ("<!unknown_thing|shown> <!nothing>", "shown"),
        # spacing: lines kept, gaps closed, indentation of pasted code kept
        ("<@U0BOT>   why\n```\n  x = 1\n```\n\n\n\nthanks", "why\n```\n  x = 1\n```\n\nthanks"),
    ],
)  # fmt: skip
def test_slack_markup_becomes_plain_text(raw: str, plain: str):
    decoded = slack_decode(raw, bot_user_id="U0BOT").text
    assert decoded == plain
    assert not PINGS.search(decoded)


def test_slack_bare_text_leaves_out_mentions_and_channels():
    decoded = slack_decode(
        "<@U0BOT> <@U1|ann> <#C1|ops> <!here> <!subteam^S1|@team> :fire: see <https://x.example|docs>",
        bot_user_id="U0BOT",
    )  # fmt: skip
    assert decoded.text == "@ann #ops @here @team :fire: see docs"
    assert decoded.bare == ":fire: see docs"


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ("<@1001> hi <@!1002> and <@1003>", "hi @Bob and @user"),
        ("ping <@&2001> or <@&2002>", "ping @Support or @role"),
        ("<@&9000> where is <#3001>? not <#3002>", "where is #billing? not #channel"),
        ("nice <:blobcat:123456789> <a:party:987654321>", "nice :blobcat: :party:"),
        ("at <t:1700000000> or <t:1700000000:R> on <t:1700000000:D>",
         "at 2023-11-14 22:13 UTC or 2023-11-14 22:13 UTC on 2023-11-14"),
        ("use </ask:42> or <id:customize>", "use /ask or"),
        ("see <id:browse>, <id:home> or <id:linked-roles:77>", "see , or"),
        # a link in <...> (Discord shows no embed for it) is its address
        ("docs at <https://help.example/a?b=1&c=2> ok",
         "docs at https://help.example/a?b=1&c=2 ok"),
        # spoilers are the message's words, mentions inside them decoded; code keeps its ||
        ("the code is ||<@1002> 1234|| ok", "the code is @Bob 1234 ok"),
        ("||a|| and ||b\nc||", "a and b\nc"),
        ("why `a || b || c` and\n```\nx || y || z\n```",
         "why `a || b || c` and\n```\nx || y || z\n```"),
        ("a & b <b> &amp; stay as typed", "a & b <b> &amp; stay as typed"),
        ("<@1001>   multi\n\n\n\nline  ", "multi\n\nline"),
    ],
)  # fmt: skip
def test_discord_markup_becomes_plain_text(raw: str, plain: str):
    decoded = discord_decode(
        raw,
        users={"1002": "Bob"},
        roles={"2001": "Support"},
        channels={"3001": "billing"},
        drop={"1001", "9000"},  # the bot, and its integration role
    ).text
    assert decoded == plain
    assert not re.search(r"<[@#]|<a?:\w+:\d+>|<t:", decoded)


def test_discord_bare_text_leaves_out_mentions_and_custom_emoji():
    decoded = discord_decode("<@1> <@&2> <#3> <:blobcat:4> <a:xy:5>  ", drop={"1"})
    assert decoded.text == "@role #channel :blobcat: :xy:"
    assert decoded.bare == ""


@pytest.mark.parametrize("decode", [slack_decode, discord_decode])
def test_text_enters_as_nfc(decode):
    decomposed = unicodedata.normalize("NFD", "세금계산서는 언제 발행되나요? café")
    decoded = decode(decomposed)
    assert decoded.text == "세금계산서는 언제 발행되나요? café"
    assert unicodedata.is_normalized("NFC", decoded.text)


def test_tidy_keeps_lines_and_closes_gaps():
    assert tidy("  a   b \r\n\n\n\n  c\u2028d ") == "a b\n\n  c\nd"


def _case_event(text: str, **extra: object) -> tuple[dict[str, object], dict[str, object]]:
    event = {
        "type": "app_mention", "user": "U0ALICE", "channel": "C0SUP", "channel_type": "channel",
        "team": "T0ACME", "ts": "1710000000.000100", "event_ts": "1710000000.000100",
        "text": text, **extra,
    }  # fmt: skip
    return {"team_id": "T0ACME", "event_id": "Ev1", "event": event}, event


def test_slack_event_conversion_decodes_the_text_once():
    body, event = _case_event(CASE.read_text(encoding="utf-8").strip())
    message = incoming_from_event(body, event, bot_user_id="U0BOT")
    assert message is not None
    assert message.text == CASE_PLAIN and message.mentions_bot
    assert message.words == CASE_PLAIN  # no other mentions to leave out


def test_slack_edited_mention_converts_as_the_same_message():
    events = json.loads(
        (REPO.parent / "shared/cases/slack-edited-mention/events.json")
        .read_text(encoding="utf-8")
        .replace("<T+5>", "1710000005.000100")
        .replace("<T>", "1710000000.000100")
    )
    first, edited = (
        incoming_from_event({"team_id": "T0ACME", "event_id": f"Ev{n}"}, e, bot_user_id="U0BOT")
        for n, e in enumerate(events)
    )
    assert first is not None and edited is not None
    assert first.delivery_id != edited.delivery_id
    assert first.identity == edited.identity and edited.edited and not first.edited
    assert edited.text == "how long is the password reset link valid?"


@pytest.mark.parametrize(
    ("subtype", "converted"),
    [
        ("thread_broadcast", True),
        ("file_share", True),
        ("me_message", True),
        ("message_changed", False),
        ("message_deleted", False),
        ("channel_join", False),
        ("bot_message", False),
    ],
)
def test_slack_subtypes_are_what_they_say(subtype: str, converted: bool):
    body, event = _case_event(
        "&lt;3 see <https://x.example|this>",
        type="message",
        subtype=subtype,
        thread_ts="1709999999.000100",
    )
    message = incoming_from_event(body, event, bot_user_id="U0BOT")
    assert (message is not None) is converted
    if message is not None:
        assert message.text == "<3 see this"
        assert message.in_thread and message.thread_id == "1709999999.000100"


def test_slack_thread_history_is_decoded_like_the_question():
    turns = history_from_replies(
        [
            {"ts": "1.0", "user": "U1", "text": "<@U0BOT> is &lt;b&gt; allowed in <#C1|ops>?"},
            {"ts": "2.0", "user": "U0BOT", "bot_id": "B1", "text": "Yes &amp; <https://x.example|see>"},
            {"ts": "3.0", "user": "U1", "text": "<@U0BOT>"},
            {"ts": "4.0", "user": "U1", "text": "later"},
        ],
        bot_user_id="U0BOT",
        before_ts="4.0",
    )  # fmt: skip
    assert [(t.role, t.text) for t in turns] == [
        ("user", "is <b> allowed in #ops?"),
        ("assistant", "Yes & see"),
    ]
