"""Sources and their sync state in the relational database.

The engine's checkpoints go through :meth:`SourceRepository.checkpoint`: the documents written
since the last checkpoint and the connector's cursor are saved in one transaction, so after a
crash the database never claims more than the tenant holds. (The tenant may hold more: those
documents come again after the resume and are found unchanged, by their content-derived ids.)
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from retrieval.workspaces import Workspace
from sync.credentials import CredentialCipher
from sync.errors import SourceConfigError, UnknownSourceError
from sync.models import (
    DocState,
    RunInfo,
    SourceInfo,
    SyncDocument,
    SyncRun,
    SyncSource,
    SyncStatus,
)

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def aware(moment: datetime | None) -> datetime | None:
    """Datetimes come back naive from SQLite; every one stored here is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@dataclass(slots=True)
class SourceRecord:
    """A source as the engine needs it (credentials still encrypted)."""

    id: int
    workspace: str
    name: str
    kind: str
    config: dict[str, Any]
    credentials_encrypted: str | None
    schedule: str | None
    requests_per_second: float
    cursor: dict[str, Any] | None
    pass_number: int
    pass_open: bool

    @property
    def origin(self) -> str:
        """The store's origin of this source's chunks (never reused: ids are not)."""
        return f"source:{self.id}"

    def doc_id(self, external_id: str) -> str:
        return f"source/{self.id}/{external_id}"


@dataclass(slots=True)
class DocWrite:
    external_id: str
    doc_id: str
    version: str | None
    etag: str | None
    last_modified: str | None
    content_hash: str | None
    updated_at: datetime | None


@dataclass(slots=True)
class CheckpointBatch:
    written: list[DocWrite] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    skipped: list[DocWrite] = field(default_factory=list)
    """Items the source has but that are no document (chatter): remembered by version only,
    so the next sync does not fetch them again."""

    def __bool__(self) -> bool:
        return bool(self.written or self.seen or self.deleted or self.skipped)


class SourceRepository:
    """Creates, finds and updates sources, their runs and their documents' state."""

    def __init__(
        self,
        engine: Engine,
        *,
        cipher: CredentialCipher,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._engine = engine
        self._cipher = cipher
        self._clock = clock or (lambda: datetime.now(UTC))

    # --- sources ---------------------------------------------------------------------------

    def add(
        self,
        workspace: str,
        name: str,
        *,
        kind: str,
        config: dict[str, Any],
        credentials: dict[str, Any] | None,
        schedule: str | None,
        requests_per_second: float,
        replace: bool = False,
    ) -> SourceInfo:
        if not name or len(name) > 63 or not set(name) <= _NAME_CHARS:
            raise SourceConfigError(
                f"invalid source name {name!r}: use 1-63 letters, digits, '-', '_' or '.'"
            )
        with Session(self._engine) as session:
            ws = self._workspace(session, workspace)
            row = self._find(session, ws, name)
            if row is not None and not replace:
                raise SourceConfigError(
                    f"source {name!r} already exists in workspace {workspace!r}; "
                    "pass --replace to change it, or remove it first"
                )
            if row is not None and row.kind != kind:
                raise SourceConfigError(
                    f"source {name!r} is a {row.kind} source; remove it to add a {kind} one"
                )
            if row is None:
                assert ws.id is not None
                row = SyncSource(
                    workspace_id=ws.id,
                    name=name,
                    kind=kind,
                    config_json="{}",
                    requests_per_second=requests_per_second,
                    created_at=self._clock(),
                )
            row.config_json = json.dumps(config, sort_keys=True)
            if credentials is not None:
                row.credentials_encrypted = self._cipher.encrypt(credentials)
            row.schedule = schedule
            row.requests_per_second = requests_per_second
            row.next_run_at = None  # planned afresh by the scheduler
            session.add(row)
            try:
                session.commit()
            except IntegrityError as e:
                raise SourceConfigError(
                    f"source {name!r} was added to {workspace!r} at the same moment"
                ) from e
            session.refresh(row)
            return self._info(row, ws.name)

    def get(self, workspace: str, name: str) -> SourceRecord:
        with Session(self._engine) as session:
            ws = self._workspace(session, workspace)
            row = self._require(session, ws, name)
            return self._record(row, ws.name)

    def info(self, workspace: str, name: str) -> SourceInfo:
        with Session(self._engine) as session:
            ws = self._workspace(session, workspace)
            return self._info(self._require(session, ws, name), ws.name)

    def list(self, workspace: str | None = None) -> list[SourceInfo]:
        with Session(self._engine) as session:
            statement = select(SyncSource, Workspace.name).join(
                Workspace,
                Workspace.id == SyncSource.workspace_id,  # type: ignore[arg-type]
            )
            if workspace is not None:
                self._workspace(session, workspace)
                statement = statement.where(Workspace.name == workspace)
            rows = session.exec(statement.order_by(Workspace.name, SyncSource.name)).all()
            return [self._info(row, ws_name) for row, ws_name in rows]

    def remove(self, workspace: str, name: str) -> SourceRecord:
        with Session(self._engine) as session:
            ws = self._workspace(session, workspace)
            row = self._require(session, ws, name)
            record = self._record(row, ws.name)
            session.exec(delete(SyncDocument).where(col(SyncDocument.source_id) == row.id))
            session.exec(delete(SyncRun).where(col(SyncRun.source_id) == row.id))
            session.delete(row)
            session.commit()
            return record

    def credentials(self, record: SourceRecord) -> dict[str, Any]:
        if record.credentials_encrypted is None:
            return {}
        return self._cipher.decrypt(record.credentials_encrypted)

    def save_credentials(self, source_id: int, credentials: dict[str, Any]) -> str:
        encrypted = self._cipher.encrypt(credentials)
        with Session(self._engine) as session:
            session.exec(
                update(SyncSource)
                .where(col(SyncSource.id) == source_id)
                .values(credentials_encrypted=encrypted)
            )
            session.commit()
        return encrypted

    def set_next_run(self, source_id: int, at: datetime | None) -> None:
        self._update(source_id, next_run_at=at)

    def mark_queued(self, source_id: int) -> None:
        with Session(self._engine) as session:
            session.exec(
                update(SyncSource)
                .where(col(SyncSource.id) == source_id)
                .where(col(SyncSource.status) != SyncStatus.RUNNING.value)
                .values(status=SyncStatus.QUEUED.value)
            )
            session.commit()

    # --- runs and passes -------------------------------------------------------------------

    def start_run(self, source_id: int, *, full: bool, trigger: str, worker: str) -> int:
        now = self._clock()
        with Session(self._engine) as session:
            # The caller holds the workspace lock: a run of this source still "running" is one
            # whose process died mid-sync. This run resumes its pass.
            session.exec(
                update(SyncRun)
                .where(col(SyncRun.source_id) == source_id)
                .where(col(SyncRun.status) == SyncStatus.RUNNING.value)
                .values(
                    status=SyncStatus.FAILED.value,
                    finished_at=now,
                    error="interrupted: the process stopped mid-sync; a later run resumed it",
                )
            )
            run = SyncRun(
                source_id=source_id, started_at=now, full=full, trigger=trigger, worker=worker
            )
            session.add(run)
            session.exec(
                update(SyncSource)
                .where(col(SyncSource.id) == source_id)
                .values(status=SyncStatus.RUNNING.value, last_started_at=now)
            )
            session.commit()
            assert run.id is not None
            return run.id

    def begin_pass(self, source_id: int, *, full: bool) -> tuple[int, dict[str, Any] | None, bool]:
        """The pass to work in: the open one (resumed), or a new one; (number, cursor, resumed).

        ``full`` starts a new pass from no cursor, whatever was open.
        """
        with Session(self._engine) as session:
            row = session.get(SyncSource, source_id)
            if row is None:
                raise UnknownSourceError(f"source {source_id} was removed during the sync")
            if row.pass_open and not full:
                return row.pass_number, _loads(row.cursor_json), True
            row.pass_number += 1
            row.pass_open = True
            if full:
                row.cursor_json = None
            session.add(row)
            session.commit()
            return row.pass_number, _loads(row.cursor_json), False

    def doc_states(self, source_id: int, pass_number: int) -> dict[str, DocState]:
        with Session(self._engine) as session:
            rows = session.execute(
                sa_select(
                    col(SyncDocument.external_id),
                    col(SyncDocument.version),
                    col(SyncDocument.etag),
                    col(SyncDocument.last_modified),
                    col(SyncDocument.content_hash),
                    col(SyncDocument.seen_pass),
                ).where(col(SyncDocument.source_id) == source_id)
            ).all()
        return {
            ext: DocState(
                external_id=ext,
                version=version,
                etag=etag,
                last_modified=modified,
                content_hash=digest,
                seen_this_pass=seen == pass_number,
            )
            for ext, version, etag, modified, digest, seen in rows
        }

    def checkpoint(
        self,
        source_id: int,
        pass_number: int,
        batch: CheckpointBatch,
        *,
        cursor: dict[str, Any] | None,
        save_cursor: bool,
    ) -> None:
        """Record written, seen and deleted documents and (optionally) the cursor, atomically."""
        now = self._clock()
        with Session(self._engine) as session:
            written = {w.external_id: w for w in [*batch.written, *batch.skipped]}
            existing = {
                row.external_id: row
                for chunk in _chunks(list(written), 500)
                for row in session.exec(
                    select(SyncDocument)
                    .where(SyncDocument.source_id == source_id)
                    .where(col(SyncDocument.external_id).in_(chunk))
                )
            }
            for ext, w in written.items():
                row = existing.get(ext) or SyncDocument(
                    source_id=source_id, external_id=ext, doc_id=w.doc_id, synced_at=now
                )
                row.doc_id = w.doc_id
                row.version = w.version
                row.etag = w.etag
                row.last_modified = w.last_modified
                row.content_hash = w.content_hash
                row.updated_at = w.updated_at
                row.seen_pass = pass_number
                row.synced_at = now
                session.add(row)
            for chunk in _chunks([s for s in batch.seen if s not in written], 500):
                session.exec(
                    update(SyncDocument)
                    .where(col(SyncDocument.source_id) == source_id)
                    .where(col(SyncDocument.external_id).in_(chunk))
                    .values(seen_pass=pass_number)
                )
            for chunk in _chunks(batch.deleted, 500):
                session.exec(
                    delete(SyncDocument)
                    .where(col(SyncDocument.source_id) == source_id)
                    .where(col(SyncDocument.external_id).in_(chunk))
                )
            if save_cursor:
                session.exec(
                    update(SyncSource)
                    .where(col(SyncSource.id) == source_id)
                    .values(cursor_json=_dumps(cursor))
                )
            session.commit()

    def unseen(self, source_id: int, pass_number: int) -> builtins.list[tuple[str, str]]:
        """Documents not seen in the pass: the source no longer has them."""
        with Session(self._engine) as session:
            rows = session.exec(
                select(SyncDocument.external_id, SyncDocument.doc_id)
                .where(SyncDocument.source_id == source_id)
                .where(SyncDocument.seen_pass != pass_number)
            ).all()
            return [(ext, doc_id) for ext, doc_id in rows]

    def close_pass(
        self,
        source_id: int,
        pass_number: int,
        removed: Sequence[str],
        cursor: dict[str, Any] | None,
    ) -> None:
        with Session(self._engine) as session:
            for chunk in _chunks(list(removed), 500):
                session.exec(
                    delete(SyncDocument)
                    .where(col(SyncDocument.source_id) == source_id)
                    .where(col(SyncDocument.external_id).in_(chunk))
                )
            session.exec(
                update(SyncSource)
                .where(col(SyncSource.id) == source_id)
                .where(col(SyncSource.pass_number) == pass_number)
                .values(pass_open=False, cursor_json=_dumps(cursor))
            )
            session.commit()

    def finish_run(
        self,
        run_id: int,
        *,
        failed: bool,
        error: str | None,
        counts: dict[str, int],
        chunks: int | None,
    ) -> RunInfo:
        now = self._clock()
        with Session(self._engine) as session:
            run = session.get(SyncRun, run_id)
            if run is None:
                raise UnknownSourceError(f"sync run {run_id} vanished (was its source removed?)")
            run.finished_at = now
            run.status = (SyncStatus.FAILED if failed else SyncStatus.OK).value
            run.error = error
            for key, value in counts.items():
                setattr(run, key, value)
            session.add(run)
            source = session.get(SyncSource, run.source_id)
            if source is not None:
                source.status = run.status
                source.last_finished_at = now
                source.last_error = error
                if not failed:
                    source.last_success_at = now
                source.documents = int(
                    session.exec(
                        select(func.count())
                        .select_from(SyncDocument)
                        .where(SyncDocument.source_id == source.id)
                        .where(col(SyncDocument.content_hash).is_not(None))
                    ).one()
                )
                if chunks is not None:
                    source.chunks = chunks
                session.add(source)
            session.commit()
            session.refresh(run)
            return self._run_info(run, source.name if source else "?")

    def runs(self, workspace: str, name: str, *, limit: int = 5) -> builtins.list[RunInfo]:
        with Session(self._engine) as session:
            ws = self._workspace(session, workspace)
            row = self._require(session, ws, name)
            runs = session.exec(
                select(SyncRun)
                .where(SyncRun.source_id == row.id)
                .order_by(col(SyncRun.id).desc())
                .limit(limit)
            ).all()
            return [self._run_info(run, row.name) for run in runs]

    def scheduled(self) -> builtins.list[SourceInfo]:
        """Every source with a schedule, across workspaces (for the scheduler)."""
        return [s for s in self.list() if s.schedule]

    # --- internals -------------------------------------------------------------------------

    def _update(self, source_id: int, **values: Any) -> None:
        with Session(self._engine) as session:
            session.exec(update(SyncSource).where(col(SyncSource.id) == source_id).values(**values))
            session.commit()

    @staticmethod
    def _workspace(session: Session, name: str) -> Workspace:
        ws = session.exec(select(Workspace).where(Workspace.name == name)).first()
        if ws is None:
            raise UnknownSourceError(
                f"unknown workspace {name!r}; see `supportbot workspace list` or create it "
                f"with `supportbot workspace create {name}`"
            )
        return ws

    @staticmethod
    def _find(session: Session, ws: Workspace, name: str) -> SyncSource | None:
        return session.exec(
            select(SyncSource)
            .where(SyncSource.workspace_id == ws.id)
            .where(SyncSource.name == name)
        ).first()

    def _require(self, session: Session, ws: Workspace, name: str) -> SyncSource:
        row = self._find(session, ws, name)
        if row is None:
            raise UnknownSourceError(
                f"no source {name!r} in workspace {ws.name!r}; see "
                f"`supportbot source list --workspace {ws.name}`"
            )
        return row

    @staticmethod
    def _record(row: SyncSource, workspace: str) -> SourceRecord:
        assert row.id is not None
        return SourceRecord(
            id=row.id,
            workspace=workspace,
            name=row.name,
            kind=row.kind,
            config=json.loads(row.config_json),
            credentials_encrypted=row.credentials_encrypted,
            schedule=row.schedule,
            requests_per_second=row.requests_per_second,
            cursor=_loads(row.cursor_json),
            pass_number=row.pass_number,
            pass_open=row.pass_open,
        )

    @staticmethod
    def _info(row: SyncSource, workspace: str) -> SourceInfo:
        assert row.id is not None
        return SourceInfo(
            id=row.id,
            workspace=workspace,
            name=row.name,
            kind=row.kind,
            config=json.loads(row.config_json),
            schedule=row.schedule,
            requests_per_second=row.requests_per_second,
            has_credentials=row.credentials_encrypted is not None,
            created_at=aware(row.created_at) or row.created_at,
            status=row.status,
            last_started_at=aware(row.last_started_at),
            last_finished_at=aware(row.last_finished_at),
            last_success_at=aware(row.last_success_at),
            last_error=row.last_error,
            next_run_at=aware(row.next_run_at),
            documents=row.documents,
            chunks=row.chunks,
        )

    @staticmethod
    def _run_info(run: SyncRun, source: str) -> RunInfo:
        assert run.id is not None
        return RunInfo(
            id=run.id,
            source=source,
            started_at=aware(run.started_at) or run.started_at,
            finished_at=aware(run.finished_at),
            status=run.status,
            full=run.full,
            trigger=run.trigger,
            worker=run.worker,
            documents=run.documents,
            changed=run.changed,
            unchanged=run.unchanged,
            deleted=run.deleted,
            chunks_added=run.chunks_added,
            chunks_removed=run.chunks_removed,
            errors=run.errors,
            requests=run.requests,
            retries=run.retries,
            error=run.error,
        )


def _loads(value: str | None) -> dict[str, Any] | None:
    return json.loads(value) if value else None


def _dumps(value: dict[str, Any] | None) -> str | None:
    return json.dumps(value, sort_keys=True) if value is not None else None


def _chunks(items: Sequence[str] | Iterable[str], size: int) -> Iterable[builtins.list[str]]:
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]
