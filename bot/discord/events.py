"""Discord messages and reactions as the core's neutral types.

Conversion only: no network, no database. Where the conversation lives:

- a DM: the DM channel (``thread_id`` = the channel id);
- a server thread (or forum post): the thread (``in_thread``; follow-ups need no mention);
  a forum post's starter message (same id as the thread) is the post's question:
  ``starts_post``, with the forum as ``parent_channel_id`` (its mode applies) and the post's
  title before its words (the question is often in the title alone);
- a server channel: the question message itself, which the answer replies to.

Text is decoded here, once (:mod:`bot.markup.discord`), with the names the gateway resolved for
the message: nothing after the adapter sees ``<@id>``, ``<#id>`` or ``<:emoji:id>`` markup, and
a forward (content empty) is read from the message it forwards.
Only new messages convert (default messages and replies): edits arrive as ``MESSAGE_UPDATE``,
which the bot does not answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import discord

from bot.markup import PlainText
from bot.markup.discord import message_text
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
    replied = message.reference.resolved if message.reference and _is_reply(message) else None
    return isinstance(replied, discord.Message) and replied.author.id == bot_user_id


def plain_content(message: discord.Message, *, bot_user_id: int) -> PlainText:
    """The message's words as plain text, mentions named as the client shows them.

    The words are the content; for a forward (content empty), the forwarded messages'
    (``message_snapshots``); for a person's message sent with embeds only, the embeds' title
    and description (:func:`bot.markup.discord.message_text` has the rule). Names come from
    what the gateway sent and the client caches (the message's mentions, the server's members,
    roles and channels), as discord.py's ``clean_content`` finds them; the bot's own mentions
    (its user, its integration role) are dropped.
    """
    guild = message.guild
    snapshots = [s for s in message.message_snapshots if s.content or s.embeds]
    users = {str(u.id): u.display_name for u in message.mentions}
    roles = {str(r.id): r.name for r in message.role_mentions}
    channels = {str(c.id): c.name for c in message.channel_mentions}
    if guild is not None:
        raw_roles = [
            *message.raw_role_mentions,
            *(i for s in snapshots for i in s.raw_role_mentions),
        ]
        for role_id in raw_roles:
            role = guild.get_role(role_id)
            if role is not None:
                roles.setdefault(str(role.id), role.name)
        for snapshot in snapshots:  # a forward's mentions are not in the message's own lists
            for user_id in snapshot.raw_mentions:
                member = guild.get_member(user_id)
                if member is not None:
                    users.setdefault(str(user_id), member.display_name)
            for channel_id in snapshot.raw_channel_mentions:
                channel = guild.get_channel_or_thread(channel_id)
                if channel is not None:
                    channels.setdefault(str(channel_id), channel.name)
    drop = {str(bot_user_id)} | {
        str(r.id) for r in message.role_mentions if r.tags and r.tags.bot_id == bot_user_id
    }
    return message_text(
        message.content,
        forwarded=[s.content or _embeds_text(s.embeds) for s in snapshots],
        embeds=[] if message.author.bot else [_embeds_text(message.embeds)],
        users=users,
        roles=roles,
        channels=channels,
        drop=drop,
    )


def with_title(title: str, plain: PlainText) -> PlainText:
    """A post's words with its title first (a blank line between), unless they begin with it."""
    title = " ".join(title.split())
    if not title or plain.text.startswith(title):
        return plain
    text = f"{title}\n\n{plain.text}".strip()
    bare = f"{title}\n\n{plain.bare}".strip()
    return PlainText(text=text, bare=bare)


def _embeds_text(embeds: Sequence[discord.Embed]) -> str:
    """The words of embeds: each one's title and description, a blank line between."""
    parts = (part for embed in embeds for part in (embed.title, embed.description) if part)
    return "\n\n".join(parts)


def _is_reply(message: discord.Message) -> bool:
    """A reply (message reference type 0), not a forward (type 1), which points elsewhere."""
    reference = message.reference
    return reference is not None and reference.type is discord.MessageReferenceType.reply


def incoming_from_message(message: discord.Message, *, bot_user_id: int) -> IncomingMessage | None:
    """The neutral message, or None for system messages (joins, pins, boosts...)."""
    if message.type not in _ANSWERABLE:
        return None
    channel = message.channel
    is_direct = isinstance(channel, discord.DMChannel)
    in_thread = isinstance(channel, discord.Thread)
    thread_id = str(channel.id) if is_direct or in_thread else str(message.id)
    plain = plain_content(message, bot_user_id=bot_user_id)
    # Only a forum post has its starter message inside the thread, with the thread's id.
    starts_post = isinstance(channel, discord.Thread) and message.id == channel.id
    if isinstance(channel, discord.Thread) and starts_post:
        plain = with_title(channel.name, plain)
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
        starts_post=starts_post,
        parent_channel_id=str(channel.parent_id)
        if isinstance(channel, discord.Thread) and channel.parent_id
        else None,
        reply_to=str(message.reference.message_id)
        if message.reference and message.reference.message_id and _is_reply(message)
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
