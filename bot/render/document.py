"""The rendered shape of a message: lines of platform markup, with what a cut must respect.

The renderer (``markdown``) produces it and the splitter (``split``) cuts it; keeping the line
structure, rather than re-reading the joined text, is what lets a cut close and reopen a code
fence, repeat a quote's marker and never fall inside a link.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True, slots=True)
class Span:
    """A run of platform markup inside a line.

    ``atomic``: never cut inside (a link, inline code, a citation, a formatted phrase).
    ``fallback``: the same content as cuttable plain markup, for the rare atomic span that is
    longer than a whole part (an absurdly long link label or code span).
    """

    text: str
    atomic: bool = False
    fallback: str | None = None


class LineKind(Enum):
    PROSE = "prose"
    FENCE_OPEN = "open"  # "```lang": never the last line of a part
    CODE = "code"  # a line inside a code block
    FENCE_CLOSE = "close"  # "```": never the first line of a part


@dataclass(frozen=True, slots=True)
class Line:
    """One line of output.

    ``lead``: markup before the spans (quote marker, list bullet, indentation). ``carry``: what
    a part that starts in the middle of this line repeats first (a quote's marker). ``gap``:
    None when the line follows the previous one directly; otherwise the text of the blank line
    before it (``""``, or ``">"`` inside a quote), which marks a block boundary. ``fence``: for
    code lines, the opening fence line of their block (reopened after a cut).
    """

    spans: tuple[Span, ...]
    kind: LineKind = LineKind.PROSE
    lead: str = ""
    carry: str = ""
    gap: str | None = None
    fence: str = ""

    @property
    def text(self) -> str:
        return self.lead + "".join(s.text for s in self.spans)


def join_lines(lines: list[Line]) -> str:
    """The whole message as one text."""
    out: list[str] = []
    for index, line in enumerate(lines):
        if index:
            out.append("\n" if line.gap is None else f"\n{line.gap}\n")
        out.append(line.text)
    return "".join(out)
