"""A fine-tuning export of one workspace as a zip: the files ``supportbot feedback export``
writes (split JSONL files and ``manifest.json``, by :func:`feedback.export.export_dataset`,
with the same options), zipped as they are streamed out.

The export is built in a private temporary folder (the rows are few MB at most; the zip is
not held in memory), then read back file by file into the zip stream, so a download starts as
soon as the export is done and never needs the whole archive in memory. The folder is removed
when the stream ends or is abandoned.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from console.errors import InvalidInputError
from feedback.errors import FeedbackError
from feedback.export import FORMATS, LABELS, Embed, ExportOptions, export_dataset
from feedback.splits import SplitRatios

CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ExportForm:
    """The page's form, as the CLI's options: ``split`` like ``80/10/10``."""

    format: str
    split: str = "80/10/10"
    scrub: bool = True
    labels: str = "explicit"
    llm_only: bool = False
    seed: str = "supportbot"

    def options(self, similarity: float) -> ExportOptions:
        """The export options; :class:`InvalidInputError` naming a bad value."""
        try:
            ratios = SplitRatios.parse(self.split)
            return ExportOptions(
                format=self.format,
                scrub=self.scrub,
                ratios=ratios,
                seed=self.seed or "supportbot",
                similarity=similarity,
                llm_only=self.llm_only,
                labels=self.labels,
            )
        except (ValueError, FeedbackError) as e:
            raise InvalidInputError(str(e)) from e


@dataclass(slots=True)
class BuiltExport:
    """An export written to ``folder``: its manifest, and the zip as a byte stream."""

    folder: Path
    manifest: dict[str, Any]

    @property
    def filename(self) -> str:
        stamp = str(self.manifest.get("created_at", ""))[:19].replace(":", "").replace("-", "")
        return f"supportbot-{self.manifest['workspace']}-{self.manifest['format']}-{stamp}.zip"

    def stream(self) -> Iterator[bytes]:
        """The zip, in pieces; the folder is removed when the stream ends (or is closed)."""
        try:
            yield from zip_stream(self.folder)
        finally:
            self.cleanup()

    def cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def build_export(
    engine: Engine,
    workspace: str,
    form: ExportForm,
    *,
    similarity: float,
    embed: Embed,
    clock: Callable[[], datetime],
    known_workspaces: set[str],
) -> BuiltExport:
    """Export ``workspace``'s rated answers into a new temporary folder (blocking: call it in
    a worker thread). Raises :class:`InvalidInputError` for bad options or an unknown workspace."""
    options = form.options(similarity)
    folder = Path(tempfile.mkdtemp(prefix="supportbot-export-"))
    try:
        manifest = export_dataset(
            engine,
            workspace,
            folder,
            options,
            embed=embed,
            clock=clock,
            known_workspaces=known_workspaces,
        )
    except FeedbackError as e:
        shutil.rmtree(folder, ignore_errors=True)
        raise InvalidInputError(str(e)) from e
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return BuiltExport(folder=folder, manifest=manifest)


class _Pipe(io.RawIOBase):
    """A write-only, unseekable sink whose written bytes are taken out piece by piece."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        return len(chunk)

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def zip_stream(folder: Path) -> Iterator[bytes]:
    """The regular files directly in ``folder`` as a deflated zip, yielded as it is written
    (``zipfile`` writes data descriptors to an unseekable stream, so nothing seeks back)."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.iterdir() if p.is_file()):
            with path.open("rb") as source, archive.open(path.name, mode="w") as target:
                while block := source.read(CHUNK_BYTES):
                    target.write(block)
                    if data := pipe.take():
                        yield data
            if data := pipe.take():
                yield data
    if data := pipe.take():
        yield data


__all__ = ["FORMATS", "LABELS", "BuiltExport", "ExportForm", "build_export", "zip_stream"]
