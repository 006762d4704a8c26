"""Slack event payloads → :class:`IncomingMessage` (pure functions, tested on real payloads).

Text is decoded here, once (:mod:`bot.markup.slack_message`): nothing after the adapter sees
Slack's escaping or markup, and a message whose words are in ``rich_text`` blocks, a forwarded
message or a file's title (its ``text`` empty) is read from there. Subtypes are what they say:
``thread_broadcast`` (a thread reply also sent to the channel) is a reply in its thread,
``file_share`` and ``me_message`` are the person's message with its text; edits
(``message_changed``), deletions, joins and bot messages are no new message and convert to None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.markup.slack_message import mentions_user, message_text
from bot.message import IncomingMessage
from retrieval.chain import Turn

# Subtypes that are still a person's new message; every other subtype is not a new question.
_USER_SUBTYPES = {None, "", "file_share", "thread_broadcast", "me_message"}


def incoming_from_event(
    body: Mapping[str, Any], event: Mapping[str, Any], *, bot_user_id: str | None
) -> IncomingMessage | None:
    """The neutral message for an ``app_mention`` or ``message`` event; None when not one.

    An ``app_mention`` Slack re-sends after an edit (``edited`` set, same ``ts``, a new
    ``event_id``) converts like the original, marked ``edited``: it is the same message, and
    the service's claim on the message makes it one answer.
    """
    if event.get("subtype") not in _USER_SUBTYPES:
        return None
    user = event.get("user")
    channel = event.get("channel")
    ts = event.get("ts")
    if not user or not channel or not ts:
        return None
    mentioned = bool(bot_user_id) and mentions_user(event, str(bot_user_id))
    plain = message_text(event, bot_user_id=bot_user_id)
    thread_ts = event.get("thread_ts")
    is_direct = event.get("channel_type") == "im" or str(channel).startswith("D")
    return IncomingMessage(
        platform="slack",
        delivery_id=str(body.get("event_id") or f"{channel}:{ts}"),
        team_id=_team_id(body, event),
        enterprise_id=body.get("enterprise_id") or None,
        channel_id=str(channel),
        message_id=str(ts),
        user_id=str(user),
        text=plain.text,
        bare_text=plain.bare if plain.bare != plain.text else None,
        thread_id=str(thread_ts or ts),
        is_direct=is_direct,
        mentions_bot=mentioned or event.get("type") == "app_mention",
        from_bot=bool(event.get("bot_id")) or event.get("subtype") == "bot_message",
        in_thread=bool(thread_ts) and thread_ts != ts,
        edited=bool(event.get("edited")),
    )


def _team_id(body: Mapping[str, Any], event: Mapping[str, Any]) -> str:
    """The installing team: the envelope's, not the sender's (shared channels differ)."""
    return str(body.get("team_id") or event.get("team") or "")


def history_from_replies(
    messages: list[Mapping[str, Any]], *, bot_user_id: str | None, before_ts: str
) -> list[Turn]:
    """Earlier messages of a thread as conversation turns (the bot's own as the assistant),
    their text decoded like the question's."""
    turns: list[Turn] = []
    for message in messages:
        ts = str(message.get("ts") or "")
        if not ts or float(ts) >= float(before_ts):
            continue
        text = message_text(message, bot_user_id=bot_user_id).text
        if not text:
            continue
        from_bot = bool(message.get("bot_id")) or (
            bot_user_id is not None and message.get("user") == bot_user_id
        )
        turns.append(Turn("assistant" if from_bot else "user", text))
    return turns
