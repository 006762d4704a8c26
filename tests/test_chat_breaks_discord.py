"""Discord handoffs and forums attacked (see ``tests/test_chat_breaks_handoff.py`` for the
Slack side): a DM handoff closed by the asker, a staff channel the bot may not post in, forum
posts with no words, ✅ in a forum without a solved tag, clicks from another server's user.
The real discord.py client against the simulator (``tests/discord_harness.py``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from bot.handoff import EscalationTarget
from feedback.handoffs import Handoff
from supportbot.app import App
from tests.discord_harness import (
    ALICE,
    GUILD,
    StartBot,
    eventually,
    kb_app,
    make_simulator,
    quiet,
    start_bot,
)
from tests.servers.discord import DiscordSimulator

__all__ = ["kb_app", "start_bot"]  # fixtures used here

pytestmark = pytest.mark.slow

# --- Discord ----------------------------------------------------------------------------------

DSTAFF, DROLE = "3000000000000000800", "3000000000000000801"
DM_CHANNEL = "3000000000000000850"


@pytest.fixture
async def sim() -> Any:
    simulator = make_simulator()
    simulator.add_channel(GUILD, DSTAFF, "support-staff")
    simulator.add_role(GUILD, DROLE, "Support", mentionable=True)
    simulator.add_dm_channel(ALICE, channel_id=DM_CHANNEL)
    async with simulator:
        yield simulator


def _dworkspace(app: App) -> str:
    [name] = app.conversations.workspaces_of_teams("discord", [GUILD])
    return name


def _dhandoffs(app: App) -> list[Handoff]:
    return app.conversations.handoffs.handoffs(_dworkspace(app))


@pytest.mark.parametrize("close", ["reaction", "button"])
async def test_discord_dm_handoff_is_closed_by_the_asker(
    kb_app: App, start_bot: StartBot, sim: DiscordSimulator, close: str
) -> None:
    """A DM has no guild: close_handoff looked the workspace up by the (empty) guild id and a
    DM handoff could never be resolved."""
    from bot.discord.handoff import RESOLVED_ID

    app = kb_app
    app.conversations.handoffs.set_target(
        _dworkspace(app), EscalationTarget(discord_channel=DSTAFF, discord_role=DROLE)
    )
    before = len(_dhandoffs(app))
    try:
        await start_bot(public_dm_workspace=_dworkspace(app))
        question = sim.message_create(DM_CHANNEL, ALICE, "진짜 사람 없어요? 상담원 없나요")
        await sim.dispatch("MESSAGE_CREATE", question)
        notice = await eventually(
            lambda: next(
                (
                    m
                    for m in sim.sent_messages(DM_CHANNEL)
                    if RESOLVED_ID in str(m.get("components"))
                ),
                None,
            ),
            timeout=20,
        )
        assert "직접 연락" in notice["content"]
        await eventually(lambda: len(_dhandoffs(app)) == before + 1, timeout=10)
        await eventually(lambda: _dhandoffs(app)[before].notified_at is not None)
        if close == "reaction":
            await sim.dispatch(
                "MESSAGE_REACTION_ADD", sim.reaction_add(DM_CHANNEL, notice["id"], ALICE, "✅")
            )
        else:
            click = sim.component_interaction(notice["id"], RESOLVED_ID, user=ALICE)
            await sim.dispatch("INTERACTION_CREATE", click)
            await eventually(lambda: "Resolved" in sim.message(notice["id"])["content"])
        await eventually(lambda: _dhandoffs(app)[before].resolved_at is not None, timeout=10)
    finally:
        app.conversations.handoffs.set_target(_dworkspace(app), EscalationTarget())


async def test_discord_staff_channel_403_tells_the_asker_the_truth(
    kb_app: App,
    start_bot: StartBot,
    sim: DiscordSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.discord_harness import GENERAL

    app = kb_app
    app.conversations.handoffs.set_target(
        _dworkspace(app), EscalationTarget(discord_channel=DSTAFF, discord_role=DROLE)
    )
    before = len(_dhandoffs(app))
    try:
        await start_bot()
        sim.fail_next(
            "POST", f"/channels/{DSTAFF}/messages", status=403, code=50001, message="Missing Access"
        )
        text = "I want to speak with a live agent"
        with caplog.at_level(logging.WARNING):
            question = sim.message_create(GENERAL, ALICE, text, mention_bot=True)
            await sim.dispatch("MESSAGE_CREATE", question)
            told = await eventually(
                lambda: [
                    m
                    for m in sim.sent_messages(question["id"])
                    if m["content"].startswith("I couldn't reach the support team")
                ],
                timeout=20,
            )
        assert told and "RESOLVED" not in str(told[0].get("components")).upper()
        lines = [r.getMessage() for r in caplog.records if "nobody was called" in r.getMessage()]
        assert len(lines) == 1 and "403" in lines[0] and "Send Messages" in lines[0]
        assert "Traceback" not in caplog.text
        await quiet(0.3)
        assert len(_dhandoffs(app)) == before and sim.pings() == []
        await asyncio.sleep(0)
    finally:
        app.conversations.handoffs.set_target(_dworkspace(app), EscalationTarget())
