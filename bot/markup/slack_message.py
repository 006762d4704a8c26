"""Which part of a Slack message carries its words, as plain text (:func:`message_text`).

A Slack message's words are usually in its ``text`` (mrkdwn with Slack's escaping and ``<...>``
markup, :func:`bot.markup.slack.decode`). Some messages leave ``text`` empty, or hold only a
fallback such as "This message contains interactive elements.", and carry the words elsewhere:

- ``blocks`` of type ``rich_text`` (what Slack clients send for what a person typed): sections,
  lists, code blocks and quotes made of ``text``, ``link``, ``user``, ``usergroup``,
  ``channel``, ``team``, ``broadcast``, ``emoji``, ``date`` and ``color`` elements;
- ``attachments`` of a shared (forwarded) message (``is_share``, ``is_msg_unfurl`` or
  ``message_blocks``): its ``message_blocks[].message.blocks``, else its ``pretext``, ``title``
  and ``text``, else its ``fallback``;
- ``files`` shared with a title of the person's own (not just the file's name), or a text
  snippet's ``preview``.

The rule, in order: the person's own words (``text`` when it has any, else the ``rich_text``
blocks), then a shared message's words after them (quoted when the person wrote something
too, so the two stay apart); and only when all of these are empty, what the shared files say.
A link unfurl (an attachment the server made from a web page) is not the person's words and is
never read. Everything is decoded the same way as ``text``: mentions become neutral ``@name`` /
``#name`` words (``@user``, ``@group``, ``#channel`` when Slack sends only an id), broadcasts
become the words ``@here``, ``@channel``, ``@everyone``, emoji ``:name:``; the bot's own mention
is dropped; the result is NFC (:class:`bot.markup.PlainText`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from bot.markup import PlainText, plain_text
from bot.markup.slack import decode, decode_pieces, unescape

_Piece = tuple[str, bool]  # (text, is_reference), as bot.markup.plain_text joins them

# What Slack (or an app) puts in ``text`` when the words are elsewhere: not the person's words.
_FALLBACKS = {
    "this message contains interactive elements.",
    "this content can't be displayed.",
    "this message was deleted.",
}
_BROADCASTS = {"here", "channel", "everyone"}


def message_text(message: Mapping[str, Any], *, bot_user_id: str | None = None) -> PlainText:
    """The plain text of a Slack message event (or a ``conversations.replies`` message).

    ``message``: the event's fields (``text``, ``blocks``, ``attachments``, ``files``); missing
    or malformed parts are skipped, never an error. ``bot_user_id``: the bot's own mentions are
    dropped (they only address the message). See the module's docstring for the rule.
    """
    own = _own_words(message, bot_user_id)
    shared = [
        words
        for attachment in _dicts(message.get("attachments"))
        if _is_shared_message(attachment)
        for words in [_shared_words(attachment, bot_user_id)]
        if _says_anything(words)
    ]
    if not _says_anything(own):
        if shared:
            return plain_text(_between(shared, "\n\n"))
        return plain_text(_file_words(message))
    quoted = [_quoted(words) for words in shared]
    return plain_text(_between([own, *quoted], "\n\n"))


def mentions_user(message: Mapping[str, Any], user_id: str) -> bool:
    """Whether the message mentions ``user_id``: ``<@U…>`` in ``text``, or a ``user`` element
    of its ``rich_text`` blocks (a message sent with blocks only)."""
    if f"<@{user_id}" in str(message.get("text") or ""):
        return True
    return any(
        element.get("type") == "user" and element.get("user_id") == user_id
        for block in _dicts(message.get("blocks"))
        if block.get("type") == "rich_text"
        for element in _inline_elements(block)
    )


# --- the person's own words ----------------------------------------------------------------------


def _own_words(message: Mapping[str, Any], bot_user_id: str | None) -> list[_Piece]:
    """``text`` when it says anything but a fallback; else the ``rich_text`` blocks."""
    text = decode_pieces(str(message.get("text") or ""), bot_user_id=bot_user_id)
    if _says_anything(text):
        return text
    return _blocks_text(message.get("blocks"), bot_user_id)


def _blocks_text(blocks: Any, bot_user_id: str | None) -> list[_Piece]:
    """Plain text of a list of blocks: ``rich_text`` ones, and the text of ``section``,
    ``header`` and ``context`` blocks (what a forwarded app message is made of)."""
    parts: list[list[_Piece]] = []
    for block in _dicts(blocks):
        kind = block.get("type")
        if kind == "rich_text":
            parts.append(_rich_text(block, bot_user_id))
        elif kind in ("section", "header"):
            objects = [block.get("text"), *_dicts(block.get("fields"))]
            parts.append(_text_objects(objects, bot_user_id, "\n"))
        elif kind == "context":
            parts.append(_text_objects(_dicts(block.get("elements")), bot_user_id, " "))
    return _between(parts, "\n")


def _text_objects(objects: Iterable[Any], bot_user_id: str | None, between: str) -> list[_Piece]:
    """Block Kit text objects: ``mrkdwn`` decoded like ``text``, ``plain_text`` as written."""
    parts: list[list[_Piece]] = []
    for obj in objects:
        if not isinstance(obj, Mapping) or not isinstance(obj.get("text"), str):
            continue
        if obj.get("type") == "mrkdwn":
            parts.append(decode_pieces(obj["text"], bot_user_id=bot_user_id))
        else:
            parts.append([(obj["text"], False)])
    return _between(parts, between)


# --- rich text -----------------------------------------------------------------------------------


def _rich_text(block: Mapping[str, Any], bot_user_id: str | None) -> list[_Piece]:
    """A ``rich_text`` block: its sections, lists, code blocks and quotes, one per line."""
    pieces: list[_Piece] = []
    for part in _dicts(block.get("elements")):
        kind = part.get("type")
        if kind == "rich_text_list":
            lines = _list_items(part, bot_user_id)
        elif kind == "rich_text_preformatted":
            code = "".join(piece for piece, _ in _inline(part, bot_user_id, styled=False))
            code = code.strip("\n")
            lines = [("```\n", False), (code, False), ("\n```", False)] if code.strip() else []
        elif kind == "rich_text_quote":
            lines = _quoted(_inline(part, bot_user_id))
        else:  # rich_text_section, and any newer container of inline elements
            lines = _inline(part, bot_user_id)
        if not lines:
            continue
        if pieces and not pieces[-1][0].endswith("\n"):
            pieces.append(("\n", False))
        pieces.extend(lines)
    return pieces


def _list_items(part: Mapping[str, Any], bot_user_id: str | None) -> list[_Piece]:
    """``- item`` (``bullet``) or ``1. item`` (``ordered``, from ``offset``), indented by
    ``indent`` levels, one per line."""
    indent = "  " * _int(part.get("indent"))
    ordered = part.get("style") == "ordered"
    number = _int(part.get("offset"))
    pieces: list[_Piece] = []
    for item in _dicts(part.get("elements")):
        number += 1
        words = _inline(item, bot_user_id)
        if not plain_text(words).text:
            continue
        if pieces:
            pieces.append(("\n", False))
        pieces.append((f"{indent}{number}. " if ordered else f"{indent}- ", False))
        pieces.extend(words)
    return pieces


def _inline(
    part: Mapping[str, Any], bot_user_id: str | None, *, styled: bool = True
) -> list[_Piece]:
    """A container's inline elements; ``styled``: inline code keeps its backticks."""
    return [_element(element, bot_user_id, styled) for element in _dicts(part.get("elements"))]


def _element(element: Mapping[str, Any], bot_user_id: str | None, styled: bool) -> _Piece:
    """One inline element's plain text, and whether it is a reference (not words).

    Text in blocks is sent as typed (no ``&amp;`` escaping, unlike ``text``)."""
    kind = element.get("type")
    if kind == "text":
        text = str(element.get("text") or "")
        code = styled and bool((element.get("style") or {}).get("code")) and text.strip()
        return (f"`{text}`" if code else text), False
    if kind == "link":
        return str(element.get("text") or element.get("url") or ""), False
    if kind == "user":
        if bot_user_id and element.get("user_id") == bot_user_id:
            return "", True
        return "@user", True
    if kind == "usergroup":
        return "@group", True
    if kind == "channel":
        return "#channel", True
    if kind == "team":
        return "@team", True
    if kind == "broadcast":
        scope = str(element.get("range") or "")
        return (f"@{scope}" if scope in _BROADCASTS else ""), True
    if kind == "emoji":
        name = str(element.get("name") or "")
        return (f":{name}:" if name else str(element.get("unicode") or "")), False
    if kind == "date":
        fallback = str(element.get("fallback") or "")
        stamp = element.get("timestamp")
        return (fallback or decode(f"<!date^{stamp}^{{date}}>").text), False
    if kind == "color":
        return str(element.get("value") or ""), False
    return str(element.get("text") or ""), False


def _inline_elements(block: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every inline element of a ``rich_text`` block, lists' items included."""
    for part in _dicts(block.get("elements")):
        children = _dicts(part.get("elements"))
        if part.get("type") == "rich_text_list":
            children = [e for item in children for e in _dicts(item.get("elements"))]
        yield from children


# --- shared messages and files -------------------------------------------------------------------


def _is_shared_message(attachment: Mapping[str, Any]) -> bool:
    """A forwarded or shared Slack message, not a link unfurl or an app's attachment."""
    return bool(
        attachment.get("is_share")
        or attachment.get("is_msg_unfurl")
        or attachment.get("message_blocks")
    )


def _shared_words(attachment: Mapping[str, Any], bot_user_id: str | None) -> list[_Piece]:
    """A shared message's words: its blocks, else pretext/title/text, else its fallback."""
    blocks = [
        block
        for entry in _dicts(attachment.get("message_blocks"))
        for block in _dicts((entry.get("message") or {}).get("blocks"))
    ]
    from_blocks = _blocks_text(blocks or attachment.get("blocks"), bot_user_id)
    if _says_anything(from_blocks):
        return from_blocks
    fields = [
        decode_pieces(field, bot_user_id=bot_user_id)
        for field in (attachment.get(name) for name in ("pretext", "title", "text"))
        if isinstance(field, str)
    ]
    from_fields = _between([field for field in fields if _says_anything(field)], "\n")
    if from_fields:
        return from_fields
    return [(unescape(str(attachment.get("fallback") or "")), False)]


def _file_words(message: Mapping[str, Any]) -> list[_Piece]:
    """Shared files' own words: a title other than the file's name, a snippet's preview."""
    parts: list[list[_Piece]] = []
    for file in _dicts(message.get("files")):
        title = str(file.get("title") or "").strip()
        if title and title != str(file.get("name") or "").strip():
            parts.append([(title, False)])
        preview = file.get("preview")
        if isinstance(preview, str) and preview.strip():
            parts.append([(preview, False)])
    return _between(parts, "\n")


# --- helpers -------------------------------------------------------------------------------------


def _says_anything(pieces: list[_Piece]) -> bool:
    """Whether pieces hold any text that is not a known fallback (mentions count: a message
    of only mentions is still the person's, and judged later as having no words)."""
    text = plain_text(pieces).text
    return bool(text) and text.casefold() not in _FALLBACKS


def _between(parts: Iterable[list[_Piece]], separator: str) -> list[_Piece]:
    """The non-empty parts joined with ``separator``."""
    joined: list[_Piece] = []
    for part in parts:
        if not plain_text(part).text:
            continue
        if joined:
            joined.append((separator, False))
        joined.extend(part)
    return joined


def _quoted(pieces: list[_Piece]) -> list[_Piece]:
    """Pieces with ``> `` at the start of every line (a quote, or a forwarded message)."""
    quoted: list[_Piece] = [("> ", False)]
    for piece, reference in pieces:
        quoted.append((piece.replace("\n", "\n> "), reference))
    return quoted


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
