"""Handing a Discord conversation to people: the staff post, the asker's notice, buttons.

**Where the people meet the asker.** Discord has no reply threads in a channel (a question
there is a message, its answer a reply), so a handoff of a channel question opens a public
thread on the question (a thread started from a message has the message's id), and the asker
and the teammates continue there; a question already in a thread or a forum post stays in it.
A public thread rather than a private one: the asker sees it at once under their question,
teammates join by the link without being added one by one, and a private thread needs the
server's boost level for some servers and Manage Threads to add people. Where no thread can
be opened (a DM, a private ``/ask``, or no permission to create threads) the staff post names
the asker (a user mention that is not pinged, so staff can click through to them) and the
asker is told a teammate will contact them.

**The one deliberate ping.** The staff post goes to the configured staff channel (or, with a
role but no channel, into the conversation's thread) and mentions the configured role as
``<@&ID>`` with ``allowed_mentions`` limited to exactly that role: no user, no other role, no
``@everyone`` can be notified by it. Discord notifies a role's members only when the role is
*mentionable* or the bot has *Mention @everyone, @here and All Roles* (logged when neither
holds). The post links the conversation (a jump link) and quotes a short transcript escaped
(:func:`bot.render.escape.escape_text`: mentions in it are broken and show as text) with
embeds suppressed.

**The asker** is told in the thread who was called (the role's name as plain text, no ping)
with a *Resolved* button. Every answer gets a "Talk to a human" button when the workspace has
a Discord target. The buttons carry their meaning in ``custom_id`` (:data:`HANDOFF_ID`,
:data:`RESOLVED_ID`), like :mod:`bot.discord.components`: a click is handled from the
interaction alone (the message it is on), so the buttons keep working after a restart.

:func:`install_discord_handoff` plugs this into the reply flow (:mod:`bot.reply`): the
:data:`~bot.decide.Action.HANDOFF` handler, the button on answers, the handoff after an answer
that found nothing, and the two buttons (:meth:`DiscordHandoff.on_interaction`, called from the
client's ``on_interaction``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import discord

from bot.decide import Action
from bot.discord.events import incoming_from_message, plain_content
from bot.formatting import render_notice
from bot.handoff import (
    EscalationFailed,
    HandoffReason,
    HandoffTicket,
    asker_notice,
    transcript,
    unreachable_notice,
)
from bot.message import IncomingMessage
from bot.render.escape import escape_text
from bot.reply import AnswerControls, Reply, ReplyFlow
from bot.service import ConversationService
from retrieval.chain import Answer
from retrieval.workspaces import WorkspaceInfo

logger = logging.getLogger(__name__)

HANDOFF_ID = "supportbot:handoff"
RESOLVED_ID = "supportbot:handoff:resolved"
MAX_CONTENT = 2000  # Discord's limit for a message's content
THREAD_ARCHIVE_MINUTES: Literal[1440] = 1440  # a day without messages: the thread hides
_NO_MENTIONS = discord.AllowedMentions.none()
_MENTION_ALL_ROLES = "mention_everyone"  # the permission that lets a bot ping any role

_REASONS = {
    HandoffReason.ASKED: "asked for a person",
    HandoffReason.NOT_FOUND: "asked something the documentation does not answer",
    HandoffReason.BUTTON: "pressed “Talk to a human”",
}


def handoff_button() -> discord.ui.Button[Any]:
    """The "Talk to a human" button drawn with an answer's controls."""
    return discord.ui.Button(
        style=discord.ButtonStyle.primary, emoji="🙋", label="Talk to a human", custom_id=HANDOFF_ID
    )


def with_handoff(view: discord.ui.View | None) -> discord.ui.View:
    """``view`` (or a new one) with the "Talk to a human" button added; stopped, so nothing is
    kept in memory (clicks reach ``on_interaction``)."""
    view = view or discord.ui.View(timeout=None)
    view.add_item(handoff_button())
    view.stop()
    return view


def resolved_view() -> discord.ui.View:
    """The *Resolved* button under the asker's notice."""
    view = discord.ui.View(timeout=None)
    view.add_item(
        discord.ui.Button(
            style=discord.ButtonStyle.success, emoji="✅", label="Resolved", custom_id=RESOLVED_ID
        )
    )
    view.stop()
    return view


def staff_mentions(role_id: str | None) -> discord.AllowedMentions:
    """Exactly the configured role may be pinged (nothing when there is none)."""
    roles = [discord.Object(int(role_id))] if role_id else False
    return discord.AllowedMentions(everyone=False, users=False, roles=roles, replied_user=False)


def jump_link(guild_id: str, channel_id: str, message_id: str | None = None) -> str:
    """The address Discord's clients open a channel (or one message in it) at."""
    tail = f"/{message_id}" if message_id else ""
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}{tail}"


def staff_post(
    *,
    role_id: str | None,
    reason: HandoffReason,
    where: str,
    link: str | None,
    lines: Sequence[tuple[str, str]],
    asker_id: str | None = None,
) -> str:
    """The staff post's content: the role's mention, why, where (a link), the transcript.

    ``where``: a channel mention or words; ``asker_id``: named when no thread is shared with
    them (a ``<@id>`` the allowed mentions do not let ping). Transcript lines are escaped and
    the oldest dropped until the post fits in one message.
    """
    head = f"<@&{role_id}> " if role_id else ""
    who = f"<@{asker_id}>" if asker_id else "someone"
    at = f" See {link}" if link else ""
    first = f"{head}**Handoff**: {who} {_REASONS[reason]} in {where}.{at}"
    quoted = [f"> **{escape_text(w, 'discord')}:** {escape_text(t, 'discord')}" for w, t in lines]
    while quoted and len(first) + sum(len(q) + 1 for q in quoted) > MAX_CONTENT:
        quoted.pop(0)
    return "\n".join([first, *quoted])[:MAX_CONTENT]


@dataclass(frozen=True, slots=True)
class Place:
    """Where the asker is told and the people reply.

    ``thread``: the thread (or DM) the conversation continues in, or None (a private
    ``/ask``: the notice goes through ``followup``); ``channel_id``/``thread_id``: how the
    handoff is keyed (for a thread both are its id, as its messages are keyed);
    ``shared``: teammates can write there (a server thread), else they contact the asker;
    ``in_server``: ``thread`` is a server's channel or thread (a role can be pinged there).
    """

    thread: discord.abc.Messageable | None
    channel_id: str
    thread_id: str
    link: str
    where: str
    shared: bool
    in_server: bool = False
    followup: discord.Webhook | None = None
    ephemeral: bool = False


class DiscordHandoffNotifier:
    """:class:`bot.handoff.HandoffNotifier` for one conversation (see the module doc)."""

    def __init__(
        self, client: discord.Client, place: Place, lines: Sequence[tuple[str, str]]
    ) -> None:
        self._client = client
        self._place = place
        self._lines = lines

    async def escalate(self, ticket: HandoffTicket) -> str:
        target, m = ticket.target, ticket.message
        guild = self._client.get_guild(int(m.team_id)) if m.team_id else None
        role = guild.get_role(int(target.discord_role)) if guild and target.discord_role else None
        if guild is not None and target.discord_role and role is None:  # not cached yet
            roles = await guild.fetch_roles()
            role = next((r for r in roles if str(r.id) == target.discord_role), None)
        self._check_pingable(guild, role)
        try:
            staff = await self._staff_channel(target.discord_channel, guild)
        except discord.HTTPException as e:
            raise EscalationFailed(
                f"Discord refused the staff channel {target.discord_channel} "
                f"({e.status} {e.text or e.code}){_hint(e)}"
            ) from e
        if staff is None:
            raise EscalationFailed(
                "a role without a staff channel can be pinged only in a server thread; this "
                "conversation has none (configure --discord-channel)"
            )
        content = staff_post(
            role_id=target.discord_role,
            reason=ticket.reason,
            where=self._place.where,
            link=self._place.link,
            lines=transcript(self._lines, max_lines=6, max_chars=240),
            asker_id=None if self._place.shared else m.user_id,
        )
        try:
            await staff.send(
                content, allowed_mentions=staff_mentions(target.discord_role), suppress_embeds=True
            )
        except discord.HTTPException as e:
            where = getattr(staff, "id", target.discord_channel)
            raise EscalationFailed(
                f"Discord refused posting in {where} ({e.status} {e.text or e.code}){_hint(e)}"
            ) from e
        if role is not None:
            return f"@{role.name}"
        return "the support team"

    async def tell_asker(self, ticket: HandoffTicket, called: str | None) -> str:
        place = self._place
        text = render_notice(
            asker_notice(ticket.message.text, called, in_thread=place.shared), "discord"
        )
        if place.thread is not None:
            sent = await place.thread.send(
                text, view=resolved_view(), allowed_mentions=_NO_MENTIONS, suppress_embeds=True
            )
            return str(sent.id)
        assert place.followup is not None
        sent = await place.followup.send(
            text,
            view=resolved_view(),
            ephemeral=place.ephemeral,
            allowed_mentions=_NO_MENTIONS,
            suppress_embeds=True,
            wait=True,
        )
        return str(sent.id)

    async def tell_unreachable(self, ticket: HandoffTicket) -> None:
        place = self._place
        text = render_notice(unreachable_notice(ticket.message.text), "discord")
        if place.thread is not None:
            await place.thread.send(text, allowed_mentions=_NO_MENTIONS, suppress_embeds=True)
        elif place.followup is not None:
            await place.followup.send(
                text,
                ephemeral=place.ephemeral,
                allowed_mentions=_NO_MENTIONS,
                suppress_embeds=True,
            )

    async def _staff_channel(
        self, channel_id: str | None, guild: discord.Guild | None
    ) -> discord.abc.Messageable | None:
        if not channel_id:  # a role alone: mentioned where the conversation is
            return self._place.thread if self._place.in_server else None
        channel = self._client.get_channel(int(channel_id))
        if channel is None:
            channel = await self._client.fetch_channel(int(channel_id))
        if not isinstance(channel, discord.abc.Messageable):
            raise RuntimeError(f"the staff channel {channel_id} takes no messages")
        return channel

    @staticmethod
    def _check_pingable(guild: discord.Guild | None, role: discord.Role | None) -> None:
        if guild is None or role is None or role.mentionable:
            return
        me = guild.me
        if me is None or not getattr(me.guild_permissions, _MENTION_ALL_ROLES):
            logger.warning(
                "role %s is not mentionable and the bot lacks 'Mention @everyone, @here and "
                "All Roles': its members see the handoff but get no notification",
                role.id,
            )


def _hint(error: discord.HTTPException) -> str:
    """What an admin does about Discord's refusal (appended to the log line)."""
    if error.status == 403:
        return ": give the bot View Channel and Send Messages in the staff channel"
    if error.status == 404:
        return ": check the staff channel id (supportbot workspace escalation)"
    return ""


def _who(author_id: int, asker_id: str, bot_id: int) -> str:
    if author_id == bot_id:
        return "bot"
    return "asker" if str(author_id) == asker_id else "teammate"


def _lines(
    messages: Sequence[discord.Message], asker_id: str, bot_id: int
) -> list[tuple[str, str]]:
    return [
        (_who(m.author.id, asker_id, bot_id), plain_content(m, bot_user_id=bot_id).text)
        for m in messages
    ]


def _thread_name(text: str) -> str:
    words = " ".join(text.split()) or "a question"
    name = f"Handoff: {words}"
    return name if len(name) <= 90 else name[:89].rstrip() + "…"


class DiscordHandoff:
    """The handoff on one Discord client and reply flow (see the module doc)."""

    def __init__(self, client: discord.Client, flow: ReplyFlow) -> None:
        self._client = client
        self._flow = flow
        self._service: ConversationService = flow.service
        self._unanswered: set[str] = set()

    @property
    def _bot_id(self) -> int:
        assert self._client.user is not None
        return self._client.user.id

    def install(self) -> None:
        flow = self._flow
        flow.register(Action.HANDOFF, self._on_words)
        base_controls = flow.controls_for

        def controls(reply: Reply, answer: Answer) -> AnswerControls:
            shown = base_controls(reply, answer)
            can = reply.triage.situation.can_hand_off and reply.message.platform == "discord"
            if can and not answer.found:  # handed off at once: no button to press
                self._unanswered.add(reply.message.identity)
            return replace(shown, handoff=can and answer.found)

        flow.controls_for = controls
        base_answer = flow.handlers[Action.ANSWER]

        async def answer(reply: Reply) -> None:
            await base_answer(reply)
            if reply.message.identity in self._unanswered:
                self._unanswered.discard(reply.message.identity)
                await self._from_reply(reply, HandoffReason.NOT_FOUND)

        flow.register(Action.ANSWER, answer)

    # --- from the reply flow -------------------------------------------------------------------

    async def _on_words(self, reply: Reply) -> None:
        await self._from_reply(reply, HandoffReason.ASKED)

    async def _from_reply(self, reply: Reply, reason: HandoffReason) -> None:
        workspace, m, out = reply.workspace, reply.message, reply.outbound
        if workspace is None:
            return
        interaction_id = await asyncio.to_thread(self._service.previous_answer, m)
        message: discord.Message | None = getattr(out, "message", None)
        interaction: discord.Interaction | None = getattr(out, "interaction", None)
        if message is not None:
            place, lines = await self._place_of(message, m.user_id)
        elif interaction is not None:
            place = Place(
                thread=None,
                channel_id=m.channel_id,
                thread_id=m.thread_id or m.message_id,
                link=jump_link(m.team_id, m.channel_id),
                where=f"<#{m.channel_id}>" if m.team_id else "a direct message",
                shared=False,
                followup=interaction.followup,
                ephemeral=bool(getattr(out, "private", False)),
            )
            lines = [("asker", m.text)]
        else:
            logger.warning("handoff of %s: no Discord conversation to hand off", m.identity)
            return
        await self._hand_off(m, place, lines, reason, interaction_id, workspace=workspace)

    async def _hand_off(
        self,
        m: IncomingMessage,
        place: Place,
        lines: Sequence[tuple[str, str]],
        reason: HandoffReason,
        interaction_id: int | None,
        *,
        workspace: WorkspaceInfo | None = None,
    ) -> None:
        """``workspace``: routed already (a DM's is not its team's: a DM has no guild)."""
        if workspace is None:
            workspace = await asyncio.to_thread(self._service.workspace_for, m)
        if workspace is None:
            logger.warning("handoff of %s: no workspace for this conversation", m.identity)
            return
        keyed = replace(m, channel_id=place.channel_id, thread_id=place.thread_id)
        await self._service.hand_off(
            keyed,
            workspace,
            reason=reason,
            thread_id=place.thread_id,
            notifier=DiscordHandoffNotifier(self._client, place, lines),
            interaction_id=interaction_id,
        )

    async def _place_of(
        self, question: discord.Message, asker_id: str, answer: discord.Message | None = None
    ) -> tuple[Place, list[tuple[str, str]]]:
        """The thread the people meet the asker in, opened on ``question`` in a channel, and
        the conversation so far as transcript lines."""
        channel = question.channel
        guild = question.guild
        if isinstance(channel, discord.Thread | discord.DMChannel):
            earlier = [m async for m in channel.history(limit=20, oldest_first=False)]
            earlier.reverse()
            shared = isinstance(channel, discord.Thread)
            place = Place(
                thread=channel,
                channel_id=str(channel.id),
                thread_id=str(channel.id),
                link=jump_link(str(guild.id) if guild else "", str(channel.id)),
                where=f"<#{channel.id}>" if shared else "a direct message",
                shared=shared,
                in_server=shared,
            )
            return place, _lines(earlier or [question], asker_id, self._bot_id)
        said = [question, *([answer] if answer is not None else [])]
        thread = await self._open_thread(question)
        if thread is None:  # no permission: the people are pointed at the question
            place = Place(
                thread=channel,
                channel_id=str(channel.id),
                thread_id=str(question.id),
                link=question.jump_url,
                where=f"<#{channel.id}>",
                shared=False,
                in_server=True,
            )
            return place, _lines(said, asker_id, self._bot_id)
        place = Place(
            thread=thread,
            channel_id=str(thread.id),
            thread_id=str(thread.id),
            link=jump_link(str(guild.id) if guild else "", str(thread.id)),
            where=f"<#{thread.id}>",
            shared=True,
            in_server=True,
        )
        return place, _lines(said, asker_id, self._bot_id)

    async def _open_thread(self, question: discord.Message) -> discord.Thread | None:
        """A public thread on the question (the existing one when it has one)."""
        plain = plain_content(question, bot_user_id=self._bot_id).text
        try:
            return await question.create_thread(
                name=_thread_name(plain), auto_archive_duration=THREAD_ARCHIVE_MINUTES
            )
        except discord.HTTPException as e:
            if e.code == 160004 and question.guild is not None:  # a thread exists already
                found = question.guild.get_thread(question.id)
                if found is not None:
                    return found
                fetched = await self._client.fetch_channel(question.id)
                return fetched if isinstance(fetched, discord.Thread) else None
            logger.warning("could not open a handoff thread on %s: %s", question.id, e)
            return None

    # --- the buttons ---------------------------------------------------------------------------

    async def on_interaction(self, interaction: discord.Interaction) -> bool:
        """Handle a click on "Talk to a human" or *Resolved*; False for any other interaction."""
        if interaction.type is not discord.InteractionType.component or interaction.data is None:
            return False
        custom_id = str(interaction.data.get("custom_id", ""))
        if custom_id not in (HANDOFF_ID, RESOLVED_ID) or interaction.message is None:
            return False
        try:
            if custom_id == HANDOFF_ID:
                await interaction.response.defer()  # acknowledged; the notice shows the rest
                await self._pressed(interaction, interaction.message)
            else:
                await self._resolved(interaction, interaction.message)
        except Exception:
            logger.exception("button %s on %s failed", custom_id, interaction.message.id)
        return True

    async def _pressed(self, interaction: discord.Interaction, answer: discord.Message) -> None:
        question = answer
        reference = answer.reference
        if reference is not None and reference.message_id is not None:
            resolved = reference.resolved
            if isinstance(resolved, discord.Message):
                question = resolved
            else:
                try:
                    question = await answer.channel.fetch_message(reference.message_id)
                except discord.HTTPException:
                    question = answer
        asker = str(interaction.user.id)
        incoming = incoming_from_message(question, bot_user_id=self._bot_id)
        if incoming is None:
            return
        m = replace(
            incoming,
            delivery_id=f"interaction:{interaction.id}",
            user_id=asker,
            from_bot=False,
            reply_to=str(answer.id),
        )
        interaction_id = await asyncio.to_thread(self._service.previous_answer, m)
        place, lines = await self._place_of(
            question, asker, answer if question is not answer else None
        )
        await self._hand_off(m, place, lines, HandoffReason.BUTTON, interaction_id)

    async def _resolved(self, interaction: discord.Interaction, notice: discord.Message) -> None:
        closed = await asyncio.to_thread(
            self._service.close_handoff,
            platform="discord",
            team_id=str(interaction.guild_id or ""),
            channel_id=str(notice.channel.id),
            message_id=str(notice.id),
        )
        text = "✅ Resolved: this handoff is closed." if closed else "This handoff is closed."
        await interaction.response.edit_message(
            content=render_notice(text, "discord"), view=None, allowed_mentions=_NO_MENTIONS
        )


def install_discord_handoff(client: discord.Client, flow: ReplyFlow) -> DiscordHandoff:
    """Plug the handoff into a Discord bot's reply flow (see the module doc); its
    :meth:`DiscordHandoff.on_interaction` answers the two buttons."""
    handoff = DiscordHandoff(client, flow)
    handoff.install()
    return handoff
