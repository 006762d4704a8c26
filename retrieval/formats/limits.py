"""Per-file limits: what one file may cost an ingest before it is skipped.

A small file can declare 90,000 pages, inflate from 1 MB to 1 GB, or hold one 50 MB line; each
would stall or exhaust the whole run. Every converter checks these limits as it goes and raises
:class:`~retrieval.errors.BadDocumentError` naming the file and the limit, so the run reports it
in one line and carries on with the other files.

The time limit is cooperative: converters check it between pages, slides, sections and records
(the other limits bound the work a library does between two checks).
"""

from __future__ import annotations

import io
import time
import xml.parsers.expat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from retrieval.errors import BadDocumentError

__all__ = [
    "Deadline",
    "FileLimits",
    "check_no_dtd",
    "check_output",
    "check_zip",
    "open_package",
]


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
    max_page_objects: int = 50_000
    """Glyphs, paths, images and figures drawn on one PDF page (a dense text page has a few
    thousand; one small page can draw millions, each a Python object)."""
    max_page_content_bytes: int = 16_000_000
    """Decoded bytes of one PDF page's content streams, its forms' each time drawn included."""


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


def open_package(
    path: Path, data: bytes, limits: FileLimits, *, what: str, advice: str
) -> zipfile.ZipFile:
    """A ZIP-based document (Office, HWPX) opened and checked before any reader sees it.

    Every such reader needs both checks: :func:`check_zip` (zip bombs) and
    :func:`check_no_dtd` (entity expansion). ``what`` names the format and ``advice`` says
    what to do, in the error for a file that is no ZIP package. The caller closes the
    archive (``with open_package(...) as archive``). Raises :class:`BadDocumentError`.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise BadDocumentError(f"{path}: not {what} (not a ZIP package: {e}); {advice}") from e
    try:
        check_zip(path, archive, limits)
        check_no_dtd(path, archive)
    except BaseException:
        archive.close()
        raise
    return archive


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


_PROLOG_CHUNK = 16_384


class _Prolog(Exception):
    """Raised by the expat handlers to stop reading an XML part: ``dtd`` is whether it holds
    a document type declaration (the root element ends the prolog where one may stand)."""

    def __init__(self, *, dtd: bool) -> None:
        super().__init__()
        self.dtd = dtd


def _stop_at_root(name: str, attributes: object) -> None:
    raise _Prolog(dtd=False)


def _stop_at_doctype(*args: object) -> None:
    raise _Prolog(dtd=True)


def check_no_dtd(path: Path, archive: zipfile.ZipFile) -> None:
    """Refuse a ZIP-based document any of whose XML parts declares a document type (DTD).

    A DTD is where entities are declared: the "billion laughs" (entities expanding into
    gigabytes) and external entities (``SYSTEM "file:///etc/passwd"``, a URL) both need one.
    Office Open XML packages may not hold one (ECMA-376 Part 2, XML usage) and Hangul never
    writes one, so refusing the file here, before any library parses it, closes entity
    expansion for every reader at once, whichever XML parser and settings a library uses.

    Every part is checked whatever its name (a package may give its main part any name),
    except media, which no reader here parses (an embedded SVG may carry a DTD of its own).
    Each part is read only up to its root element (the prolog, where a DTD must stand), in
    pieces of 16 KiB, so the check costs little even for large parts; the part sizes are
    already bounded by :func:`check_zip`. A part named as XML that expat cannot read (not
    well-formed, or in an encoding it lacks) is searched for the declaration's bytes instead.
    """
    for member in archive.infolist():
        name = member.filename
        if member.is_dir() or name.lower().endswith(_MEDIA_SUFFIXES):
            continue
        parser = xml.parsers.expat.ParserCreate()
        parser.StartDoctypeDeclHandler = _stop_at_doctype
        parser.StartElementHandler = _stop_at_root
        try:
            with archive.open(member) as part:
                while chunk := part.read(_PROLOG_CHUNK):
                    parser.Parse(chunk, False)
                parser.Parse(b"", True)
        except _Prolog as stop:
            declares = stop.dtd
        except ValueError:
            # An encoding expat lacks (EUC-KR, Shift_JIS) that another parser may read.
            declares = _declares_doctype(archive, member)
        except xml.parsers.expat.ExpatError:
            # Not XML to expat: a binary part (printer settings hold an Apple plist, DTD and
            # all, after binary bytes) is left alone; a part named as XML is searched.
            declares = name.lower().endswith(_XML_SUFFIXES) and _declares_doctype(archive, member)
        except (zipfile.BadZipFile, OSError, EOFError):
            continue  # damaged: the reader reports it in its own words
        else:
            declares = False
        if declares:
            raise BadDocumentError(
                f"{path}: part {name} declares a document type (DTD), which these files never "
                "hold (a way to expand entities or read other files); refused"
            )


_XML_SUFFIXES = (".xml", ".rels", ".hpf", ".vml")
_MEDIA_SUFFIXES = (
    ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".svg", ".emf",
    ".wmf", ".emz", ".wmz", ".ico", ".wdp", ".mp3", ".mp4", ".m4a", ".wav", ".avi", ".mov",
    ".ttf", ".otf", ".odttf", ".fntdata",
)  # fmt: skip


_DOCTYPE_SPELLINGS = tuple(
    "<!doctype".encode(codec) for codec in ("ascii", "utf-16-le", "utf-16-be", "utf-32-le")
)


def _declares_doctype(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> bool:
    """Whether a part's first MiB holds ``<!DOCTYPE`` in any case, as ASCII-compatible bytes
    or UTF-16/32 (the prolog of any real part is far shorter)."""
    try:
        with archive.open(member) as part:
            head = part.read(1 << 20).lower()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False
    return any(spelling in head for spelling in _DOCTYPE_SPELLINGS)
