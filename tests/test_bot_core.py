"""The platform-free bot core: when to answer, and how answers are laid out and split."""

from __future__ import annotations

import pytest

from bot import Action, ChannelMode, IncomingMessage, decide, format_answer, split_message
from retrieval.chain import Answer, Source


def _message(**overrides: object) -> IncomingMessage:
    values: dict[str, object] = {
        "platform": "slack", "delivery_id": "Ev1", "team_id": "T1", "channel_id": "C1",
        "message_id": "1700000000.000100", "user_id": "U1", "text": "How do refunds work?",
    }  # fmt: skip
    values.update(overrides)
    return IncomingMessage(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "context", "action"),
    [
        ({"is_direct": True}, {}, Action.ANSWER),
        ({"mentions_bot": True}, {}, Action.ANSWER),
        ({}, {}, Action.IGNORE),  # channel chatter, mention-only channel
        ({}, {"channel_mode": ChannelMode.ALL_QUESTIONS}, Action.ANSWER),
        ({"in_thread": True}, {"channel_mode": ChannelMode.ALL_QUESTIONS}, Action.IGNORE),
        ({"in_thread": True}, {"bot_answered_thread": True}, Action.ANSWER),
        ({"in_thread": True}, {}, Action.IGNORE),
        ({"is_direct": True, "from_bot": True}, {}, Action.IGNORE),
        ({"mentions_bot": True, "text": "  "}, {}, Action.PROMPT),  # no words: ask for some
        ({"mentions_bot": True}, {"workspace_ready": False}, Action.SETUP_NEEDED),
        ({}, {"workspace_ready": False}, Action.IGNORE),  # not addressed: no setup spam
    ],
)
def test_decide(overrides: dict[str, object], context: dict[str, object], action: Action):
    assert decide(_message(**overrides), **context).action is action  # type: ignore[arg-type]


def _answer(text: str, sources: list[Source]) -> Answer:
    return Answer(text=text, sources=sources, mode="llm", standalone_question="q")


SOURCES = [
    Source(1, "kb-1", "https://help.example/refunds", "Refunds & credits", "https://help.example/refunds"),
    Source(2, "kb-1", "https://help.example/refunds", "Refunds & credits", "https://help.example/refunds"),
    Source(3, "/srv/docs/billing.md", "/srv/docs/billing.md", "Billing", None),
]  # fmt: skip


def test_slack_format_uses_mrkdwn_links_and_lists_each_document_once():
    text = format_answer(
        _answer(
            "**Yes**: within 14 days [1][3]. See [guide](https://help.example/refunds) <b>, "
            "not [this](https://x.example/g)",
            SOURCES,
        ),
        "slack",
    )

    assert text.startswith(
        "*Yes*: within 14 days [1][3]. See <https://help.example/refunds|guide> &lt;b&gt;, "
        "not this (`https://x.example/g`)"  # links go only to the cited sources
    )
    assert (
        "*Sources*\n[1][2] <https://help.example/refunds|Refunds &amp; credits>\n"
        "[3] Billing (billing.md)"
    ) in text


def test_discord_format_keeps_markdown_and_suppresses_embeds():
    text = format_answer(_answer("**Yes** [1]", SOURCES[:1]), "discord")
    assert (
        text
        == "**Yes** [1]\n\n**Sources**\n[1] [Refunds & credits](<https://help.example/refunds>)"
    )


def test_extractive_quotes_stay_quotes_on_slack():
    text = format_answer(_answer("Passages:\n\n> first line\n> second\n[1]", SOURCES[:1]), "slack")
    assert "\n> first line\n> second\n" in text


def test_split_respects_the_limit_and_prefers_paragraph_boundaries():
    paragraphs = [f"Paragraph {i}: " + "word " * 60 for i in range(12)]
    text = "\n\n".join(p.strip() for p in paragraphs)

    parts = split_message(text, 2_000)

    assert len(parts) > 1 and all(len(p) <= 2_000 for p in parts)
    assert all(p.startswith("Paragraph") for p in parts)  # every cut between paragraphs
    assert "\n\n".join(parts) == text


def test_split_cuts_overlong_lines_and_keeps_every_character():
    text = "가" * 4_500
    parts = split_message(text, 2_000)
    assert [len(p) for p in parts] == [1_500, 1_500, 1_500]  # balanced
    assert "".join(parts) == text
    assert split_message("", 2_000) == [""]
