"""Buttons on the bot's Discord answers: 👍/👎 and, in a forum post, *Solved*.

The buttons carry what they mean in their ``custom_id`` (``supportbot:vote:up``,
``supportbot:vote:down``, ``supportbot:solved``) and nothing else: which answer they rate is the
message they are on, who clicked is the interaction's user. So a click is handled from the
interaction alone (:meth:`ComponentHandler.on_interaction`, called from the client's
``on_interaction``), whenever it comes: after a restart, on an answer of last month. No view is
kept in memory: :func:`answer_view` gives a stopped view, which discord.py sends without storing.

Votes follow the reactions' rules (``ConversationService.rate``, source ``button``): one vote
per user and answer, a 👎 replaces a 👍, and clicking your current vote again takes it back.
Every click is answered within Discord's 3 seconds by an ephemeral one-line message.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from enum import StrEnum

import discord

from bot.discord.forums import ForumSupport, Tagging, is_forum_post, mark_solved, may_mark_solved
from bot.formatting import render_notice
from bot.service import ConversationService
from feedback.store import RateOutcome

logger = logging.getLogger(__name__)

PREFIX = "supportbot:"
VOTE_UP, VOTE_DOWN, SOLVED = f"{PREFIX}vote:up", f"{PREFIX}vote:down", f"{PREFIX}solved"
_VOTES = {VOTE_UP: 1, VOTE_DOWN: -1}
_VOTE_EMOJI = {1: "👍", -1: "👎"}


class ControlKind(StrEnum):
    VOTE = "vote"
    SOLVED = "solved"


@dataclass(frozen=True, slots=True)
class Control:
    """What a button means: a vote (+1/-1) or "solved"."""

    kind: ControlKind
    value: int = 0


def parse_custom_id(custom_id: str) -> Control | None:
    """The meaning of one of our buttons' ``custom_id``; None for anyone else's."""
    if custom_id in _VOTES:
        return Control(ControlKind.VOTE, _VOTES[custom_id])
    if custom_id == SOLVED:
        return Control(ControlKind.SOLVED)
    return None


def answer_view(*, feedback: bool, solved: bool) -> discord.ui.View | None:
    """The buttons under an answer (one action row), or None when there are none.

    ``feedback``: 👍 and 👎; ``solved``: the *Solved* button (a forum post's answer). The view
    is stopped: its components are sent, no callback is kept (clicks reach the client's
    ``on_interaction``, see the module doc).
    """
    view = discord.ui.View(timeout=None)
    if feedback:
        view.add_item(
            discord.ui.Button(style=discord.ButtonStyle.secondary, emoji="👍", custom_id=VOTE_UP)
        )
        view.add_item(
            discord.ui.Button(style=discord.ButtonStyle.secondary, emoji="👎", custom_id=VOTE_DOWN)
        )
    if solved:
        view.add_item(
            discord.ui.Button(
                style=discord.ButtonStyle.success, emoji="✅", label="Solved", custom_id=SOLVED
            )
        )
    view.stop()
    return view if view.children else None


_COPY = "This is a copy of one of my answers: rate it, or mark it solved, where I posted it."


def _line(text: str) -> str:
    return render_notice(text, "discord")


class ComponentHandler:
    """Answers clicks on the bot's buttons (votes and *Solved*)."""

    def __init__(self, service: ConversationService, forums: ForumSupport) -> None:
        self._service = service
        self._forums = forums
        # Clicks of one user on one answer take turns, so a quick 👍 then 👎 lands in order.
        self._turn = asyncio.Lock()

    async def on_interaction(self, interaction: discord.Interaction) -> bool:
        """Handle a click on one of our buttons; False (untouched) for any other interaction."""
        if interaction.type is not discord.InteractionType.component or interaction.data is None:
            return False
        control = parse_custom_id(str(interaction.data.get("custom_id", "")))
        if control is None or interaction.message is None:
            return False
        me = interaction.client.user
        try:
            if me is not None and interaction.message.author.id != me.id:
                # A forward (or any copy) of an answer, maybe in another server: its buttons
                # came along, but rating it or tagging the post it sits in would act on
                # something that is not the answer.
                text = _COPY
            elif control.kind is ControlKind.VOTE:
                text = await self._vote(interaction, control.value)
            else:
                text = await self._solved(interaction)
        except Exception:  # recorded nothing: say so rather than leave "interaction failed"
            logger.exception("button %s on %s failed", control, interaction.message.id)
            text = "Sorry, that did not work just now. Please try again in a minute."
        await self._tell(interaction, text)
        return True

    async def _vote(self, interaction: discord.Interaction, value: int) -> str:
        message = interaction.message
        assert message is not None

        def rate(vote: int, event_id: str, withdrawn: int | None = None) -> RateOutcome | None:
            assert message is not None
            return self._service.rate(
                platform="discord",
                team_id=str(interaction.guild_id or ""),
                channel_id=str(message.channel.id),
                reply_message_id=str(message.id),
                user_id=str(interaction.user.id),
                value=vote,
                source="button",
                event_id=event_id,
                event_at=interaction.created_at,
                withdrawn=withdrawn,
            )

        async with self._turn:
            outcome = await asyncio.to_thread(rate, value, f"interaction:{interaction.id}")
            if outcome is None:
                return "This message is no answer of mine to rate."
            if outcome is RateOutcome.UNCHANGED:  # the same vote again: taken back
                await asyncio.to_thread(rate, 0, f"interaction:{interaction.id}:withdrawn", value)
                return f"Your {_VOTE_EMOJI[value]} is taken back."
        if value > 0:
            return "Thanks for the 👍! Click it again to take it back."
        return "Thanks for telling me 👎: a teammate will see it. Click it again to take it back."

    async def _solved(self, interaction: discord.Interaction) -> str:
        assert interaction.message is not None
        post = interaction.channel
        if not isinstance(post, discord.Thread) or not is_forum_post(post):
            found = await self._forums.post_of(interaction.message.channel.id)
            if found is None:
                return "Only a forum post can be marked solved."
            post = found
        if not may_mark_solved(post, interaction.user.id, interaction.permissions):
            return "Only the person who asked, or a moderator, can mark this post solved."
        await asyncio.to_thread(
            self._service.resolve,
            platform="discord",
            team_id=str(interaction.guild_id or ""),
            channel_id=str(post.id),
            message_id=str(interaction.message.id),
            user_id=str(interaction.user.id),
            event_at=interaction.created_at,
        )
        tagging = await mark_solved(post)
        return {
            Tagging.APPLIED: "Marked solved. Thanks!",
            Tagging.ALREADY: "This post is already marked solved.",
            Tagging.NO_TAG: "Noted as solved, thanks! (This forum has no Solved tag to apply.)",
            Tagging.FULL: "Noted as solved, thanks! (The post has 5 tags: no room for Solved.)",
            Tagging.REFUSED: "Noted as solved, thanks! (I may not tag this post.)",
            Tagging.NOT_A_POST: "Only a forum post can be marked solved.",
        }[tagging]

    @staticmethod
    async def _tell(interaction: discord.Interaction, text: str) -> None:
        """One ephemeral line to the clicker (nothing changes for anyone else)."""
        try:
            if interaction.response.is_done():
                await interaction.followup.send(
                    _line(text), ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
                )
            else:
                await interaction.response.send_message(
                    _line(text), ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
                )
        except discord.HTTPException as e:  # expired (over 3 s) or answered twice
            logger.warning("could not answer the click %s: %s", interaction.id, e)
