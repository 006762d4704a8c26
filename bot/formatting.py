"""How an answer looks on each platform, and how long replies are split.

Slack's mrkdwn and Discord's Markdown differ in bold and links; answers from a chat model come
in common Markdown. The sources go under the answer, once per document, as links where the
document has a URL.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Literal

from retrieval.chain import Answer, Source, group_by_document

Style = Literal["slack", "discord"]

# Slack renders up to 40k characters but splits long text unpredictably; Discord refuses more
# than 2,000. A margin leaves room for a continuation marker.
LIMITS: dict[Style, int] = {"slack": 3_900, "discord": 2_000}

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_MD_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+)$", re.MULTILINE)


def _slack_escape(text: str) -> str:
    """Escape what Slack treats as control characters in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _to_slack(text: str) -> str:
    escaped = _slack_escape(text)
    escaped = _HEADING.sub(r"*\1*", escaped)
    escaped = _BOLD.sub(r"*\1*", escaped)
    return _MD_LINK.sub(lambda m: f"<{m.group(2)}|{m.group(1)}>", escaped)


def _source_label(source: Source, style: Style) -> str:
    title = source.title or PurePath(source.source).name
    if source.url:
        if style == "slack":
            return f"<{source.url}|{_slack_escape(title)}>"
        return f"[{title}](<{source.url}>)"
    name = PurePath(source.source).name
    shown = title if name == title else f"{title} ({name})"
    return _slack_escape(shown) if style == "slack" else shown


def format_answer(answer: Answer, style: Style) -> str:
    """The reply text: the answer in the platform's markup, then its sources."""
    body = _to_slack(answer.text) if style == "slack" else answer.text
    # Extractive answers quote with "> ", which Slack shows as a quote only unescaped.
    if style == "slack":
        body = re.sub(r"^&gt;", ">", body, flags=re.MULTILINE)
    if not answer.sources:
        return body
    bold = "*" if style == "slack" else "**"
    lines = [
        f"{''.join(f'[{n}]' for n in numbers)} {_source_label(source, style)}"
        for numbers, source in group_by_document(answer.sources)
    ]
    return f"{body}\n\n{bold}Sources{bold}\n" + "\n".join(lines)


def split_message(text: str, limit: int) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` characters.

    Cuts fall between paragraphs where possible, else between lines, else inside a line, so a
    long answer stays readable across several messages.
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    parts: list[str] = []
    current = ""
    for block in _blocks(text, limit):
        candidate = f"{current}\n\n{block}" if current else block
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            parts.append(current)
        current = block
    if current or not parts:
        parts.append(current)
    return parts


def _blocks(text: str, limit: int) -> list[str]:
    """Paragraphs no longer than ``limit``: long ones cut at lines, long lines cut hard."""
    blocks: list[str] = []
    for paragraph in text.split("\n\n"):
        if len(paragraph) <= limit:
            blocks.append(paragraph)
            continue
        current = ""
        for line in paragraph.split("\n"):
            while len(line) > limit:
                if current:
                    blocks.append(current)
                    current = ""
                blocks.append(line[:limit])
                line = line[limit:]
            candidate = f"{current}\n{line}" if current else line
            if len(candidate) <= limit:
                current = candidate
            else:
                blocks.append(current)
                current = line
        if current:
            blocks.append(current)
    return blocks
