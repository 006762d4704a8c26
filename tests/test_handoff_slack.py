"""Handoff on Slack, end to end: the real bolt app over HTTP against the Slack simulator."""

from __future__ import annotations

import asyncio
import copy

from bot.handoff import EscalationTarget
from feedback.handoffs import Handoff
from supportbot.app import App
from tests.servers.slack import SlackSimulator, load_shared_fixture
from tests.test_slack_bot import (  # noqa: F401
    BOT_USER,
    HttpBot,
    _eventually,
    http_bot,
    kb_app,
    llm,
    llm_server,
    mention,
    message,
    slack,
)

STAFF = "C0STAFF01"
GROUP = "S0614TZR7"


def notice_ts(sim: SlackSimulator, root: str) -> str:
    """The bot's notice in the thread (the message with the Resolved button)."""
    return next(str(m["ts"]) for m in sim.thread("C111", root) if "handoff_resolved" in str(m))


def _handoffs(app: App) -> list[Handoff]:
    return app.conversations.handoffs.handoffs("acme")


def _target(app: App, target: EscalationTarget) -> None:
    app.conversations.handoffs.set_target("acme", target)


async def test_words_hand_off_ping_only_the_group_then_quiet_until_mentioned_and_resolved(
    http_bot: HttpBot,  # noqa: F811
    slack: SlackSimulator,  # noqa: F811
    kb_app: App,  # noqa: F811
) -> None:
    slack.add_channel(STAFF, name="support-staff")
    slack.add_usergroup("T111", GROUP, "support-team", users=["U900"])
    _target(kb_app, EscalationTarget(slack_channels=(STAFF,), slack_usergroups=(GROUP,)))
    before = len(_handoffs(kb_app))
    try:
        root = "1700009000.000100"
        text = "talk to a human please <!here>"
        slack.seed_message("C111", "U222", f"<@{BOT_USER}> {text}", ts=root)
        await http_bot.post(mention(text, ts=root))
        posts = await slack.async_wait_for("chat.postMessage", count=2, timeout=20)
        escalation = next(p for p in posts if p.args["channel"] == STAFF)
        notice = next(p for p in posts if p.args["channel"] == "C111")
        assert f"<!subteam^{GROUP}>" in escalation.args["text"]
        assert "/archives/C111/p1700009000000100" in escalation.args["text"]
        assert "<!here>" not in escalation.args["text"]  # the transcript pings nobody
        assert "@support-team" in notice.args["text"] and notice.args["thread_ts"] == root
        # the one deliberate ping: the configured group, in the staff channel
        assert slack.pings(STAFF) and [p[2] for p in slack.pings(STAFF)] == [[f"subteam^{GROUP}"]]
        # nothing the bot posted in the conversation pings (the asker's own message aside)
        assert [p for p in slack.pings("C111") if p[1] != root] == []
        await _eventually(lambda: _handoffs(kb_app)[before].notified_at is not None)
        [row] = _handoffs(kb_app)[before:]
        assert row.reason == "asked" and row.notice_message_id == notice_ts(slack, root)

        # a teammate replies in the thread: the first human reply; the bot says nothing
        slack.clear_calls()
        teammate = message(
            "Hi, I'm on it — can you send the invoice number?",
            channel="C111", channel_type="channel", ts="1700009100.000100", thread_ts=root,
            user="U900",
        )  # fmt: skip
        await http_bot.post(teammate)
        await _eventually(lambda: _handoffs(kb_app)[before].first_human_reply_at is not None)
        # the asker answers the teammate without mentioning the bot: still quiet
        await http_bot.post(
            message(
                "Sure, it is INV-2041",
                channel="C111",
                channel_type="channel",
                ts="1700009200.000100",
                thread_ts=root,
            )
        )
        await asyncio.sleep(1.0)
        assert slack.calls_to("chat.postMessage") == []
        # mentioned again: the bot answers
        await http_bot.post(mention("what is the API rate limit?", thread_ts=root))
        await slack.async_wait_for("chat.postMessage", count=1, timeout=20)

        # ✅ by the asker on the question closes the handoff
        reaction = copy.deepcopy(
            load_shared_fixture("scenario_tests__test_events__valid_reaction_added_body__L112")
        )
        reaction.update({"team_id": "T111", "event_id": "EvHandoffDone"})
        reaction["event"].update(
            {
                "reaction": "white_check_mark",
                "user": "U222",
                "item": {"type": "message", "channel": "C111", "ts": root},
            }
        )
        await http_bot.post(reaction)
        await _eventually(lambda: _handoffs(kb_app)[before].resolved_at is not None)
    finally:
        _target(kb_app, EscalationTarget())


async def test_no_target_no_offer_and_no_handoff(
    http_bot: HttpBot,  # noqa: F811
    slack: SlackSimulator,  # noqa: F811
    kb_app: App,  # noqa: F811
) -> None:
    _target(kb_app, EscalationTarget())
    before = len(_handoffs(kb_app))
    await http_bot.post(mention("talk to a human", ts="1700009500.000100"))
    [update] = await slack.async_wait_for("chat.update", count=1, timeout=20)
    blocks = str(update.args.get("blocks"))
    assert "handoff_request" not in blocks
    assert len(_handoffs(kb_app)) == before
    assert slack.pings() == []
