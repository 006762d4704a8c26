"""Discord messages and reactions as the core's neutral types.

Conversion only: no network, no database. Where the conversation lives:

- a DM: the DM channel (``thread_id`` = the channel id);
- a server thread (or forum post): the thread (``in_thread``; follow-ups need no mention);
- a server channel: the question message itself, which the answer replies to.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import discord

from bot.message import IncomingMessage
from retrieval.chain import Turn

# Skin tones (U+1F3FB..U+1F3FF) and the emoji variation selector do not change the vote.
_MODIFIERS = re.compile("[\U0001f3fb-\U0001f3ff\ufe0f]")
_VOTES = {"👍": 1, "👎": -1}
_ANSWERABLE = (discord.MessageType.default, discord.MessageType.reply)


def vote_of(emoji: discord.PartialEmoji) -> int | None:
    """+1 for 👍, -1 for 👎 (any skin tone); None for every other reaction."""
    if emoji.id is not None:  # a server's custom emoji
        return None
    return _VOTES.get(_MODIFIERS.sub("", emoji.name or ""))


def addresses_bot(message: discord.Message, bot_user_id: int) -> bool:
    """A mention of the bot (or of its integration role), or a reply to one of its messages."""
    if any(user.id == bot_user_id for user in message.mentions):
        return True
    if any(role.tags and role.tags.bot_id == bot_user_id for role in message.role_mentions):
        return True
    replied = message.reference.resolved if message.reference else None
    return isinstance(replied, discord.Message) and replied.author.id == bot_user_id


def strip_mentions(text: str, bot_user_id: int) -> str:
    return re.sub(rf"<@!?{bot_user_id}>", "", text).strip()


def incoming_from_message(message: discord.Message, *, bot_user_id: int) -> IncomingMessage | None:
    """The neutral message, or None for system messages (joins, pins, boosts...)."""
    if message.type not in _ANSWERABLE:
        return None
    channel = message.channel
    is_direct = isinstance(channel, discord.DMChannel)
    in_thread = isinstance(channel, discord.Thread)
    thread_id = str(channel.id) if is_direct or in_thread else str(message.id)
    return IncomingMessage(
        platform="discord",
        delivery_id=str(message.id),
        team_id=str(message.guild.id) if message.guild else "",
        channel_id=str(channel.id),
        message_id=str(message.id),
        user_id=str(message.author.id),
        text=strip_mentions(message.content, bot_user_id),
        thread_id=thread_id,
        is_direct=is_direct,
        mentions_bot=not is_direct and addresses_bot(message, bot_user_id),
        from_bot=message.author.bot,
        in_thread=in_thread,
    )


def history_turns(messages: Sequence[discord.Message], *, bot_user_id: int) -> list[Turn]:
    """Earlier messages, oldest first, as the chain's conversation history.

    Other bots' messages and empty ones (attachments only, or text hidden without the Message
    Content intent) are left out.
    """
    turns: list[Turn] = []
    for message in messages:
        if message.author.id == bot_user_id:
            turns.append(Turn("assistant", message.content))
        elif not message.author.bot:
            text = strip_mentions(message.content, bot_user_id)
            if text:
                turns.append(Turn("user", text))
    return turns
