"""Buttons on Discord answers: their shape (valid for Discord, custom_id within 100 characters),
their meaning parsed back from the custom_id alone (so a click works after a restart), and,
end to end, a click rating the answer through the same rules as reactions."""

from __future__ import annotations

from typing import Any

import discord
import pytest

from bot.discord.components import (
    SOLVED,
    VOTE_DOWN,
    VOTE_UP,
    Control,
    ControlKind,
    answer_view,
    parse_custom_id,
)
from supportbot.app import App
from tests.discord_harness import (
    ALICE,
    BOB,
    GENERAL,
    QUESTION,
    StartBot,
    eventually,
    interaction_of,
    kb_app,
    rating_events_of,
    ratings_of,
    sim,
    start_bot,
)
from tests.servers.discord import DiscordSimulator, _component_errors

__all__ = ["kb_app", "sim", "start_bot"]  # fixtures used here


def test_custom_ids_mean_what_they_say_and_nothing_else_is_ours():
    assert parse_custom_id(VOTE_UP) == Control(ControlKind.VOTE, 1)
    assert parse_custom_id(VOTE_DOWN) == Control(ControlKind.VOTE, -1)
    assert parse_custom_id(SOLVED) == Control(ControlKind.SOLVED)
    for other in ("", "supportbot:", "supportbot:vote:sideways", "vote:up", "feedback_helpful"):
        assert parse_custom_id(other) is None


@pytest.mark.parametrize(
    ("feedback", "solved", "ids"),
    [
        (True, False, [VOTE_UP, VOTE_DOWN]),
        (True, True, [VOTE_UP, VOTE_DOWN, SOLVED]),
        (False, True, [SOLVED]),
    ],
)
async def test_answer_buttons_are_one_valid_row_kept_nowhere_in_memory(
    feedback: bool, solved: bool, ids: list[str]
):
    view = answer_view(feedback=feedback, solved=solved)
    assert view is not None
    components = view.to_components()
    assert _component_errors(components) == {}
    [row] = components
    assert [b["custom_id"] for b in row["components"]] == ids
    assert all(len(i) <= 100 for i in ids)
    # Stopped: discord.py sends it but keeps no callback (clicks go to on_interaction).
    assert view.is_finished()


async def test_no_controls_no_view():
    assert answer_view(feedback=False, solved=False) is None


def test_the_simulator_refuses_what_discord_refuses_in_components():
    button = {"type": 2, "style": 2, "label": "ok", "custom_id": "a"}
    assert _component_errors([{"type": 1, "components": [button]}]) == {}
    bad = {
        "not rows": [button],
        "empty row": [{"type": 1, "components": []}],
        "six buttons": [
            {"type": 1, "components": [{**button, "custom_id": str(i)} for i in range(6)]}
        ],
        "long id": [{"type": 1, "components": [{**button, "custom_id": "x" * 101}]}],
        "no id": [{"type": 1, "components": [{"type": 2, "style": 1, "label": "x"}]}],
        "same id": [{"type": 1, "components": [button, button]}],
        "link with id": [
            {"type": 1, "components": [{**button, "style": 5, "url": "https://x.test"}]}
        ],
        "six rows": [
            {"type": 1, "components": [{**button, "custom_id": str(i)}]} for i in range(6)
        ],
        "bare": [{"type": 1, "components": [{"type": 2, "style": 1, "custom_id": "z"}]}],
    }
    for name, components in bad.items():
        assert _component_errors(components), name


def test_discord_py_button_styles_match_the_wire():
    assert discord.ButtonStyle.secondary.value == 2 and discord.ButtonStyle.success.value == 3


# --- end to end: the real discord.py client against the simulator ---------------------------


async def ask_in_general(sim: DiscordSimulator, app: App) -> tuple[dict[str, Any], int]:
    """Alice asks with a mention; returns the bot's answer and the stored interaction's id."""
    question = sim.message_create(GENERAL, ALICE, QUESTION, mention_bot=True)
    await sim.dispatch("MESSAGE_CREATE", question)
    [answer] = await eventually(
        lambda: [
            m
            for m in sim.sent_messages(GENERAL)
            if m.get("message_reference", {}).get("message_id") == question["id"]
        ],
        timeout=20,
    )
    stored = await eventually(lambda: interaction_of(app, question["id"]))
    return answer, stored.id


async def click(sim: DiscordSimulator, message_id: str, custom_id: str, user: str) -> str:
    event = sim.component_interaction(message_id, custom_id, user=user)
    await sim.dispatch("INTERACTION_CREATE", event)
    [reply] = await eventually(lambda: sim.interaction_replies(event["id"]))
    assert reply.type == 4 and reply.body["data"]["flags"] & 64, reply.body  # ephemeral
    return str(reply.body["data"]["content"])


def votes(app: App, interaction_id: int) -> list[tuple[int, str]]:
    return sorted((r.value, r.source) for r in ratings_of(app, interaction_id))


@pytest.mark.slow
async def test_buttons_rate_the_answer_one_vote_per_user_and_a_second_click_takes_it_back(
    kb_app: App, start_bot: StartBot, sim: DiscordSimulator
):
    await start_bot()
    answer, interaction_id = await ask_in_general(sim, kb_app)
    [row] = answer["components"]
    assert [b["custom_id"] for b in row["components"]] == [VOTE_UP, VOTE_DOWN]  # no Solved here

    assert "Thanks for the 👍" in await click(sim, answer["id"], VOTE_UP, BOB)
    assert votes(kb_app, interaction_id) == [(1, "button")]
    assert "taken back" in await click(sim, answer["id"], VOTE_UP, BOB)
    assert votes(kb_app, interaction_id) == []
    await click(sim, answer["id"], VOTE_DOWN, BOB)
    await click(sim, answer["id"], VOTE_UP, ALICE)
    await click(sim, answer["id"], VOTE_UP, BOB)  # replaces Bob's 👎
    assert votes(kb_app, interaction_id) == [(1, "button"), (1, "button")]
    events = sorted(rating_events_of(kb_app, interaction_id), key=lambda e: e.id or 0)
    changes = [(e.old_value, e.new_value) for e in events if e.old_value != e.new_value]
    assert changes == [(0, 1), (1, 0), (0, -1), (0, 1), (-1, 1)]
    assert {e.source for e in events} == {"button"}

    # A reaction counts as the same vote: Bob's 👎 reaction replaces his 👍 button.
    await sim.dispatch("MESSAGE_REACTION_ADD", sim.reaction_add(GENERAL, answer["id"], BOB, "👎"))
    await eventually(lambda: votes(kb_app, interaction_id) == [(-1, "reaction"), (1, "button")])


@pytest.mark.slow
async def test_buttons_still_work_after_the_bot_restarts(
    kb_app: App, start_bot: StartBot, sim: DiscordSimulator
):
    first = await start_bot()
    answer, interaction_id = await ask_in_general(sim, kb_app)
    await first.close()

    await start_bot()  # a new process would have nothing in memory either
    assert "Thanks" in await click(sim, answer["id"], VOTE_DOWN, BOB)
    assert votes(kb_app, interaction_id) == [(-1, "button")]


@pytest.mark.slow
async def test_a_click_on_a_message_that_is_no_answer_gets_a_line_and_nothing_is_stored(
    kb_app: App, start_bot: StartBot, sim: DiscordSimulator
):
    await start_bot()
    await sim.dispatch("MESSAGE_CREATE", sim.message_create(GENERAL, BOB, "hello all"))
    # An old message of the bot's that is no recorded answer, with our buttons.
    stray = sim.store_message(
        {
            **sim.message_create(GENERAL, sim.bot_id, "notice"),
            "components": [
                {
                    "type": 1,
                    "components": [
                        {"type": 2, "style": 2, "emoji": {"name": "👍"}, "custom_id": VOTE_UP}
                    ],
                }
            ],
        }
    )
    assert "no answer of mine" in await click(sim, stray["id"], VOTE_UP, BOB)
