"""Handoff on Slack by its buttons and after an answer that found nothing, end to end: the real
bolt app over HTTP against the Slack simulator (the words case is in test_handoff_slack.py).

The "Talk to a human" button on an answer hands the thread off (the configured group pinged in
the staff channel only), the *Resolved* button on the bot's notice closes it; an answer that
found nothing says a person can help and hands off at once; the button appears only when the
workspace has a Slack target (a Discord-only target is none for Slack), and without one the
not-found answer offers nobody.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from bot.handoff import EscalationTarget
from feedback.handoffs import Handoff
from feedback.models import Interaction
from supportbot.app import App
from tests.discord_harness import eventually
from tests.servers.slack import SlackSimulator
from tests.test_slack_bot import (  # noqa: F401
    ACME,
    HttpBot,
    answered,
    http_bot,
    kb_app,
    llm,
    llm_server,
    mention,
    slack,
)

STAFF = "C0STAFF02"
GROUP = "S0614TZR8"
FOUND = "What is the API rate limit?"
UNKNOWN = "Who won the football world cup in 2002?"
OFFERS = ("person", "human", "teammate")


def handoffs(app: App) -> list[Handoff]:
    return app.conversations.handoffs.handoffs("acme")


def handoff_of(app: App, thread: str) -> Handoff | None:
    return next((h for h in handoffs(app) if h.thread_id == thread), None)


def set_target(app: App, target: EscalationTarget) -> None:
    app.conversations.handoffs.set_target("acme", target)


def click(action_id: str, user: str, ts: str, thread_ts: str, text: str = "") -> dict[str, Any]:
    """A block_actions payload: ``user`` pressed ``action_id`` on message ``ts``."""
    return {
        "type": "block_actions", "team": {"id": ACME}, "user": {"id": user, "team_id": ACME},
        "channel": {"id": "C111"}, "api_app_id": "A111", "trigger_id": f"1.{ts}",
        "container": {"type": "message", "message_ts": ts, "channel_id": "C111",
                      "thread_ts": thread_ts},
        "message": {"ts": ts, "thread_ts": thread_ts, "text": text},
        "actions": [{"action_id": action_id, "block_id": "b", "type": "button",
                     "value": "1", "action_ts": f"{ts}1"}],
    }  # fmt: skip


def action_ids(call: Any) -> list[str]:
    return [
        e.get("action_id")
        for block in call.args.get("blocks") or []
        if block.get("type") == "actions"
        for e in block.get("elements", [])
    ]


def interaction_id(app: App, question_ts: str) -> int | None:
    with Session(app.engine) as session:
        found = session.exec(
            select(Interaction).where(Interaction.message_id == question_ts)
        ).first()
    return found.id if found else None


async def test_the_button_hands_off_and_the_resolved_button_closes(
    http_bot: HttpBot,  # noqa: F811
    slack: SlackSimulator,  # noqa: F811
    kb_app: App,  # noqa: F811
) -> None:
    slack.add_channel(STAFF, name="support-staff-2")
    slack.add_usergroup(ACME, GROUP, "billing-team", users=["U900"])
    set_target(kb_app, EscalationTarget(slack_channels=(STAFF,), slack_usergroups=(GROUP,)))
    try:
        root = "1700019000.000100"
        await http_bot.post(mention(FOUND, ts=root))
        [update] = await answered(slack)
        assert "handoff_request" in action_ids(update)
        answer_ts = str(update.args["ts"])
        assert handoff_of(kb_app, root) is None  # a found answer is not handed off by itself

        slack.clear_calls()
        response = await http_bot.click(
            click("handoff_request", "U222", answer_ts, root, update.args["text"])
        )
        assert response.status_code == 200
        posts = await slack.async_wait_for("chat.postMessage", count=2, timeout=20)
        escalation = next(p for p in posts if p.args["channel"] == STAFF)
        notice = next(p for p in posts if p.args["channel"] == "C111")
        assert escalation.args["text"].startswith(f"<!subteam^{GROUP}>")
        assert "pressed" in escalation.args["text"] and notice.args["thread_ts"] == root
        assert "@billing-team" in notice.args["text"]
        assert [p[2] for p in slack.pings(STAFF)] == [[f"subteam^{GROUP}"]]
        row = await eventually(lambda: (h := handoff_of(kb_app, root)) and h.notified_at and h)
        assert row.reason == "button" and row.interaction_id == interaction_id(kb_app, root)

        # the Resolved button on the notice closes the handoff and says so
        notice_ts = row.notice_message_id
        await http_bot.click(click("handoff_resolved", "U222", notice_ts, root))
        [closed] = await slack.async_wait_for("chat.update", count=1, timeout=20)
        assert closed.args["ts"] == notice_ts and "Resolved" in closed.args["text"]
        assert "handoff_resolved" not in action_ids(closed)
        done = await eventually(lambda: (h := handoff_of(kb_app, root)) and h.resolved_at and h)
        assert done.requested_at <= done.notified_at <= done.resolved_at
    finally:
        set_target(kb_app, EscalationTarget())


async def test_an_answer_that_found_nothing_says_a_person_can_help_and_hands_off(
    http_bot: HttpBot,  # noqa: F811
    slack: SlackSimulator,  # noqa: F811
    kb_app: App,  # noqa: F811
) -> None:
    slack.add_usergroup(ACME, GROUP, "billing-team", users=["U900"])
    set_target(kb_app, EscalationTarget(slack_usergroups=(GROUP,)))  # no channel: the thread
    try:
        root = "1700019500.000100"
        await http_bot.post(mention(UNKNOWN, ts=root))
        [update] = await answered(slack)
        assert "person from the team can help" in update.args["text"]
        row = await eventually(lambda: (h := handoff_of(kb_app, root)) and h.notified_at and h)
        assert row.reason == "not_found"
        # with a group and no channel the group is called in the conversation's thread
        pings = slack.pings("C111")
        assert [p[2] for p in pings if p[1] != root] == [[f"subteam^{GROUP}"]]
    finally:
        set_target(kb_app, EscalationTarget())


async def test_the_button_and_the_offer_only_with_a_slack_target(
    http_bot: HttpBot,  # noqa: F811
    slack: SlackSimulator,  # noqa: F811
    kb_app: App,  # noqa: F811
) -> None:
    # a Discord-only target is no target on Slack
    set_target(
        kb_app,
        EscalationTarget(discord_channel="1100000000000000001", discord_role="1100000000000000002"),
    )
    try:
        before = len(handoffs(kb_app))
        await http_bot.post(mention(FOUND, ts="1700019800.000100"))
        await http_bot.post(mention(UNKNOWN, ts="1700019900.000100"))
        found, unknown = sorted(
            await answered(slack, count=2), key=lambda u: "couldn't find" in u.args["text"]
        )
        assert "handoff_request" not in action_ids(found) + action_ids(unknown)
        assert "couldn't find" in unknown.args["text"]
        assert not any(w in unknown.args["text"].lower() for w in OFFERS)
        assert len(handoffs(kb_app)) == before and slack.pings() == []
    finally:
        set_target(kb_app, EscalationTarget())
