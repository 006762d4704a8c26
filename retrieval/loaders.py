"""Read files and JSONL records into :class:`SourceDocument` objects.

Every format is turned into Markdown-like text (headings as ``#`` lines, lists as ``-`` items,
tables as Markdown tables, blank lines between paragraphs) because that is the structure the
chunker follows. Markdown and text are read here; PDF, Word, PowerPoint, Excel, CSV and Hangul
(HWPX, HWP) files by the converters in :mod:`retrieval.formats`. Anything a user can get wrong
(a missing, binary, empty, huge or corrupt file, one over the per-file limits of
:class:`FileLimits`, a malformed JSONL line) becomes a :class:`BadDocumentError` whose one-line
message names the file, so that an ingest run can report it and carry on with the other files.

Every text that enters from a file is NFC (one code point per Hangul syllable): contents, and
also file names (macOS writes them decomposed), titles, ids, sources and JSONL fields.
"""

from __future__ import annotations

import codecs
import dataclasses
import json
import os
import re
import stat
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path

from retrieval.chunking import split_markdown_sections
from retrieval.documents import SourceDocument
from retrieval.errors import BadDocumentError
from retrieval.formats.hwp import hwp_to_text
from retrieval.formats.hwpx import hwpx_to_text
from retrieval.formats.limits import FileLimits, check_output
from retrieval.formats.office import OFFICE_SUFFIXES, csv_to_text, office_to_text
from retrieval.formats.pdf import pdf_to_text
from retrieval.html import extract_main_text

__all__ = [
    "SUPPORTED_SUFFIXES",
    "FileLimits",
    "clean_text",
    "file_document_id",
    "html_main_text",
    "iter_files",
    "load_file",
    "load_jsonl",
    "nfc",
]

_MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
_TEXT_SUFFIXES = frozenset({".txt", ".text", ".rst"})
_HTML_SUFFIXES = frozenset({".html", ".htm"})
_PDF_SUFFIXES = frozenset({".pdf"})
_CSV_SUFFIXES = frozenset({".csv", ".tsv"})
_HWPX_SUFFIXES = frozenset({".hwpx"})
_HWP_SUFFIXES = frozenset({".hwp"})
SUPPORTED_SUFFIXES: frozenset[str] = (
    _MARKDOWN_SUFFIXES
    | _TEXT_SUFFIXES
    | _HTML_SUFFIXES
    | _PDF_SUFFIXES
    | OFFICE_SUFFIXES
    | _CSV_SUFFIXES
    | _HWPX_SUFFIXES
    | _HWP_SUFFIXES
)

# Only the start is checked: enough to tell an image or archive from text without scanning
# a 20 MB file twice.
_BINARY_SNIFF_BYTES = 8192
_HANGUL_SYLLABLE = re.compile("[\uac00-\ud7a3]")


def load_file(
    path: Path, *, max_bytes: int | None = None, limits: FileLimits | None = None
) -> SourceDocument:
    """Load one file of a supported format (:data:`SUPPORTED_SUFFIXES`).

    ``limits`` bound what one file may cost (pages, seconds, output, unpacked size);
    ``max_bytes``, when given, replaces its size limit. Raises :class:`BadDocumentError` for
    anything that cannot become useful text or goes over a limit, so that the caller never
    indexes an empty or garbled document by mistake and the run goes on with other files.
    The id and source are the file's absolute path, in NFC.
    """
    limits = limits or FileLimits()
    if max_bytes is not None:
        limits = dataclasses.replace(limits, max_bytes=max_bytes)
    data = _read_bytes(path, limits.max_bytes)
    suffix = path.suffix.lower()
    title, text = _convert(path, suffix, data, limits)
    text, title = _clean_text(text), nfc(" ".join(title.split()))
    if not text.strip():
        if suffix in _PDF_SUFFIXES:
            what = "no extractable text (a scanned PDF without a text layer?); run OCR on it first"
        elif suffix in _HTML_SUFFIXES:
            what = "no text once menus, scripts and hidden parts are removed; leave it out"
        else:
            what = "is empty; add content or leave it out"
        raise BadDocumentError(f"{path}: {what}")
    check_output(path, text, limits)
    doc_id = file_document_id(path)
    return SourceDocument(
        doc_id=doc_id, title=title or nfc(path.stem), text=text, source=doc_id, url=None
    )


def file_document_id(path: Path) -> str:
    """A file's document id: its absolute path in NFC (the same file, the same id, whichever
    normalisation the file system hands back)."""
    return nfc(str(path.resolve()))


def nfc(text: str) -> str:
    """``text`` in Unicode NFC: composed Hangul syllables and accents, as people type them."""
    return unicodedata.normalize("NFC", text)


def _convert(path: Path, suffix: str, data: bytes, limits: FileLimits) -> tuple[str, str]:
    """``(title, text)`` by format; the title may be ""."""
    if suffix in _PDF_SUFFIXES:
        return pdf_to_text(path, data, limits)
    if suffix in OFFICE_SUFFIXES:
        return office_to_text(path, data, limits)
    if suffix in _HWPX_SUFFIXES:
        return hwpx_to_text(path, data, limits)
    if suffix in _HWP_SUFFIXES:
        return hwp_to_text(path, data, limits)
    if suffix in _CSV_SUFFIXES:
        table = _clean_text(_decode_text(path, data))
        # Every cell's characters reach the Markdown table, so cells already over the output
        # limits are refused before the table is built (a 20 MB CSV had cost 670 MB and 6 s).
        check_output(path, table.replace('"', ""), limits)
        return "", csv_to_text(path, table)
    if suffix in _HTML_SUFFIXES:
        return html_main_text(_decode_text(path, data), name=str(path), limits=limits)
    text = _clean_text(_decode_text(path, data))
    if suffix in _MARKDOWN_SUFFIXES:
        headings = (s.headings[-1] for s in split_markdown_sections(text) if s.level == 1)
        return next(headings, ""), text
    return "", text


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Expand folders into the files to load, in a stable order.

    Inside folders, hidden entries (``.git``, ``.DS_Store``) and files of other types are
    skipped silently: a knowledge-base folder is expected to hold images and the like. A path
    named explicitly is yielded as it is, so that :func:`load_file` can say what is wrong with it.
    """
    for path in paths:
        if not path.is_dir():
            yield path
            continue
        found: list[Path] = []

        def unreadable(error: OSError, folder: Path = path) -> None:
            raise BadDocumentError(
                f"{error.filename or folder}: cannot list this folder ({_os_reason(error)}); "
                "check its permissions"
            ) from error

        for folder, dirnames, filenames in os.walk(path, onerror=unreadable):
            dirnames[:] = [name for name in dirnames if not name.startswith(".")]
            found.extend(
                Path(folder, name)
                for name in filenames
                if not name.startswith(".") and Path(name).suffix.lower() in SUPPORTED_SUFFIXES
            )
        # Sorting the whole list (not each folder) keeps "a.md, b/c.md, d.md" in path order.
        yield from sorted(found, key=lambda file: file.relative_to(path).parts)


def load_jsonl(path: Path) -> Iterator[SourceDocument | BadDocumentError]:
    """Load ``{"id", "title", "text", "url"?}`` records, one per line.

    A bad line is yielded as an error instead of raised so that one broken record in an export
    of thousands does not stop the rest; only a file that cannot be opened raises.
    """
    try:
        handle = path.open("rb")
    except OSError as e:
        raise BadDocumentError(f"{path}: cannot open ({_os_reason(e)}); check the path") from e
    first_line: dict[str, int] = {}
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            record = _parse_record(path, number, raw, first_line)
            if isinstance(record, SourceDocument):
                first_line.setdefault(record.doc_id, number)
            yield record


def _parse_record(
    path: Path, number: int, raw: bytes, first_line: dict[str, int]
) -> SourceDocument | BadDocumentError:
    where = f"{path}:{number}"
    try:
        record = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return BadDocumentError(f"{where}: not UTF-8; save the file as UTF-8")
    except json.JSONDecodeError as e:
        return BadDocumentError(f"{where}: not valid JSON ({e.msg} at column {e.colno})")
    if not isinstance(record, dict):
        return BadDocumentError(f"{where}: expected a JSON object with id, title and text")
    raw_id, text, title, url = (record.get(key) for key in ("id", "text", "title", "url"))
    # bool is an int in Python but never a meaningful id.
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or not str(raw_id).strip():
        return BadDocumentError(f'{where}: "id" must be a non-empty string or integer')
    doc_id = nfc(str(raw_id).strip())
    if doc_id in first_line:
        return BadDocumentError(
            f"{where}: duplicate id {doc_id!r} (first on line {first_line[doc_id]}); "
            "ids must be unique"
        )
    if not isinstance(text, str) or not text.strip():
        return BadDocumentError(f'{where}: "text" must be a non-empty string')
    if title is not None and not isinstance(title, str):
        return BadDocumentError(f'{where}: "title" must be a string')
    if url is not None and not isinstance(url, str):
        return BadDocumentError(f'{where}: "url" must be a string')
    url = nfc(url.strip()) if url else None
    return SourceDocument(
        doc_id=doc_id,
        title=nfc(" ".join(title.split())) if title and title.strip() else doc_id,
        text=_clean_text(text),
        source=url or f"{nfc(path.name)}#{doc_id}",
        url=url or None,
    )


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    """Read the file, refusing what cannot be a document before reading all of it."""
    try:
        info = path.stat()
    except OSError as e:
        raise BadDocumentError(f"{path}: cannot read ({_os_reason(e)}); check the path") from e
    if stat.S_ISDIR(info.st_mode):
        raise BadDocumentError(f"{path}: is a folder; pass it to iter_files to expand it")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise BadDocumentError(
            f"{path}: unsupported file type {path.suffix or '(no extension)'!r}; "
            f"supported: {supported}"
        )
    # A FIFO or device would block or never end.
    if not stat.S_ISREG(info.st_mode):
        raise BadDocumentError(f"{path}: not a regular file; pass a file or a folder")
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as e:
        raise BadDocumentError(
            f"{path}: cannot read ({_os_reason(e)}); check the file's permissions"
        ) from e
    if len(data) > max_bytes:
        size = max(info.st_size, len(data))
        raise BadDocumentError(
            f"{path}: file is {size:,} bytes, over the limit of {max_bytes:,} bytes; "
            "split it into smaller files"
        )
    return data


def _decode_text(path: Path, data: bytes) -> str:
    """Decode a text format, telling binary files and unknown encodings apart from text.

    utf-8-sig also reads UTF-8 without a BOM. Notepad's "Unicode" (UTF-16 with a BOM) is read
    before the NUL check it would fail. cp949 (a superset of EUC-KR) is tried for legacy Korean
    files, but accepted only if it yields Hangul: it decodes much non-Korean junk too.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise BadDocumentError(f"{path}: broken UTF-16 text; save it as UTF-8") from e
    if b"\x00" in data[:_BINARY_SNIFF_BYTES]:
        raise BadDocumentError(
            f"{path}: looks like a binary file (contains NUL bytes), not text; leave it out"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        try:
            legacy = data.decode("cp949")
        except UnicodeDecodeError:
            legacy = ""
        if _HANGUL_SYLLABLE.search(legacy):
            return legacy
        raise BadDocumentError(
            f"{path}: not UTF-8 text (invalid byte at offset {e.start}); "
            "save it as UTF-8 or leave it out if it is binary"
        ) from e


def _clean_text(text: str) -> str:
    """Normalise what differs between editors and platforms but not in meaning.

    NFC makes each Korean syllable one code point (macOS writes them decomposed), so that the
    same word matches and the chunker can never cut a syllable in half.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return unicodedata.normalize("NFC", text)


def html_main_text(
    html: str, *, name: str = "HTML page", limits: FileLimits | None = None
) -> tuple[str, str]:
    """The title and main content of a web page as Markdown (see :mod:`retrieval.html`).

    Raises :class:`BadDocumentError`, starting with ``name``, for a page over a limit.
    """
    page = extract_main_text(html, name=name, limits=limits)
    return page.title, page.text


def clean_text(text: str) -> str:
    """Text normalised as files are (line endings; NFC: one code point per Hangul syllable)."""
    return _clean_text(text)


def _os_reason(error: OSError) -> str:
    """The OS's short reason ("No such file or directory") without the repeated path."""
    return (error.strerror or type(error).__name__).lower()
