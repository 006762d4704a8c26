"""The knowledge store: one multi-tenant Weaviate collection, one tenant per workspace.

Every method takes the tenant as a required keyword argument and works only inside it, so a
call cannot forget it and read or write another customer's data. Tenants are never created
implicitly (auto tenant creation is off): writing to or searching an unknown tenant is an
:class:`UnknownWorkspaceError`.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar, cast

import numpy as np
from weaviate import WeaviateClient
from weaviate.classes.config import (
    Configure,
    ConsistencyLevel,
    DataType,
    Property,
    ReplicationDeletionStrategy,
    Tokenization,
    VectorDistances,
)
from weaviate.classes.data import DataObject
from weaviate.classes.query import Filter, HybridFusion, MetadataQuery
from weaviate.classes.tenants import Tenant, TenantActivityStatus
from weaviate.collections import Collection
from weaviate.exceptions import WeaviateBaseError

from retrieval.connection import WeaviateConnection
from retrieval.documents import Chunk
from retrieval.errors import (
    RetrievalError,
    StoreUnavailableError,
    UnknownWorkspaceError,
    WeaviateUnreachableError,
)

logger = logging.getLogger(__name__)

COLLECTION = "KnowledgeChunk"
# BM25 reads the text twice: morphologically (kagome_kr splits Korean particles and endings off
# their stems: "환불은" -> "환불") and as lowercased words (kagome_kr neither lowercases nor
# splits English well: "PASSWORD" would not match "password"). Titles and headings often carry
# the words a question uses when the paragraph itself does not.
KEYWORD_PROPERTIES = ["text", "text_words", "heading", "title"]
_ID_NAMESPACE = uuid.UUID("6f1c2a4e-8d0b-4c1e-9a57-3b2f6d8e1c90")

SearchMode = Literal["hybrid", "keyword", "vector"]

P = ParamSpec("P")
T = TypeVar("T")


def chunk_uuid(chunk: Chunk) -> str:
    """Id from source and content: re-ingesting unchanged text gives the same ids."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{chunk.doc_id}\x00{chunk.index}\x00{chunk.text}"))


def heading_path(title: str, heading: str) -> str:
    """ "Title > Section > Subsection", saying the title once.

    Markdown headings usually start with the document's own "# Title", which is also its title.
    """
    if heading == title or heading.startswith(f"{title} > "):
        return heading
    return " > ".join(part for part in (title, heading) if part)


def embedding_text(chunk: Chunk) -> str:
    """What the embedder sees: the text under its title and heading path, for context."""
    context = heading_path(chunk.title, chunk.heading)
    return f"{context}\n{chunk.text}" if context else chunk.text


_NIL_UUID = "00000000-0000-0000-0000-000000000000"  # no chunk has it (chunk ids are uuid5)


@dataclass(frozen=True, slots=True)
class Replication:
    """How the collection is replicated across a Weaviate cluster.

    ``factor``: copies of every tenant's chunks (one per node; 1 on a single node). ``write``
    and ``read``: how many of those copies must confirm a write or answer a read: ``ONE``,
    ``QUORUM`` (factor // 2 + 1) or ``ALL``. With factor 3 and QUORUM both ways, a read always
    overlaps the last acknowledged write, and the loss of one node stops neither.
    """

    factor: int = 1
    write: str = "ONE"
    read: str = "ONE"

    def __post_init__(self) -> None:
        if self.factor < 1:
            raise ValueError(f"replication factor must be at least 1, not {self.factor}")
        for level in (self.write, self.read):
            if level not in ("ONE", "QUORUM", "ALL"):
                raise ValueError(f"consistency level must be ONE, QUORUM or ALL, not {level!r}")


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk with its vector and origin, ready to be written."""

    chunk: Chunk
    vector: Sequence[float]
    origin: str


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One retrieved chunk. ``similarity`` is the cosine between query and chunk vectors.

    ``score`` ranks results within one search only (fused, BM25 or vector scores are not
    comparable across modes); ``similarity`` is comparable and gates "nothing relevant found".
    """

    chunk_id: str
    doc_id: str
    source: str
    title: str
    heading: str
    text: str
    url: str | None
    origin: str
    score: float
    similarity: float


@dataclass(frozen=True, slots=True)
class DocumentSummary:
    doc_id: str
    origin: str
    chunk_ids: frozenset[str]


def _reconnecting(
    method: Callable[Concatenate[KnowledgeStore, P], T],
) -> Callable[Concatenate[KnowledgeStore, P], T]:
    """Run a store call; when it failed because Weaviate went away, restarted or moved, run it
    once more on a new client (or fail with :class:`WeaviateUnreachableError`).

    Every call wrapped here may run twice: reads, deletes and inserts (ids derive from the
    content, so a repeated insert overwrites the same objects) are idempotent. A Weaviate error
    the method did not translate itself leaves as a one-line :class:`RetrievalError`, so the
    callers' retries (sync worker, ingest) see it (e.g. a batch deadline when a replica dies).
    """

    @functools.wraps(method)
    def wrapper(self: KnowledgeStore, *args: P.args, **kwargs: P.kwargs) -> T:
        generation = self._connection.generation
        try:
            try:
                result = method(self, *args, **kwargs)
            except Exception as error:
                if not _may_be_the_connection(error) or not self._connection.failed(
                    error, generation=generation
                ):
                    raise
                result = method(self, *args, **kwargs)
        except WeaviateBaseError as e:
            raise KnowledgeStore._translate(e, str(kwargs.get("tenant", ""))) from e
        self._connection.mark_alive()
        return result

    return wrapper


def _may_be_the_connection(error: Exception) -> bool:
    """False for errors that certainly are not a lost connection (no re-check needed)."""
    if isinstance(error, WeaviateUnreachableError | UnknownWorkspaceError):
        return False
    return not isinstance(error, RetrievalError) or isinstance(error, StoreUnavailableError)


class KnowledgeStore:
    """Reads and writes knowledge chunks, always inside one named tenant.

    ``client``: a :class:`WeaviateConnection` (the bots and the CLI: survives Weaviate
    restarts) or a plain client (used as it is). ``replication``: the factor a new collection
    gets, and the consistency levels of writes and reads (default: one node).
    """

    def __init__(
        self,
        client: WeaviateClient | WeaviateConnection[Any],
        *,
        replication: Replication | None = None,
    ) -> None:
        self._connection: WeaviateConnection[Any] = (
            client if isinstance(client, WeaviateConnection) else WeaviateConnection.fixed(client)
        )
        self.replication = replication or Replication()

    @property
    def _client(self) -> WeaviateClient:
        """The current client (checked alive; raises :class:`WeaviateUnreachableError`)."""
        return self._connection.client()

    # --- schema and tenants ------------------------------------------------------------------

    @_reconnecting
    def ensure_schema(self) -> None:
        """Create the collection once; safe to call on every start.

        A new collection gets the configured replication factor, with async replication (a
        node that was down is repaired in the background) and time-based resolution of
        deletes (the latest of a delete and a re-insert wins, so a removed document does not
        come back from a node that missed the delete). An existing collection keeps its factor:
        a different configured one is logged (see :meth:`_check_replication`).
        """
        try:
            if self._client.collections.exists(COLLECTION):
                self._check_replication()
                return
            searchable = Tokenization.KAGOME_KR
            factor = self.replication.factor
            self._client.collections.create(
                name=COLLECTION,
                replication_config=Configure.replication(
                    factor=factor,
                    async_enabled=factor > 1,
                    deletion_strategy=ReplicationDeletionStrategy.TIME_BASED_RESOLUTION,
                ),
                multi_tenancy_config=Configure.multi_tenancy(
                    enabled=True, auto_tenant_creation=False, auto_tenant_activation=True
                ),
                vector_config=Configure.Vectors.self_provided(
                    vector_index_config=Configure.VectorIndex.hnsw(
                        distance_metric=VectorDistances.COSINE
                    )
                ),
                properties=[
                    Property(name="text", data_type=DataType.TEXT, tokenization=searchable),
                    Property(
                        name="text_words", data_type=DataType.TEXT, tokenization=Tokenization.WORD
                    ),
                    Property(name="title", data_type=DataType.TEXT, tokenization=searchable),
                    Property(name="heading", data_type=DataType.TEXT, tokenization=searchable),
                    Property(
                        name="doc_id",
                        data_type=DataType.TEXT,
                        tokenization=Tokenization.FIELD,
                        index_searchable=False,
                    ),
                    Property(
                        name="source",
                        data_type=DataType.TEXT,
                        tokenization=Tokenization.FIELD,
                        index_searchable=False,
                    ),
                    Property(
                        name="url",
                        data_type=DataType.TEXT,
                        tokenization=Tokenization.FIELD,
                        index_searchable=False,
                        index_filterable=False,
                    ),
                    Property(
                        name="origin",
                        data_type=DataType.TEXT,
                        tokenization=Tokenization.FIELD,
                        index_searchable=False,
                    ),
                    Property(name="chunk_index", data_type=DataType.INT),
                ],
            )
        except WeaviateBaseError as e:
            if self._client.collections.exists(COLLECTION):
                return  # another process created it at the same moment
            first_line = str(e).strip().splitlines()[0][:300] if str(e).strip() else repr(e)
            raise StoreUnavailableError(
                f"could not create the Weaviate collection {COLLECTION} with replication "
                f"factor {self.replication.factor}: {first_line}"
            ) from e

    def _check_replication(self) -> None:
        """Warn when the existing collection's factor is not the configured one.

        Not changed here: every bot and worker calls this on start, and one started with a
        stale setting must not shrink the copies of every workspace. Weaviate raises the factor
        of an existing collection only once every tenant's shard already has that many
        replicas (copy them first with its replica-movement API); the README says how.
        """
        config = self._client.collections.use(COLLECTION).config.get()
        actual = config.replication_config.factor
        if actual != self.replication.factor:
            logger.warning(
                "the Weaviate collection %s has replication factor %s, not the configured "
                "WEAVIATE_REPLICATION_FACTOR=%s; it keeps %s (see the README: changing the "
                "replication factor)",
                COLLECTION,
                actual,
                self.replication.factor,
                actual,
            )

    @_reconnecting
    def create_tenant(self, *, tenant: str) -> None:
        self._collection().tenants.create([Tenant(name=tenant)])

    @_reconnecting
    def delete_tenant(self, *, tenant: str) -> None:
        """Remove the tenant and every chunk in it."""
        self._collection().tenants.remove([tenant])

    @_reconnecting
    def tenant_exists(self, *, tenant: str) -> bool:
        return self._collection().tenants.exists(tenant)

    # --- tenant activity (hot: in memory; cold: on disk only; see retrieval.tenant_activity) -

    @_reconnecting
    def tenant_activity(self, tenants: Sequence[str]) -> dict[str, TenantActivityStatus]:
        """Weaviate's own activity status of each named tenant that exists (absent: none)."""
        found: dict[str, TenantActivityStatus] = {}
        names = list(dict.fromkeys(t for t in tenants if t))
        for start in range(0, len(names), 500):
            try:
                got = self._collection().tenants.get_by_names(names[start : start + 500])
            except WeaviateBaseError as e:
                raise StoreUnavailableError(f"could not read tenant status: {e}") from e
            found.update({name: t.activity_status for name, t in got.items()})
        return found

    @_reconnecting
    def set_tenant_active(self, *, tenant: str, active: bool) -> None:
        """Load the tenant into memory (``active``) or unload it to disk (INACTIVE).

        Idempotent: two processes doing the same at once both succeed. Its data stays on
        disk either way; a missing tenant is an :class:`UnknownWorkspaceError`.
        """
        status = TenantActivityStatus.ACTIVE if active else TenantActivityStatus.INACTIVE
        try:
            self._collection().tenants.update(Tenant(name=tenant, activity_status=status))
        except WeaviateBaseError as e:
            raise self._translate(e, tenant) from e

    # --- writes ------------------------------------------------------------------------------

    @_reconnecting
    def insert(self, items: Sequence[StoredChunk], *, tenant: str) -> None:
        if not items:
            return
        objects = [
            DataObject(
                uuid=chunk_uuid(item.chunk),
                vector=list(item.vector),
                properties={
                    "text": item.chunk.text,
                    "text_words": item.chunk.text,
                    "title": item.chunk.title,
                    "heading": item.chunk.heading,
                    "doc_id": item.chunk.doc_id,
                    "source": item.chunk.source,
                    "url": item.chunk.url or "",
                    "origin": item.origin,
                    "chunk_index": item.chunk.index,
                },
            )
            for item in items
        ]
        result = self._writer(tenant).data.insert_many(objects)
        if result.has_errors:
            first = next(iter(result.errors.values()))
            raise RetrievalError(
                f"Weaviate rejected {len(result.errors)} of {len(objects)} chunks: {first.message}"
            )

    @_reconnecting
    def delete_chunks(self, chunk_ids: Iterable[str], *, tenant: str) -> int:
        ids = list(chunk_ids)
        if not ids:
            return 0
        deleted = 0
        for start in range(0, len(ids), 1000):
            result = self._writer(tenant).data.delete_many(
                where=Filter.by_id().contains_any(ids[start : start + 1000])
            )
            deleted += result.successful
        return deleted

    @_reconnecting
    def delete_documents(self, doc_ids: Iterable[str], *, tenant: str) -> int:
        """Remove every chunk of the given documents (a source deleted them); returns chunks."""
        ids = list(doc_ids)
        deleted = 0
        for start in range(0, len(ids), 200):
            try:
                result = self._writer(tenant).data.delete_many(
                    where=Filter.by_property("doc_id").contains_any(ids[start : start + 200])
                )
            except WeaviateBaseError as e:
                raise self._translate(e, tenant) from e
            deleted += result.successful
        return deleted

    @_reconnecting
    def delete_origin(self, origin: str, *, tenant: str) -> int:
        """Remove every chunk one origin wrote (a removed source); returns chunks."""
        try:
            result = self._writer(tenant).data.delete_many(
                where=Filter.by_property("origin").equal(origin)
            )
        except WeaviateBaseError as e:
            raise self._translate(e, tenant) from e
        return int(result.successful)

    # --- reads -------------------------------------------------------------------------------

    def documents(self, *, tenant: str) -> dict[str, DocumentSummary]:
        """Every document in the tenant with the ids of its chunks (for sync and prune)."""
        ids: dict[str, set[str]] = {}
        origins: dict[str, str] = {}
        for obj in self._iterate(tenant, ["doc_id", "origin"]):
            doc_id = str(obj.properties["doc_id"])
            ids.setdefault(doc_id, set()).add(str(obj.uuid))
            origins[doc_id] = str(obj.properties["origin"])
        return {
            doc_id: DocumentSummary(doc_id, origins[doc_id], frozenset(chunk_ids))
            for doc_id, chunk_ids in ids.items()
        }

    def iter_chunks(self, *, tenant: str) -> Iterator[StoredChunk]:
        """Every chunk of the tenant with its stored vector (for re-indexing and export)."""
        properties = [
            "text",
            "title",
            "heading",
            "doc_id",
            "source",
            "url",
            "origin",
            "chunk_index",
        ]
        try:
            for obj in self._tenant(tenant).iterator(
                return_properties=properties, include_vector=True
            ):
                props = obj.properties
                chunk = Chunk(
                    doc_id=str(props["doc_id"]),
                    index=int(cast(int, props.get("chunk_index") or 0)),
                    text=str(props["text"]),
                    title=str(props.get("title") or ""),
                    heading=str(props.get("heading") or ""),
                    source=str(props.get("source") or ""),
                    url=str(props["url"]) if props.get("url") else None,
                )
                vector = cast(list[float], obj.vector.get("default", []))
                yield StoredChunk(chunk, vector, str(props["origin"]))
        except WeaviateBaseError as e:
            self._connection.failed(e)  # the next call gets a new client (or a clear error)
            raise self._translate(e, tenant) from e

    @_reconnecting
    def chunk_ids_of(self, doc_id: str, *, tenant: str) -> set[str]:
        response = self._tenant(tenant).query.fetch_objects(
            filters=Filter.by_property("doc_id").equal(doc_id),
            return_properties=[],
            limit=10_000,
        )
        return {str(obj.uuid) for obj in response.objects}

    @_reconnecting
    def chunk_ids_by_document(
        self, doc_ids: Iterable[str], *, tenant: str
    ) -> dict[str, frozenset[str]]:
        """The chunk ids of just these documents (an incremental sync touches a few of many)."""
        ids = list(dict.fromkeys(doc_ids))
        found: dict[str, set[str]] = {}
        for start in range(0, len(ids), 100):
            try:
                response = self._tenant(tenant).query.fetch_objects(
                    filters=Filter.by_property("doc_id").contains_any(ids[start : start + 100]),
                    return_properties=["doc_id"],
                    limit=10_000,
                )
            except WeaviateBaseError as e:
                raise self._translate(e, tenant) from e
            for obj in response.objects:
                found.setdefault(str(obj.properties["doc_id"]), set()).add(str(obj.uuid))
        return {doc_id: frozenset(chunk_ids) for doc_id, chunk_ids in found.items()}

    @_reconnecting
    def count(self, *, tenant: str, origin: str | None = None) -> int:
        """Chunks in the tenant, or only those written by one origin (e.g. one synced source).

        Always a *filtered* aggregation, never Weaviate's bare count(*): on a replicated
        collection count(*) asks every replica (consistency ALL). Until the cluster notices a
        dead node it retries that node until the gRPC deadline (30 s), and when it gives up it
        returns 0 without an error (Weaviate 1.38, ``Finder.CountObjects``): a silent "no
        knowledge". A filter every chunk passes (no chunk has the nil UUID) takes the
        ordinary read path instead: the local copy, or a live replica. Raises
        :class:`RetrievalError` (unknown tenant, store unavailable).
        """
        filters = (
            Filter.by_property("origin").equal(origin)
            if origin is not None
            else Filter.by_id().not_equal(_NIL_UUID)
        )
        try:
            result = self._tenant(tenant).aggregate.over_all(total_count=True, filters=filters)
        except WeaviateBaseError as e:
            raise self._translate(e, tenant) from e
        return int(result.total_count or 0)

    @_reconnecting
    def search(
        self,
        query: str,
        query_vector: Sequence[float],
        *,
        tenant: str,
        k: int,
        mode: SearchMode = "hybrid",
        alpha: float = 0.5,
    ) -> list[SearchResult]:
        """Top ``k`` chunks of the tenant for the query, best first."""
        tenant_view = self._tenant(tenant).query
        metadata = MetadataQuery(score=True, distance=True)
        try:
            if mode == "keyword":
                response = tenant_view.bm25(
                    query,
                    query_properties=KEYWORD_PROPERTIES,
                    limit=k,
                    include_vector=True,
                    return_metadata=metadata,
                )
            elif mode == "vector":
                response = tenant_view.near_vector(
                    list(query_vector), limit=k, include_vector=True, return_metadata=metadata
                )
            else:
                response = tenant_view.hybrid(
                    query,
                    vector=list(query_vector),
                    alpha=alpha,
                    query_properties=KEYWORD_PROPERTIES,
                    fusion_type=HybridFusion.RELATIVE_SCORE,
                    limit=k,
                    include_vector=True,
                    return_metadata=metadata,
                )
        except WeaviateBaseError as e:
            raise self._translate(e, tenant) from e
        query_array = np.asarray(query_vector, dtype=np.float32)
        query_norm = float(np.linalg.norm(query_array)) or 1.0
        results = []
        for obj in response.objects:
            vector = np.asarray(obj.vector.get("default", []), dtype=np.float32)
            norm = float(np.linalg.norm(vector)) or 1.0
            similarity = float(vector @ query_array) / (norm * query_norm) if vector.size else 0.0
            if mode == "vector":
                score = 1.0 - float(obj.metadata.distance or 0.0)
            else:
                score = float(obj.metadata.score or 0.0)
            props = obj.properties
            results.append(
                SearchResult(
                    chunk_id=str(obj.uuid),
                    doc_id=str(props["doc_id"]),
                    source=str(props["source"]),
                    title=str(props["title"]),
                    heading=str(props.get("heading") or ""),
                    text=str(props["text"]),
                    url=str(props["url"]) or None if props.get("url") else None,
                    origin=str(props.get("origin") or ""),
                    score=score,
                    similarity=similarity,
                )
            )
        return results

    # --- internals ---------------------------------------------------------------------------

    def _collection(self) -> Collection[Any, Any]:
        return self._client.collections.use(COLLECTION)

    def _tenant(self, tenant: str) -> Collection[Any, Any]:
        """The tenant's view for reads (at the read consistency level)."""
        return self._in_tenant(tenant, self.replication.read)

    def _writer(self, tenant: str) -> Collection[Any, Any]:
        """The tenant's view for writes and deletes (at the write consistency level)."""
        return self._in_tenant(tenant, self.replication.write)

    def _in_tenant(self, tenant: str, level: str) -> Collection[Any, Any]:
        if not tenant:
            raise UnknownWorkspaceError("no tenant given: every store call names its workspace")
        collection = self._collection().with_tenant(tenant)
        return collection.with_consistency_level(ConsistencyLevel(level))

    def _iterate(self, tenant: str, properties: list[str]) -> Iterator[Any]:
        try:
            yield from self._tenant(tenant).iterator(return_properties=properties)
        except WeaviateBaseError as e:
            self._connection.failed(e)  # the next call gets a new client (or a clear error)
            raise self._translate(e, tenant) from e

    @staticmethod
    def _translate(error: WeaviateBaseError, tenant: str) -> RetrievalError:
        message = str(error)
        if "tenant" in message.lower() and (
            "not found" in message.lower() or "not exist" in message.lower()
        ):
            return UnknownWorkspaceError(
                f"workspace tenant {tenant!r} does not exist in Weaviate; "
                "create the workspace with `supportbot workspace create`"
            )
        first_line = message.splitlines()[0][:300] if message else type(error).__name__
        return StoreUnavailableError(f"Weaviate request failed: {first_line}")
