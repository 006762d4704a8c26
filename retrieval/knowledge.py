"""The knowledge base: workspaces, their tenants, ingestion and search, as one service.

It is the one place that joins the registry (which tenant a workspace owns, which embedding
model indexed it) to the store, so every search and write goes through the workspace's own
tenant and is refused when the configured embedding model is not the one that indexed it
(vectors of two models are not comparable: results would be silently wrong).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from retrieval.chunking import Chunker
from retrieval.documents import Chunk, SourceDocument
from retrieval.embeddings import QueryBatchEmbeddings
from retrieval.errors import BadDocumentError, EmbeddingModelMismatchError, RetrievalError
from retrieval.ingest import Ingestor, IngestReport
from retrieval.loaders import file_document_id, iter_files, load_file, load_jsonl
from retrieval.store import KnowledgeStore, SearchMode, SearchResult, StoredChunk, embedding_text
from retrieval.urls import InvalidURLError, normalise_url
from retrieval.workspaces import IdentityKind, WorkspaceInfo, WorkspaceRegistry

if TYPE_CHECKING:
    from retrieval.tenant_activity import TenantActivity

ItemCallback = Callable[[str, str | None], None]
T = TypeVar("T")

FILE_ORIGIN = "file"
JSONL_ORIGIN = "jsonl"


class KnowledgeBase:
    """Workspace-scoped ingestion and search over the shared store.

    Every write of documents (files, JSONL, synced sources, promoted answers) goes through
    :meth:`ingest_paths`, :meth:`ingest_jsonl` or :meth:`upsert_documents`, and there through
    :func:`checked_urls`: a document's URL is stored only in normal form, an invalid one is
    dropped (the document is stored without it) and listed in the report's ``invalid_urls``.
    """

    def __init__(
        self,
        registry: WorkspaceRegistry,
        store: KnowledgeStore,
        embedder: QueryBatchEmbeddings,
        chunker: Chunker,
        *,
        embedding_model: str,
        hybrid_alpha: float,
        max_file_bytes: int,
        activity: TenantActivity | None = None,
    ) -> None:
        """``activity``: makes a cold tenant hot before it is used and records each use
        (questions, syncs, ingests; see :mod:`retrieval.tenant_activity`)."""
        self._activity = activity
        self._registry = registry
        self._store = store
        self._embedder = embedder
        self._chunker = chunker
        self._model = embedding_model
        self._alpha = hybrid_alpha
        self._max_file_bytes = max_file_bytes
        self._ingestor = Ingestor(store, embedder, chunker)

    # --- workspaces --------------------------------------------------------------------------

    def create_workspace(
        self, name: str, identities: list[tuple[IdentityKind, str]] | None = None
    ) -> WorkspaceInfo:
        info = self._registry.create(name, embedding_model=self._model, identities=identities)
        try:
            self._store.create_tenant(tenant=info.tenant)
        except Exception as e:
            self._registry.delete(info.name)
            raise RetrievalError(f"could not create the tenant of workspace {name!r}: {e}") from e
        return info

    def delete_workspace(self, name: str) -> dict[str, int]:
        """Remove the tenant with all its chunks, then everything else the workspace owned
        and its registry entry (one transaction, :meth:`WorkspaceRegistry.delete`); the count
        of deleted rows per kind. Interrupted, it can run again and finishes the job."""
        tenant = self._registry.tenant_of(name)
        if tenant is not None and self._store.tenant_exists(tenant=tenant):
            self._store.delete_tenant(tenant=tenant)
        return self._registry.delete(name)

    def workspace(self, name: str) -> WorkspaceInfo:
        """The workspace, checked to be searchable with the configured embedding model."""
        info = self._registry.get(name)
        if info.embedding_model != self._model:
            raise EmbeddingModelMismatchError(
                f"workspace {name!r} was indexed with embedding model {info.embedding_model!r} "
                f"but {self._model!r} is configured; run `supportbot workspace reindex {name}` "
                "or configure the original model again"
            )
        return info

    def _used(self, tenant: str) -> str:
        """``tenant``, made hot and its use recorded first (when activity is tracked)."""
        if self._activity is not None:
            self._activity.use(tenant)
        return tenant

    def chunk_count(self, name: str) -> int:
        return self._store.count(tenant=self._registry.get(name).tenant)

    def has_knowledge(self, name: str) -> bool:
        """Whether the workspace has any chunk, without waking a cold tenant.

        A cold tenant always has some (idle empty tenants are never set cold); counting one
        would load it into memory for a question nobody asked (the bots check every message).
        Raises like :meth:`chunk_count` (no such workspace or tenant, store unavailable).
        """
        tenant = self._registry.get(name).tenant
        if self._activity is not None and self._activity.is_cold(tenant):
            return True
        return self._store.count(tenant=tenant) > 0

    # --- search ------------------------------------------------------------------------------

    def search(
        self,
        name: str,
        query: str,
        *,
        k: int,
        mode: SearchMode = "hybrid",
        alpha: float | None = None,
    ) -> list[SearchResult]:
        tenant = self._used(self.workspace(name).tenant)
        vector = self._embedder.embed_query(query)
        return self._store.search(
            query,
            vector,
            tenant=tenant,
            k=k,
            mode=mode,
            alpha=self._alpha if alpha is None else alpha,
        )

    def search_many(
        self,
        name: str,
        queries: Sequence[str],
        *,
        k: int,
        mode: SearchMode = "hybrid",
        alpha: float | None = None,
    ) -> list[list[SearchResult]]:
        """Many queries: one batched embedding call, then searches in parallel."""
        tenant = self._used(self.workspace(name).tenant)
        vectors = self._embedder.embed_queries(list(queries))
        weight = self._alpha if alpha is None else alpha

        def one(pair: tuple[str, list[float]]) -> list[SearchResult]:
            return self._store.search(pair[0], pair[1], tenant=tenant, k=k, mode=mode, alpha=weight)

        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(one, zip(queries, vectors, strict=True)))

    def searcher(self, name: str, *, k: int) -> Callable[[str], list[SearchResult]]:
        """A search function bound to one workspace, for the answer chain."""
        self.workspace(name)
        return lambda query: self.search(name, query, k=k)

    # --- ingestion ---------------------------------------------------------------------------

    def ingest_paths(
        self,
        name: str,
        paths: Sequence[Path],
        *,
        prune: bool = False,
        on_item: ItemCallback | None = None,
    ) -> IngestReport:
        """Ingest files and folders; with ``prune``, drop stored files under them now gone."""
        tenant = self._used(self.workspace(name).tenant)
        missing = [p for p in paths if not p.exists()]
        seen: set[str] = set()

        def documents() -> Iterator[SourceDocument | BadDocumentError]:
            for missing_path in missing:
                yield BadDocumentError(f"{missing_path}: no such file or folder; skipped")
            for path in iter_files([p for p in paths if p.exists()]):
                seen.add(file_document_id(path))
                try:
                    yield load_file(path, max_bytes=self._max_file_bytes)
                except BadDocumentError as e:
                    yield e

        dropped: list[str] = []
        report = self._ingestor.ingest(
            checked_urls(documents(), dropped),
            tenant=tenant,
            origin=FILE_ORIGIN,
            on_item=on_item,
        )
        report.invalid_urls.extend(dropped)
        if prune:
            roots = [Path(file_document_id(p)) for p in paths if p.exists()]
            self._ingestor.prune(
                lambda doc_id: doc_id in seen or not _under_any(doc_id, roots),
                tenant=tenant,
                origin=FILE_ORIGIN,
                report=report,
            )
        return report

    def ingest_jsonl(
        self, name: str, path: Path, *, on_item: ItemCallback | None = None
    ) -> IngestReport:
        tenant = self._used(self.workspace(name).tenant)
        dropped: list[str] = []
        report = self._ingestor.ingest(
            checked_urls(load_jsonl(path), dropped),
            tenant=tenant,
            origin=JSONL_ORIGIN,
            on_item=on_item,
        )
        report.invalid_urls.extend(dropped)
        return report

    def upsert_documents(
        self, name: str, docs: Sequence[SourceDocument], *, origin: str
    ) -> IngestReport:
        """Write new and changed documents of a synced source (unchanged ones cost no embedding)."""
        tenant = self._used(self.workspace(name).tenant)
        dropped: list[str] = []
        checked = list(checked_urls(docs, dropped))
        report = self._ingestor.upsert(checked, tenant=tenant, origin=origin)
        report.invalid_urls.extend(dropped)
        return report

    def delete_documents(self, name: str, doc_ids: Sequence[str]) -> int:
        """Remove documents a source deleted; returns the number of chunks removed."""
        tenant = self._used(self._registry.get(name).tenant)
        return self._store.delete_documents(doc_ids, tenant=tenant)

    def delete_origin(self, name: str, origin: str) -> int:
        """Remove everything one origin (a synced source) wrote to the workspace."""
        return self._store.delete_origin(origin, tenant=self._used(self._registry.get(name).tenant))

    def origin_chunk_count(self, name: str, origin: str) -> int:
        """Chunks one origin (a synced source) has in the workspace."""
        return self._store.count(tenant=self._used(self._registry.get(name).tenant), origin=origin)

    def reindex(self, name: str, *, on_item: ItemCallback | None = None) -> int:
        """Re-embed every chunk of the workspace with the configured model."""
        info = self._registry.get(name)
        self._used(info.tenant)
        batch: list[StoredChunk] = []
        total = 0

        def flush() -> None:
            vectors = self._embedder.embed_documents([embedding_text(s.chunk) for s in batch])
            self._store.insert(
                [StoredChunk(s.chunk, v, s.origin) for s, v in zip(batch, vectors, strict=True)],
                tenant=info.tenant,
            )

        for stored in self._all_chunks(info.tenant):
            batch.append(stored)
            total += 1
            if len(batch) >= 64:
                flush()
                batch.clear()
            if on_item:
                on_item(stored.chunk.doc_id, None)
        if batch:
            flush()
        self._registry.set_embedding_model(name, self._model)
        return total

    def _all_chunks(self, tenant: str) -> Iterable[StoredChunk]:
        # Materialised first: rewriting objects while a cursor walks them could skip some.
        return list(self._store.iter_chunks(tenant=tenant))


def checked_urls(
    items: Iterable[SourceDocument | T], dropped: list[str]
) -> Iterator[SourceDocument | T]:
    """The documents with their URLs in normal form; invalid URLs removed and noted in ``dropped``.

    A document whose ``source`` was its URL shows its id instead when the URL is dropped (the
    source is what a citation shows). Other items (errors of unreadable documents) pass as
    they are.
    """
    for item in items:
        if isinstance(item, SourceDocument) and item.url is not None:
            try:
                url: str | None = normalise_url(item.url)
            except InvalidURLError as e:
                dropped.append(f"{item.doc_id}: invalid URL dropped ({e})")
                url = None
            source = item.source
            if source == item.url:
                source = url or item.doc_id
            item = replace(item, url=url, source=source)
        yield item


def _under_any(doc_id: str, roots: Sequence[Path]) -> bool:
    path = Path(doc_id)
    return any(path == root or root in path.parents for root in roots)


__all__ = ["FILE_ORIGIN", "JSONL_ORIGIN", "Chunk", "KnowledgeBase"]
