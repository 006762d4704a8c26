"""The Discord bot: discord.py listeners that convert, decide with the core, then act.

discord.py owns the gateway (heartbeats, RESUME after a drop, a new IDENTIFY after an invalid
session) and REST rate limits (it waits out 429s). What a resume replays is dropped by the
delivery claim in the database, so an answer is never sent twice. Every failure after a
question was accepted ends in a short apology, and an exception in a listener is logged by
discord.py without stopping the client.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.discord.components import ComponentHandler
from bot.discord.events import history_turns, incoming_from_message, vote_of
from bot.discord.forums import ForumSupport
from bot.discord.handoff import install_discord_handoff
from bot.discord.outbound import NO_MENTIONS, DiscordOutbound, InteractionOutbound
from bot.discord.registration import Backoff, CommandRegistration
from bot.formatting import render_notice
from bot.markup.discord import decode as decode_discord
from bot.message import IncomingMessage
from bot.reply import ReplyFlow
from bot.routing import DmRoute, DmRouteKind, choose_message
from bot.service import ConversationService
from bot.signals import is_resolved_reaction
from retrieval.chain import Turn
from retrieval.workspaces import WorkspaceInfo

logger = logging.getLogger(__name__)

HISTORY_MESSAGES = 12
REPLY_CHAIN_DEPTH = 8
# DM history older than this belongs to an earlier conversation.
DM_HISTORY_WINDOW_S = 3600.0
__all__ = ["NO_MENTIONS", "DiscordBot", "bot_intents"]


def _notice(markdown: str) -> str:
    """One of the bot's own messages, rendered (escaped, no pings, no links) for Discord."""
    return render_notice(markdown, "discord")


def bot_intents(*, message_content: bool) -> discord.Intents:
    """The least the bot needs: servers, messages and reactions in servers and DMs.

    Message Content is privileged: mentions and DMs carry their text without it, so it is
    asked for only when some channel answers every question.
    """
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.dm_messages = True
    intents.guild_reactions = True
    intents.dm_reactions = True
    intents.message_content = message_content
    return intents


class _Client(discord.Client):
    def __init__(self, tree_setup: Callable[[discord.Client], Any], **options: Any) -> None:
        super().__init__(**options)
        self._tree_setup = tree_setup

    async def setup_hook(self) -> None:
        # A plain Client connects to the class-wide DEFAULT_GATEWAY (Discord's own); the address
        # must come from the configured API instead, as Discord's own /gateway/bot gives it.
        _shards, url, _limits = await self.http.get_bot_gateway()
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        await self._tree_setup(self)


class MembershipCache:
    """Whether a user is a member of a server, remembered for a while (one REST call each)."""

    def __init__(self, *, ttl_s: float, clock: Callable[[], float]) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._known: dict[tuple[int, int], tuple[bool, float]] = {}

    async def is_member(self, guild: discord.Guild, user_id: int) -> bool:
        key = (guild.id, user_id)
        known = self._known.get(key)
        if known is not None and self._clock() - known[1] < self._ttl_s:
            return known[0]
        if guild.get_member(user_id) is not None:
            member = True
        else:
            try:
                await guild.fetch_member(user_id)
                member = True
            except discord.NotFound:
                member = False
            except discord.HTTPException as e:  # unknown, not remembered: ask again next time
                logger.warning("membership of %s in %s unknown: %s", user_id, guild.id, e)
                return False
        self._known[key] = (member, self._clock())
        return member


class DiscordBot:
    """One discord.py client with the bot's listeners and slash commands."""

    def __init__(
        self,
        service: ConversationService,
        *,
        api_url: str,
        public_dm_workspace: str | None,
        message_content: bool,
        clock: Callable[[], float] = time.monotonic,
        membership_ttl_s: float = 600.0,
        guild_ready_timeout_s: float = 2.0,
        streaming: bool = False,
        command_backoff: Backoff | None = None,
    ) -> None:
        """``streaming``: answers written by a chat model are shown as they are written
        (throttled edits); ``/ask`` answers are never streamed."""
        self._service = service
        self._streaming = streaming
        self.flow = ReplyFlow(service)
        self._api_url = api_url.rstrip("/")
        self._public_dm_workspace = public_dm_workspace
        self._members = MembershipCache(ttl_s=membership_ttl_s, clock=clock)
        self._rating_turn = asyncio.Lock()
        self.client = _Client(
            self._sync_commands,
            intents=bot_intents(message_content=message_content),
            # Answers quote retrieved text: it must never ping @everyone, roles or users.
            allowed_mentions=discord.AllowedMentions.none(),
            guild_ready_timeout=guild_ready_timeout_s,
        )
        self.tree = app_commands.CommandTree(self.client)
        # Registered in the background, retried until Discord accepts (never fatal).
        self.commands = CommandRegistration(self.tree, backoff=command_backoff)
        self.forums = ForumSupport(service, self.client)
        self.components = ComponentHandler(service, self.forums)
        self.flow.controls_for = self.forums.with_solved(self.flow.controls_for)
        self.handoff = install_discord_handoff(self.client, self.flow)  # HANDOFF, buttons
        self._register()

    async def start(self, token: str) -> None:
        """Log in and stay connected (reconnecting and resuming) until :meth:`close`.

        discord.py reads its REST base and gateway address from class attributes, so
        ``DISCORD_API_URL`` applies to the whole process (one Discord bot per process).
        """
        Route.BASE = self._api_url
        try:
            await self.client.start(token)
        finally:
            await self.client.close()

    async def close(self) -> None:
        await self.commands.stop()
        await self.client.close()

    @property
    def _bot_id(self) -> int:
        assert self.client.user is not None
        return self.client.user.id

    # --- listeners -----------------------------------------------------------------------------

    def _register(self) -> None:
        client = self.client

        @client.event
        async def on_message(message: discord.Message) -> None:
            await self._on_message(message)

        @client.event
        async def on_raw_reaction_add(payload: discord.RawReactionActionEvent) -> None:
            await self._on_reaction(payload, removed=False)

        @client.event
        async def on_raw_reaction_remove(payload: discord.RawReactionActionEvent) -> None:
            await self._on_reaction(payload, removed=True)

        @client.event
        async def on_interaction(interaction: discord.Interaction) -> None:
            if not await self.components.on_interaction(interaction):  # our buttons only
                await self.handoff.on_interaction(interaction)

        @self.tree.command(name="ask", description="Ask a question to your company's knowledge")
        @app_commands.describe(question="Your question", private="Only you see the answer")
        async def ask(
            interaction: discord.Interaction, question: str, private: bool = False
        ) -> None:
            await self._on_ask(interaction, question, private)

        @self.tree.command(name="workspace", description="Choose whose knowledge answers your DMs")
        @app_commands.describe(name="The workspace to use; leave empty to see your choices")
        async def workspace(interaction: discord.Interaction, name: str | None = None) -> None:
            await self._on_workspace(interaction, name)

    async def _sync_commands(self, client: discord.Client) -> None:
        self.commands.start()  # in the background: the gateway connects meanwhile

    async def _on_reaction(self, payload: discord.RawReactionActionEvent, *, removed: bool) -> None:
        if payload.user_id == self._bot_id:
            return
        if not removed and is_resolved_reaction(str(payload.emoji)):
            await asyncio.to_thread(
                self._service.resolve,
                platform="discord",
                team_id=str(payload.guild_id or ""),
                channel_id=str(payload.channel_id),
                message_id=str(payload.message_id),
                user_id=str(payload.user_id),
            )
            await self.forums.on_solved_reaction(payload)  # a forum post: its Solved tag
            return
        value = vote_of(payload.emoji)
        if value is None:
            return
        # Discord's reaction events carry no time, so their order is the gateway's: one at a
        # time, in arrival order (the lock is first-come first-served and taken before any
        # other wait), or a quick 👍→👎→remove-👍 could land reordered by worker threads.
        async with self._rating_turn:
            await self._rate(payload, value, removed=removed)

    async def _rate(
        self, payload: discord.RawReactionActionEvent, value: int, *, removed: bool
    ) -> None:
        await asyncio.to_thread(
            self._service.rate,
            platform="discord",
            team_id=str(payload.guild_id or ""),
            channel_id=str(payload.channel_id),
            reply_message_id=str(payload.message_id),
            user_id=str(payload.user_id),
            value=0 if removed else value,
            source="reaction",
            withdrawn=value if removed else None,
        )

    async def _on_message(self, message: discord.Message) -> None:
        incoming = incoming_from_message(message, bot_user_id=self._bot_id)
        if incoming is None or incoming.from_bot:
            return
        outbound = DiscordOutbound(
            message,
            incoming,
            history=lambda: self._history(message, incoming),
            streaming=self._streaming,
        )
        workspace = None
        if incoming.is_direct:
            routed = await self._route_dm(incoming)
            if isinstance(routed, str):
                if await asyncio.to_thread(
                    self._service.claim_delivery, "discord", incoming.delivery_id
                ):
                    await outbound.notice(routed)
                return
            workspace = routed
        await self.flow.handle(incoming, outbound, workspace=workspace)

    async def _route_dm(self, incoming: IncomingMessage) -> WorkspaceInfo | str:
        """The DM's workspace, or the message telling the user how to get one."""
        shared = await self._shared_servers(int(incoming.user_id))
        route = await asyncio.to_thread(
            self._service.route_direct_message,
            "discord",
            incoming.user_id,
            shared,
            self._public_dm_workspace,
        )
        if route.kind is DmRouteKind.ROUTED and route.workspace is not None:
            return route.workspace
        return choose_message(route)

    async def _shared_servers(self, user_id: int) -> list[str]:
        """The bot's servers that map to a workspace and have ``user_id`` as a member."""
        guilds = {str(g.id): g for g in self.client.guilds}
        mapped = await asyncio.to_thread(self._service.mapped_teams, "discord", list(guilds))
        return [g for g in mapped if await self._members.is_member(guilds[g], user_id)]

    # --- answering ---------------------------------------------------------------------------

    async def _history(self, message: discord.Message, incoming: IncomingMessage) -> list[Turn]:
        """The conversation so far: the DM's recent messages, the thread, or the reply chain."""
        try:
            if incoming.is_direct or incoming.in_thread:
                after = None
                if incoming.is_direct:
                    after = message.created_at - timedelta(seconds=DM_HISTORY_WINDOW_S)
                earlier = [
                    m
                    async for m in message.channel.history(
                        limit=HISTORY_MESSAGES, before=message, after=after, oldest_first=False
                    )
                ]
                earlier.reverse()
            else:
                earlier = await self._reply_chain(message)
        except discord.HTTPException as e:
            logger.warning("could not read the conversation history: %s", e)
            return []
        return history_turns(earlier, bot_user_id=self._bot_id)

    async def _reply_chain(self, message: discord.Message) -> list[discord.Message]:
        chain: list[discord.Message] = []
        current = message
        while current.reference and len(chain) < REPLY_CHAIN_DEPTH:
            parent = current.reference.resolved
            if not isinstance(parent, discord.Message):
                if current.reference.message_id is None:
                    break
                parent = await current.channel.fetch_message(current.reference.message_id)
            chain.append(parent)
            current = parent
        chain.reverse()
        return chain

    # --- slash commands ------------------------------------------------------------------------

    async def _on_ask(self, interaction: discord.Interaction, question: str, private: bool) -> None:
        try:
            await interaction.response.defer(ephemeral=private, thinking=True)
        except discord.HTTPException as e:  # expired, or answered before a reconnect
            logger.warning("/ask %s could not be acknowledged: %s", interaction.id, e)
            return
        plain = decode_discord(question)
        incoming = IncomingMessage(
            platform="discord",
            delivery_id=f"interaction:{interaction.id}",
            team_id=str(interaction.guild_id or ""),
            channel_id=str(interaction.channel_id or ""),
            message_id=str(interaction.id),
            user_id=str(interaction.user.id),
            text=plain.text,
            bare_text=plain.bare,
            thread_id=f"interaction:{interaction.id}",
            is_direct=interaction.guild_id is None,
            mentions_bot=True,
        )
        outbound = InteractionOutbound(interaction, incoming, private=private)
        workspace = None
        if incoming.is_direct:
            routed = await self._route_dm(incoming)
            if isinstance(routed, str):
                await outbound.notice(routed)
                return
            workspace = routed
        await self.flow.handle(incoming, outbound, workspace=workspace)

    async def _on_workspace(self, interaction: discord.Interaction, name: str | None) -> None:
        user_id = str(interaction.user.id)
        shared = await self._shared_servers(interaction.user.id)
        names = await asyncio.to_thread(self._service.workspaces_of_teams, "discord", shared)
        current = await asyncio.to_thread(self._service.direct_message_choice, "discord", user_id)
        if not names:
            text = choose_message(DmRoute(DmRouteKind.NONE))
        elif name is None:
            listed = ", ".join(f"`{n}`" for n in names)
            chosen = f" Your DMs go to `{current}`." if current in names else ""
            text = f"Workspaces you can use: {listed}.{chosen} Choose with `/workspace name`."
        elif name not in names:
            text = f"`{name}` is not the workspace of a server we share; choose one of: " + (
                ", ".join(f"`{n}`" for n in names)
            )
        else:
            await asyncio.to_thread(
                self._service.choose_direct_message_workspace, "discord", user_id, name
            )
            text = f"Done: your DMs are now answered from `{name}`."
        await interaction.response.send_message(
            _notice(text), ephemeral=True, allowed_mentions=NO_MENTIONS, suppress_embeds=True
        )
