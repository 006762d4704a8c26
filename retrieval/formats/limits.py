"""Per-file limits: what one file may cost an ingest before it is skipped.

A small file can declare 90,000 pages, inflate from 1 MB to 1 GB, or hold one 50 MB line; each
would stall or exhaust the whole run. Every converter checks these limits as it goes and raises
:class:`~retrieval.errors.BadDocumentError` naming the file and the limit, so the run reports it
in one line and carries on with the other files.

The time limit is cooperative: converters check it between pages, slides, sections and records
(the other limits bound the work a library does between two checks).
"""

from __future__ import annotations

import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from retrieval.errors import BadDocumentError

__all__ = ["Deadline", "FileLimits", "check_output", "check_zip"]


@dataclass(frozen=True, slots=True)
class FileLimits:
    """Limits for one file; the defaults suit a help centre's documents with room to spare."""

    max_bytes: int = 20_000_000
    """Size of the file on disk, in bytes."""
    max_pages: int = 2_000
    """Pages of a PDF."""
    max_seconds: float = 60.0
    """Wall-clock seconds of extraction."""
    max_output_chars: int = 5_000_000
    """Characters of extracted text."""
    max_line_chars: int = 200_000
    """Characters of the longest line of extracted text (minified data, not prose, beyond)."""
    max_unpacked_bytes: int = 200_000_000
    """Uncompressed size of the members of a ZIP-based format (DOCX, PPTX, XLSX, HWPX)."""
    max_members: int = 10_000
    """Members of a ZIP-based format."""


class Deadline:
    """The time limit of one file, checked between units of work."""

    def __init__(self, path: Path, limits: FileLimits) -> None:
        self._path = path
        self._seconds = limits.max_seconds
        self._end = time.monotonic() + limits.max_seconds

    def check(self) -> None:
        """Raises :class:`BadDocumentError` once the file's time is up."""
        if time.monotonic() > self._end:
            raise BadDocumentError(
                f"{self._path}: extraction took over the limit of {self._seconds:g} seconds; "
                "split the file or leave it out"
            )


def check_output(path: Path, text: str, limits: FileLimits) -> None:
    """Refuse text over the output limits (total size, longest line)."""
    if len(text) > limits.max_output_chars:
        raise BadDocumentError(
            f"{path}: extracted text is over the limit of {limits.max_output_chars:,} "
            "characters; split the file into smaller ones"
        )
    longest = max((len(line) for line in text.split("\n")), default=0)
    if longest > limits.max_line_chars:
        raise BadDocumentError(
            f"{path}: a line of {longest:,} characters, over the limit of "
            f"{limits.max_line_chars:,}; this looks like data, not prose: leave it out"
        )


def check_zip(path: Path, archive: zipfile.ZipFile, limits: FileLimits) -> None:
    """Refuse a ZIP-based file whose members would inflate past the limits (a zip bomb).

    The declared sizes are what :mod:`zipfile` enforces while reading (a member that inflates
    past its declared size fails its check), so summing them bounds what any reader unpacks.
    """
    members = archive.infolist()
    if len(members) > limits.max_members:
        raise BadDocumentError(
            f"{path}: {len(members):,} parts inside, over the limit of {limits.max_members:,}; "
            "re-save the file or leave it out"
        )
    unpacked = sum(member.file_size for member in members)
    if unpacked > limits.max_unpacked_bytes:
        raise BadDocumentError(
            f"{path}: unpacks to {unpacked:,} bytes, over the limit of "
            f"{limits.max_unpacked_bytes:,} bytes; split the file or leave it out"
        )
