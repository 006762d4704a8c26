"""Knowledge sources of one workspace: status, last runs, errors, next run; *Sync now*; adding
a web or folder source.

Reads and writes go through :class:`sync.sources.SourceRepository` (what ``supportbot source``
uses); a sync is queued on the same :class:`sync.queue.SyncQueue` the scheduler uses (arq on
Redis, or in-process), never run inside a web request. A new source's options are validated by
its connector (``validate_config``: the CLI's checks, http(s) URLs only) and its schedule by
:func:`sync.schedule.parse_schedule`. A web source's hosts are checked against the sync's
address policy (:class:`sync.addresses.AddressPolicy`, the SSRF guard every fetch goes through)
at once, so a private address is refused when the source is added rather than at its first sync.

A folder source reads files of the server: from the console only under an operator-chosen root
(``folder_roots``), since a workspace admin must not read the server's other folders (another
workspace's, the data directory) into their knowledge. The CLI, run by the operator, has no
such limit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import httpcore
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from console.errors import InvalidInputError, NotFoundError
from retrieval.workspaces import Workspace
from sync.addresses import AddressPolicy
from sync.connectors import connector_class
from sync.errors import SyncError
from sync.models import RunInfo, SourceInfo, SyncRun, SyncSource
from sync.schedule import parse_schedule
from sync.sources import SourceRepository, aware

CONSOLE_KINDS = ("web", "folder")
ACTIVE = ("queued", "running")


class SyncQueue(Protocol):
    """The part of :class:`sync.queue.SyncQueue` *Sync now* uses."""

    async def enqueue(
        self, workspace: str, source: str, *, full: bool = False, trigger: str = "schedule"
    ) -> bool: ...


@dataclass(frozen=True, slots=True)
class SourceView:
    """A source with its latest runs (newest first)."""

    info: SourceInfo
    runs: list[RunInfo]

    @property
    def active(self) -> bool:
        """Queued or running: the page keeps polling while it is."""
        return self.info.status in ACTIVE


def list_sources(repo: SourceRepository, workspace: str, *, runs: int = 3) -> list[SourceView]:
    return [
        SourceView(info, repo.runs(workspace, info.name, limit=runs))
        for info in repo.list(workspace)
    ]


def source_view(
    repo: SourceRepository, workspace: str, source_id: int, *, runs: int = 10
) -> SourceView:
    """One source of the workspace by id; :class:`NotFoundError` for another workspace's id."""
    for info in repo.list(workspace):
        if info.id == source_id:
            return SourceView(info, repo.runs(workspace, info.name, limit=runs))
    raise NotFoundError(f"no source {source_id} in workspace {workspace}")


def run_info(
    engine: Engine, repo: SourceRepository, workspace: str, source_id: int, run_id: int
) -> RunInfo:
    """One run of one of the workspace's sources; :class:`NotFoundError` otherwise."""
    source = source_view(repo, workspace, source_id, runs=0).info
    with Session(engine) as session:
        row = session.exec(
            select(SyncRun)
            .join(SyncSource, col(SyncSource.id) == col(SyncRun.source_id))
            .join(Workspace, col(Workspace.id) == col(SyncSource.workspace_id))
            .where(SyncRun.id == run_id)
            .where(SyncRun.source_id == source.id)
            .where(Workspace.name == workspace)
        ).first()
    if row is None:
        raise NotFoundError(f"no run {run_id} of source {source_id} in workspace {workspace}")
    values = row.model_dump(exclude={"source_id"})
    values["started_at"] = aware(row.started_at)
    values["finished_at"] = aware(row.finished_at)
    return RunInfo(source=source.name, **values)


async def sync_now(
    repo: SourceRepository, queue: SyncQueue, workspace: str, source_id: int
) -> bool:
    """Queue a sync of the source (trigger ``console``); False when one is already queued or
    running. Returns at once: the page follows the source's status."""
    info = source_view(repo, workspace, source_id, runs=0).info
    queued = await queue.enqueue(workspace, info.name, trigger="console")
    if queued:
        repo.mark_queued(info.id)
    return queued


@dataclass(frozen=True, slots=True)
class NewSource:
    """The add-source form: ``urls`` one per line, ``sitemap`` optional (web); ``path`` (folder)."""

    name: str
    kind: str
    urls: Sequence[str] = ()
    sitemap: str | None = None
    path: str | None = None
    schedule: str | None = None


async def add_source(
    repo: SourceRepository,
    workspace: str,
    new: NewSource,
    *,
    default_schedule: str,
    requests_per_second: float,
    addresses: AddressPolicy,
    folder_roots: Sequence[Path],
) -> SourceInfo:
    """Add a web or folder source to the workspace (never replacing one: remove it first).

    Raises :class:`InvalidInputError` with the one-line reason (the connector's, the
    schedule's, the address policy's, or the folder root's).
    """
    if new.kind not in CONSOLE_KINDS:
        raise InvalidInputError(f"unknown source type {new.kind!r}: use web or folder")
    try:
        if new.kind == "web":
            urls = [u.strip() for u in new.urls if u.strip()]
            sitemap = (new.sitemap or "").strip() or None
            config = connector_class("web").validate_config({"urls": urls, "sitemap": sitemap})
            for url in [*config["urls"], *([config["sitemap"]] if config["sitemap"] else [])]:
                await _check_address(addresses, url)
        else:
            config = connector_class("folder").validate_config({"path": new.path or ""})
            _check_folder(Path(config["path"]), folder_roots)
        chosen = new.schedule.strip() if new.schedule and new.schedule.strip() else None
        parsed = parse_schedule(chosen if chosen is not None else default_schedule)
        return repo.add(
            workspace,
            new.name.strip(),
            kind=new.kind,
            config=config,
            credentials=None,
            schedule=parsed.text if parsed else None,
            requests_per_second=requests_per_second,
        )
    except SyncError as e:
        raise InvalidInputError(str(e).replace("pass --replace to change it, ", "")) from e


async def _check_address(policy: AddressPolicy, url: str) -> None:
    """The SSRF guard, now: refused when the host is (or resolves to) a non-public address the
    policy does not open. A name that does not resolve yet is left to the sync to report."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with contextlib.suppress(httpcore.ConnectError, OSError):  # no such name (yet)
        await policy.resolve(host, port)  # raises BlockedAddressError


def _check_folder(path: Path, roots: Sequence[Path]) -> None:
    resolved = [r.expanduser().resolve() for r in roots]
    if not resolved:
        raise InvalidInputError(
            "folder sources cannot be added from the console here: the operator has not set "
            "CONSOLE_FOLDER_ROOTS (or add it with `supportbot source add --type folder`)"
        )
    if not any(path == root or path.is_relative_to(root) for root in resolved):
        shown = ", ".join(str(r) for r in resolved)
        raise InvalidInputError(f"{path} is not under a folder the console may read ({shown})")
