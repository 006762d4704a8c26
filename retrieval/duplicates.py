"""Near-duplicate passages: the same text from several documents is shown once, citing each.

Knowledge bases repeat themselves: a policy pasted into three help articles, a FAQ exported
twice, a page and its PDF. Sent as they are, the copies fill the prompt's excerpts with one
passage and the answer cites whichever copy the model picked. Instead, retrieved chunks whose
texts are near-identical are merged into one excerpt that keeps the best-ranked copy's place,
quotes the longest copy's text (a superset passage carries everything the shorter ones say) and
cites every document it came from.

Near-identity is decided on normalised text: NFKC (full-width and compatibility forms folded),
case folded, whitespace collapsed. Two passages are near-identical when their sets of character
5-grams overlap by at least :data:`NEAR_DUPLICATE_OVERLAP` of the smaller set (the overlap
coefficient, so a passage contained in a longer one counts as its duplicate) *and* they state
the same numbers: "refunds within 14 days" and "refunds within 30 days" differ in one word, but
that word is usually the answer, so they are kept apart. Character n-grams work the same for
Korean, where one word carries its particles, and for English.

The threshold is measured in ``tests/test_duplicates.py`` on the sample knowledge base (72
passages, English and Korean, several on the same topics): distinct passages of different
documents overlap by at most 0.36, while the variants that should merge overlap by 0.91 or more
(one changed word in a passage of 100+ characters) or 1.0 (whitespace-only edits, a longer
passage containing a shorter one).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from retrieval.prompts import Excerpt
from retrieval.store import SearchResult

NEAR_DUPLICATE_OVERLAP = 0.8
"""Overlap coefficient of character 5-gram sets at or above which two passages are merged."""

SHINGLE = 5

_SPACE = re.compile(r"\s+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def normalise(text: str) -> str:
    """Text as compared: NFKC, case folded, whitespace collapsed to single spaces, trimmed."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def shingles(normalised: str) -> frozenset[str]:
    """The character n-grams of normalised text (the whole text when shorter than one)."""
    if len(normalised) <= SHINGLE:
        return frozenset({normalised})
    return frozenset(normalised[i : i + SHINGLE] for i in range(len(normalised) - SHINGLE + 1))


def overlap(a: str, b: str) -> float:
    """Overlap coefficient of two texts' shingle sets, 0..1 (1: one contains the other)."""
    sa, sb = shingles(normalise(a)), shingles(normalise(b))
    if not sa or not sb:
        return 0.0
    return len(sa & sb) / min(len(sa), len(sb))


class _Passage:
    __slots__ = ("grams", "numbers", "text")

    def __init__(self, text: str) -> None:
        self.text = normalise(text)
        self.grams = shingles(self.text)
        self.numbers = frozenset(_NUMBER.findall(self.text))

    def near(self, other: _Passage) -> bool:
        if self.text == other.text:
            return True
        if not self.text or not other.text:
            return False
        if self.numbers != other.numbers and not (
            # A superset passage may state more numbers than the one it contains.
            self.numbers <= other.numbers or other.numbers <= self.numbers
        ):
            return False
        shared = len(self.grams & other.grams)
        return shared / min(len(self.grams), len(other.grams)) >= NEAR_DUPLICATE_OVERLAP


def merge_duplicates(results: Sequence[SearchResult]) -> list[Excerpt]:
    """Number the results as excerpts [1]..[n], near-identical ones merged into one.

    Results are taken best first; a result near-identical to an earlier excerpt's passage joins
    that excerpt (its number, its place in the order). The excerpt quotes the longest of its
    passages and lists every result, the quoted one first.
    """
    groups: list[list[SearchResult]] = []
    passages: list[list[_Passage]] = []
    for result in results:
        passage = _Passage(result.text)
        for group, seen in zip(groups, passages, strict=True):
            if any(passage.near(p) for p in seen):
                group.append(result)
                seen.append(passage)
                break
        else:
            groups.append([result])
            passages.append([passage])
    excerpts = []
    for n, group in enumerate(groups, start=1):
        longest = max(group, key=lambda r: len(normalise(r.text)))
        ordered = (longest, *(r for r in group if r is not longest))
        excerpts.append(Excerpt(n, ordered))
    return excerpts
