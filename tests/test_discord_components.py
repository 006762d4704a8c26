"""Buttons on Discord answers: their shape (valid for Discord, custom_id within 100 characters),
their meaning parsed back from the custom_id alone (so a click works after a restart), and,
end to end, a click rating the answer through the same rules as reactions."""

from __future__ import annotations

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
from tests.servers.discord import _component_errors


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
        "six rows": [{"type": 1, "components": [{**button, "custom_id": str(i)}]} for i in range(6)],
        "bare": [{"type": 1, "components": [{"type": 2, "style": 1, "custom_id": "z"}]}],
    }
    for name, components in bad.items():
        assert _component_errors(components), name


def test_discord_py_button_styles_match_the_wire():
    assert discord.ButtonStyle.secondary.value == 2 and discord.ButtonStyle.success.value == 3
