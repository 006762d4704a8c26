"""Slack's side of taking over a dead replica's answer (:mod:`bot.takeover`).

The sweeper has only the stored message: :class:`SlackResumer` makes the outbound for it with
a client carrying that team's token (the single workspace's ``SLACK_BOT_TOKEN``, or the team's
installation in the store), and removes the placeholder the dead replica had posted.
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.web.async_client import AsyncWebClient

from bot.message import IncomingMessage
from bot.reply import Outbound
from bot.slack.app import SlackBot

logger = logging.getLogger(__name__)

# Errors that mean the placeholder is gone already (deleted, or the thread with it).
_GONE = frozenset({"message_not_found", "channel_not_found", "thread_not_found"})


class SlackResumer:
    """Outbounds for stored Slack messages, for one :class:`SlackBot`."""

    def __init__(self, bot: SlackBot) -> None:
        self._bot = bot
        self._bot_users: dict[str, str | None] = {}  # team -> the bot's user id there

    async def outbound(self, message: IncomingMessage) -> Outbound | None:
        """The outbound bolt would have made for ``message``; None when its team has no token."""
        client, bot_user_id = await self._client(message)
        if client is None:
            logger.warning("no Slack token for team %s: cannot answer again", message.team_id)
            return None
        return self._bot.outbound(client, message, bot_user_id=bot_user_id)

    async def discard(self, outbound: Outbound, progress_id: str) -> None:
        """Delete the dead replica's placeholder (already gone is fine)."""
        client: AsyncWebClient = outbound.client  # type: ignore[attr-defined]
        channel = outbound.message.channel_id  # type: ignore[attr-defined]
        try:
            await client.chat_delete(channel=channel, ts=progress_id)
        except SlackApiError as e:
            if str(e.response.get("error")) not in _GONE:
                raise

    async def _client(self, message: IncomingMessage) -> tuple[AsyncWebClient | None, str | None]:
        app = self._bot.app
        store: AsyncInstallationStore | None = app.installation_store
        base: AsyncWebClient = app.client
        if store is None:  # single workspace: the app's own client has the token
            return base, await self._bot_user(message.team_id, base)
        bot = await store.async_find_bot(
            enterprise_id=message.enterprise_id,
            team_id=message.team_id or None,
            is_enterprise_install=False,
        )
        if bot is None or not bot.bot_token:
            return None, None
        client = AsyncWebClient(
            token=bot.bot_token,
            base_url=base.base_url,
            session=base.session,
            retry_handlers=base.retry_handlers,
        )
        return client, bot.bot_user_id or None

    async def _bot_user(self, team_id: str, client: AsyncWebClient) -> str | None:
        if team_id not in self._bot_users:
            try:
                response = await client.auth_test()
                self._bot_users[team_id] = str(response.get("user_id") or "") or None
            except SlackApiError as e:
                logger.warning("auth.test failed: %s", e.response.get("error"))
                return None
        return self._bot_users[team_id]
