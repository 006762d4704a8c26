"""The demo workspace's knowledge: the bundled sample knowledge base, kept as folder sources.

``supportbot demo`` registers ``sample_kb/en`` and ``sample_kb/ko`` as two folder sources
(:data:`SAMPLE_SOURCES`, synced by hand: no schedule) and syncs them through the sync engine,
like any source an operator adds. So the console's *Sources* page of the demo workspace lists
them with their runs, and *Sync now* has something to sync. (``sample_kb/README.md`` describes
the sample and is not knowledge: it stays out.)

Demos before this ingested the same files one by one (document ids are their paths); those
copies are removed before the sync, so no passage is retrieved twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from retrieval.loaders import file_document_id, iter_files
from supportbot.app import App
from sync.connectors.folder import FolderConnector
from sync.errors import SyncError, UnknownSourceError
from sync.models import RunInfo

SAMPLE_KB = Path(__file__).parent / "sample_kb"
# (source name, folder): one source per language of the sample.
SAMPLE_SOURCES: tuple[tuple[str, Path], ...] = (
    ("sample-en", SAMPLE_KB / "en"),
    ("sample-ko", SAMPLE_KB / "ko"),
)

# (documents done, documents planned or None)
Progress = Callable[[int, int | None], None]


def sync_sample_sources(
    application: App, workspace: str, *, on_progress: Progress | None = None
) -> list[RunInfo]:
    """Register (or point again at this checkout) and sync the sample sources of ``workspace``.

    Returns one finished run per source. Raises :class:`~sync.errors.SyncError` when a sync
    fails (its one-line reason).
    """
    sources = application.sync_sources
    knowledge = application.knowledge
    for name, folder in SAMPLE_SOURCES:
        config = FolderConnector.validate_config({"path": str(folder)})
        try:
            existing = sources.info(workspace, name)
        except UnknownSourceError:
            existing = None
        if existing is None or existing.config.get("path") != config["path"]:
            # A checkout moved elsewhere: the same source, pointed at the new folder.
            sources.add(
                workspace,
                name,
                kind="folder",
                config=config,
                credentials=None,
                schedule=None,
                requests_per_second=application.settings.sync_requests_per_second,
                replace=existing is not None,
            )
        if existing is None:  # the copies an older demo ingested file by file
            old_ids = [file_document_id(p) for p in iter_files([folder])]
            knowledge.delete_documents(workspace, old_ids)
    runs = []
    for name, _folder in SAMPLE_SOURCES:
        run = asyncio.run(
            application.sync_engine.sync(workspace, name, trigger="cli", on_progress=on_progress)
        )
        if run.status == "failed":
            raise SyncError(f"sync of {workspace}/{name} failed: {run.error}")
        runs.append(run)
    return runs
