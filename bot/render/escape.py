"""Platform escaping: text that shows as written and can never ping, link or format.

Slack's mrkdwn gives meaning to ``&``, ``<`` and ``>`` only (mentions, links and dates all sit in
``<…>``), everywhere, code included. Discord's Markdown has backslash escapes for its
punctuation; its mentions (``<@id>``, ``<@&id>``, ``@everyone``, ``@here``) are also parsed by
the server, so they are broken with a word joiner (U+2060, invisible) as well as escaped, and
every send also carries ``allowed_mentions`` none.
"""

from __future__ import annotations

import re
from typing import Literal

Platform = Literal["slack", "discord"]

WORD_JOINER = "\u2060"

_BROADCAST = re.compile(r"@(?=(everyone|here|channel)\b)", re.IGNORECASE)
_DISCORD_MENTION = re.compile(r"<(?=[@#/:!]|a:|t:)")
_DISCORD_SPECIAL = re.compile(r"([\\*_~`|\[\]<>])")
_DISCORD_LINE_START = re.compile(r"^(\s*)(?:([#>+-])|(\d+)([.)])(?=\s))")


def slack_escape(text: str) -> str:
    """``text`` as Slack shows it literally: ``&``, ``<`` and ``>`` as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def break_broadcasts(text: str) -> str:
    """``@everyone``, ``@here`` and ``@channel`` with a word joiner after the ``@``."""
    return _BROADCAST.sub("@" + WORD_JOINER, text)


def escape_text(text: str, platform: Platform) -> str:
    """Plain ``text`` as platform markup that shows it as written, without mentions."""
    text = break_broadcasts(text)
    if platform == "slack":
        return slack_escape(text)
    text = _DISCORD_MENTION.sub("<" + WORD_JOINER, text)
    return _DISCORD_SPECIAL.sub(r"\\\1", text)


def escape_line_start(markup: str, platform: Platform) -> str:
    """Discord: a backslash before what would start a heading, quote or list at a line's start."""
    if platform == "slack":
        return markup
    match = _DISCORD_LINE_START.match(markup)
    if match is None:
        return markup
    indent, mark, number, dot = match.groups()
    escaped = f"\\{mark}" if mark else f"{number}\\{dot}"
    return indent + escaped + markup[match.end() :]


def escape_code(code: str, platform: Platform) -> str:
    """Code as written: Slack needs its three entities even there; Discord shows code raw.

    A run of three backticks would end the block early on either platform, so a zero-width
    space goes between its second and third backtick.
    """
    code = code.replace("```", "``\u200b`")
    return slack_escape(code) if platform == "slack" else code


def inline_code(code: str, platform: Platform) -> str:
    """``code`` as an inline code span.

    Discord takes a longer backtick fence around code that holds backticks; Slack has no way to
    show a backtick inside inline code, so there it becomes a modifier grave accent (ˋ).
    """
    code = code.replace("\n", " ")
    if platform == "slack":
        return "`" + slack_escape(code.replace("`", "\u02cb")) + "`"
    if "`" not in code:
        return f"`{code}`"
    fence = "``" if "``" not in code else "```"
    pad = " " if code.startswith("`") or code.endswith("`") else ""
    return f"{fence}{pad}{code.replace('```', '``' + chr(0x200B) + '`')}{pad}{fence}"
