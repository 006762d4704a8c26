"""Finding and replacing personal data in a text, rule by rule.

Rules match on the NFKC form of the text (full-width ``９００１０１－１２３４５６７`` and
ideographic spaces read as ASCII), and replacements are made in the original text, so that
everything around a match is left exactly as it was written.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from feedback.pii.rule import Rule, Span
from feedback.pii.rules import RULES


@dataclass(frozen=True, slots=True)
class Found:
    """One span of personal data in the original text: ``text[start:end]``."""

    rule: str
    kind: str
    start: int
    end: int
    text: str


def _normalized(text: str) -> tuple[str, list[int]]:
    """The NFKC form of ``text``, and for each of its characters the index of the original
    character it came from. Characters are normalised one at a time, so that every output
    character maps to exactly one input character."""
    if unicodedata.is_normalized("NFKC", text):
        return text, list(range(len(text)))
    chars: list[str] = []
    origin: list[int] = []
    for i, char in enumerate(text):
        form = unicodedata.normalize("NFKC", char)
        chars.append(form)
        origin.extend([i] * len(form))
    return "".join(chars), origin


def _overlaps(span: Span, taken: list[Span]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in taken)


class Scrubber:
    """Replaces what its rules find with their placeholders; ``enabled=False`` passes text
    through unchanged.

    >>> Scrubber()("제 주민등록번호는 900101-1234567 입니다")
    '제 주민등록번호는 [RRN] 입니다'
    """

    def __init__(self, *, enabled: bool = True, rules: tuple[Rule, ...] = RULES) -> None:
        self.enabled = enabled
        self._rules = rules

    def find(self, text: str) -> list[Found]:
        """The spans the rules find in ``text``, in text order, never overlapping (where two
        rules' spans overlap, the earlier rule wins)."""
        if not self.enabled or not text:
            return []
        normal, origin = _normalized(text)
        taken: list[Span] = []
        found: list[Found] = []
        for rule in self._rules:
            for start, end in rule.spans(normal):
                if start >= end:
                    continue
                span = (origin[start], origin[end - 1] + 1)
                if _overlaps(span, taken):
                    continue
                taken.append(span)
                found.append(Found(rule.name, rule.kind, span[0], span[1], text[slice(*span)]))
        return sorted(found, key=lambda f: f.start)

    def __call__(self, text: str) -> str:
        if not self.enabled:
            return text
        placeholders = {r.name: r.placeholder for r in self._rules}
        parts: list[str] = []
        position = 0
        for f in self.find(text):
            parts += [text[position : f.start], placeholders[f.rule]]
            position = f.end
        parts.append(text[position:])
        return "".join(parts)

    def describe(self) -> dict[str, object]:
        """The rules as the manifest records them."""
        rules: list[dict[str, str]] = []
        if self.enabled:
            for r in self._rules:
                entry = {"name": r.name, "kind": r.kind, "placeholder": r.placeholder}
                entry["pattern"] = r.pattern.pattern
                if r.checked:
                    entry["check"] = r.checked
                rules.append(entry)
        return {"enabled": self.enabled, "normalization": "NFKC", "rules": rules}
