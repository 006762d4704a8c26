"""Markdown (what chat models and documents write) as Slack mrkdwn or Discord Markdown.

markdown-it-py parses (CommonMark, plus tables and strikethrough; raw HTML stays text); this
module only renders its syntax tree, node by node, so code is never touched by a rule meant for
prose. What it guarantees on both platforms:

- fenced, indented and inline code come out exactly as written (Slack's three entities apart);
- all other text is escaped: it cannot format, ping (``@everyone``, ``<!channel>``, ``<@U…>``,
  ``<@&…>``) or link by itself;
- links go only to URLs the :class:`LinkPolicy` allows (the cited sources); a link's visible
  text never shows another address; every other address is shown as inline code, which no
  client makes clickable;
- images are never rendered: their alt text is shown instead.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from bot.render.document import Line, LineKind, Span
from bot.render.escape import (
    Platform,
    break_broadcasts,
    escape_code,
    escape_line_start,
    escape_text,
    inline_code,
    slack_escape,
)
from bot.render.links import LinkPolicy, find_urls, safe_url, shows_other_url

_PARSER = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])

_CITATION = re.compile(r"\[\d{1,3}\]")
_LANGUAGE = re.compile(r"[A-Za-z0-9_+#.-]{1,30}")
# A formatted phrase up to this long is kept whole; a longer one is formatted word by word
# (bold and italic look the same), so a cut between its words leaves both parts valid.
_ATOMIC_PHRASE = 120
# Inline code longer than this is shown as several spans, so it can be cut.
_CODE_SPAN_CHUNK = 400
_RULE = "──────────"

_MARKERS: dict[Platform, dict[str, str]] = {
    "slack": {"strong": "*", "em": "_", "s": "~"},
    "discord": {"strong": "**", "em": "_", "s": "~~"},
}
_BULLETS: dict[Platform, tuple[str, ...]] = {"slack": ("•", "◦", "▪"), "discord": ("-",)}


class MarkdownRenderer:
    """Renders Markdown for one platform under one link policy (one answer's sources)."""

    def __init__(self, platform: Platform, policy: LinkPolicy | None = None) -> None:
        self.platform = platform
        self.policy = policy or LinkPolicy()
        self._depth = 0  # list nesting, for bullets

    # --- public ------------------------------------------------------------------------------

    def render(self, markdown: str) -> list[Line]:
        """``markdown`` as lines of platform markup (see :mod:`bot.render.document`)."""
        root = SyntaxTreeNode(_PARSER.parse(markdown))
        return [self._line_start(line) for line in self._blocks(root.children, tight=False)]

    def text_spans(self, text: str) -> list[Span]:
        """Plain ``text`` (no Markdown) as spans: escaped, addresses shown per the policy."""
        spans: list[Span] = []
        position = 0
        for match in find_urls(text):
            spans += self._plain_spans(text[position : match.start])
            allowed = self.policy.allows(match.url)
            raw = text[match.start : match.end]
            spans.append(self.link(allowed, allowed) if allowed else self.code_span(raw))
            position = match.end
        spans += self._plain_spans(text[position:])
        return spans

    def link(self, url: str, label: str) -> Span:
        """A link to an allowed ``url``, showing ``label`` unless it pretends to be another URL."""
        shown = " ".join(label.split()) or url
        if shows_other_url(shown, url):
            shown = url
        if shown == url:  # the address itself: no label to show
            text = f"<{slack_escape(url)}>" if self.platform == "slack" else f"<{url}>"
        elif self.platform == "slack":
            text = f"<{slack_escape(url)}|{slack_escape(break_broadcasts(shown))}>"
        else:
            text = f"[{escape_text(shown, 'discord')}](<{url}>)"
        return Span(text, atomic=True, fallback=escape_text(shown, self.platform))

    def code_span(self, code: str) -> Span:
        return Span(inline_code(code, self.platform), atomic=True)

    # --- blocks ------------------------------------------------------------------------------

    def _blocks(self, nodes: list[SyntaxTreeNode], *, tight: bool) -> list[Line]:
        lines: list[Line] = []
        for node in nodes:
            block = self._block(node)
            if block and lines:
                gap = None if tight and node.type not in ("fence", "code_block") else ""
                block[0] = replace(block[0], gap=gap)
            lines += block
        return lines

    def _block(self, node: SyntaxTreeNode) -> list[Line]:
        kind = node.type
        if kind == "paragraph":
            return [Line(tuple(spans)) for spans in self._inline_lines(node)]
        if kind == "heading":
            strong = _MARKERS[self.platform]["strong"]
            return [Line(tuple(self._wrap(s, strong))) for s in self._inline_lines(node)]
        if kind in ("fence", "code_block"):
            return self._code(node.content, node.info if kind == "fence" else "")
        if kind in ("bullet_list", "ordered_list"):
            return self._list(node)
        if kind == "blockquote":
            return [self._quoted(line) for line in self._blocks(node.children, tight=False)]
        if kind == "table":
            return self._table(node)
        if kind == "hr":
            return [Line((Span(_RULE),))]
        if node.children:
            return self._blocks(node.children, tight=False)
        return [Line(tuple(self.text_spans(line))) for line in node.content.splitlines()]

    def _code(self, content: str, info: str) -> list[Line]:
        language = _LANGUAGE.match(info.strip())
        opener = "```" + (language.group(0) if language and self.platform == "discord" else "")
        body = content[:-1] if content.endswith("\n") else content
        lines = [Line((Span(opener),), LineKind.FENCE_OPEN, fence=opener)]
        if body:
            lines += [
                Line((Span(escape_code(text, self.platform)),), LineKind.CODE, fence=opener)
                for text in body.split("\n")
            ]
        lines.append(Line((Span("```"),), LineKind.FENCE_CLOSE, fence=opener))
        return lines

    def _list(self, node: SyntaxTreeNode) -> list[Line]:
        ordered = node.type == "ordered_list"
        start = int(node.attrs.get("start", 1)) if ordered else 1
        bullets = _BULLETS[self.platform]
        bullet = bullets[min(self._depth, len(bullets) - 1)]
        tight = all(
            p.hidden for item in node.children for p in item.children if p.type == "paragraph"
        )
        lines: list[Line] = []
        self._depth += 1
        try:
            for n, item in enumerate(node.children, start=start):
                marker = f"{n}. " if ordered else f"{bullet} "
                body = self._blocks(item.children, tight=tight) or [Line(())]
                for index, line in enumerate(body):
                    if line.kind is not LineKind.PROSE:
                        body[index] = replace(line, gap=None if line.gap is None else "")
                        continue
                    lead = marker if index == 0 else " " * len(marker)
                    body[index] = replace(line, lead=lead + line.lead)
                if lines:
                    body[0] = replace(body[0], gap=None if tight else "")
                lines += body
        finally:
            self._depth -= 1
        return lines

    def _quoted(self, line: Line) -> Line:
        if line.kind is not LineKind.PROSE:  # code stays a plain block inside a quote
            return replace(line, gap=None if line.gap is None else "")
        marker = "> " if line.lead[:2] != "> " else ""
        return replace(
            line,
            lead=marker + line.lead,
            carry="> ",
            gap=None if line.gap is None else ">",
        )

    def _table(self, node: SyntaxTreeNode) -> list[Line]:
        """A table as aligned text in a code block: neither platform renders tables."""
        rows = [
            [_plain(cell) for cell in row.children]
            for section in node.children
            for row in section.children
        ]
        columns = max((len(r) for r in rows), default=0)
        rows = [r + [""] * (columns - len(r)) for r in rows]
        widths = [max(_width(r[c]) for r in rows) for c in range(columns)]

        def show(row: list[str]) -> str:
            cells = (cell + " " * (widths[c] - _width(cell)) for c, cell in enumerate(row))
            return "| " + " | ".join(cells) + " |"

        text = [show(rows[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        text += [show(r) for r in rows[1:]]
        return self._code("\n".join(text) + "\n", "")

    def _line_start(self, line: Line) -> Line:
        """Discord: text that would start a heading, quote or list at a line's start is escaped."""
        if line.kind is not LineKind.PROSE or not line.spans or line.spans[0].atomic:
            return line
        first = line.spans[0]
        escaped = escape_line_start(first.text, self.platform)
        if escaped == first.text:
            return line
        return replace(line, spans=(Span(escaped), *line.spans[1:]))

    # --- inline ------------------------------------------------------------------------------

    def _inline_lines(self, node: SyntaxTreeNode) -> list[list[Span]]:
        """The inline content of a paragraph or heading, one list of spans per line."""
        lines: list[list[Span]] = [[]]
        for child in node.children:  # the "inline" node
            for part in self._inline(child.children):
                lines[-1] += part[0]
                lines += [list(rest) for rest in part[1:]]
        return lines

    def _inline(self, nodes: list[SyntaxTreeNode]) -> list[list[list[Span]]]:
        """Each node's spans, split into lines where it holds a line break."""
        out: list[list[list[Span]]] = []
        for node in nodes:
            kind = node.type
            if kind in ("softbreak", "hardbreak"):
                out.append([[], []])
            elif kind == "text":
                out.append([self.text_spans(node.content)])
            elif kind == "code_inline":
                out.append([self._code_spans(node.content)])
            elif kind in ("strong", "em", "s"):
                marker = _MARKERS[self.platform][kind]
                inner: list[list[Span]] = [[]]
                for part in self._inline(node.children):
                    inner[-1] += part[0]
                    inner += [list(rest) for rest in part[1:]]
                out.append([self._wrap(spans, marker) for spans in inner])
            elif kind == "link":
                out.append([self._link(node)])
            elif kind == "image":  # never rendered: a platform would fetch it by itself
                out.append([self.text_spans(_plain(node))])
            else:
                out.append([self.text_spans(_plain(node) or node.content)])
        return out

    def _code_spans(self, code: str) -> list[Span]:
        chunks = [code[i : i + _CODE_SPAN_CHUNK] for i in range(0, len(code), _CODE_SPAN_CHUNK)]
        return [self.code_span(chunk) for chunk in chunks] or [self.code_span("")]

    def _link(self, node: SyntaxTreeNode) -> list[Span]:
        href = str(node.attrs.get("href", ""))
        label = " ".join(_plain(node).split())
        allowed = self.policy.allows(href)
        if allowed:
            return [self.link(allowed, label)]
        citation = label.isdigit()  # a citation written as a link: "[1](https://…)"
        spans = [Span(f"[{label}]", atomic=True)] if citation else self.text_spans(label)
        address = href.removeprefix("mailto:")
        if not href or address == label or safe_url(href) == safe_url(label):
            return spans or [self.code_span(address)]
        return [*spans, Span(" ("), self.code_span(address), Span(")")]

    def _plain_spans(self, text: str) -> list[Span]:
        """Text without addresses: citations kept whole, the rest escaped."""
        spans: list[Span] = []
        position = 0
        for match in _CITATION.finditer(text):
            if match.start() > position:
                spans.append(Span(escape_text(text[position : match.start()], self.platform)))
            spans.append(Span(match.group(0), atomic=True))
            position = match.end()
        if position < len(text):
            spans.append(Span(escape_text(text[position:], self.platform)))
        return spans

    def _wrap(self, spans: list[Span], marker: str) -> list[Span]:
        """``spans`` between formatting markers, whole if short, else word by word."""
        text = "".join(s.text for s in spans)
        if not text.strip():
            return spans
        if len(text) <= _ATOMIC_PHRASE:
            plain = "".join(s.fallback or s.text for s in spans)
            return [Span(f"{marker}{text}{marker}", atomic=True, fallback=plain)]
        wrapped: list[Span] = []
        for span in spans:
            if span.atomic:
                wrapped.append(replace(span, text=f"{marker}{span.text}{marker}"))
                continue
            words = re.split(r"(\s+)", span.text)
            wrapped.append(
                Span("".join(w if not w or w.isspace() else f"{marker}{w}{marker}" for w in words))
            )
        return wrapped


def _plain(node: SyntaxTreeNode) -> str:
    """The text a node shows, without any markup (link labels, image alt text, table cells)."""
    if node.type in ("text", "code_inline"):
        return node.content
    if node.type in ("softbreak", "hardbreak"):
        return " "
    return "".join(_plain(child) for child in node.children)


def _width(text: str) -> int:
    """Columns ``text`` takes in a monospaced font (wide East Asian characters take two)."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )
