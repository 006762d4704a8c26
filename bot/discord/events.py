"""Discord messages and reactions as the core's neutral types.

Conversion only: no network, no database. Where the conversation lives:

- a DM: the DM channel (``thread_id`` = the channel id);
- a server thread (or forum post): the thread (``in_thread``; follow-ups need no mention);
- a server channel: the question message itself, which the answer replies to.

Text is decoded here, once (:mod:`bot.markup.discord`), with the names the gateway resolved for
the message: nothing after the adapter sees ``<@id>``, ``<#id>`` or ``<:emoji:id>`` markup.
Only new messages convert (default messages and replies): edits arrive as ``MESSAGE_UPDATE``,
which the bot does not answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import discord

from bot.markup import PlainText
from bot.markup.discord import decode
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


def plain_content(message: discord.Message, *, bot_user_id: int) -> PlainText:
    """The message's content as plain text, mentions named as the client shows them.

    Names come from what the gateway sent and the client caches (the message's mentions, the
    server's members, roles and channels), as discord.py's ``clean_content`` finds them; the
    bot's own mentions (its user, its integration role) are dropped.
    """
    guild = message.guild
    users = {str(u.id): u.display_name for u in message.mentions}
    roles = {str(r.id): r.name for r in message.role_mentions}
    channels = {str(c.id): c.name for c in message.channel_mentions}
    if guild is not None:
        for role_id in message.raw_role_mentions:
            role = guild.get_role(role_id)
            if role is not None:
                roles.setdefault(str(role.id), role.name)
    drop = {str(bot_user_id)} | {
        str(r.id) for r in message.role_mentions if r.tags and r.tags.bot_id == bot_user_id
    }
    return decode(message.content, users=users, roles=roles, channels=channels, drop=drop)


def incoming_from_message(message: discord.Message, *, bot_user_id: int) -> IncomingMessage | None:
    """The neutral message, or None for system messages (joins, pins, boosts...)."""
    if message.type not in _ANSWERABLE:
        return None
    channel = message.channel
    is_direct = isinstance(channel, discord.DMChannel)
    in_thread = isinstance(channel, discord.Thread)
    thread_id = str(channel.id) if is_direct or in_thread else str(message.id)
    plain = plain_content(message, bot_user_id=bot_user_id)
    return IncomingMessage(
        platform="discord",
        delivery_id=str(message.id),
        team_id=str(message.guild.id) if message.guild else "",
        channel_id=str(channel.id),
        message_id=str(message.id),
        user_id=str(message.author.id),
        text=plain.text,
        bare_text=plain.bare if plain.bare != plain.text else None,
        thread_id=thread_id,
        is_direct=is_direct,
        mentions_bot=not is_direct and addresses_bot(message, bot_user_id),
        from_bot=message.author.bot,
        in_thread=in_thread,
        reply_to=str(message.reference.message_id)
        if message.reference and message.reference.message_id
        else None,
    )


def history_turns(messages: Sequence[discord.Message], *, bot_user_id: int) -> list[Turn]:
    """Earlier messages, oldest first, as the chain's conversation history.

    Other bots' messages and empty ones (attachments only, or text hidden without the Message
    Content intent) are left out.
    """
    turns: list[Turn] = []
    for message in messages:
        if message.author.bot and message.author.id != bot_user_id:
            continue
        text = plain_content(message, bot_user_id=bot_user_id).text
        if message.author.id == bot_user_id:
            turns.append(Turn("assistant", text))
        elif text:
            turns.append(Turn("user", text))
    return turns
