"""Handoff on Discord, end to end: the real discord.py client against the Discord simulator.

From words and from the "Talk to a human" button: a thread opened on the question, the
configured role pinged in the staff channel and nowhere else (``allowed_mentions`` limited to
it, as the simulator decides who a message notifies), the asker told in the thread by the
role's name with a *Resolved* button; a teammate's reply recorded, the bot quiet in the thread
until mentioned; closed by ✅ or the button; the times stored and shown by
``supportbot feedback report``. With no target: no button and no offer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.discord.components import VOTE_DOWN, VOTE_UP
from bot.discord.handoff import HANDOFF_ID, RESOLVED_ID, staff_post
from bot.handoff import EscalationTarget, HandoffReason
from feedback.handoffs import Handoff
from supportbot.app import App
from tests.discord_harness import (
    ALICE,
    BOB,
    GENERAL,
    GUILD,
    QUESTION,
    StartBot,
    eventually,
    interaction_of,
    kb_app,
    make_simulator,
    quiet,
    start_bot,
)
from tests.servers.discord import DiscordSimulator, Ping
from tests.test_cli import Cli, cli_env

__all__ = ["kb_app", "start_bot"]  # fixtures used here

STAFF, ROLE, OTHER_ROLE = "3000000000000000700", "3000000000000000701", "3000000000000000702"
UNKNOWN = "What is the airspeed velocity of an unladen swallow?"


@pytest.fixture
async def sim() -> Any:
    """The harness's server with a staff channel, a mentionable "Support" role and another."""
    simulator = make_simulator()
    simulator.add_channel(GUILD, STAFF, "support-staff")
    simulator.add_role(GUILD, ROLE, "Support", mentionable=True)
    simulator.add_role(GUILD, OTHER_ROLE, "Everyone-ish", mentionable=True)
    async with simulator:
        yield simulator


def workspace(app: App) -> str:
    [name] = app.conversations.workspaces_of_teams("discord", [GUILD])
    return name


def set_target(app: App, target: EscalationTarget) -> None:
    app.conversations.handoffs.set_target(workspace(app), target)


def handoffs(app: App) -> list[Handoff]:
    return app.conversations.handoffs.handoffs(workspace(app))


def handoff_of(app: App, thread_id: str) -> Handoff | None:
    return next((h for h in handoffs(app) if h.thread_id == thread_id), None)


async def once(app: App, thread_id: str, step: str) -> Handoff:
    """The thread's handoff once ``step`` (a time column, e.g. "resolved_at") is stored."""

    def check() -> Handoff | None:
        found = handoff_of(app, thread_id)
        return found if found is not None and getattr(found, step) is not None else None

    found: Handoff = await eventually(check, timeout=20)
    return found


def button_ids(message: dict[str, Any]) -> list[str]:
    return [b["custom_id"] for row in message.get("components") or [] for b in row["components"]]


async def answer_to(sim: DiscordSimulator, question: dict[str, Any]) -> dict[str, Any]:
    [answer] = await eventually(
        lambda: [
            m
            for m in sim.sent_messages(GENERAL)
            if m.get("message_reference", {}).get("message_id") == question["id"]
        ],
        timeout=20,
    )
    return answer


async def ask(sim: DiscordSimulator, text: str) -> dict[str, Any]:
    question = sim.message_create(GENERAL, ALICE, text, mention_bot=True)
    await sim.dispatch("MESSAGE_CREATE", question)
    return question


async def handed_off(sim: DiscordSimulator, app: App, thread_id: str) -> tuple[Handoff, Any, Any]:
    """The stored handoff once notified, the staff post and the notice in the thread."""
    row = await once(app, thread_id, "notified_at")
    [post] = await eventually(lambda: sim.sent_messages(STAFF))
    notice = next(m for m in sim.sent_messages(thread_id) if RESOLVED_ID in button_ids(m))
    return row, post, notice


def test_the_staff_post_escapes_the_transcript_and_fits_one_message() -> None:
    lines = [("asker", f"<@{BOB}> @everyone look **here** https://x.test"), ("bot", "no idea")]
    post = staff_post(
        role_id=ROLE,
        reason=HandoffReason.ASKED,
        where="<#1>",
        link="https://discord.com/channels/1/2",
        lines=lines,
    )
    assert post.startswith(f"<@&{ROLE}> **Handoff**: someone asked for a person")
    assert f"<@{BOB}>" not in post and "@everyone" not in post and "\\*\\*here" in post
    long = staff_post(
        role_id=ROLE, reason=HandoffReason.BUTTON, where="<#1>", link=None,
        lines=[("asker", "x" * 300)] * 20, asker_id=ALICE,
    )  # fmt: skip
    assert len(long) <= 2000 and f"<@{ALICE}> pressed" in long


@pytest.mark.slow
async def test_words_open_a_thread_ping_only_the_role_in_staff_then_quiet_until_mentioned(
    kb_app: App, start_bot: StartBot, sim: DiscordSimulator, tmp_path: Path
) -> None:
    set_target(kb_app, EscalationTarget(discord_channel=STAFF, discord_role=ROLE))
    try:
        await start_bot()
        question = await ask(
            sim, f"can I talk to a human please? <@{BOB}> @everyone <@&{OTHER_ROLE}>"
        )
        thread = question["id"]  # a thread opened on the question has its id
        row, post, notice = await handed_off(sim, kb_app, thread)

        assert row.reason == "asked" and row.channel_id == thread
        assert sim.channel(thread)["type"] == 11 and sim.channel(thread)["parent_id"] == GENERAL
        assert post["content"].startswith(f"<@&{ROLE}> **Handoff**")
        assert f"https://discord.com/channels/{GUILD}/{thread}" in post["content"]
        assert "talk to a human" in post["content"] and post["flags"] & 4  # embeds suppressed
        # the one ping: the configured role, in the staff channel; the transcript's @everyone,
        # user and other role show as text
        assert sim.pings() == [Ping(STAFF, post["id"], [], [ROLE], False)]
        assert "@Support" in notice["content"] and row.notice_message_id == notice["id"]

        # a teammate replies in the thread: the first human reply; the bot says nothing
        sent = len(sim.sent_messages())
        reply = sim.message_create(thread, BOB, "Hi Alice, I'm on it. Which plan are you on?")
        await sim.dispatch("MESSAGE_CREATE", reply)
        await once(kb_app, thread, "first_human_reply_at")
        # the asker answers the teammate without a mention: still quiet
        await sim.dispatch("MESSAGE_CREATE", sim.message_create(thread, ALICE, "The team plan"))
        await quiet(1.0)
        assert len(sim.sent_messages()) == sent
        # mentioned again: the bot answers in the thread
        await sim.dispatch(
            "MESSAGE_CREATE", sim.message_create(thread, ALICE, QUESTION, mention_bot=True)
        )
        await eventually(lambda: len(sim.sent_messages(thread)) == 2, timeout=20)
        assert sim.pings() == [Ping(STAFF, post["id"], [], [ROLE], False)]

        # ✅ by the asker on the question (in the channel) closes the handoff
        await sim.dispatch("MESSAGE_REACTION_ADD", sim.reaction_add(GENERAL, thread, ALICE, "✅"))
        done = await once(kb_app, thread, "resolved_at")
        # every step is timed (the reply at its message's time, the others at the bot's clock)
        assert done.notified_at and done.first_human_reply_at and done.resolved_at
        assert done.requested_at <= done.notified_at <= done.resolved_at
        assert done.requested_at <= done.first_human_reply_at <= done.resolved_at

        # the report: one handoff, replied to, with its wait
        db = Path(str(kb_app.engine.url.database))
        cli = Cli(cli_env(kb_app.settings.data_dir, db), tmp_path)
        report = cli.json("feedback", "report", "--workspace", workspace(kb_app), "--json")
        figures = report["handoffs"]
        assert figures["count"] >= 1 and figures["replied"] >= 1 and figures["resolved"] >= 1
        assert figures["median_seconds_to_first_human_reply"] is not None
        table = cli.ok("feedback", "report", "--workspace", workspace(kb_app)).stdout
        assert "median time to first human reply" in table
    finally:
        set_target(kb_app, EscalationTarget())


@pytest.mark.slow
async def test_the_button_hands_off_and_the_resolved_button_closes(
    kb_app: App, start_bot: StartBot, sim: DiscordSimulator
) -> None:
    set_target(kb_app, EscalationTarget(discord_channel=STAFF, discord_role=ROLE))
    try:
        await start_bot()
        question = await ask(sim, QUESTION)
        answer = await answer_to(sim, question)
        assert button_ids(answer) == [VOTE_UP, VOTE_DOWN, HANDOFF_ID]
        stored = await eventually(lambda: interaction_of(kb_app, question["id"]))

        click = sim.component_interaction(answer["id"], HANDOFF_ID, user=ALICE)
        await sim.dispatch("INTERACTION_CREATE", click)
        [ack] = await eventually(lambda: sim.interaction_replies(click["id"]))
        assert ack.type == 6  # acknowledged without a message; the notice is in the thread
        row, post, notice = await handed_off(sim, kb_app, question["id"])
        assert row.reason == "button" and row.interaction_id == stored.id
        assert sim.pings() == [Ping(STAFF, post["id"], [], [ROLE], False)]
        assert "pressed" in post["content"] and "30 minutes" in post["content"]  # transcript

        # pressed again (anyone): nobody is called twice for one thread
        again = sim.component_interaction(answer["id"], HANDOFF_ID, user=BOB)
        await sim.dispatch("INTERACTION_CREATE", again)
        await eventually(lambda: len(sim.sent_messages(question["id"])) == 2)
        assert len(sim.sent_messages(STAFF)) == 1

        resolve = sim.component_interaction(notice["id"], RESOLVED_ID, user=ALICE)
        await sim.dispatch("INTERACTION_CREATE", resolve)
        [closed] = await eventually(lambda: sim.interaction_replies(resolve["id"]))
        assert closed.type == 7 and "Resolved" in sim.message(notice["id"])["content"]
        assert sim.message(notice["id"])["components"] == []
        row = await once(kb_app, question["id"], "resolved_at")
        assert row.notified_at and row.resolved_at
        assert row.requested_at <= row.notified_at <= row.resolved_at
    finally:
        set_target(kb_app, EscalationTarget())


@pytest.mark.slow
async def test_an_answer_that_found_nothing_is_handed_off_with_a_role_only_target(
    kb_app: App, start_bot: StartBot, sim: DiscordSimulator
) -> None:
    """With a role but no staff channel the role is pinged in the conversation's thread."""
    set_target(kb_app, EscalationTarget(discord_role=ROLE))
    try:
        await start_bot()
        question = await ask(sim, UNKNOWN)
        answer = await answer_to(sim, question)
        assert HANDOFF_ID not in button_ids(answer)  # handed off at once: nothing to press
        assert "person from the team" in answer["content"]
        thread = question["id"]
        row = await once(kb_app, thread, "notified_at")
        assert row.reason == "not_found"
        [ping] = sim.pings()
        assert (ping.channel_id, ping.roles, ping.users, ping.everyone) == (
            thread,
            [ROLE],
            [],
            False,
        )
    finally:
        set_target(kb_app, EscalationTarget())


@pytest.mark.slow
async def test_no_target_no_button_no_offer_no_handoff(
    kb_app: App, start_bot: StartBot, sim: DiscordSimulator
) -> None:
    set_target(kb_app, EscalationTarget())
    before = len(handoffs(kb_app))
    await start_bot()
    answer = await answer_to(sim, await ask(sim, QUESTION))
    assert HANDOFF_ID not in button_ids(answer)
    for text in ("talk to a human", UNKNOWN):
        reply = await answer_to(sim, await ask(sim, text))
        words = reply["content"].lower()
        assert not any(w in words for w in ("human", "teammate", "person")), words
        assert HANDOFF_ID not in button_ids(reply)
    await quiet()
    assert len(handoffs(kb_app)) == before
    assert sim.pings() == [] and sim.sent_messages(STAFF) == []
