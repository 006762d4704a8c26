"""Discord support forums: the "solved" tag found by its meaning, the post's tags kept within
Discord's limit, and, end to end, a post answered and tagged by ✅ and by the button."""

from __future__ import annotations

from typing import Any

import discord
import pytest

from bot.discord.forums import MAX_APPLIED_TAGS, solved_tag, tags_with
from feedback.models import Signal as MessageSignal
from supportbot.app import App
from tests.discord_harness import (
    ALICE,
    BOB,
    FORUM,
    MOD,
    OTHER_TAGS,
    PLAIN_FORUM,
    QUESTION,
    QUIET_FORUM,
    TAG_QUESTION,
    TAG_SOLVED,
    StartBot,
    eventually,
    interaction_of,
    kb_app,
    new_post,
    quiet,
    signals_of,
    sim,
    start_bot,
)
from tests.servers.discord import DiscordSimulator


def tags(*names: str | tuple[str, str]) -> list[discord.ForumTag]:
    built = []
    for n, name in enumerate(names, start=1):
        label, emoji = name if isinstance(name, tuple) else (name, None)
        tag = discord.ForumTag(name=label, emoji=emoji)
        tag.id = n
        built.append(tag)
    return built


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["Bug", "Question", "Solved"], "Solved"),
        (["bug", "SOLVED"], "SOLVED"),
        (["✅ Solved"], "✅ Solved"),
        (["Resolved!"], "Resolved!"),
        (["질문", "해결됨"], "해결됨"),
        (["해결"], "해결"),
        (["해결 완료"], "해결 완료"),
        (["Answered", "Idea"], "Answered"),
        (["답변 완료"], "답변 완료"),
        (["Answered", "Solved"], "Solved"),  # the stronger kind wins, wherever it is
        (["✅"], "✅"),
        (["✔️"], "✔️"),
        ([("Done", "✅")], "Done"),
        (["解決済み"], "解決済み"),
    ],
)
def test_the_solved_tag_is_found_by_its_meaning(names: list[str], expected: str):
    found = solved_tag(tags(*names))
    assert found is not None and found.name == expected


@pytest.mark.parametrize(
    "names",
    [
        ["Unsolved", "Bug"],
        ["미해결", "질문"],
        ["Not answered", "Needs answer"],
        ["Solved later?"],
        [("Open", "❌")],
        [],
    ],
)
def test_no_tag_means_solved_when_none_says_so(names: list[str]):
    assert solved_tag(tags(*names)) is None


def test_a_tag_is_added_to_the_posts_tags_within_the_limit():
    assert tags_with([1, 2], 9) == [1, 2, 9]
    assert tags_with([], 9) == [9]
    assert tags_with([1, 9], 9) is None  # already there
    assert tags_with(list(range(MAX_APPLIED_TAGS)), 9) is None  # no room: none dropped


# --- end to end: the real discord.py client against the simulator ---------------------------

__all__ = ["kb_app", "sim", "start_bot"]  # fixtures used here


async def answered(sim: DiscordSimulator, post_id: str, count: int = 1) -> list[dict[str, Any]]:
    """The bot's messages in the post, once there are ``count``."""
    return await eventually(
        lambda: (sent := sim.sent_messages(post_id)) and len(sent) >= count and sent, timeout=20
    )


def tag_patches(sim: DiscordSimulator, post_id: str) -> list[list[str]]:
    """The ``applied_tags`` the bot wrote to the post, in order."""
    return [
        c.body["applied_tags"]
        for c in sim.calls("PATCH", f"/channels/{post_id}")
        if isinstance(c.body, dict) and "applied_tags" in c.body and c.ok
    ]


def resolved(app: App, question_id: str) -> list[MessageSignal]:
    interaction = interaction_of(app, question_id)
    assert interaction is not None
    return [s for s in signals_of(app, interaction.id) if s.kind == "resolved"]


async def click(sim: DiscordSimulator, message_id: str, custom_id: str, user: str) -> str:
    """Click a button; returns the ephemeral line the clicker got."""
    event = sim.component_interaction(message_id, custom_id, user=user)
    await sim.dispatch("INTERACTION_CREATE", event)
    [reply] = await eventually(lambda: sim.interaction_replies(event["id"]))
    assert reply.type == 4 and reply.body["data"]["flags"] & 64, reply.body  # ephemeral
    return str(reply.body["data"]["content"])


@pytest.mark.slow
async def test_a_new_post_in_a_support_forum_is_answered_in_the_post_with_its_buttons(
    kb_app: App, start_bot: StartBot, sim: DiscordSimulator
):
    await start_bot()
    # The question is in the title only, as often in forums.
    post = await new_post(sim, FORUM, ALICE, QUESTION, "Thanks in advance!", tags=[TAG_QUESTION])
    [answer] = await answered(sim, post["id"])

    assert "30 minutes" in answer["content"]
    assert answer["message_reference"]["message_id"] == post["id"]
    [row] = answer["components"]
    assert [b["custom_id"] for b in row["components"]] == [
        "supportbot:vote:up",
        "supportbot:vote:down",
        "supportbot:solved",
    ]
    stored = await eventually(lambda: interaction_of(kb_app, post["id"]))
    assert stored.channel_id == post["id"] and QUESTION in stored.question

    # The asker's follow-up in the post is answered without a mention; a bystander's is not.
    follow = sim.message_create(post["id"], ALICE, "And can I request a new reset link?")
    await sim.dispatch("MESSAGE_CREATE", follow)
    await answered(sim, post["id"], count=2)
    await sim.dispatch(
        "MESSAGE_CREATE", sim.message_create(post["id"], BOB, "I had this too, it expired")
    )
    await quiet()
    assert len(sim.sent_messages(post["id"])) == 2


@pytest.mark.slow
async def test_posts_in_a_forum_not_set_to_all_questions_are_left_alone(
    start_bot: StartBot, sim: DiscordSimulator
):
    await start_bot()
    post = await new_post(sim, QUIET_FORUM, ALICE, "Reset link", QUESTION)
    await quiet(1.0)
    assert sim.sent_messages(post["id"]) == []
    mentioned = sim.forum_post(QUIET_FORUM, ALICE, "Reset link", QUESTION, mention_bot=True)
    await sim.dispatch("THREAD_CREATE", mentioned[0])
    await sim.dispatch("MESSAGE_CREATE", mentioned[1])
    await answered(sim, mentioned[1]["id"])


@pytest.mark.slow
async def test_the_askers_check_mark_tags_the_post_solved_and_records_the_resolution(
    kb_app: App, start_bot: StartBot, sim: DiscordSimulator
):
    await start_bot()
    post = await new_post(sim, FORUM, ALICE, "Reset link", QUESTION, tags=[TAG_QUESTION])
    [answer] = await answered(sim, post["id"])
    await eventually(lambda: interaction_of(kb_app, post["id"]))

    # A bystander's ✅ does nothing.
    await sim.dispatch(
        "MESSAGE_REACTION_ADD", sim.reaction_add(post["id"], answer["id"], BOB, "✅")
    )
    await quiet()
    assert tag_patches(sim, post["id"]) == []

    await sim.dispatch(
        "MESSAGE_REACTION_ADD", sim.reaction_add(post["id"], answer["id"], ALICE, "✅")
    )
    await eventually(lambda: tag_patches(sim, post["id"]))
    assert tag_patches(sim, post["id"]) == [[TAG_QUESTION, TAG_SOLVED]]  # the Question tag kept
    assert sim.channel(post["id"])["applied_tags"] == [TAG_QUESTION, TAG_SOLVED]
    [signal] = await eventually(lambda: resolved(kb_app, post["id"]))
    assert signal.weight == 1

    # The ✅ taken off and given again, or given on the question too: no second tag change.
    await sim.dispatch(
        "MESSAGE_REACTION_REMOVE", sim.reaction_remove(post["id"], answer["id"], ALICE, "✅")
    )
    for message_id in (answer["id"], post["id"]):
        await sim.dispatch(
            "MESSAGE_REACTION_ADD", sim.reaction_add(post["id"], message_id, ALICE, "✅")
        )
    await quiet()
    assert len(tag_patches(sim, post["id"])) == 1


@pytest.mark.slow
async def test_a_moderators_check_mark_tags_the_post_but_is_no_askers_resolution(
    kb_app: App, start_bot: StartBot, sim: DiscordSimulator
):
    await start_bot()
    post = await new_post(sim, FORUM, ALICE, "Reset link", QUESTION)
    [answer] = await answered(sim, post["id"])
    await eventually(lambda: interaction_of(kb_app, post["id"]))
    await sim.dispatch(
        "MESSAGE_REACTION_ADD", sim.reaction_add(post["id"], answer["id"], MOD, "✅")
    )
    await eventually(lambda: tag_patches(sim, post["id"]))
    assert tag_patches(sim, post["id"]) == [[TAG_SOLVED]]
    assert resolved(kb_app, post["id"]) == []


@pytest.mark.slow
async def test_the_solved_button_tags_the_post_for_the_asker_only(
    kb_app: App, start_bot: StartBot, sim: DiscordSimulator
):
    await start_bot()
    post = await new_post(sim, FORUM, ALICE, "Reset link", QUESTION, tags=[TAG_QUESTION])
    [answer] = await answered(sim, post["id"])
    await eventually(lambda: interaction_of(kb_app, post["id"]))

    refused = await click(sim, answer["id"], "supportbot:solved", BOB)
    assert "Only the person who asked" in refused
    assert tag_patches(sim, post["id"]) == []

    done = await click(sim, answer["id"], "supportbot:solved", ALICE)
    assert "Marked solved" in done
    assert tag_patches(sim, post["id"]) == [[TAG_QUESTION, TAG_SOLVED]]
    assert len(await eventually(lambda: resolved(kb_app, post["id"]))) == 1

    again = await click(sim, answer["id"], "supportbot:solved", ALICE)
    assert "already marked solved" in again
    assert len(tag_patches(sim, post["id"])) == 1


@pytest.mark.slow
async def test_without_a_solved_tag_or_room_for_it_the_resolution_is_still_recorded(
    kb_app: App, start_bot: StartBot, sim: DiscordSimulator
):
    await start_bot()
    plain = await new_post(sim, PLAIN_FORUM, ALICE, "Reset link", QUESTION)
    full = await new_post(
        sim, FORUM, ALICE, "Reset link again", QUESTION, tags=[*OTHER_TAGS, TAG_QUESTION]
    )
    [plain_answer] = await answered(sim, plain["id"])
    [full_answer] = await answered(sim, full["id"])
    await eventually(
        lambda: interaction_of(kb_app, plain["id"]) and interaction_of(kb_app, full["id"])
    )

    assert "no Solved tag" in await click(sim, plain_answer["id"], "supportbot:solved", ALICE)
    assert "5 tags" in await click(sim, full_answer["id"], "supportbot:solved", ALICE)
    assert tag_patches(sim, plain["id"]) == tag_patches(sim, full["id"]) == []
    assert len(await eventually(lambda: resolved(kb_app, plain["id"]))) == 1
    assert len(await eventually(lambda: resolved(kb_app, full["id"]))) == 1


@pytest.mark.slow
async def test_a_bot_without_manage_threads_records_the_resolution_and_keeps_running(
    kb_app: App, start_bot: StartBot, sim: DiscordSimulator
):
    sim.add_member(sim.channel(FORUM)["guild_id"], sim.bot_id)  # no role: no Manage Threads
    await start_bot()
    post = await new_post(sim, FORUM, ALICE, "Reset link", QUESTION)
    [answer] = await answered(sim, post["id"])
    await eventually(lambda: interaction_of(kb_app, post["id"]))

    assert "may not tag" in await click(sim, answer["id"], "supportbot:solved", ALICE)
    assert [c.status for c in sim.calls("PATCH", f"/channels/{post['id']}")] == [403]
    assert len(await eventually(lambda: resolved(kb_app, post["id"]))) == 1
    follow = sim.message_create(post["id"], ALICE, "How do I request a new reset link?")
    await sim.dispatch("MESSAGE_CREATE", follow)
    await answered(sim, post["id"], count=2)
