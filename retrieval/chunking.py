"""Split a :class:`SourceDocument` into :class:`Chunk` objects that fit the embedding model.

Chunks follow the document's structure because a retrieved chunk is only useful if it reads as
a whole: first Markdown sections (their heading path goes to ``Chunk.heading`` so citations and
embeddings keep the context a bare paragraph lacks), then paragraphs, lines, sentences, words
and, only for text with none of those, characters.

Sizes are measured with the embedding model's own tokenizer, passed in as ``token_counter``: a
chunk longer than the model's window would be silently truncated when embedded, so the limit is
checked on every chunk as it is emitted rather than trusted to an estimate.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise

from langchain_text_splitters import RecursiveCharacterTextSplitter

from retrieval.documents import Chunk, SourceDocument

__all__ = ["Chunker", "MarkdownSection", "split_markdown_sections"]

# ATX headings only: the HTML loader writes them, and setext headings ("Title\n=====") are rare
# in knowledge bases while easy to confuse with tables and rules.
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")

# Boundaries from strongest to weakest. Each separator is kept at the end of the piece before
# it (keep_separator="end"), so the pieces put back together are exactly the original text and
# a chunk never starts with the whitespace or the full stop that ended the previous one.
# A sentence ends with . ? ! followed by whitespace (which also covers Korean "다. " and "요? ")
# or with an ideographic full stop, which is usually not followed by a space.
_PARAGRAPH = r"\n[ \t]*\n\s*"
_LINE = r"\n\s*"
_SENTENCE = r"(?<=[.?!])\s+|(?<=[。！？])\s*"
_WORD = r"\s+"
_SEPARATORS = [_PARAGRAPH, _LINE, _SENTENCE, _WORD, ""]

# Where the overlap copied from the previous chunk may begin: after a sentence or line end if
# one is close enough, else after any whitespace (character positions are the last resort).
_SENTENCE_START = re.compile(r"[.?!]\s+|[。！？]\s*|\n\s*")
_WORD_START = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class MarkdownSection:
    """The text between two Markdown headings.

    ``headings`` is the path of headings the text sits under (outermost first), ``level`` the
    level of the last of them (0 for text before the first heading).
    """

    headings: tuple[str, ...]
    level: int
    body: str


def split_markdown_sections(text: str) -> list[MarkdownSection]:
    """Cut Markdown at its ATX headings, ignoring ``#`` lines inside fenced code blocks.

    Fences matter because shell and Python snippets in support articles are full of ``# comment``
    lines that would otherwise become bogus headings. Sections with an empty body are kept so
    that callers can still see every heading (the loader takes the title from the first one).
    """
    sections: list[MarkdownSection] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []
    fence: str | None = None

    def close_section() -> None:
        if path or any(line.strip() for line in lines):
            headings = tuple(title for _, title in path)
            level = path[-1][0] if path else 0
            sections.append(MarkdownSection(headings, level, "\n".join(lines)))
        lines.clear()

    for line in text.split("\n"):
        fence_match = _FENCE.match(line)
        if fence is not None:
            # A fence closes with the same character, at least as long, and nothing after it.
            if (
                fence_match is not None
                and fence_match.group(1)[0] == fence[0]
                and len(fence_match.group(1)) >= len(fence)
                and not fence_match.group(2).strip()
            ):
                fence = None
        elif fence_match is not None:
            fence = fence_match.group(1)
        elif (heading := _HEADING.match(line)) is not None:
            close_section()
            level = len(heading.group(1))
            while path and path[-1][0] >= level:
                path.pop()
            path.append((level, heading.group(2).strip()))
            continue
        lines.append(line)
    close_section()
    return sections


class Chunker:
    """Splits documents into chunks of at most ``chunk_tokens`` tokens.

    Consecutive chunks of one section share about ``overlap_tokens`` tokens (whole sentences
    where they fit) so that a fact cut at a chunk boundary is still found with its context.
    The overlap is added here rather than by LangChain because LangChain only overlaps whole
    pieces of the level it merged at: chunks made of whole paragraphs would not overlap at all.
    """

    def __init__(
        self,
        token_counter: Callable[[str], int],
        *,
        chunk_tokens: int = 256,
        overlap_tokens: int = 40,
    ) -> None:
        if not 0 <= overlap_tokens < chunk_tokens:
            raise ValueError(
                f"overlap_tokens ({overlap_tokens}) must be >= 0 and less than "
                f"chunk_tokens ({chunk_tokens})"
            )
        # Token counts do not add up: a counter may add a fixed cost to every call (special
        # tokens, E5's "passage: " prefix) or, if it subtracts a guess of that cost, charge too
        # little. Measured as count(x) + count(x) - count("x x") (it may be negative) so that
        # LangChain, which sums the sizes of pieces, gets sizes that do add up.
        self._count = token_counter
        self._overhead = 2 * token_counter("word") - token_counter("word word")
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        # Room left for new text in a chunk that starts with overlap.
        self._core_tokens = chunk_tokens - overlap_tokens
        if self._core_tokens - self._overhead < 1:
            raise ValueError(
                f"chunk_tokens ({chunk_tokens}) leaves no room for text after overlap_tokens "
                f"({overlap_tokens}) and the tokenizer's fixed cost ({self._overhead})"
            )

    def split(self, doc: SourceDocument) -> list[Chunk]:
        """Chunk ``doc``; the same document always gives the same chunks."""
        # NFC so that a Korean syllable is one code point and slicing can never split it.
        text = unicodedata.normalize("NFC", doc.text)
        chunks: list[Chunk] = []
        for section in split_markdown_sections(text):
            heading = " > ".join(section.headings)
            for piece in self._split_section(section.body.strip()):
                chunks.append(
                    Chunk(
                        doc_id=doc.doc_id,
                        index=len(chunks),
                        text=piece,
                        title=doc.title,
                        heading=heading,
                        source=doc.source,
                        url=doc.url,
                    )
                )
        return chunks

    def _split_section(self, body: str) -> list[str]:
        if not body:
            return []
        if self._count(body) <= self.chunk_tokens:
            return [body]
        spans = list(self._core_spans(body))
        pieces = [body[spans[0][0] : spans[0][1]].strip()]
        for (previous_start, _), (start, end) in pairwise(spans):
            overlap_start = self._overlap_start(body, previous_start, start, end)
            pieces.append(body[overlap_start:end].strip())
        return pieces

    def _core_spans(self, body: str) -> Iterator[tuple[int, int]]:
        """Cut ``body`` into consecutive spans that leave room for the overlap in front.

        The spans cover the body exactly; a whitespace-only piece (a blank line LangChain left
        on its own) is glued to the span before it so that no chunk is empty.
        """
        start = end = 0
        for core in self._fit(body, self._core_tokens - self._overhead):
            if start < end and not core.strip():
                end += len(core)
                continue
            if start < end:
                yield start, end
            start, end = end, end + len(core)
        if start < end:
            yield start, end

    def _fit(self, text: str, budget: int) -> list[str]:
        """LangChain's recursive split, re-split where the summed estimate was too low.

        Token counts are not exactly additive (a word cut in two costs more than whole, joined
        pieces can merge), so each piece is measured as a whole and split again with a budget
        lowered by its excess. The budget or the text shrinks on each retry, so this ends.
        """
        splitter = RecursiveCharacterTextSplitter(
            separators=_SEPARATORS,
            is_separator_regex=True,
            keep_separator="end",
            strip_whitespace=False,
            chunk_size=budget,
            chunk_overlap=0,
            length_function=self._marginal,
        )
        pieces: list[str] = []
        for piece in splitter.split_text(text):
            excess = self._count(piece.strip()) - self._core_tokens
            if excess <= 0 or len(piece) == 1:
                pieces.append(piece)
            elif budget > 1:
                pieces.extend(self._fit(piece, max(1, budget - excess)))
            else:
                # Only a counter that calls characters free gets here: halve until it fits.
                half = len(piece) // 2
                pieces.extend(self._fit(piece[:half], budget) + self._fit(piece[half:], budget))
        return pieces

    def _marginal(self, text: str) -> int:
        """Tokens ``text`` adds to a chunk, without the per-call fixed cost.

        Surrounding whitespace is free once pieces are joined (tokenizers fold it into the next
        word) but some counters charge a token for a trailing space, so it is not measured.
        """
        stripped = text.strip()
        return max(0, self._count(stripped) - self._overhead) if stripped else 0

    def _overlap_start(self, body: str, previous_start: int, start: int, end: int) -> int:
        """Where the chunk for ``body[start:end]`` begins once the overlap is put in front.

        Takes the longest tail of the previous span that starts at a sentence (else word, else
        character) boundary, costs at most ``overlap_tokens`` and keeps the chunk in its limit.
        Tails only grow as the start moves back, so the scan stops at the first that does not fit.
        """
        if self.overlap_tokens == 0:
            return start
        for boundaries in (
            (match.end() for match in _SENTENCE_START.finditer(body, previous_start, start)),
            (match.end() for match in _WORD_START.finditer(body, previous_start, start)),
            range(previous_start, start),
        ):
            best = start
            for candidate in sorted(set(boundaries), reverse=True):
                if candidate >= start or not body[candidate:start].strip():
                    continue
                if (
                    self._marginal(body[candidate:start]) > self.overlap_tokens
                    or self._count(body[candidate:end].strip()) > self.chunk_tokens
                ):
                    break
                best = candidate
            if best < start:
                return best
        return start
