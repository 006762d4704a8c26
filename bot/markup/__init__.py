"""Platform markup in incoming messages, decoded to plain text once, where messages enter.

Slack escapes ``&``, ``<`` and ``>`` and writes links, mentions and dates as ``<...>`` tokens;
Discord writes mentions, custom emoji and timestamps as ``<...>`` tokens. Everything after the
adapters (routing, retrieval, the stored question, reports, exports) sees only what a person
reads on screen: :func:`bot.markup.slack.decode` and :func:`bot.markup.discord.decode` return a
:class:`PlainText` for each message.

Mentions of people, roles and channels become readable names (``@alice``, ``#billing``) or a
neutral placeholder (``@user``) when the name is not known: plain words that notify nobody if
they are ever echoed back.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_NEWLINES = re.compile(r"\r\n|[\r\n\u2028\u2029]")
_INNER_SPACES = re.compile(r"(?<=\S)[^\S\n]{2,}")
_BLANK_LINES = re.compile(r"\n{3,}")


@dataclass(frozen=True, slots=True)
class PlainText:
    """A message's text as read on screen, NFC-normalised, its spacing tidied (:func:`tidy`).

    ``text``: everything a reader sees, with mentions as names (``@alice``) and links as their
    labels. ``bare``: the same text without mentions, channel references, broadcast mentions
    and custom emoji: what is left to judge whether the message says anything itself.
    """

    text: str
    bare: str


def plain_text(pieces: list[tuple[str, bool]]) -> PlainText:
    """Join decoded pieces (``(text, is_reference)``) into a :class:`PlainText`.

    ``is_reference`` marks a mention, channel reference or custom emoji, left out of ``bare``.
    """
    text = tidy("".join(piece for piece, _ in pieces))
    bare = tidy("".join(piece for piece, reference in pieces if not reference))
    return PlainText(text=text, bare=bare)


def tidy(text: str) -> str:
    """NFC text with the gaps that removed tokens leave closed up.

    Runs of spaces inside a line become one space (a line's indentation stays, for pasted
    code), trailing spaces and blank lines at either end go, and line breaks stay.
    """
    text = unicodedata.normalize("NFC", text)
    lines = [_INNER_SPACES.sub(" ", line).rstrip() for line in _NEWLINES.split(text)]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


__all__ = ["PlainText", "plain_text", "tidy"]
