"""HWP 5.0 (Hangul Word Processor's binary format) documents as text, with olefile.

An HWP 5.0 file is an OLE compound file (read with :mod:`olefile`, BSD) whose ``FileHeader``
stream holds the signature and flags (bit 0: compressed, bit 1: password, bit 2: distribution
document) and whose ``BodyText/Section{N}`` streams hold the body as records, raw-deflated
when compressed. Each record starts with a 32-bit header: tag (bits 0-9), level (10-19), size
(20-31; 0xFFF means a 32-bit size follows). Paragraph text (``HWPTAG_PARA_TEXT``) is UTF-16LE
with control characters of one code unit (line break, hyphen, fixed spaces) or of eight (an
inline control such as a tab, or an extended control that anchors an object).

Read as Hancom's published format document describes it (pyhwp, the Python reader, is AGPL and
cannot be used here). Paragraphs become blocks; tables (``tbl `` controls: a ``HWPTAG_TABLE``
record with the column count, then a list header per cell followed by the cell's paragraphs)
become Markdown tables. Heading styles (in ``DocInfo``) are not read: an HWP document's headings
come out as paragraphs. Password-protected and distribution documents are refused.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import olefile

from retrieval.errors import BadDocumentError
from retrieval.formats.hwpx import markdown_table
from retrieval.formats.limits import Deadline, FileLimits

__all__ = ["hwp_to_text"]

SIGNATURE = b"HWP Document File"
_TAG_BEGIN = 0x010
TAG_PARA_HEADER = _TAG_BEGIN + 50
TAG_PARA_TEXT = _TAG_BEGIN + 51
TAG_CTRL_HEADER = _TAG_BEGIN + 55
TAG_LIST_HEADER = _TAG_BEGIN + 56
TAG_TABLE = _TAG_BEGIN + 61
CTRL_TABLE = struct.unpack("<I", b" lbt")[0]  # 'tbl ' as the format stores it
_SECTION = re.compile(r"^Section(\d+)$")
# Control characters of one code unit that stand for text; the others of one unit mean nothing.
_CHAR_CONTROLS = {10: " ", 24: "-", 30: " ", 31: " "}
_ONE_UNIT = frozenset({0, 10, 13, *range(24, 32)})
_TAB = 9


@dataclass(slots=True)
class _Table:
    level: int
    columns: int = 0
    cells: list[list[str]] = field(default_factory=list)


def hwp_to_text(path: Path, data: bytes, limits: FileLimits) -> tuple[str, str]:
    """``("", text)`` of an HWP 5.0 file; raises :class:`BadDocumentError` naming the file."""
    deadline = Deadline(path, limits)
    if not olefile.isOleFile(io.BytesIO(data)):
        raise BadDocumentError(
            f"{path}: not an HWP 5.0 document (not an OLE compound file); "
            "save it again from Hangul (as .hwp or .hwpx)"
        )
    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            header = ole.openstream("FileHeader").read(256) if ole.exists("FileHeader") else b""
            if not header.startswith(SIGNATURE):
                raise BadDocumentError(
                    f"{path}: no HWP FileHeader signature; not an HWP 5.0 document"
                )
            flags = struct.unpack_from("<I", header, 36)[0] if len(header) >= 40 else 0
            if flags & 0b10:
                raise BadDocumentError(
                    f"{path}: the HWP document is password-protected; remove the password"
                )
            if flags & 0b100:
                raise BadDocumentError(
                    f"{path}: an HWP distribution document (encrypted for viewing only); "
                    "ask its author for an editable copy"
                )
            sections = sorted(
                (
                    entry
                    for entry in ole.listdir()
                    if len(entry) == 2 and entry[0] == "BodyText" and _SECTION.match(entry[1])
                ),
                key=lambda entry: int(_SECTION.match(entry[1]).group(1)),  # type: ignore[union-attr]
            )
            if not sections:
                raise BadDocumentError(f"{path}: no BodyText sections; not an HWP 5.0 document")
            blocks: list[str] = []
            budget = limits.max_unpacked_bytes
            for entry in sections:
                deadline.check()
                raw = ole.openstream(entry).read()
                body = _inflate(path, raw, budget) if flags & 0b1 else raw
                budget -= len(body)
                blocks.extend(_blocks(_records(body), deadline))
    except BadDocumentError:
        raise
    except Exception as e:
        reason = " ".join(str(e).split())[:200] or type(e).__name__
        raise BadDocumentError(
            f"{path}: not a readable HWP document ({reason}); re-save it from Hangul"
        ) from e
    return "", "\n\n".join(blocks)


def _inflate(path: Path, raw: bytes, budget: int) -> bytes:
    """Raw deflate, refusing to inflate past the file's remaining unpacked-size budget."""
    inflater = zlib.decompressobj(-15)
    body = inflater.decompress(raw, max(budget, 0) + 1)
    if len(body) > budget:
        raise BadDocumentError(
            f"{path}: unpacks to over the limit of unpacked bytes; split it or leave it out"
        )
    return body


def _records(body: bytes) -> Iterator[tuple[int, int, bytes]]:
    """``(tag, level, payload)`` of each record of a section stream."""
    offset, end = 0, len(body)
    while offset + 4 <= end:
        (header,) = struct.unpack_from("<I", body, offset)
        offset += 4
        tag, level, size = header & 0x3FF, (header >> 10) & 0x3FF, header >> 20
        if size == 0xFFF:
            if offset + 4 > end:
                return
            (size,) = struct.unpack_from("<I", body, offset)
            offset += 4
        yield tag, level, body[offset : offset + size]
        offset += size


def _blocks(records: Iterator[tuple[int, int, bytes]], deadline: Deadline) -> Iterator[str]:
    tables: list[_Table] = []
    for n, (tag, level, payload) in enumerate(records):
        if n % 1000 == 0:
            deadline.check()
        while tables and level <= tables[-1].level:
            table = tables.pop()
            text = _table_text(table)
            if text and tables and tables[-1].cells:
                tables[-1].cells[-1].append(" ".join(text.split("\n")))
            elif text:
                yield text
        if tag == TAG_CTRL_HEADER and len(payload) >= 4:
            if struct.unpack_from("<I", payload)[0] == CTRL_TABLE:
                tables.append(_Table(level))
        elif tables and level == tables[-1].level + 1 and tag == TAG_TABLE:
            if len(payload) >= 8:
                tables[-1].columns = struct.unpack_from("<H", payload, 6)[0]
        elif tables and level == tables[-1].level + 1 and tag == TAG_LIST_HEADER:
            tables[-1].cells.append([])
        elif tag == TAG_PARA_TEXT:
            text = " ".join(paragraph_text(payload).split())
            if not text:
                continue
            if tables and tables[-1].cells:
                tables[-1].cells[-1].append(text)
            else:
                yield text
    while tables:
        table = tables.pop()
        if text := _table_text(table):
            yield text


def paragraph_text(payload: bytes) -> str:
    """A ``HWPTAG_PARA_TEXT`` payload as text: control characters become spaces or nothing."""
    units = struct.unpack(f"<{len(payload) // 2}H", payload[: len(payload) // 2 * 2])
    out: list[str] = []
    i = 0
    while i < len(units):
        unit = units[i]
        if unit >= 32:
            out.append(chr(unit))
            i += 1
        elif unit in _ONE_UNIT:
            out.append(_CHAR_CONTROLS.get(unit, ""))
            i += 1
        else:  # inline and extended controls take eight code units
            if unit == _TAB:
                out.append(" ")
            i += 8
    # Surrogate pairs arrive as two units: join them into one character.
    return "".join(out).encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _table_text(table: _Table) -> str:
    cells = [" ".join(parts) for parts in table.cells]
    if not any(cells):
        return ""
    width = table.columns if 0 < table.columns <= len(cells) else len(cells)
    rows = [cells[i : i + width] for i in range(0, len(cells), width)]
    return markdown_table(rows)
