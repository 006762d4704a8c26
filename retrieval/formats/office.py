"""Word, PowerPoint and CSV files as Markdown, with Microsoft's markitdown; Excel workbooks
with openpyxl (:mod:`retrieval.formats.xlsx`).

markitdown keeps what the chunker follows: DOCX headings as ``#`` lines, lists as ``-`` items,
tables (DOCX, PPTX, every XLSX sheet, CSV) as Markdown tables, slide titles as headings and
speaker notes. Its converters are called directly, by extension, so no content sniffing (and
no model) runs.

Before a library opens an Office file (a ZIP of XML parts), the parts' unpacked size is checked
against the limits: a zip bomb is refused before it is inflated. What markitdown writes for
images (``![alt](file)``: a file name that means nothing to a reader) is reduced to its alt
text, and its slide-number comments are dropped.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET

from retrieval.errors import BadDocumentError
from retrieval.formats.limits import Deadline, FileLimits, open_package
from retrieval.formats.xlsx import xlsx_to_markdown

__all__ = ["OFFICE_SUFFIXES", "csv_to_text", "office_to_text"]

OFFICE_SUFFIXES = frozenset({".docx", ".pptx", ".xlsx"})
_NAMES = {".docx": "Word document", ".pptx": "PowerPoint file", ".xlsx": "Excel workbook"}
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\([^)\n]*\)")
_HTML_COMMENT_LINE = re.compile(r"^\s*<!--.*?-->\s*$", re.MULTILINE)
_BLANK_RUNS = re.compile(r"\n{3,}")
_DELIMITERS = ",;\t|"
_SNIFF_LINES = 50
_DC_TITLE = "{http://purl.org/dc/elements/1.1/}title"


def office_to_text(path: Path, data: bytes, limits: FileLimits) -> tuple[str, str]:
    """``(title, text)`` of a DOCX, PPTX or XLSX file; the title is the document property.

    Raises :class:`BadDocumentError` for a file that is no ZIP, goes over the limits, or that
    the converter cannot read (any exception from inside it: libraries signal damaged files
    with many types).
    """
    suffix = path.suffix.lower()
    what = _NAMES[suffix]
    deadline = Deadline(path, limits)
    with open_package(
        path, data, limits, what=f"a {what}", advice="re-save it from its program"
    ) as archive:
        title = _core_title(archive)
    if suffix == ".xlsx":
        markdown = xlsx_to_markdown(path, data, limits, deadline)
    else:
        markdown = _convert(path, data, suffix, what)
    deadline.check()
    return title, tidy_markdown(markdown)


def csv_to_text(path: Path, text: str) -> str:
    """A CSV file's rows as one Markdown table (the first row is the header).

    The delimiter is whatever the file uses: ``,``; ``;`` (what Excel writes where the decimal
    mark is a comma); tab (``.tsv``, and Excel's "Unicode text"); ``|``. It is found by the
    standard library's :class:`csv.Sniffer` on the first lines, and the rows are handed to
    markitdown as comma-separated values.
    """
    if path.suffix.lower() == ".tsv":
        dialect: type[csv.Dialect] | None = csv.excel_tab
    else:
        dialect = _sniff_dialect(text)
    if dialect is not None and dialect.delimiter != ",":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerows(csv.reader(io.StringIO(text, newline=""), dialect))
        text = out.getvalue()
    return tidy_markdown(_convert(path, text.encode("utf-8"), ".csv", "CSV file", charset="utf-8"))


def _sniff_dialect(text: str) -> type[csv.Dialect] | None:
    """The CSV dialect of ``text``'s first lines, or None to read it as plain commas."""
    lines = text.splitlines()[:_SNIFF_LINES]
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines), delimiters=_DELIMITERS)
    except csv.Error:  # one column, or no consistent delimiter
        return None
    # The header row separates its columns too: a delimiter it lacks is punctuation in values.
    return dialect if lines and dialect.delimiter in lines[0] else None


def tidy_markdown(markdown: str) -> str:
    """markitdown's output without image file names and slide-number comments."""
    markdown = _IMAGE.sub(lambda m: m.group(1).strip(), markdown)
    markdown = _HTML_COMMENT_LINE.sub("", markdown)
    lines = [line.rstrip() for line in markdown.replace("\r\n", "\n").split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def _convert(path: Path, data: bytes, suffix: str, what: str, charset: str | None = None) -> str:
    # Imported here: markitdown loads its optional dependencies (and onnxruntime) on import,
    # which a CLI that never meets an Office file should not pay for.
    from markitdown import StreamInfo
    from markitdown.converters import CsvConverter, DocxConverter, PptxConverter

    converters: dict[str, Any] = {
        ".docx": DocxConverter,
        ".pptx": PptxConverter,
        ".csv": CsvConverter,
    }
    try:
        result = converters[suffix]().convert(
            io.BytesIO(data), StreamInfo(extension=suffix, charset=charset)
        )
    except Exception as e:
        reason = " ".join(str(e).split())[:200] or type(e).__name__
        raise BadDocumentError(
            f"{path}: not a readable {what} ({reason}); re-save it from its program"
        ) from e
    return str(result.markdown or "")


def _core_title(archive: zipfile.ZipFile) -> str:
    """The ``dc:title`` document property (``docProps/core.xml``), or ""."""
    try:
        raw = archive.read("docProps/core.xml")
    except KeyError:
        return ""
    try:
        root = SafeET.fromstring(raw)
    except Exception:  # a broken property part is no reason to refuse the document
        return ""
    node = root.find(_DC_TITLE)
    return " ".join((node.text or "").split()) if node is not None else ""
