"""Showing an answer while it is written: partial renderings and the pace of updates.

Intermediate text goes through the same renderer as final answers (:mod:`bot.render`): it is
escaped, cannot ping or link, and its code fences are balanced even when the model is in the
middle of one (the parser closes an open fence at the end of the text). Links are not drawn
until the answer is final: which URLs may be links depends on the sources it cites.

Two shapes of stream:

- edits (:func:`partial_parts`): the whole text so far, rendered and cut into the platform's
  message parts, replaces what was shown (Discord edits, Slack ``chat.update``);
- appends (:class:`AppendOnly`): Slack's ``chat.appendStream`` can only add text, so only
  text whose rendering cannot change is sent (:func:`stable_text`: the complete blocks, up
  to the last blank line outside code, then the finished words of a paragraph being written
  up to any inline markup that later text could change), and only while each rendering
  extends the previous one.

Sending never holds up the model: :class:`Flusher` sends the latest text in the background,
at the platform's pace, one call at a time and in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable

from bot.formatting import LIMITS
from bot.render.document import join_lines
from bot.render.escape import Platform
from bot.render.markdown import MarkdownRenderer
from bot.render.split import measure, split_lines

logger = logging.getLogger(__name__)

# Discord allows 5 edits per 5 s per channel: one per second per message stays well inside.
EDIT_INTERVAL_S = 1.0


def partial_parts(text: str, platform: Platform, limit: int | None = None) -> list[str]:
    """``text`` (Markdown so far) rendered and cut into parts of at most ``limit``."""
    lines = MarkdownRenderer(platform).render(text)
    if not lines:
        return []
    return [p for p in split_lines(lines, limit or LIMITS[platform]) if p.strip()]


# A mention's start Slack (or any Markdown reader) could parse, wherever it stands: "<@U…",
# "<!here", "<#C…", "@here", "@channel", "@everyone".
_MENTION_START = re.compile(r"(?<=<)(?=[!@#])|(?<=@)(?=(?:here|channel|everyone)\b)")


def stream_markdown(text: str) -> str:
    """``text`` rendered as CommonMark for Slack's streaming methods (``markdown_text``).

    Discord's flavour of the renderer is plain CommonMark with backslash escapes, and breaks
    every mention form (``<@…>``, ``<!…>``, ``@here``) as well, so it is what goes there.
    Code spans and blocks keep their text verbatim in CommonMark, so a mention in code
    (``<!here>`` in a shell example) is broken here too, by a word joiner after its ``<`` or
    ``@``: invisible, and only until the final rendering replaces the streamed text.
    """
    return _MENTION_START.sub("\u2060", join_lines(MarkdownRenderer("discord").render(text)))


def _blocks_end(text: str) -> tuple[int, bool]:
    """Where ``text``'s finished blocks end (after its last blank line outside code), and
    whether it ends inside a code fence."""
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
    return end, in_fence


def complete_blocks(text: str) -> str:
    """The part of ``text`` made of finished blocks: up to its last blank line outside code."""
    return text[: _blocks_end(text)[0]].rstrip()


# Inline markup whose rendering depends on text not written yet (a closing backtick or
# asterisk, a link's target, an entity's end, a table's delimiter row).
_UNSETTLED = re.compile(r"[`*_~\\<|&]|\[(?!\d+\][^(\[:])")
# A paragraph starts with a letter: not a list, heading, quote, table, fence or number.
_PARAGRAPH_START = re.compile(r"[^\W\d_]")


def settled_words(block: str) -> str:
    """The start of ``block`` (a paragraph being written) that later text cannot change.

    Finished words only (up to the last whitespace: half a word could become ``@here``), of
    the first line only (a next line could make it a heading or a table), and only up to the
    first inline markup still open (see ``_UNSETTLED``; a citation ``[1]`` is settled once the
    character after it is known). "" where the block is not a plain paragraph. A line that a
    later ``---``/``===`` turns into a heading stops the stream (:attr:`AppendOnly.stalled`):
    the rest shows with the final message, rendered right.
    """
    if not _PARAGRAPH_START.match(block):
        return ""
    line, newline, _ = block.partition("\n")
    if not newline:
        cut = max(line.rfind(" "), line.rfind("\t"))
        line = line[:cut] if cut > 0 else ""
    unsettled = _UNSETTLED.search(line)
    if unsettled is not None:
        line = line[: unsettled.start()]
    return line.rstrip()


def stable_text(text: str) -> str:
    """The part of ``text`` whose rendering is final: complete blocks + settled words."""
    end, in_fence = _blocks_end(text)
    blocks = text[:end].rstrip()
    words = "" if in_fence else settled_words(text[end:])
    if not words:
        return blocks
    return f"{blocks}\n\n{words}" if blocks else words


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
        blocks = stable_text(text)
        if not blocks or blocks == self._blocks:
            return ""
        self._blocks = blocks
        rendered = stream_markdown(blocks)
        if blocks == complete_blocks(text):
            rendered += "\n\n"
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
        self.interval_s = interval_s
        self._clock = clock
        self._last: float | None = None

    def remaining(self) -> float:
        """Seconds until the next go is allowed (0: now)."""
        if self._last is None:
            return 0.0
        return max(0.0, self._last + self.interval_s - self._clock())

    def ready(self) -> bool:
        return self.remaining() <= 0.0

    def mark(self) -> None:
        self._last = self._clock()


Send = Callable[[str], Awaitable[bool]]
"""Shows the whole text so far; True when a platform call was made (the pace counts it)."""


class Flusher:
    """Sends a stream's latest text in the background, at the pace of a :class:`Throttle`.

    The model's loop only hands text over (:meth:`offer`, no waiting): a slow platform call
    or a throttled-out moment never delays the tokens, and when the pace allows, the *latest*
    text goes (texts in between are skipped, never reordered). One call at a time. A call's
    exception stops the flusher; the next :meth:`offer` raises it, :meth:`close` returns it.
    """

    def __init__(self, send: Send, interval_s: float) -> None:
        self._send = send
        self.throttle = Throttle(interval_s)
        self._latest: str | None = None
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._error: Exception | None = None

    def offer(self, text: str) -> None:
        """Show ``text`` (the whole text so far) when the pace allows; raises a past error."""
        if self._error is not None:
            raise self._error
        if self._closing.is_set():
            return
        self._latest = text
        self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="stream-flusher")

    def again(self, text: str) -> None:
        """Try ``text`` once more at the next go, unless newer text came meanwhile."""
        if self._latest is None and not self._closing.is_set():
            self._latest = text
            self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            wait = self.throttle.remaining()
            if wait > 0 and not self._closing.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), wait)
            if self._closing.is_set():
                return
            text, self._latest = self._latest, None
            if text is None:
                continue
            try:
                sent = await self._send(text)
            except Exception as e:  # raised to the model's loop by the next offer()
                self._error = e
                return
            if sent:
                self.throttle.mark()

    async def close(self) -> Exception | None:
        """Stop: text not sent yet is dropped, a call in flight is waited for (never cut off,
        so nothing it made is lost). Returns the error that stopped the flusher, if any."""
        self._closing.set()
        self._wake.set()
        if self._task is not None:
            await self._task
        return self._error
