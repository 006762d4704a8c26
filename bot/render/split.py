"""Cutting a rendered message into parts that each fit a platform's limit and stand alone.

Every part is valid on its own: a code block cut in two is closed at the end of one part and
reopened (with its language) at the start of the next; a quote cut mid-line repeats its marker.
Nothing is cut inside a link, inline code, a formatted phrase, a citation ``[n]``, a mention,
an HTML entity or a grapheme cluster (an emoji with skin tone or a ZWJ sequence, a Hangul
syllable written as jamo). Cuts prefer block boundaries, then line ends, then spaces.

Parts are balanced: as few as the limit allows (or one or two more where the boundaries demand
it), each cut near an even share of what is left, so a long answer never ends in a
43-character tail.

Sizes are counted in UTF-16 code units, which is at least the number of characters however a
platform counts them (an emoji outside the BMP is two).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import regex

from bot.render.document import Line, LineKind, Span

# An HTML entity, a backslash escape or a grapheme cluster: the smallest uncuttable unit.
_UNIT = regex.compile(r"&(?:amp|lt|gt);|\\\X|\X")
_SPACE = re.compile(r"(\s+)")
_CLOSE = "\n```"
# A cut this far back from the fullest point is worth it to land on a better boundary.
_BACK_OFF = 0.7

# Cut strengths: how good a place the boundary before a piece is.
_NEVER, _GRAPHEME, _WORD, _LINE, _BLOCK = -1, 0, 1, 2, 3


def measure(text: str) -> int:
    """Length in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True, slots=True)
class _Piece:
    text: str
    sep: str  # joins it to the previous piece; dropped at a cut
    strength: int  # of the cut before this piece
    fence: str  # the opening fence when this piece is code inside a block, else ""
    carry: str  # repeated first when a part starts in the middle of this piece's line


class SplitError(ValueError):
    """The limit is too small for the message's fixed parts (a fence and one unit)."""


def split_lines(lines: list[Line], limit: int) -> list[str]:
    """``lines`` as parts of at most ``limit`` UTF-16 code units, balanced, each valid alone.

    Raises :class:`SplitError` for a limit under 64, too small to hold a fence pair and a word.
    """
    if limit < 64:
        raise SplitError(f"a part limit of {limit} is too small (at least 64)")
    longest_fence = max((measure(line.fence) for line in lines), default=0)
    pieces = _pieces(lines, hard=limit - longest_fence - 16)
    if not pieces:
        return [""]
    cuts = _greedy(pieces, limit)
    for count in range(len(cuts), len(cuts) + 3) if len(cuts) > 1 else ():
        balanced = _balanced(pieces, limit, count)
        if balanced is not None:
            cuts = balanced
            break
    return [_assemble(pieces, start, end) for start, end in cuts]


# --- pieces ------------------------------------------------------------------------------------


def _pieces(lines: list[Line], *, hard: int) -> list[_Piece]:
    pieces: list[_Piece] = []
    after_open = False
    for index, line in enumerate(lines):
        sep = "" if index == 0 else ("\n" if line.gap is None else f"\n{line.gap}\n")
        strength = _LINE if line.gap is None else _BLOCK
        if line.kind is LineKind.FENCE_CLOSE or after_open:
            strength = _NEVER
        after_open = line.kind is LineKind.FENCE_OPEN
        if line.kind is LineKind.CODE:
            pieces += _code_pieces(line.text, sep, strength, line.fence, hard)
        elif line.kind is LineKind.PROSE:
            pieces += _prose_pieces(line, sep, strength, hard)
        else:
            pieces.append(_Piece(line.text, sep, strength, "", ""))
    return pieces


def _code_pieces(text: str, sep: str, strength: int, fence: str, hard: int) -> list[_Piece]:
    if measure(text) <= hard:
        return [_Piece(text, sep, strength, fence, "")]
    pieces = []
    previous = ""
    for unit in _units(text):
        cut = _WORD if previous.isspace() else _GRAPHEME
        pieces.append(_Piece(unit, "", cut, fence, ""))
        previous = unit
    return [_Piece(pieces[0].text, sep, strength, fence, ""), *pieces[1:]]


def _prose_pieces(line: Line, sep: str, strength: int, hard: int) -> list[_Piece]:
    words = _words(line.spans, hard)
    if not words:
        return [_Piece(line.lead, sep, strength, "", line.carry)]
    pieces: list[_Piece] = []
    for index, (space, segments) in enumerate(words):
        lead = line.lead if index == 0 else ""
        first_sep, first_strength = (sep, strength) if index == 0 else (space, _WORD)
        text = lead + "".join(s.text for s in segments)
        if measure(text) <= hard:
            pieces.append(_Piece(text, first_sep, first_strength, "", line.carry))
            continue
        units = [lead] if lead else []  # an over-long word: cut between its units
        for segment in segments:
            units += [segment.text] if segment.atomic else _units(segment.text)
        cuttable = [_Piece(u, "", _GRAPHEME, "", line.carry) for u in units]
        first = cuttable[0]
        pieces.append(_Piece(first.text, first_sep, first_strength, "", line.carry))
        pieces += cuttable[1:]
    return pieces


def _words(spans: tuple[Span, ...], hard: int) -> list[tuple[str, list[Span]]]:
    """The line's words, each with the whitespace before it; atomic spans never split."""
    words: list[tuple[str, list[Span]]] = []
    space, current = "", []
    for span in spans:
        if span.atomic and measure(span.text) > hard:
            span = Span(span.fallback or span.text)
        if span.atomic:
            current.append(span)
            continue
        for chunk in _SPACE.split(span.text):
            if not chunk:
                continue
            if chunk.isspace():
                if current:
                    words.append((space, current))
                    space, current = chunk, []
                elif words:
                    space += chunk
                else:
                    current.append(Span(chunk))  # leading indentation stays with the word
                continue
            current.append(Span(chunk))
    if current:
        words.append((space, current))
    return words


def _units(text: str) -> list[str]:
    return [m.group(0) for m in _UNIT.finditer(text)]


# --- cutting ----------------------------------------------------------------------------------


def _prefix(piece: _Piece) -> str:
    if piece.fence:
        return piece.fence + "\n"
    return piece.carry if piece.strength in (_GRAPHEME, _WORD) else ""


def _greedy(pieces: list[_Piece], capacity: int) -> list[tuple[int, int]]:
    """Cuts filling each part up to ``capacity``, backing off a little to a better boundary."""
    count = len(pieces)
    text_size = [measure(p.text) for p in pieces]
    sep_size = [measure(p.sep) for p in pieces]
    cuts: list[tuple[int, int]] = []
    start = 0
    while start < count:
        size = measure(_prefix(pieces[start])) + text_size[start]
        candidates: list[tuple[int, int]] = []  # (end, size)
        end = start + 1
        first_allowed = None
        while True:
            allowed = end == count or pieces[end].strength != _NEVER
            total = size + (measure(_CLOSE) if pieces[end - 1].fence else 0)
            if allowed:
                first_allowed = first_allowed or end
                if total <= capacity:
                    candidates.append((end, total))
            if end == count or size > capacity:
                break
            size += sep_size[end] + text_size[end]
            end += 1
        if not candidates:
            assert first_allowed is not None
            chosen = first_allowed
        elif candidates[-1][0] == count:
            chosen = count
        else:
            fullest = candidates[-1][1]
            window = [c for c in candidates if c[1] >= _BACK_OFF * fullest]
            chosen = max(window, key=lambda c: (pieces[c[0]].strength, c[0]))[0]
        cuts.append((start, chosen))
        start = chosen
    return cuts


def _candidates(pieces: list[_Piece], start: int, limit: int) -> list[tuple[int, int]]:
    """Where a part starting at ``start`` may end within ``limit``: (end, part size)."""
    size = measure(_prefix(pieces[start])) + measure(pieces[start].text)
    found: list[tuple[int, int]] = []
    end = start + 1
    while True:
        total = size + (measure(_CLOSE) if pieces[end - 1].fence else 0)
        if total <= limit and (end == len(pieces) or pieces[end].strength != _NEVER):
            found.append((end, total))
        if end == len(pieces) or size > limit:
            return found
        size += measure(pieces[end].sep) + measure(pieces[end].text)
        end += 1


def _balanced(pieces: list[_Piece], limit: int, count: int) -> list[tuple[int, int]] | None:
    """``count`` parts, each cut near an even share of what is left; None if they do not fit.

    Near the even share (within 15 %), a better boundary wins: a blank line over a line end
    over a space over a grapheme.
    """
    sizes = [measure(p.sep) + measure(p.text) for p in pieces]
    left = sum(sizes)
    cuts: list[tuple[int, int]] = []
    start = 0
    for remaining in range(count, 0, -1):
        candidates = _candidates(pieces, start, limit)
        if not candidates:
            return None
        if remaining == 1:
            if candidates[-1][0] != len(pieces):
                return None
            chosen = len(pieces)
        else:
            target = left / remaining
            near = [c for c in candidates if abs(c[1] - target) <= 0.15 * target]
            if near:
                chosen = max(near, key=lambda c: (pieces[c[0]].strength, -abs(c[1] - target)))[0]
            else:
                chosen = min(candidates, key=lambda c: abs(c[1] - target))[0]
            if chosen == len(pieces):
                return None
        cuts.append((start, chosen))
        left -= sum(sizes[start:chosen])
        start = chosen
    return cuts


def _assemble(pieces: list[_Piece], start: int, end: int) -> str:
    first = pieces[start]
    text = [_prefix(first), first.text]
    for piece in pieces[start + 1 : end]:
        text += [piece.sep, piece.text]
    if pieces[end - 1].fence:
        text.append(_CLOSE)
    return "".join(text)
