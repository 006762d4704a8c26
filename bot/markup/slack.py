"""Slack message text (its escaping and ``<...>`` markup) → plain text.

Slack's formatting reference ("Formatting text for app surfaces"): ``&``, ``<`` and ``>`` in a
message are sent as ``&amp;``, ``&lt;`` and ``&gt;``, and every ``<...>`` is markup:

======================================  ====================================================
``<https://a.example/x|label>``         a link: its label, else the address
``<mailto:ann@a.example|Ann>``          an e-mail link: its label, else the address
``<tel:+8210...|010-...>``              a phone link: its label, else the number
``<@U123>``, ``<@U123|ann>``            a user: ``@ann`` from the label, else ``@user``
``<#C123|billing>``, ``<#C123>``        a channel: ``#billing``, else ``#channel``
``<!subteam^S123|@support>``            a user group: ``@support``, else ``@group``
``<!here>``, ``<!channel>``, ...        a broadcast: ``@here``, ``@channel``, ``@everyone``
``<!date^1700000000^{date}|Nov 14>``    a date: its fallback text, else the date in UTC
======================================  ====================================================

The bot's own mention is removed (it only addresses the message). Plain ``@name`` text does not
notify anyone on Slack (only ``<@...>`` and ``<!...>`` markup does), so names are safe to echo.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from bot.markup import PlainText, plain_text

# Markup never contains a raw "<" or ">": Slack escapes them inside it too.
_TOKEN = re.compile(r"<([^<>]*)>")
_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
_BROADCASTS = {"here", "channel", "everyone"}


def unescape(text: str) -> str:
    """Slack's three entities decoded; nothing else is an entity in Slack text.

    (``html.unescape`` would also turn a literal ``&copy`` a client failed to escape into ©.)
    """
    return _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], text)


def decode(text: str, *, bot_user_id: str | None = None) -> PlainText:
    """The plain text of a Slack message's ``text`` (see the module's table).

    ``bot_user_id``: mentions of this user (the bot itself) are dropped, not named.
    """
    return plain_text(decode_pieces(text, bot_user_id=bot_user_id))


def decode_pieces(text: str, *, bot_user_id: str | None = None) -> list[tuple[str, bool]]:
    """:func:`decode`'s pieces before joining: ``(plain text, is_reference)`` in order."""
    pieces: list[tuple[str, bool]] = []
    position = 0
    for match in _TOKEN.finditer(text):
        pieces.append((unescape(text[position : match.start()]), False))
        pieces.append(_token(match.group(1), bot_user_id))
        position = match.end()
    pieces.append((unescape(text[position:]), False))
    return pieces


def _token(content: str, bot_user_id: str | None) -> tuple[str, bool]:
    """One ``<...>`` token's plain text, and whether it is a reference (not words)."""
    target, _, label = content.partition("|")
    label = unescape(label).strip()
    if target.startswith("@"):
        if bot_user_id and target[1:] == bot_user_id:
            return "", True
        return _named("@", label, "user"), True
    if target.startswith("#"):
        return _named("#", label, "channel"), True
    if target.startswith("!"):
        return _special(target[1:], label)
    if label:
        return label, False
    address = unescape(target)
    return address.removeprefix("mailto:").removeprefix("tel:"), False


def _special(command: str, label: str) -> tuple[str, bool]:
    name, _, argument = command.partition("^")
    if name in _BROADCASTS:
        return f"@{name}", True
    if name == "subteam":
        return _named("@", label, "group"), True
    if name == "date":
        return (label or _date(argument)), False
    return label, not label


def _named(sigil: str, label: str, placeholder: str) -> str:
    """``@label`` (the label may already carry the sigil), else ``@placeholder``."""
    name = label.removeprefix(sigil).strip()
    return f"{sigil}{name or placeholder}"


def _date(argument: str) -> str:
    """``<!date^SECONDS^FORMAT[^LINK]>`` without a fallback: the moment in UTC."""
    seconds = argument.split("^", 1)[0]
    try:
        moment = datetime.fromtimestamp(int(seconds), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return ""
    return moment.strftime("%Y-%m-%d %H:%M UTC")
