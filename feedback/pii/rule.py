"""One scrubbing rule: a pattern that finds candidates, and an optional check that keeps the
real ones (a checksum, a date, the words around a number)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# (start, end) offsets into the text the pattern was run on: the part of a match to replace.
Span = tuple[int, int]
# Given a candidate match, the spans that are personal data (none: a false candidate).
Check = Callable[[re.Match[str]], Iterable[Span]]


@dataclass(frozen=True, slots=True)
class Rule:
    """``kind`` groups rules for measurement (``phone``, ``rrn``, ``card``…); ``placeholder``
    replaces every span found. Without ``check``, a match is replaced whole, or only its
    ``pii`` group when the pattern has one (``password: [SECRET]`` keeps the name)."""

    name: str
    kind: str
    placeholder: str
    pattern: re.Pattern[str]
    check: Check | None = None
    checked: str = ""  # what ``check`` verifies, in words, for the export manifest

    def spans(self, text: str) -> Iterable[Span]:
        """Every span of ``text`` this rule replaces, in order."""
        for match in self.pattern.finditer(text):
            if self.check is not None:
                yield from self.check(match)
            elif "pii" in self.pattern.groupindex:
                yield match.span("pii")
            else:
                yield match.span()


def rule(
    name: str,
    kind: str,
    placeholder: str,
    pattern: str,
    flags: int = 0,
    *,
    check: Check | None = None,
    checked: str = "",
) -> Rule:
    return Rule(name, kind, placeholder, re.compile(pattern, flags), check, checked)
