"""Excel workbooks (XLSX) as Markdown: every sheet a ``## Sheet`` heading and a table.

Read with openpyxl (read-only, the values Excel last calculated). Written here rather than
through pandas (as markitdown does), because a DataFrame turns what people keep in sheets into
noise that keyword search then matches: ``NaN`` in every empty cell, ``Unnamed: 1`` for the
blank header cells of a sheet that starts with a title, ``9900.0`` for a price in a column
with a gap, ``2024-03-31 00:00:00`` for a date, and a stray ``|`` for an empty sheet.

Shapes: rows and columns that are empty throughout are dropped; rows above the table that hold
a single value (a title, often a merged cell) become a line of text; the first row with two or
more values is the table's header. Numbers are written as Excel shows them without formatting
(``9900``, ``0.15``), dates as ISO dates (with the time only when it is not midnight).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Iterator
from pathlib import Path

import openpyxl

from retrieval.errors import BadDocumentError
from retrieval.formats.limits import Deadline, FileLimits

__all__ = ["xlsx_to_markdown"]


def xlsx_to_markdown(path: Path, data: bytes, limits: FileLimits, deadline: Deadline) -> str:
    """The workbook's sheets as Markdown; raises :class:`BadDocumentError` naming the file
    when openpyxl cannot read it (any exception: damaged packages fail in many ways), or when
    it goes over the time or output limits (checked while rows are read: a sheet may declare
    a million empty rows)."""
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:
        raise _unreadable(path, e) from e
    try:
        parts = []
        for sheet in workbook.worksheets:
            body = _sheet_markdown(_rows(path, sheet.iter_rows(values_only=True), limits, deadline))
            if body:
                parts.append(f"## {' '.join(str(sheet.title).split())}\n{body}")
        return "\n\n".join(parts)
    except BadDocumentError:
        raise
    except Exception as e:
        raise _unreadable(path, e) from e
    finally:
        workbook.close()


def _unreadable(path: Path, error: Exception) -> BadDocumentError:
    reason = " ".join(str(error).split())[:200] or type(error).__name__
    return BadDocumentError(
        f"{path}: not a readable Excel workbook ({reason}); re-save it from its program"
    )


def _rows(
    path: Path, rows: Iterable[tuple[object, ...]], limits: FileLimits, deadline: Deadline
) -> Iterator[list[str]]:
    """The sheet's non-empty rows as cell texts, without trailing empty cells."""
    size = 0
    for number, row in enumerate(rows):
        if number % 1000 == 0:
            deadline.check()
        cells = [_cell(value) for value in row]
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            continue
        size += sum(len(cell) + 3 for cell in cells)
        if size > limits.max_output_chars:
            raise BadDocumentError(
                f"{path}: extracted text is over the limit of {limits.max_output_chars:,} "
                "characters; split it into smaller files"
            )
        yield cells


def _sheet_markdown(rows: Iterable[list[str]]) -> str:
    """One sheet's rows as title lines and a Markdown table ("" for an empty sheet)."""
    cells = list(rows)
    if not cells:
        return ""
    width = max(len(row) for row in cells)
    cells = [row + [""] * (width - len(row)) for row in cells]
    used = [c for c in range(width) if any(row[c] for row in cells)]
    cells = [[row[c] for c in used] for row in cells]
    lines: list[str] = []
    while cells and sum(1 for value in cells[0] if value) < 2 and len(cells) > 1:
        lines.append(next(value for value in cells.pop(0) if value))
    if len(used) == 1 and len(cells) == 1:
        return "\n\n".join([*lines, cells[0][0]])
    header, *body = cells
    table = [_row(header), _row(["---"] * len(header)), *(_row(row) for row in body)]
    return "\n\n".join([*lines, "\n".join(table)])


def _row(values: list[str]) -> str:
    return "| " + " | ".join(values) + " |"


def _cell(value: object) -> str:
    """A cell's value as table text: no line breaks, pipes escaped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        text = str(int(value))
    elif isinstance(value, dt.datetime):
        text = value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ")
    elif isinstance(value, dt.date | dt.time):
        text = value.isoformat()
    else:
        text = str(value)
    return " ".join(text.split()).replace("|", "\\|")
