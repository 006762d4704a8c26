"""Showing an answer while it is written: partial renderings and the pace of updates.

Intermediate text goes through the same renderer as final answers (:mod:`bot.render`): it is
escaped, cannot ping or link, and its code fences are balanced even when the model is in the
middle of one (the parser closes an open fence at the end of the text). Links are not drawn
until the answer is final: which URLs may be links depends on the sources it cites.

Two shapes of stream:

- edits (:func:`partial_parts`): the whole text so far, rendered and cut into the platform's
  message parts, replaces what was shown (Discord edits, Slack ``chat.update``);
- appends (:class:`AppendOnly`): Slack's ``chat.appendStream`` can only add text, so only
  complete blocks (up to the last blank line outside code) are rendered and sent, and only
  while each rendering extends the previous one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.formatting import LIMITS
from bot.render.document import join_lines
from bot.render.escape import Platform
from bot.render.markdown import MarkdownRenderer
from bot.render.split import measure, split_lines

# Discord allows 5 edits per 5 s per channel: one per second per message stays well inside.
EDIT_INTERVAL_S = 1.0


def partial_parts(text: str, platform: Platform, limit: int | None = None) -> list[str]:
    """``text`` (Markdown so far) rendered and cut into parts of at most ``limit``."""
    lines = MarkdownRenderer(platform).render(text)
    if not lines:
        return []
    return [p for p in split_lines(lines, limit or LIMITS[platform]) if p.strip()]


def stream_markdown(text: str) -> str:
    """``text`` rendered as CommonMark for Slack's streaming methods (``markdown_text``).

    Discord's flavour of the renderer is plain CommonMark with backslash escapes, and breaks
    every mention form (``<@…>``, ``<!…>``, ``@here``) as well, so it is what goes there.
    """
    return join_lines(MarkdownRenderer("discord").render(text))


def complete_blocks(text: str) -> str:
    """The part of ``text`` made of finished blocks: up to its last blank line outside code."""
    in_fence = False
    end = 0
    position = 0
    for line in text.splitlines(keepends=True):
        position += len(line)
        stripped = line.strip()
        if stripped.startswith("```") or stripped.startswith("~~~"):
            in_fence = not in_fence
        elif not stripped and not in_fence and line.endswith("\n"):
            end = position
    return text[:end].rstrip()


class AppendOnly:
    """What to append next to an append-only stream, from the model's text so far.

    :meth:`next_delta` returns the rendered text not sent yet, or "" when there is nothing
    new or the rendering stopped extending what was sent (a list that became loose, say):
    from then on nothing more is appended, and the final message replaces it all.
    ``max_chars``: the most the stream may carry in total (Slack: one message's 12,000).
    """

    def __init__(self, *, max_chars: int) -> None:
        self._sent = ""
        self._blocks = ""
        self._max = max_chars
        self.stalled = False

    @property
    def sent(self) -> str:
        return self._sent

    def next_delta(self, text: str) -> str:
        if self.stalled:
            return ""
        blocks = complete_blocks(text)
        if not blocks or blocks == self._blocks:
            return ""
        self._blocks = blocks
        rendered = stream_markdown(blocks) + "\n\n"
        if not rendered.startswith(self._sent):
            self.stalled = True
            return ""
        delta = rendered[len(self._sent) :]
        if not delta.strip():
            return ""
        if measure(rendered) > self._max:
            self.stalled = True
            return ""
        self._sent = rendered
        return delta


class Throttle:
    """At most one go per ``interval_s``; the first is at once (time to first text)."""

    def __init__(
        self, interval_s: float = EDIT_INTERVAL_S, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval = interval_s
        self._clock = clock
        self._last: float | None = None

    def ready(self) -> bool:
        now = self._clock()
        return self._last is None or now - self._last >= self._interval

    def mark(self) -> None:
        self._last = self._clock()
