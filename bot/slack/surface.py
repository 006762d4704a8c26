"""Slack's AI app surface in one call: assistant threads, App Home, ``/ask``, native feedback.

``register_surface(app, service, engine=..., sources=...)`` adds every listener of
:mod:`bot.slack.assistant`, :mod:`bot.slack.home` and :mod:`bot.slack.commands`, and the
listener of the native ``feedback_buttons`` (:mod:`bot.slack.blocks`); the adapter
(:mod:`bot.slack.app`) calls it once. Messages in assistant threads are not here: they are
DMs, answered by the adapter's reply flow with :class:`bot.slack.assistant.AssistantOutbound`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from sqlalchemy.engine import Engine

from bot.service import ConversationService
from bot.slack.assistant import AssistantThreads
from bot.slack.blocks import FEEDBACK_ACTION_ID, rating_of
from bot.slack.commands import AskCommand
from bot.slack.home import AppHome, SourceLister, sources_in
from bot.slack.prompts import PromptStore


def register_surface(
    app: AsyncApp,
    service: ConversationService,
    *,
    engine: Engine | None = None,
    sources: SourceLister | None = None,
) -> None:
    """Register the AI app surface's listeners on ``app`` (see the module docstring).

    ``engine``: the database of suggested prompts and answers to share (default: the
    service's); ``sources``: a workspace's sync sources by name, for the Home tab (default:
    read from that database).
    """
    engine = engine if engine is not None else service.engine
    assistant = AssistantThreads(service, PromptStore(engine))
    assistant.register(app)
    AppHome(service, sources or sources_in(engine), assistant=assistant).register(app)
    AskCommand(service, engine).register(app)
    register_feedback(app, service)


def register_feedback(app: AsyncApp, service: ConversationService) -> None:
    """Rate the answer a native 👍/👎 (``feedback_buttons``) was clicked on.

    The plain ``feedback_helpful`` / ``feedback_not_helpful`` buttons of older answers are
    rated by the adapter's own listener with the same :func:`~bot.slack.blocks.rating_of`.
    """

    @app.action(FEEDBACK_ACTION_ID)
    async def on_feedback(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        await rate_click(service, body, action)


async def rate_click(
    service: ConversationService, body: dict[str, Any], action: dict[str, Any]
) -> bool:
    """Rate the message a feedback button (native or legacy) sits on; False if not one."""
    value = rating_of(action)
    if value is None:
        return False
    message_ts = (body.get("container") or {}).get("message_ts") or (body.get("message") or {}).get(
        "ts"
    )
    outcome = await asyncio.to_thread(
        service.rate,
        platform="slack",
        team_id=str((body.get("team") or {}).get("id") or ""),
        channel_id=str((body.get("channel") or {}).get("id") or ""),
        reply_message_id=str(message_ts),
        user_id=str((body.get("user") or {}).get("id") or ""),
        value=value,
        source="button",
        event_at=_slack_time(action.get("action_ts")),
    )
    return outcome is not None


def _slack_time(ts: object) -> datetime | None:
    """A Slack timestamp ("1700000000.000100", seconds since the epoch) as a UTC time."""
    try:
        return datetime.fromtimestamp(float(str(ts)), tz=UTC)
    except (TypeError, ValueError):
        return None
