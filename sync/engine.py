"""The sync engine: a source's documents in, the workspace's tenant brought in line.

One run works in a *pass* over the source. A first (or ``full``) sync opens a new pass from no
cursor; later syncs open a new pass from the cursor the previous pass ended with, so connectors
fetch only what changed. Every checkpoint writes the tenant first and then, in one database
transaction, the documents' state and the cursor: a crash or restart resumes the open pass
from its last checkpoint, and what it repeats is found unchanged (chunk ids derive from
content), so nothing is lost and nothing duplicated. When a pass ends, the documents it did
not see are deleted from the tenant: deletions at the source reach the workspace.

A failing source fails only its own run: the error is one line in its status, the pass stays
open for the next try, and other sources go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from retrieval.documents import SourceDocument
from retrieval.errors import RetrievalError
from retrieval.ingest import IngestReport
from retrieval.knowledge import KnowledgeBase
from sync.addresses import AddressPolicy
from sync.connectors import build_connector
from sync.connectors.base import (
    Checkpoint,
    Connector,
    Document,
    Failed,
    Item,
    Planned,
    Skipped,
    SyncContext,
    Unchanged,
)
from sync.errors import MassDeletionError, SyncError
from sync.http import AuthState, DownloadBudget, FetchLimits, RequestStats, policy_client
from sync.locks import WorkspaceLocks
from sync.models import RunInfo
from sync.policy import RequestBudget, RetryPolicy, Sleep
from sync.sources import CheckpointBatch, DocWrite, SourceRecord, SourceRepository

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int | None], None]
"""``(documents done, documents planned or None)``, called as the sync goes."""

AfterChange = Callable[[str, Sequence[str], str], None]
"""``(workspace, changed document ids, trigger)``: called (in a thread, after the workspace
lock is released) when a run wrote, changed or deleted documents; its errors are logged only."""

MASS_DELETE_MIN = 3
"""Removals below this many never need confirmation unless they would empty the source."""


def mass_deletion(removing: int, stored: int) -> bool:
    """Whether removing ``removing`` of a source's ``stored`` documents at once needs
    confirmation (``--allow-mass-delete``): more than half of them, and at least
    :data:`MASS_DELETE_MIN` of them or all of them.

    A sitemap that suddenly lists far fewer pages, an API that answers empty, a folder that is
    not mounted: each looks to the engine like documents deleted at the source. Real deletions
    rarely take more than half of a source at once; broken sources usually do. Small sources
    are judged by the second rule: 1 of 2 goes quietly, 2 of 3 too, but the last document, or
    the only one, does not.
    """
    if removing <= 0 or removing * 2 <= stored:
        return False
    return removing >= MASS_DELETE_MIN or removing >= stored


@dataclass(slots=True)
class _Counts:
    documents: int = 0
    changed: int = 0
    unchanged: int = 0
    deleted: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    errors: int = 0
    messages: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    """What connectors could not index, by kind (:class:`Skipped`)."""

    invalid_urls: list[str] = field(default_factory=list)
    """Documents stored without their URL because it was invalid, with why."""

    changed_docs: list[str] = field(default_factory=list)
    """Ids of the documents this run wrote new, changed or deleted (for :data:`AfterChange`)."""

    def add_report(self, report: IngestReport) -> None:
        self.changed_docs.extend(report.changed_ids)
        self.chunks_added += report.chunks_added
        self.chunks_removed += report.chunks_removed
        self.invalid_urls.extend(report.invalid_urls)

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.messages) < 20:
            self.messages.append(message)


@dataclass(frozen=True, slots=True)
class EngineOptions:
    batch_documents: int = 64
    """Documents embedded and written together (one embedding call per batch)."""
    checkpoint_items: int = 200
    """Items between two checkpoints even when the connector yields none."""
    queue_items: int = 256
    """Items fetched ahead of ingestion (fetching overlaps embedding)."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    http_timeout_s: float = 30.0
    fetch: FetchLimits = field(default_factory=FetchLimits)
    """What a downloading source (web) may fetch: page, sitemap and per-run bytes."""
    addresses: AddressPolicy = field(default_factory=AddressPolicy)
    """Where a source fetching outside URLs (web) may connect: public addresses by default."""


class SyncEngine:
    """Runs syncs of sources; safe to share by many concurrent syncs of different workspaces."""

    def __init__(
        self,
        sources: SourceRepository,
        knowledge: KnowledgeBase,
        locks: WorkspaceLocks,
        *,
        options: EngineOptions | None = None,
        sleep: Sleep = asyncio.sleep,
        worker_name: str | None = None,
        api_urls: Mapping[str, str] | None = None,
        after_change: AfterChange | None = None,
    ) -> None:
        self._api_urls = dict(api_urls or {})
        self._after_change = after_change
        self._sources = sources
        self._knowledge = knowledge
        self._locks = locks
        self._options = options or EngineOptions()
        self._sleep = sleep
        self._worker = worker_name or f"{socket.gethostname()}:{os.getpid()}"

    @property
    def sources(self) -> SourceRepository:
        return self._sources

    async def sync(
        self,
        workspace: str,
        name: str,
        *,
        full: bool = False,
        trigger: str = "manual",
        lock_wait_s: float | None = None,
        on_progress: ProgressCallback | None = None,
        allow_mass_delete: bool = False,
    ) -> RunInfo:
        """Sync one source to the end of its pass; returns the run (failed or not).

        A pass that would remove more of the source's documents than :func:`mass_deletion`
        allows removes nothing and fails (the pass stays open) unless ``allow_mass_delete``.
        Raises only :class:`SyncError` for a source that cannot even start (unknown source,
        workspace lock still busy after ``lock_wait_s``; None waits as long as it takes).
        """
        record = await asyncio.to_thread(self._sources.get, workspace, name)
        changed: list[str] = []
        async with self._locks.hold(workspace, wait_s=lock_wait_s):
            run = await self._run(
                record,
                full=full,
                trigger=trigger,
                on_progress=on_progress,
                allow_mass_delete=allow_mass_delete,
                changed=changed,
            )
        await self._notify_change(record, changed)
        return run

    async def sync_documents(
        self,
        workspace: str,
        name: str,
        ids: Sequence[str],
        *,
        trigger: str = "event",
        lock_wait_s: float | None = None,
    ) -> RunInfo:
        """Sync just these documents of a source (an event said they changed)."""
        record = await asyncio.to_thread(self._sources.get, workspace, name)
        changed: list[str] = []
        async with self._locks.hold(workspace, wait_s=lock_wait_s):
            run = await self._run(
                record, full=False, trigger=trigger, only=list(ids), changed=changed
            )
        await self._notify_change(record, changed)
        return run

    async def _notify_change(self, record: SourceRecord, changed: list[str]) -> None:
        if self._after_change is None or not changed:
            return
        try:
            await asyncio.to_thread(
                self._after_change, record.workspace, changed, f"sync:{record.name}"
            )
        except Exception:
            logger.warning("after-change hook of %s failed", record.workspace, exc_info=True)

    # --- one run ---------------------------------------------------------------------------

    async def _run(
        self,
        record: SourceRecord,
        *,
        full: bool,
        trigger: str,
        on_progress: ProgressCallback | None = None,
        only: list[str] | None = None,
        allow_mass_delete: bool = False,
        changed: list[str] | None = None,
    ) -> RunInfo:
        sources = self._sources
        run_id = await asyncio.to_thread(
            sources.start_run, record.id, full=full, trigger=trigger, worker=self._worker
        )
        counts = _Counts()
        stats = RequestStats()
        error: str | None = None
        try:
            connector = build_connector(record.kind, record.config, self._api_urls)
            if only is None:
                await self._pass(
                    record, connector, full, counts, stats, on_progress, allow_mass_delete
                )
            else:
                await self._partial(record, connector, only, counts, stats)
        except (SyncError, RetrievalError, httpx.HTTPError, OSError) as e:
            error = _one_line(e)
            logger.warning("sync of %s/%s failed: %s", record.workspace, record.name, error)
        except Exception as e:  # a connector bug must not stop other sources
            error = f"unexpected {type(e).__name__}: {_one_line(e)}"
            logger.exception("sync of %s/%s crashed", record.workspace, record.name)
        error_note: str | None
        if error is None and counts.errors:
            shown = "; ".join(counts.messages[:3])
            more = f" (+{counts.errors - 3} more)" if counts.errors > 3 else ""
            error_note = f"{counts.errors} document(s) skipped: {shown}{more}"
        else:
            error_note = error
        if counts.skipped:
            kinds = ", ".join(f"{n} {kind}(s)" for kind, n in sorted(counts.skipped.items()))
            error_note = "; ".join(filter(None, [error_note, f"not indexed: {kinds}"]))
        if counts.invalid_urls:
            bad = counts.invalid_urls
            more = f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""
            dropped = f"{len(bad)} invalid URLs dropped: {'; '.join(bad[:3])}{more}"
            error_note = "; ".join(filter(None, [error_note, dropped]))
        if changed is not None:
            changed.extend(dict.fromkeys(counts.changed_docs))
        chunks = None
        with contextlib.suppress(RetrievalError):
            chunks = await asyncio.to_thread(
                self._knowledge.origin_chunk_count, record.workspace, record.origin
            )
        return await asyncio.to_thread(
            sources.finish_run,
            run_id,
            failed=error is not None,
            error=error_note,
            counts={
                "documents": counts.documents,
                "changed": counts.changed,
                "unchanged": counts.unchanged,
                "deleted": counts.deleted,
                "chunks_added": counts.chunks_added,
                "chunks_removed": counts.chunks_removed,
                "errors": counts.errors,
                "requests": stats.requests,
                "retries": stats.retries,
            },
            chunks=chunks,
        )

    async def _pass(
        self,
        record: SourceRecord,
        connector: Connector,
        full: bool,
        counts: _Counts,
        stats: RequestStats,
        on_progress: ProgressCallback | None,
        allow_mass_delete: bool = False,
    ) -> None:
        sources = self._sources
        pass_number, cursor, resumed = await asyncio.to_thread(
            sources.begin_pass, record.id, full=full
        )
        if resumed:
            logger.info("%s/%s: resuming pass %d", record.workspace, record.name, pass_number)
        known = await asyncio.to_thread(sources.doc_states, record.id, pass_number)
        async with self._context(record, connector, stats, cursor, known) as ctx:
            writer = _Writer(self, record, pass_number, known, counts, cursor)
            writer.in_pass = True
            await writer.consume(connector.stream(ctx), on_progress)
            cursor = writer.cursor
        # The stream ended: it listed everything there is. What it did not see is gone.
        unseen = await asyncio.to_thread(sources.unseen, record.id, pass_number)
        stored = sum(1 for state in known.values() if state.content_hash is not None)
        removing = sum(
            1 for ext, _ in unseen if ext in known and known[ext].content_hash is not None
        )
        if mass_deletion(removing, stored) and not allow_mass_delete:
            raise MassDeletionError(
                f"this sync would remove {removing} of the source's {stored} documents at "
                "once, which looks like a broken source (an empty sitemap or API answer, moved "
                "URLs), so nothing was removed; if they really are gone, run `supportbot source "
                f"sync --workspace {record.workspace} --name {record.name} --allow-mass-delete`"
            )
        if unseen:
            removed = await asyncio.to_thread(
                self._knowledge.delete_documents, record.workspace, [d for _, d in unseen]
            )
            counts.chunks_removed += removed
            counts.deleted += len(unseen)
            counts.changed_docs.extend(d for _, d in unseen)
        await asyncio.to_thread(
            sources.close_pass, record.id, pass_number, [e for e, _ in unseen], cursor
        )

    async def _partial(
        self,
        record: SourceRecord,
        connector: Connector,
        ids: list[str],
        counts: _Counts,
        stats: RequestStats,
    ) -> None:
        """Sync some documents outside any pass (they are marked seen in the open one)."""
        sources = self._sources
        state = await asyncio.to_thread(sources.get, record.workspace, record.name)
        known = await asyncio.to_thread(sources.doc_states, record.id, state.pass_number)
        async with self._context(record, connector, stats, state.cursor, known) as ctx:
            writer = _Writer(self, record, state.pass_number, known, counts, state.cursor)
            writer.save_cursor = False
            await writer.consume(connector.fetch(ctx, ids), None)

    @contextlib.asynccontextmanager
    async def _context(
        self,
        record: SourceRecord,
        connector: Connector,
        stats: RequestStats,
        cursor: dict[str, Any] | None,
        known: dict[str, Any],
    ) -> AsyncIterator[SyncContext]:
        credentials = self._sources.credentials(record)
        holder = {"credentials": credentials}
        budget = RequestBudget(record.requests_per_second, sleep=self._sleep)
        client: httpx.AsyncClient | None = None
        auth = AuthState(connector.authorization(credentials))

        async def refresh() -> dict[str, Any]:
            """The connector's refresh hook; new credentials are stored encrypted at once."""
            assert client is not None
            fresh = await connector.refresh_credentials(holder["credentials"], client)
            holder["credentials"] = fresh
            auth.header = connector.authorization(fresh)
            record.credentials_encrypted = await asyncio.to_thread(
                self._sources.save_credentials, record.id, fresh
            )
            logger.info("%s/%s: credentials refreshed", record.workspace, record.name)
            return fresh

        async def refresh_header() -> str:
            return connector.authorization(await refresh()) or ""

        auth.set_refresh(refresh_header)
        client = policy_client(
            budget=budget,
            policy=self._options.retry,
            stats=stats,
            auth=auth,
            timeout_s=self._options.http_timeout_s,
            sleep=self._sleep,
            addresses=self._options.addresses if connector.fetches_outside_urls else None,
        )
        async with client:
            yield SyncContext(
                http=client,
                credentials=credentials,
                cursor=cursor,
                known=known,
                refresh_credentials=refresh,
                limits=self._options.fetch,
                downloads=DownloadBudget(self._options.fetch.max_sync_bytes),
            )


class _Writer:
    """Consumes a connector's stream: batches, writes, checkpoints."""

    def __init__(
        self,
        engine: SyncEngine,
        record: SourceRecord,
        pass_number: int,
        known: dict[str, Any],
        counts: _Counts,
        cursor: dict[str, Any] | None,
    ) -> None:
        self._engine = engine
        self._record = record
        self._pass = pass_number
        self._known = known
        self._counts = counts
        self.cursor = cursor
        self.save_cursor = True
        self.in_pass = False
        """In a pass, a stored document the source reports deleted is only left unseen: the
        pass's end removes it with the others, under the mass-deletion guard."""
        self._docs: list[tuple[Document, str]] = []
        self._batch = CheckpointBatch()
        self._stale: list[str] = []
        self._since_checkpoint = 0

    async def consume(
        self, stream: AsyncIterator[Item], on_progress: ProgressCallback | None
    ) -> None:
        """Read the stream ahead into a bounded queue while batches are written."""
        options = self._engine._options
        queue: asyncio.Queue[Item | None] = asyncio.Queue(maxsize=options.queue_items)
        planned: int | None = None
        done = 0

        async def produce() -> None:
            try:
                async for item in stream:
                    await queue.put(item)
            finally:
                await queue.put(None)

        producer = asyncio.create_task(produce())
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                if isinstance(item, Planned):
                    planned = (planned or 0) + item.count
                    if on_progress:
                        on_progress(done, planned)
                    continue
                if isinstance(item, Checkpoint):
                    self.cursor = item.cursor
                    await self.checkpoint()
                    continue
                if isinstance(item, Skipped):
                    skipped = self._counts.skipped
                    skipped[item.kind] = skipped.get(item.kind, 0) + item.count
                    continue
                self._take(item)
                done += 1
                self._since_checkpoint += 1
                if on_progress:
                    on_progress(done, planned)
                if len(self._docs) >= options.batch_documents:
                    await self._write_documents()
                if self._since_checkpoint >= options.checkpoint_items:
                    await self.checkpoint()
            await producer  # re-raises what the connector raised
            await self.checkpoint()
        finally:
            if not producer.done():
                producer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await producer

    def _take(self, item: Document | Unchanged | Failed) -> None:
        counts = self._counts
        if isinstance(item, Unchanged):
            counts.documents += 1
            counts.unchanged += 1
            self._batch.seen.append(item.id)
        elif isinstance(item, Failed):
            counts.documents += 1
            counts.error(item.error)
            self._batch.seen.append(item.id)  # keep what is stored until it reads again
        elif item.deleted:
            state = self._known.get(item.id)
            stored = state is not None and state.content_hash is not None
            if stored and self.in_pass:
                return
            if stored:
                counts.deleted += 1
            if item.version is None:
                self._batch.deleted.append(item.id)
            else:  # not a document, but remember its version: not fetched again unchanged
                self._batch.skipped.append(self._write_of(item, None))
                if stored:
                    self._stale.append(item.id)
        else:
            counts.documents += 1
            digest = _content_hash(item)
            state = self._known.get(item.id)
            if state is not None and state.content_hash == digest:
                counts.unchanged += 1  # fetched, but the same text: nothing to embed
                self._batch.written.append(self._write_of(item, digest))
            else:
                self._docs.append((item, digest))

    def _write_of(self, doc: Document, digest: str | None) -> DocWrite:
        return DocWrite(
            external_id=doc.id,
            doc_id=self._record.doc_id(doc.id),
            version=doc.version,
            etag=doc.etag,
            last_modified=doc.last_modified,
            content_hash=digest,
            updated_at=doc.updated_at,
        )

    async def _write_documents(self) -> None:
        """Embed and write the pending documents, then remember them for the checkpoint."""
        if not self._docs:
            return
        engine, record, counts = self._engine, self._record, self._counts
        pending, self._docs = self._docs, []
        docs = [self._source_document(doc) for doc, _ in pending]
        try:
            report = await asyncio.to_thread(
                engine._knowledge.upsert_documents, record.workspace, docs, origin=record.origin
            )
            good = pending
        except RetrievalError:
            # One bad document must not sink its batch: write them one by one to find it.
            report, good = IngestReport(), []
            for (doc, digest), source_doc in zip(pending, docs, strict=True):
                try:
                    one = await asyncio.to_thread(
                        engine._knowledge.upsert_documents,
                        record.workspace,
                        [source_doc],
                        origin=record.origin,
                    )
                except RetrievalError as e:
                    counts.error(f"{doc.url or doc.id}: {_one_line(e)}")
                    self._batch.seen.append(doc.id)
                    continue
                report.chunks_added += one.chunks_added
                report.chunks_removed += one.chunks_removed
                report.changed += one.changed
                report.unchanged += one.unchanged
                report.invalid_urls.extend(one.invalid_urls)
                report.changed_ids.extend(one.changed_ids)
                good.append((doc, digest))
        counts.add_report(report)
        counts.changed += report.changed
        counts.unchanged += report.unchanged
        self._batch.written.extend(self._write_of(doc, digest) for doc, digest in good)

    async def checkpoint(self) -> None:
        engine, record = self._engine, self._record
        await self._write_documents()
        batch, self._batch = self._batch, CheckpointBatch()
        gone, self._stale = [*batch.deleted, *self._stale], []
        if gone:
            doc_ids = [record.doc_id(ext) for ext in gone]
            self._counts.changed_docs.extend(doc_ids)
            self._counts.chunks_removed += await asyncio.to_thread(
                engine._knowledge.delete_documents, record.workspace, doc_ids
            )
        await asyncio.to_thread(
            engine._sources.checkpoint,
            record.id,
            self._pass,
            batch,
            cursor=self.cursor,
            save_cursor=self.save_cursor,
        )
        self._since_checkpoint = 0

    def _source_document(self, doc: Document) -> SourceDocument:
        record = self._record
        return SourceDocument(
            doc_id=record.doc_id(doc.id),
            title=doc.title or doc.id,
            text=doc.text,
            source=doc.url or f"{record.name}/{doc.id}",
            url=doc.url,
        )


def _content_hash(doc: Document) -> str:
    digest = hashlib.sha256()
    for part in (doc.title, doc.url or "", doc.text):
        digest.update(part.encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:500] or type(error).__name__
