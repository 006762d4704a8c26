"""The Slack bot: bolt listeners that convert, decide with the core, then act.

Bolt acknowledges events before the listener runs (``process_before_response=False``), so
Slack gets its ack within 3 seconds however long an answer takes; duplicate deliveries (Slack's
retries, or the same event reaching two replicas) are dropped by the delivery claim in the
database. Every failure after a question was accepted ends in a short apology in the thread.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import ClientSession
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.web.async_client import AsyncWebClient

from bot.markup.slack_message import mentions_user
from bot.message import IncomingMessage
from bot.reply import ReplyFlow
from bot.service import ConversationService
from bot.signals import is_resolved_reaction
from bot.slack.assistant import AssistantOutbound, in_assistant_thread
from bot.slack.events import incoming_from_event
from bot.slack.handoff import install_slack_handoff
from bot.slack.installations import forget_installation, forget_revoked_tokens
from bot.slack.outbound import PLACEHOLDER, SlackOutbound, StreamingRefusals
from bot.slack.surface import register_surface

logger = logging.getLogger(__name__)

__all__ = ["PLACEHOLDER", "SlackBot", "ThreadReplyHook", "slack_web_client"]

_REACTIONS = {"+1": 1, "thumbsup": 1, "-1": -1, "thumbsdown": -1}
_FEEDBACK_ACTIONS = {"feedback_helpful": 1, "feedback_not_helpful": -1}


# (workspace, channel id, thread ts): a reply was posted in that thread.
ThreadReplyHook = Callable[[str, str, str], Awaitable[object]]


def slack_web_client(
    *, token: str | None, api_url: str, session: ClientSession | None = None
) -> AsyncWebClient:
    """The client every request of the app copies: base URL and 429 handling included.

    ``session``: one aiohttp session shared by every call (bolt's per-request clients copy
    it), so calls reuse kept-alive connections instead of opening one each; without it each
    call opens and closes its own.
    """
    return AsyncWebClient(
        token=token,
        base_url=api_url,
        session=session,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=3)],
    )


class SlackBot:
    """One bolt ``AsyncApp`` with the bot's listeners; runs over Socket Mode or HTTP."""

    def __init__(
        self,
        service: ConversationService,
        *,
        client: AsyncWebClient,
        signing_secret: str | None,
        installation_store: AsyncInstallationStore | None = None,
        oauth_settings: AsyncOAuthSettings | None = None,
        on_thread_reply: ThreadReplyHook | None = None,
        streaming: bool = False,
        refusals: StreamingRefusals | None = None,
    ) -> None:
        """``client`` carries the bot token (single workspace) and the Web API base URL.

        Multi-workspace: pass ``installation_store`` (and ``oauth_settings`` to serve the
        install pages) with a token-less ``client``; bolt then authorizes each event with its
        team's token from the store, and every client it makes copies ``client``'s base URL.

        ``streaming``: answers written by a chat model are streamed (Slack's streaming
        methods, else throttled edits); ``refusals`` remembers the teams that refused it.
        """
        self._service = service
        self._streaming = streaming
        self._refusals = refusals or StreamingRefusals()
        self.flow = ReplyFlow(service, on_thread_message=self._thread_replied)
        self._installation_store = installation_store
        self._on_thread_reply = on_thread_reply
        self.app = AsyncApp(
            client=client,
            signing_secret=signing_secret,
            process_before_response=False,
            # HTTP mode needs a signature; Socket Mode has no HTTP requests to verify.
            request_verification_enabled=signing_secret is not None,
            installation_store=installation_store,
            oauth_settings=oauth_settings,
        )
        self._register()

    # --- running -------------------------------------------------------------------------------

    def socket_mode_handler(self, app_token: str) -> AsyncSocketModeHandler:
        return AsyncSocketModeHandler(self.app, app_token)

    # --- listeners -----------------------------------------------------------------------------

    def _register(self) -> None:
        app = self.app
        self._register_installation_events()
        register_surface(app, self._service)  # assistant view, App Home, /ask, native 👍/👎
        install_slack_handoff(app, self.flow)  # handoff to people: HANDOFF, buttons

        @app.event("app_mention")
        async def on_mention(
            body: dict[str, Any],
            event: dict[str, Any],
            client: AsyncWebClient,
            context: dict[str, Any],
        ) -> None:
            await self._on_message(body, event, client, context)

        @app.event("message")
        async def on_message(
            body: dict[str, Any],
            event: dict[str, Any],
            client: AsyncWebClient,
            context: dict[str, Any],
        ) -> None:
            bot_user_id = context.get("bot_user_id")
            in_channel = event.get("channel_type") != "im"
            if in_channel and bot_user_id and mentions_user(event, bot_user_id):
                return  # the app_mention event for the same message answers it
            await self._on_message(body, event, client, context)

        @app.event("reaction_added")
        async def on_reaction_added(body: dict[str, Any], event: dict[str, Any]) -> None:
            await self._on_reaction(body, event, removed=False)

        @app.event("reaction_removed")
        async def on_reaction_removed(body: dict[str, Any], event: dict[str, Any]) -> None:
            await self._on_reaction(body, event, removed=True)

        @app.action(re.compile(r"^feedback_(helpful|not_helpful)$"))
        async def on_feedback_button(
            ack: Any, body: dict[str, Any], action: dict[str, Any]
        ) -> None:
            await ack()
            message_ts = (body.get("container") or {}).get("message_ts") or (
                body.get("message") or {}
            ).get("ts")
            await asyncio.to_thread(
                self._service.rate,
                platform="slack",
                team_id=str((body.get("team") or {}).get("id") or ""),
                channel_id=str((body.get("channel") or {}).get("id") or ""),
                reply_message_id=str(message_ts),
                user_id=str((body.get("user") or {}).get("id") or ""),
                value=_FEEDBACK_ACTIONS[action["action_id"]],
                source="button",
                event_at=_slack_time(action.get("action_ts")),
            )

    def _register_installation_events(self) -> None:
        """Delete a workspace's stored tokens once Slack says they are gone (multi-workspace).

        Registered in single-workspace mode too (the manifest subscribes to both events), where
        there is nothing to delete and the log says the static token stopped working.
        """
        store = self._installation_store

        @self.app.event("app_uninstalled")
        async def on_app_uninstalled(context: AsyncBoltContext) -> None:
            await forget_installation(store, context)

        @self.app.event("tokens_revoked")
        async def on_tokens_revoked(context: AsyncBoltContext, event: dict[str, Any]) -> None:
            await forget_revoked_tokens(store, context, event)

    async def _on_reaction(
        self, body: Mapping[str, Any], event: Mapping[str, Any], *, removed: bool
    ) -> None:
        name = str(event.get("reaction", ""))
        value = _REACTIONS.get(name.split("::")[0])
        item = event.get("item") or {}
        if item.get("type") == "message" and not removed and is_resolved_reaction(name):
            await asyncio.to_thread(
                self._service.resolve,
                platform="slack",
                team_id=str(body.get("team_id") or ""),
                channel_id=str(item.get("channel") or ""),
                message_id=str(item.get("ts") or ""),
                user_id=str(event.get("user") or ""),
                event_at=_slack_time(event.get("event_ts")),
            )
            return
        if value is None or item.get("type") != "message":
            return
        await asyncio.to_thread(
            self._service.rate,
            platform="slack",
            team_id=str(body.get("team_id") or ""),
            channel_id=str(item.get("channel") or ""),
            reply_message_id=str(item.get("ts") or ""),
            user_id=str(event.get("user") or ""),
            value=0 if removed else value,
            source="reaction",
            withdrawn=value if removed else None,
            event_id=str(body.get("event_id") or "") or None,
            event_at=_slack_time(event.get("event_ts")),
        )

    async def _on_message(
        self,
        body: Mapping[str, Any],
        event: Mapping[str, Any],
        client: AsyncWebClient,
        context: Mapping[str, Any],
    ) -> None:
        bot_user_id = context.get("bot_user_id")
        message = incoming_from_event(body, event, bot_user_id=bot_user_id)
        if message is None:
            return
        await self.flow.handle(message, self.outbound(client, message, bot_user_id=bot_user_id))

    def outbound(
        self, client: AsyncWebClient, message: IncomingMessage, *, bot_user_id: str | None
    ) -> SlackOutbound:
        """The outbound for one message's conversation (streaming when the bot streams)."""
        kind = AssistantOutbound if in_assistant_thread(message) else SlackOutbound
        return kind(
            client,
            message,
            bot_user_id=bot_user_id,
            refusals=self._refusals if self._streaming else None,
        )

    async def _thread_replied(self, workspace: str, message: IncomingMessage) -> None:
        """Tell the knowledge sync that a thread changed (its Q&A document may have)."""
        if self._on_thread_reply is None or not message.thread_id:
            return
        await self._on_thread_reply(workspace, message.channel_id, message.thread_id)


def _slack_time(ts: object) -> datetime | None:
    """A Slack timestamp ("1700000000.000100", seconds since the epoch) as a UTC time."""
    try:
        return datetime.fromtimestamp(float(str(ts)), tz=UTC)
    except (TypeError, ValueError):
        return None
