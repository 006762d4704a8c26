"""How an answer looks on each platform, and how a long one is cut into messages.

The answer's Markdown is rendered by :mod:`bot.render.markdown` (code untouched, everything
else escaped, links only to the cited sources, no images, no pings); its sources go under it,
once per document, linked where the document has a valid URL. Long answers are cut by
:mod:`bot.render.split` into balanced parts that each render on their own.

Limits (characters, counted as UTF-16 code units):

- Discord: 2,000 per message.
- Slack: a section block's text holds 3,000; a message holds 50 blocks and its text is cut
  at 40,000, but Slack refuses messages whose blocks add up to about 13,000 characters
  (``msg_blocks_too_long``), so one message carries at most 12,000 in sections.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

from bot.render.document import Line, LineKind, Span, join_lines
from bot.render.escape import Platform
from bot.render.links import LinkPolicy, safe_url, shows_other_url
from bot.render.markdown import MarkdownRenderer
from bot.render.split import measure, split_lines
from retrieval.chain import Answer, Source, group_by_document

Style = Platform

LIMITS: dict[Platform, int] = {"slack": 3_000, "discord": 2_000}
SLACK_MESSAGE_CHARS = 12_000
SLACK_SECTIONS_PER_MESSAGE = 49  # and one block for the feedback buttons

_SOURCES_HEADING: dict[Platform, str] = {"slack": "*Sources*", "discord": "**Sources**"}


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """One Slack message of an answer: its section texts, and ``text`` for notifications."""

    sections: list[str]

    @property
    def text(self) -> str:
        return "\n\n".join(self.sections)


def answer_lines(answer: Answer, platform: Platform) -> list[Line]:
    """The answer and its sources as rendered lines."""
    renderer = MarkdownRenderer(platform, LinkPolicy(s.url for s in answer.sources))
    # A platform refuses an empty message: a blank answer still shows something.
    lines = renderer.render(answer.text) or [Line((Span("…"),))]
    if answer.sources:
        heading = Line((Span(_SOURCES_HEADING[platform], atomic=True),), gap="")
        lines.append(heading)
        lines += [
            Line((Span("".join(f"[{n}]" for n in numbers), atomic=True), Span(" "), *label))
            for numbers, source in group_by_document(answer.sources)
            for label in [_source_label(source, renderer)]
        ]
    return lines


def _source_label(source: Source, renderer: MarkdownRenderer) -> list[Span]:
    """A document's title, linked to its URL; a title that names another address is not."""
    name = PurePath(source.source).name
    title = " ".join((source.title or name).split())
    url = safe_url(source.url)
    if url is None:
        shown = title if not name or name == title else f"{title} ({name})"
        return renderer.text_spans(shown)
    if not shows_other_url(title, url) and "](" not in title:
        return [renderer.link(url, title)]
    return [*renderer.text_spans(title), Span(" "), renderer.link(url, url)]


def format_answer(answer: Answer, style: Style) -> str:
    """The reply text: the answer in the platform's markup, then its sources."""
    return join_lines(answer_lines(answer, style))


def answer_parts(answer: Answer, platform: Platform) -> list[str]:
    """The reply cut into parts of at most the platform's limit, each valid alone."""
    return split_lines(answer_lines(answer, platform), LIMITS[platform])


def slack_messages(answer: Answer) -> list[SlackMessage]:
    """The reply as Slack messages of one or more sections, as few and as even as fit."""
    return group_sections(answer_parts(answer, "slack"))


def group_sections(sections: list[str]) -> list[SlackMessage]:
    """Consecutive sections packed into messages within Slack's per-message limits."""
    messages: list[SlackMessage] = []
    current: list[str] = []
    size = 0
    for section in sections:
        if current and (
            size + measure(section) > SLACK_MESSAGE_CHARS
            or len(current) >= SLACK_SECTIONS_PER_MESSAGE
        ):
            messages.append(SlackMessage(current))
            current, size = [], 0
        current.append(section)
        size += measure(section)
    if current:
        messages.append(SlackMessage(current))
    return messages


def render_notice(markdown: str, platform: Platform) -> str:
    """One of the bot's own short messages (setup, apology, DM routing) in platform markup.

    It goes through the same renderer as answers: names and other values put into it are
    escaped, cannot ping, and no address in it becomes a link.
    """
    return join_lines(MarkdownRenderer(platform).render(markdown))


def split_message(text: str, limit: int) -> list[str]:
    """Already rendered ``text`` cut into balanced parts of at most ``limit`` characters.

    For text that did not come from :func:`answer_lines`: its code fences are found by their
    lines; prefer :func:`answer_parts`, which also knows where links and citations are.
    """
    return split_lines(lines_of(text), limit)


def lines_of(text: str) -> list[Line]:
    """Rendered text read back into lines: fences, blank-line gaps and quote markers."""
    lines: list[Line] = []
    fence = ""
    gap: str | None = None
    for raw in text.split("\n"):
        if fence:
            if raw.strip() == "```":
                lines.append(Line((Span(raw),), LineKind.FENCE_CLOSE, gap=gap, fence=fence))
                fence = ""
            else:
                lines.append(Line((Span(raw),), LineKind.CODE, gap=gap, fence=fence))
            gap = None
            continue
        if raw.startswith("```") and raw.count("```") == 1:
            fence = raw.strip()
            lines.append(Line((Span(raw),), LineKind.FENCE_OPEN, gap=gap, fence=fence))
            gap = None
        elif not raw.strip() and lines:
            gap = raw if gap is None else gap
        else:
            carry = "> " if raw.startswith("> ") else ""
            lines.append(Line((Span(raw),), carry=carry, gap=gap))
            gap = None
    if fence:  # an unclosed fence is closed at the end
        lines.append(Line((Span("```"),), LineKind.FENCE_CLOSE, fence=fence))
    return lines
