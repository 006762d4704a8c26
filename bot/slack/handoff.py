"""Handing a Slack conversation to people: the escalation post, the asker's notice, buttons.

The escalation post goes to each configured channel (or, with user groups only, into the
conversation's own thread) and mentions the configured user groups as ``<!subteam^ID>``: the
only deliberate ping the bot ever sends, to the configured target only (ids are checked by
shape when configured). It links the thread (``chat.getPermalink``) and quotes a short
transcript of the conversation escaped (:func:`bot.render.escape.escape_text`: ``<@U…>``,
``<!here>`` and links in it show as text and ping nobody), with unfurling off.

The asker is told in the thread who was called, by the groups' handles as plain text (an
``@handle`` without ``<!subteam^…>`` notifies nobody), with a *Resolved* button
(:data:`RESOLVED_ACTION`). Every answer gets a "Talk to a human" button
(:data:`HANDOFF_ACTION`) when the workspace has a Slack target.

:func:`install_slack_handoff` plugs this into the reply flow (:mod:`bot.reply`): the
:data:`~bot.decide.Action.HANDOFF` handler, the button on answers, the handoff after an answer
that found nothing, and the two button actions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.decide import Action
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
from retrieval.chain import Answer

logger = logging.getLogger(__name__)

HANDOFF_ACTION = "handoff_request"
RESOLVED_ACTION = "handoff_resolved"

_REASONS = {
    HandoffReason.ASKED: "asked for a person",
    HandoffReason.NOT_FOUND: "asked something the documentation does not answer",
    HandoffReason.BUTTON: "pressed “Talk to a human”",
}


# What an admin does about Slack's refusals of the escalation post (appended to the log line).
_HINTS = {
    "not_in_channel": ": invite the bot to that channel (/invite @bot)",
    "channel_not_found": ": check the channel id (supportbot workspace escalation)",
    "is_archived": ": the channel is archived; configure another one",
    "restricted_action": ": the workspace does not let the bot post there",
}


def handoff_button() -> dict[str, Any]:
    """The "Talk to a human" button drawn with an answer's controls."""
    return {
        "type": "button",
        "action_id": HANDOFF_ACTION,
        "text": {"type": "plain_text", "text": "🙋 Talk to a human"},
        "value": "handoff",
    }


class SlackHandoffNotifier:
    """:class:`bot.handoff.HandoffNotifier` over one Slack client (the team's bot token)."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def escalate(self, ticket: HandoffTicket) -> str:
        m, target = ticket.message, ticket.target
        handles = await self._handles(target.slack_usergroups)
        lines = await self._transcript(m, ticket.thread_id)
        pings = " ".join(f"<!subteam^{g}>" for g in target.slack_usergroups)
        head = f"{pings} " if pings else ""
        quoted = "\n".join(
            f">*{escape_text(who, 'slack')}:* {escape_text(text, 'slack')}" for who, text in lines
        )
        if m.is_direct:
            # Teammates cannot open the bot's DM: name the asker (as text, no ping) instead.
            asker = escape_text(await self._asker(m.user_id), "slack")
            what = f"{asker} {_REASONS[ticket.reason]} in a direct message with the bot"
            text = f"{head}Handoff: {what}; please contact them directly.\n{quoted}"
        else:
            link = await self._permalink(m.channel_id, ticket.thread_id)
            where = f"<{link}|the conversation>" if link else "the conversation"
            text = f"{head}Handoff: someone {_REASONS[ticket.reason]}. See {where}.\n{quoted}"
        own_thread = not target.slack_channels
        refused: list[str] = []
        channels = target.slack_channels or (m.channel_id,)
        for channel in channels:
            try:
                await self._client.chat_postMessage(
                    channel=channel,
                    text=text,
                    thread_ts=ticket.thread_id if own_thread else None,
                    unfurl_links=False,
                    unfurl_media=False,
                )
            except SlackApiError as e:
                error = str(e.response.get("error") or "error")
                hint = _HINTS.get(error, "")
                refused.append(f"Slack refused posting in {channel} ({error}){hint}")
        for line in refused:  # one line each; the handoff still counts if any channel got it
            logger.warning("handoff in %s: %s", ticket.workspace, line)
        if len(refused) == len(channels):
            raise EscalationFailed("; ".join(refused))
        return ", ".join(handles) or "the support team"

    async def tell_unreachable(self, ticket: HandoffTicket) -> None:
        m = ticket.message
        await self._client.chat_postMessage(
            channel=m.channel_id,
            thread_ts=ticket.thread_id,
            text=escape_text(unreachable_notice(m.text), "slack"),
            unfurl_links=False,
            unfurl_media=False,
        )

    async def tell_asker(self, ticket: HandoffTicket, called: str | None) -> str:
        m = ticket.message
        # In a DM no teammate can reply in the thread: they contact the asker.
        notice = escape_text(asker_notice(m.text, called, in_thread=not m.is_direct), "slack")
        response = await self._client.chat_postMessage(
            channel=m.channel_id,
            thread_ts=ticket.thread_id,
            text=notice,
            blocks=[
                {"type": "section", "text": {"type": "mrkdwn", "text": notice, "verbatim": True}},
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": RESOLVED_ACTION,
                            "text": {"type": "plain_text", "text": "✅ Resolved"},
                            "value": str(ticket.handoff_id),
                        }
                    ],
                },
            ],
            unfurl_links=False,
            unfurl_media=False,
        )
        return str(response["ts"])

    async def _handles(self, groups: Sequence[str]) -> list[str]:
        """The groups' ``@handle``s (plain text), else their ids, when the list is refused."""
        if not groups:
            return []
        try:
            response = await self._client.usergroups_list()
            known = {g["id"]: g.get("handle") for g in response.get("usergroups") or []}
        except SlackApiError as e:
            logger.info("usergroups.list refused (%s): naming groups by id", e.response["error"])
            known = {}
        return [f"@{known.get(g) or g}" for g in groups]

    async def _asker(self, user_id: str) -> str:
        """The asker as plain text: ``@name (U…)`` (``users.info``), else the id alone."""
        try:
            response = await self._client.users_info(user=user_id)
            user = response.get("user") or {}
            profile = user.get("profile") or {}
            name = profile.get("display_name") or user.get("name") or profile.get("real_name")
        except SlackApiError as e:
            logger.info("users.info refused (%s): naming the asker by id", e.response["error"])
            name = None
        return f"@{name} ({user_id})" if name else f"user {user_id}"

    async def _permalink(self, channel: str, ts: str) -> str | None:
        try:
            response = await self._client.chat_getPermalink(channel=channel, message_ts=ts)
        except SlackApiError as e:
            logger.info("chat.getPermalink refused (%s)", e.response["error"])
            return None
        return str(response.get("permalink") or "") or None

    async def _transcript(self, m: IncomingMessage, thread_id: str) -> list[tuple[str, str]]:
        try:
            response = await self._client.conversations_replies(
                channel=m.channel_id, ts=thread_id, limit=50
            )
            messages = response.get("messages") or []
        except SlackApiError:
            messages = []
        lines = [
            (
                "bot"
                if item.get("bot_id")
                else "asker"
                if item.get("user") == m.user_id
                else "teammate",
                str(item.get("text") or ""),
            )
            for item in messages
        ]
        return transcript(lines or [("asker", m.text)])


def install_slack_handoff(app: AsyncApp, flow: ReplyFlow) -> None:
    """Plug the handoff into a Slack bot's reply flow and bolt app (see the module doc)."""
    service = flow.service
    unanswered: set[str] = set()

    async def hand_off(reply: Reply, reason: HandoffReason) -> None:
        workspace = reply.workspace
        out: Any = reply.outbound
        if workspace is None:
            return
        thread = getattr(out, "reply_thread", None) or reply.message.thread_id
        thread = thread or reply.message.message_id
        await service.hand_off(
            reply.message,
            workspace,
            reason=reason,
            thread_id=thread,
            notifier=SlackHandoffNotifier(out.client),
            interaction_id=await asyncio.to_thread(service.previous_answer, reply.message),
        )

    async def on_handoff(reply: Reply) -> None:
        await hand_off(reply, HandoffReason.ASKED)

    flow.register(Action.HANDOFF, on_handoff)

    base_controls = flow.controls_for

    def controls(reply: Reply, answer: Answer) -> AnswerControls:
        shown = base_controls(reply, answer)
        can = reply.triage.situation.can_hand_off and reply.message.platform == "slack"
        if can and not answer.found:
            unanswered.add(reply.message.identity)
        return replace(shown, handoff=can)

    flow.controls_for = controls
    base_answer = flow.handlers[Action.ANSWER]

    async def answer(reply: Reply) -> None:
        await base_answer(reply)
        if reply.message.identity in unanswered:
            unanswered.discard(reply.message.identity)
            await hand_off(reply, HandoffReason.NOT_FOUND)

    flow.register(Action.ANSWER, answer)

    @app.action(HANDOFF_ACTION)
    async def on_handoff_button(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        message = _button_message(body)
        if message is None:
            return
        workspace = await asyncio.to_thread(service.workspace_for, message)
        if workspace is None:
            return
        await service.hand_off(
            message,
            workspace,
            reason=HandoffReason.BUTTON,
            thread_id=message.thread_id or message.message_id,
            notifier=SlackHandoffNotifier(client),
            interaction_id=await asyncio.to_thread(service.previous_answer, message),
        )

    @app.action(RESOLVED_ACTION)
    async def on_resolved_button(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        message = _button_message(body)
        if message is None:
            return
        closed = await asyncio.to_thread(
            service.close_handoff,
            platform="slack",
            team_id=message.team_id,
            channel_id=message.channel_id,
            message_id=message.message_id,
        )
        if closed:
            text = "✅ Resolved: this handoff is closed."
            await client.chat_update(
                channel=message.channel_id,
                ts=message.message_id,
                text=text,
                blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
            )


def _button_message(body: dict[str, Any]) -> IncomingMessage | None:
    """The message a button was pressed on, as the service keys it (the presser as user)."""
    container = body.get("container") or {}
    shown = body.get("message") or {}
    ts = str(container.get("message_ts") or shown.get("ts") or "")
    channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
    team = str((body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id") or "")
    user = str((body.get("user") or {}).get("id") or "")
    if not (ts and channel and user):
        return None
    thread = str(shown.get("thread_ts") or container.get("thread_ts") or ts)
    return IncomingMessage(
        platform="slack",
        delivery_id=f"action:{body.get('trigger_id') or ts}",
        team_id=team,
        channel_id=channel,
        message_id=ts,
        user_id=user,
        text=str(shown.get("text") or ""),
        thread_id=thread,
        in_thread=True,
        reply_to=ts,
        enterprise_id=(body.get("enterprise") or {}).get("id"),
    )
