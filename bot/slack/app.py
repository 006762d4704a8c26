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
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.web.async_client import AsyncWebClient

from bot.decide import Action
from bot.formatting import render_notice, slack_messages
from bot.markup.slack_message import mentions_user
from bot.message import IncomingMessage
from bot.service import (
    APOLOGY,
    SETUP_MESSAGE,
    ConversationService,
    log_answer_failure,
    question_prompt,
)
from bot.signals import is_resolved_reaction
from bot.slack.events import history_from_replies, incoming_from_event
from bot.slack.installations import forget_installation, forget_revoked_tokens
from retrieval.chain import Answer
from retrieval.prompts import is_korean

logger = logging.getLogger(__name__)

PLACEHOLDER = ":hourglass_flowing_sand: Looking that up…"
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
    ) -> None:
        """``client`` carries the bot token (single workspace) and the Web API base URL.

        Multi-workspace: pass ``installation_store`` (and ``oauth_settings`` to serve the
        install pages) with a token-less ``client``; bolt then authorizes each event with its
        team's token from the store, and every client it makes copies ``client``'s base URL.
        """
        self._service = service
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
        service = self._service
        # Gather, decide (pure) and claim the delivery in one worker-thread trip.
        triage = await asyncio.to_thread(service.triage, message)
        workspace, decision = triage.situation.workspace, triage.decision
        if message.in_thread and not message.from_bot and workspace is not None:
            await self._thread_replied(workspace.name, message)
        if decision.action is Action.IGNORE:
            return
        if not triage.first_delivery:
            logger.info("message %s seen before: %s ignored", message.identity, message.delivery_id)
            return
        if decision.action is Action.SIGNAL:  # recorded by the triage; nothing to say
            return
        thread_ts = message.thread_id if not message.is_direct or message.in_thread else None
        if decision.action is Action.PROMPT:
            await client.chat_postMessage(
                channel=message.channel_id,
                thread_ts=thread_ts,
                text=render_notice(question_prompt(message.words), "slack"),
                unfurl_links=False,
                unfurl_media=False,
            )
            return
        if decision.action is Action.SETUP_NEEDED:
            if await asyncio.to_thread(service.claim_delivery, "slack", f"setup:{message.team_id}"):
                await client.chat_postMessage(
                    channel=message.channel_id,
                    thread_ts=thread_ts,
                    text=render_notice(SETUP_MESSAGE, "slack"),
                    unfurl_links=False,
                    unfurl_media=False,
                )
            return
        assert workspace is not None
        await self._answer(message, workspace, client, thread_ts, bot_user_id)

    async def _thread_replied(self, workspace: str, message: IncomingMessage) -> None:
        """Tell the knowledge sync that a thread changed (its Q&A document may have)."""
        if self._on_thread_reply is None or not message.thread_id:
            return
        try:
            await self._on_thread_reply(workspace, message.channel_id, message.thread_id)
        except Exception:  # the answer matters more than a faster sync
            logger.exception("could not queue the sync of thread %s", message.thread_id)

    async def _answer(
        self,
        message: IncomingMessage,
        workspace: Any,
        client: AsyncWebClient,
        thread_ts: str | None,
        bot_user_id: str | None,
    ) -> None:
        placeholder = await client.chat_postMessage(
            channel=message.channel_id,
            thread_ts=thread_ts,
            text=PLACEHOLDER,
            unfurl_links=False,
            unfurl_media=False,
        )
        placeholder_ts = str(placeholder["ts"])
        reply_thread = thread_ts or placeholder_ts
        try:
            history = await self._history(message, client, bot_user_id) if message.in_thread else []
            answer = await self._service.answer(workspace, message.text, history)
        except Exception as e:
            log_answer_failure(logger, e, f"answering {message.delivery_id} in {message.team_id}")
            language = "ko" if is_korean(message.text) else "en"
            await client.chat_update(
                channel=message.channel_id,
                ts=placeholder_ts,
                text=render_notice(APOLOGY[language], "slack"),
                unfurl_links=False,
                unfurl_media=False,
            )
            return
        await self._post_answer(
            message, workspace, answer, client, placeholder_ts, thread_ts, reply_thread
        )

    async def _post_answer(
        self,
        message: IncomingMessage,
        workspace: Any,
        answer: Answer,
        client: AsyncWebClient,
        placeholder_ts: str,
        thread_ts: str | None,
        reply_thread: str,
    ) -> None:
        # Recorded before it is shown, so a reaction on the answer always finds it.
        interaction_id = await asyncio.to_thread(
            self._service.record_reply,
            message,
            workspace,
            answer,
            thread_id=reply_thread,
            reply_message_id=placeholder_ts,
        )
        # Unfurling off: no preview of any address is fetched by Slack for an answer.
        messages = slack_messages(answer)
        for index, part in enumerate(messages):
            last = index == len(messages) - 1
            blocks = _blocks(part.sections, with_feedback=last and answer.found)
            if index == 0:
                await client.chat_update(
                    channel=message.channel_id,
                    ts=placeholder_ts,
                    text=part.text,
                    blocks=blocks,
                    unfurl_links=False,
                    unfurl_media=False,
                )
                continue
            response = await client.chat_postMessage(
                channel=message.channel_id,
                thread_ts=thread_ts or placeholder_ts,
                text=part.text,
                blocks=blocks,
                unfurl_links=False,
                unfurl_media=False,
            )
            await asyncio.to_thread(
                self._service.remember_reply,
                "slack",
                message.team_id,
                message.channel_id,
                reply_thread,
                str(response["ts"]),
                interaction_id,
            )

    async def _history(
        self, message: IncomingMessage, client: AsyncWebClient, bot_user_id: str | None
    ) -> list[Any]:
        try:
            response = await client.conversations_replies(
                channel=message.channel_id, ts=message.thread_id or message.message_id, limit=50
            )
        except SlackApiError as e:
            logger.warning("could not read thread history: %s", e.response.get("error"))
            return []
        return history_from_replies(
            list(response.get("messages") or []),
            bot_user_id=bot_user_id,
            before_ts=message.message_id,
        )


def _slack_time(ts: object) -> datetime | None:
    """A Slack timestamp ("1700000000.000100", seconds since the epoch) as a UTC time."""
    try:
        return datetime.fromtimestamp(float(str(ts)), tz=UTC)
    except (TypeError, ValueError):
        return None


def _blocks(sections: list[str], *, with_feedback: bool) -> list[dict[str, Any]]:
    """One section per part (each within Slack's 3,000 characters), then the feedback buttons.

    ``verbatim``: Slack adds no links or mentions of its own to text already rendered safe.
    """
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}
        for text in sections
    ]
    if with_feedback:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "feedback_helpful",
                        "text": {"type": "plain_text", "text": "👍 Helpful"},
                        "value": "1",
                    },
                    {
                        "type": "button",
                        "action_id": "feedback_not_helpful",
                        "text": {"type": "plain_text", "text": "👎 Not helpful"},
                        "value": "-1",
                    },
                ],
            }
        )
    return blocks
