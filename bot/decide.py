"""Whether the bot answers a message: a pure function of the message and what is known.

Kept apart from the adapters so the rules users rely on (DMs always, channels only when
mentioned unless it is a support channel, follow-ups in threads it already answered, never
bots) are one readable table, tested without a platform.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.message import IncomingMessage


class Action(StrEnum):
    ANSWER = "answer"
    IGNORE = "ignore"
    SETUP_NEEDED = "setup_needed"


class ChannelMode(StrEnum):
    """Per-channel setting: answer only when mentioned (default), or every new question."""

    MENTION = "mention"
    ALL_QUESTIONS = "all_questions"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str


def decide(
    message: IncomingMessage,
    *,
    channel_mode: ChannelMode = ChannelMode.MENTION,
    bot_answered_thread: bool = False,
    workspace_ready: bool = True,
) -> Decision:
    """What to do with ``message``.

    ``bot_answered_thread``: the bot already answered in this message's thread, so a
    follow-up needs no new mention. ``workspace_ready``: the team maps to a workspace that has
    knowledge; if not, an addressed message gets the setup notice instead of an answer.
    """
    if message.from_bot:
        return Decision(Action.IGNORE, "sent by a bot")
    if not message.text.strip():
        return Decision(Action.IGNORE, "no text")
    if message.is_direct:
        addressed = "direct message"
    elif message.mentions_bot:
        addressed = "mention"
    elif message.in_thread and bot_answered_thread:
        addressed = "follow-up in a thread the bot answered"
    elif channel_mode is ChannelMode.ALL_QUESTIONS and not message.in_thread:
        addressed = "new question in a support channel"
    else:
        return Decision(Action.IGNORE, "not addressed to the bot")
    if not workspace_ready:
        return Decision(Action.SETUP_NEEDED, f"{addressed}, but no knowledge is configured")
    return Decision(Action.ANSWER, addressed)
