"""HWPX (Hancom Office's OWPML, KS X 6101) documents as Markdown.

An HWPX file is a ZIP package of XML parts: ``Contents/content.hpf`` (metadata and the order of
the sections), ``Contents/header.xml`` (styles and paragraph shapes) and
``Contents/section*.xml`` (the body: ``hp:p`` paragraphs of ``hp:run`` runs whose ``hp:t``
elements hold the text; tables are ``hp:tbl`` > ``hp:tr`` > ``hp:tc`` > ``hp:subList`` > ``hp:p``).
No well-kept, permissively licensed Python reader exists, so the XML is read here as the format
describes it, with :mod:`defusedxml` (entity tricks refused).

What the chunker follows survives: a paragraph in an outline style ("개요 N"/"Outline N") or
with an outline paragraph shape becomes a heading of that level; bullet and numbered paragraph
shapes become ``-`` items; tables become Markdown tables; text boxes' paragraphs are kept.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET

from retrieval.errors import BadDocumentError
from retrieval.formats.limits import Deadline, FileLimits, open_package

__all__ = ["hwpx_to_text", "markdown_table"]

_HP = "{http://www.hancom.co.kr/hwpml/2011/paragraph}"
_HH = "{http://www.hancom.co.kr/hwpml/2011/head}"
_OPF = "{http://www.idpf.org/2007/opf/}"
_SECTION = re.compile(r"^Contents/section(\d+)\.xml$")
_OUTLINE_STYLE = re.compile(r"^(?:개요|Outline)\s*(\d+)$")
# Inline elements inside hp:t that stand for characters.
_INLINE_TEXT = {"tab": " ", "lineBreak": " ", "nbSpace": " ", "fwSpace": " ", "hyphen": "-"}


@dataclass(slots=True)
class _Header:
    """What header.xml says about paragraphs: heading levels and list kinds by id."""

    style_levels: dict[str, int] = field(default_factory=dict)  # style id -> heading level
    shape_levels: dict[str, int] = field(default_factory=dict)  # paraPr id -> heading level
    shape_lists: dict[str, int] = field(default_factory=dict)  # paraPr id -> list depth


def hwpx_to_text(path: Path, data: bytes, limits: FileLimits) -> tuple[str, str]:
    """``(title, text)`` of an HWPX file; raises :class:`BadDocumentError` naming the file."""
    deadline = Deadline(path, limits)
    with open_package(
        path, data, limits, what="an HWPX document", advice="re-save it as .hwpx"
    ) as archive:
        try:
            title, sections = _package(archive)
            if not sections:
                raise BadDocumentError(
                    f"{path}: no Contents/section*.xml inside; not an HWPX document"
                )
            header = _header(archive)
            blocks: list[str] = []
            for name in sections:
                deadline.check()
                root = SafeET.fromstring(archive.read(name))
                blocks.extend(_blocks(root, header, deadline))
        except BadDocumentError:
            raise
        except Exception as e:
            reason = " ".join(str(e).split())[:200] or type(e).__name__
            raise BadDocumentError(
                f"{path}: not a readable HWPX document ({reason}); re-save it from Hangul"
            ) from e
    return title, _join(blocks)


def markdown_table(rows: list[list[str]]) -> str:
    """Rows of cell texts as a Markdown table; the first row is the header."""
    width = max(len(row) for row in rows)
    lines = []
    for n, row in enumerate(rows):
        cells = [" ".join(cell.split()).replace("|", "\\|") for cell in row]
        cells += [""] * (width - len(cells))
        lines.append("| " + " | ".join(cells) + " |")
        if n == 0:
            lines.append("|" + " --- |" * width)
    return "\n".join(lines)


def _package(archive: zipfile.ZipFile) -> tuple[str, list[str]]:
    """The title and the section parts in reading order (the spine, else by number)."""
    names = set(archive.namelist())
    sections = sorted(
        (name for name in names if _SECTION.match(name)),
        key=lambda name: int(_SECTION.match(name).group(1)),  # type: ignore[union-attr]
    )
    title = ""
    if "Contents/content.hpf" in names:
        root = SafeET.fromstring(archive.read("Contents/content.hpf"))
        node = root.find(f"{_OPF}metadata/{_OPF}title")
        title = " ".join((node.text or "").split()) if node is not None else ""
        hrefs = {
            item.get("id"): item.get("href", "")
            for item in root.iter(f"{_OPF}item")
            if item.get("id")
        }
        spine = [hrefs.get(ref.get("idref")) for ref in root.iter(f"{_OPF}itemref")]
        # Manifest hrefs are relative to the package root ("Contents/section0.xml").
        ordered = [posixpath.normpath(href) for href in spine if href]
        ordered = [name for name in ordered if name in sections]
        if ordered:
            sections = ordered + [name for name in sections if name not in ordered]
    return title, sections


def _header(archive: zipfile.ZipFile) -> _Header:
    header = _Header()
    try:
        root = SafeET.fromstring(archive.read("Contents/header.xml"))
    except KeyError:
        return header
    for style in root.iter(f"{_HH}style"):
        for name in (style.get("engName", ""), style.get("name", "")):
            match = _OUTLINE_STYLE.match(name.strip())
            if match and style.get("id") is not None:
                header.style_levels[str(style.get("id"))] = min(6, max(1, int(match.group(1))))
                break
    for shape in root.iter(f"{_HH}paraPr"):
        heading = shape.find(f"{_HH}heading")
        shape_id = shape.get("id")
        if heading is None or shape_id is None:
            continue
        kind, level = heading.get("type", "NONE"), int(heading.get("level", "0") or 0)
        if kind == "OUTLINE":
            header.shape_levels[shape_id] = min(6, level + 1)
        elif kind in ("BULLET", "NUMBER"):
            header.shape_lists[shape_id] = level
    return header


def _blocks(container: Element, header: _Header, deadline: Deadline) -> Iterator[str]:
    """Markdown blocks of the paragraphs directly in ``container`` (a section or subList)."""
    for paragraph in container.findall(f"{_HP}p"):
        deadline.check()
        text = " ".join(_paragraph_text(paragraph).split())
        if text:
            style, shape = paragraph.get("styleIDRef", ""), paragraph.get("paraPrIDRef", "")
            level = header.style_levels.get(style) or header.shape_levels.get(shape)
            if level:
                yield "#" * level + " " + text
            elif shape in header.shape_lists:
                yield "\x00" + "  " * header.shape_lists[shape] + "- " + text
            else:
                yield text
        # Tables and text boxes anchored in the paragraph follow it.
        for run in paragraph.findall(f"{_HP}run"):
            for child in run:
                if child.tag == f"{_HP}tbl":
                    table = _table(child, header, deadline)
                    if table:
                        yield table
                elif child.tag != f"{_HP}t":
                    for sub_list in child.iter(f"{_HP}subList"):
                        yield from _blocks(sub_list, header, deadline)


def _paragraph_text(paragraph: Element) -> str:
    parts: list[str] = []
    for run in paragraph.findall(f"{_HP}run"):
        for t in run.findall(f"{_HP}t"):
            parts.append(t.text or "")
            for child in t:
                parts.append(_INLINE_TEXT.get(child.tag.removeprefix(_HP), ""))
                parts.append(child.tail or "")
    return "".join(parts)


def _table(table: Element, header: _Header, deadline: Deadline) -> str:
    rows: list[list[str]] = []
    for row in table.findall(f"{_HP}tr"):
        cells = []
        for cell in row.findall(f"{_HP}tc"):
            texts = [
                block.lstrip("\x00#- ")
                for sub_list in cell.findall(f"{_HP}subList")
                for block in _blocks(sub_list, header, deadline)
            ]
            cells.append(" ".join(texts))
        if any(cells):
            rows.append(cells)
    return markdown_table(rows) if rows else ""


def _join(blocks: list[str]) -> str:
    """Blocks separated by blank lines, but a list's items on consecutive lines."""
    out: list[str] = []
    previous_item = False
    for block in blocks:
        item = block.startswith("\x00")
        if out:
            out.append("\n" if item and previous_item else "\n\n")
        out.append(block.removeprefix("\x00"))
        previous_item = item
    return "".join(out)
