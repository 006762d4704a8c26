"""Discord message content (its ``<...>`` markup) → plain text.

Discord's message formatting reference:

=============================  =========================================================
``<@80351110224678912>``       a user (``<@!id>`` too): ``@name`` when known, else ``@user``
``<@&165511591545143296>``     a role: ``@name`` when known, else ``@role``
``<#41771983423143937>``       a channel: ``#name`` when known, else ``#channel``
``<:blobcat:1234>``            a custom emoji (``<a:...>`` animated): ``:blobcat:``
``<t:1618953630:R>``           a timestamp (any style): the moment in UTC
``</ask:1234>``                a slash command: ``/ask``
``<https://a.example/x>``      a link without an embed: the address
``||spoiler||``                a spoiler: its text
``<id:customize>``             a server guide link: dropped
=============================  =========================================================

Names come from what the gateway resolved for the message (its mentions, the server's roles
and channels); ids the adapter cannot name become the neutral placeholder. The bot's own
mentions (its user and its integration role) are dropped: they only address the message.
Discord content has no entity escaping, so the rest of the text is kept as it is.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime

from bot.markup import PlainText, plain_text

_TOKEN = re.compile(
    r"<(?:@!?(?P<user>\d+)|@&(?P<role>\d+)|#(?P<channel>\d+)"
    r"|a?:(?P<emoji>\w{2,32}):\d+|t:(?P<time>-?\d{1,13})(?::(?P<style>[tTdDfFR]))?"
    r"|/(?P<command>[-\w ]{1,100}):\d+|id:[a-z][-a-z]*(?::\d+)?"
    r"|(?P<link>(?:https?|mailto):[^\s<>]+))>"
)
_CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.DOTALL)
_SPOILER = re.compile(r"\|\|(.+?)\|\|", re.DOTALL)
_TIME_FORMATS = {
    "t": "%H:%M UTC",
    "T": "%H:%M:%S UTC",
    "d": "%Y-%m-%d",
    "D": "%Y-%m-%d",
}


def decode(
    text: str,
    *,
    users: Mapping[str, str] | None = None,
    roles: Mapping[str, str] | None = None,
    channels: Mapping[str, str] | None = None,
    drop: Collection[str] = (),
) -> PlainText:
    """The plain text of a Discord message's ``content`` (see the module's table).

    ``users``, ``roles``, ``channels``: names by id (what the adapter resolved); ``drop``: ids
    of users or roles whose mention is removed instead (the bot and its integration role).
    """
    text = _without_spoiler_marks(text)
    pieces: list[tuple[str, bool]] = []
    position = 0
    for match in _TOKEN.finditer(text):
        pieces.append((text[position : match.start()], False))
        pieces.append(_token(match, users or {}, roles or {}, channels or {}, drop))
        position = match.end()
    pieces.append((text[position:], False))
    return plain_text(pieces)


def message_text(
    content: str,
    *,
    forwarded: Sequence[str] = (),
    embeds: Sequence[str] = (),
    users: Mapping[str, str] | None = None,
    roles: Mapping[str, str] | None = None,
    channels: Mapping[str, str] | None = None,
    drop: Collection[str] = (),
) -> PlainText:
    """The plain text of a Discord message, wherever its words are.

    The rule: ``content`` when it holds anything; else the ``forwarded`` messages' text (a
    forward, message reference type 1, has empty content and the original in
    ``message_snapshots[].message``); else ``embeds`` (title and description of each, for a
    message sent with embeds only). Each is decoded like ``content`` (:func:`decode`, the same
    names), forwarded messages and embeds one after another with a blank line between.
    """

    def decoded(text: str) -> PlainText:
        return decode(text, users=users, roles=roles, channels=channels, drop=drop)

    own = decoded(content)
    if own.text:
        return own
    for sources in (forwarded, embeds):
        parts = [decoded(text) for text in sources]
        parts = [part for part in parts if part.text]
        if parts:
            return PlainText(
                text="\n\n".join(part.text for part in parts),
                bare="\n\n".join(part.bare for part in parts if part.bare),
            )
    return own


def _token(
    match: re.Match[str],
    users: Mapping[str, str],
    roles: Mapping[str, str],
    channels: Mapping[str, str],
    drop: Collection[str],
) -> tuple[str, bool]:
    """One token's plain text, and whether it is a reference (not words)."""
    if user := match["user"]:
        return ("" if user in drop else _named("@", users.get(user), "user")), True
    if role := match["role"]:
        return ("" if role in drop else _named("@", roles.get(role), "role")), True
    if channel := match["channel"]:
        return _named("#", channels.get(channel), "channel"), True
    if emoji := match["emoji"]:
        return f":{emoji}:", True
    if seconds := match["time"]:
        return _moment(int(seconds), match["style"]), False
    if command := match["command"]:
        return f"/{command}", True
    if link := match["link"]:  # a link written in <...> so that Discord shows no embed
        return link, False
    return "", True  # a server guide link (<id:customize>, <id:browse>...)


def _without_spoiler_marks(text: str) -> str:
    """``||hidden until clicked||`` as its words; ``||`` inside code (``a || b``) stays."""
    parts = _CODE.split(text)
    return "".join(
        part if index % 2 else _SPOILER.sub(r"\1", part) for index, part in enumerate(parts)
    )


def _named(sigil: str, name: str | None, placeholder: str) -> str:
    name = (name or "").strip().removeprefix(sigil)
    return f"{sigil}{name or placeholder}"


def _moment(seconds: int, style: str | None) -> str:
    try:
        moment = datetime.fromtimestamp(seconds, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return ""
    return moment.strftime(_TIME_FORMATS.get(style or "f", "%Y-%m-%d %H:%M UTC"))
