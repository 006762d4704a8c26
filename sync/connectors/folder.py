"""A local folder of documents, read with the file loaders of ``ingest`` (every format of
:data:`~retrieval.loaders.SUPPORTED_SUFFIXES`, within the same per-file limits).

A file's id is its path relative to the folder in NFC (macOS writes names decomposed), its
version its modification time and size, so a sync reads only files that changed.
``supportbot run`` also watches the folder and syncs it a moment after files change (see
:mod:`sync.watch`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retrieval.errors import BadDocumentError
from retrieval.loaders import iter_files, load_file, nfc
from sync.connectors.base import (
    Checkpoint,
    Connector,
    Document,
    Failed,
    Item,
    Planned,
    SyncContext,
    Unchanged,
)
from sync.errors import SourceConfigError, SourceUnavailableError
from sync.models import SourceKind

CHECKPOINT_EVERY = 100


class FolderConnector(Connector):
    kind = SourceKind.FOLDER

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        raw = config.get("path")
        if not isinstance(raw, str) or not raw.strip():
            raise SourceConfigError("a folder source needs --path FOLDER")
        path = Path(raw).expanduser().resolve()
        if not path.is_dir():
            raise SourceConfigError(f"{path}: not a folder; give an existing folder with --path")
        max_mb = float(config.get("max_file_mb", 20.0))
        return {"path": str(path), "max_file_mb": max_mb}

    @property
    def root(self) -> Path:
        return Path(self.config["path"])

    async def stream(self, ctx: SyncContext) -> AsyncIterator[Item]:
        root = self.root
        if not root.is_dir():
            raise SourceUnavailableError(f"{root}: the folder is gone or unreadable")
        try:
            files = await asyncio.to_thread(lambda: list(iter_files([root])))
        except BadDocumentError as e:
            raise SourceUnavailableError(str(e)) from e
        yield Planned(len(files))
        max_bytes = int(float(self.config.get("max_file_mb", 20.0)) * 1024 * 1024)
        for n, path in enumerate(files, start=1):
            doc_id = nfc(path.relative_to(root).as_posix())
            try:
                info = path.stat()
            except OSError as e:
                yield Failed(doc_id, f"{path}: {e.strerror or e}")
                continue
            version = f"{info.st_mtime_ns}:{info.st_size}"
            if ctx.version_of(doc_id) == version:
                yield Unchanged(doc_id)
            else:
                try:
                    loaded = await asyncio.to_thread(load_file, path, max_bytes=max_bytes)
                except BadDocumentError as e:
                    yield Failed(doc_id, str(e))
                else:
                    yield Document(
                        id=doc_id,
                        title=loaded.title,
                        text=loaded.text,
                        url=None,
                        updated_at=datetime.fromtimestamp(info.st_mtime, UTC),
                        version=version,
                    )
            if n % CHECKPOINT_EVERY == 0:
                yield Checkpoint(None)
