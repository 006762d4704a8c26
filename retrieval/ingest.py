"""Ingestion: documents in, the tenant's chunks brought in line with them.

Chunk ids come from the document id, position and text, so the store already tells what is
new: unchanged documents cost one comparison and no embedding, a changed document gets its new
chunks written before its old ones are removed (it is never missing from search meanwhile),
and a bad document is reported and skipped without touching what was stored for it.

Every document's fields are NFC before anything is derived from them (:func:`nfc_document`):
whichever source a document comes from, a decomposed title or id (as macOS writes file names)
is stored composed, so that a keyword search typed on any keyboard matches it.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from langchain_core.embeddings import Embeddings

from retrieval.chunking import Chunker
from retrieval.documents import Chunk, SourceDocument
from retrieval.errors import BadDocumentError, RetrievalError
from retrieval.store import KnowledgeStore, StoredChunk, chunk_uuid, embedding_text


@dataclass(slots=True)
class IngestReport:
    """What one ingest run did, for the summary line and for scripts."""

    documents: int = 0
    unchanged: int = 0
    changed: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    pruned_documents: int = 0
    errors: list[str] = field(default_factory=list)
    invalid_urls: list[str] = field(default_factory=list)
    """``"<document>: <why>"`` for each URL dropped as invalid (the document was stored)."""
    changed_ids: list[str] = field(default_factory=list)
    """Ids of the documents written new or changed, and of those pruned."""


@dataclass(slots=True)
class _Pending:
    doc: SourceDocument
    new_chunks: list[Chunk]
    stale_ids: set[str]


class Ingestor:
    """Brings one tenant's chunks in line with the documents it is given."""

    def __init__(
        self,
        store: KnowledgeStore,
        embedder: Embeddings,
        chunker: Chunker,
        *,
        batch_size: int = 64,
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._chunker = chunker
        self._batch_size = batch_size

    def ingest(
        self,
        items: Iterable[SourceDocument | BadDocumentError],
        *,
        tenant: str,
        origin: str,
        on_item: Callable[[str, str | None], None] | None = None,
    ) -> IngestReport:
        """Ingest every document; ``on_item(name, error)`` is called once per item."""
        report = IngestReport()
        stored = {doc_id: s.chunk_ids for doc_id, s in self._store.documents(tenant=tenant).items()}
        seen: set[str] = set()
        pending: list[_Pending] = []
        pending_chunks = 0
        for item in items:
            if isinstance(item, BadDocumentError):
                report.errors.append(str(item))
                if on_item:
                    on_item("", str(item))
                continue
            doc = nfc_document(item)
            if doc.doc_id in seen:
                message = f"{doc.source}: duplicate document id {doc.doc_id!r} in one run; skipped"
                report.errors.append(message)
                if on_item:
                    on_item(doc.doc_id, message)
                continue
            seen.add(doc.doc_id)
            report.documents += 1
            try:
                chunks = self._chunker.split(doc)
            except RetrievalError as e:
                report.errors.append(f"{doc.source}: {e}")
                if on_item:
                    on_item(doc.doc_id, str(e))
                continue
            wanted = {chunk_uuid(c): c for c in chunks}
            existing = stored.get(doc.doc_id, frozenset())
            if set(wanted) == existing:
                report.unchanged += 1
            else:
                report.changed += 1
                report.changed_ids.append(doc.doc_id)
                new_chunks = [c for cid, c in wanted.items() if cid not in existing]
                pending.append(_Pending(doc, new_chunks, set(existing) - set(wanted)))
                pending_chunks += len(new_chunks)
                if pending_chunks >= self._batch_size:
                    self._flush(pending, tenant=tenant, origin=origin, report=report)
                    pending, pending_chunks = [], 0
            if on_item:
                on_item(doc.doc_id, None)
        self._flush(pending, tenant=tenant, origin=origin, report=report)
        return report

    def upsert(self, docs: Sequence[SourceDocument], *, tenant: str, origin: str) -> IngestReport:
        """Ingest a batch of documents, comparing them with their own stored chunks only.

        :meth:`ingest` reads the whole tenant's inventory first, right for a folder or an
        export; a sync writes a few changed documents among thousands, batch after batch.
        A document that cannot be chunked raises, so the caller decides what a failure means.
        """
        report = IngestReport()
        if not docs:
            return report
        stored = self._store.chunk_ids_by_document(
            [nfc_document(d).doc_id for d in docs], tenant=tenant
        )
        pending: list[_Pending] = []
        for doc in docs:
            doc = nfc_document(doc)
            report.documents += 1
            wanted = {chunk_uuid(c): c for c in self._chunker.split(doc)}
            existing = stored.get(doc.doc_id, frozenset())
            if set(wanted) == existing:
                report.unchanged += 1
                continue
            report.changed += 1
            report.changed_ids.append(doc.doc_id)
            new_chunks = [c for cid, c in wanted.items() if cid not in existing]
            pending.append(_Pending(doc, new_chunks, set(existing) - set(wanted)))
        self._flush(pending, tenant=tenant, origin=origin, report=report)
        return report

    def prune(
        self, keep: Callable[[str], bool], *, tenant: str, origin: str, report: IngestReport
    ) -> None:
        """Remove documents of ``origin`` for which ``keep(doc_id)`` is False."""
        for doc_id, summary in self._store.documents(tenant=tenant).items():
            if summary.origin == origin and not keep(doc_id):
                report.chunks_removed += self._store.delete_chunks(summary.chunk_ids, tenant=tenant)
                report.pruned_documents += 1
                report.changed_ids.append(doc_id)

    def _flush(
        self, pending: Sequence[_Pending], *, tenant: str, origin: str, report: IngestReport
    ) -> None:
        chunks = [c for p in pending for c in p.new_chunks]
        if chunks:
            vectors = self._embedder.embed_documents([embedding_text(c) for c in chunks])
            self._store.insert(
                [StoredChunk(c, v, origin) for c, v in zip(chunks, vectors, strict=True)],
                tenant=tenant,
            )
            report.chunks_added += len(chunks)
        stale = [cid for p in pending for cid in p.stale_ids]
        report.chunks_removed += self._store.delete_chunks(stale, tenant=tenant)


def nfc_document(doc: SourceDocument) -> SourceDocument:
    """``doc`` with every text field in Unicode NFC (the same object when it already is)."""
    fields = {
        "doc_id": doc.doc_id, "title": doc.title, "text": doc.text, "source": doc.source,
        "url": doc.url,
    }  # fmt: skip
    changed = {
        name: unicodedata.normalize("NFC", value)
        for name, value in fields.items()
        if value is not None and not unicodedata.is_normalized("NFC", value)
    }
    return dataclasses.replace(doc, **changed) if changed else doc
