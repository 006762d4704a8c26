"""The neutral document and chunk types that flow from loaders to the store."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """One document as loaded from a file, a JSONL record or (later) a connector.

    ``doc_id`` is stable for the same source: the ``id`` given in JSONL, or the file path as
    given on the command line, resolved. ``source`` is what a citation shows (a URL or a path).
    """

    doc_id: str
    title: str
    text: str
    source: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document small enough to embed and to quote in a prompt.

    ``heading`` is the heading path the chunk sits under ("Billing > Refunds"), kept apart from
    ``text`` so that it can be shown in citations and prepended for embedding.
    """

    doc_id: str
    index: int
    text: str
    title: str
    heading: str
    source: str
    url: str | None = None
