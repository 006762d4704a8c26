"""PDF text with pdfminer.six's layout analysis and word joining from character positions.

A PDF holds positioned glyphs, not words. Generators that set text with letter spacing (common
in Korean documents: each syllable placed on its own) leave gaps between the letters of a word,
and a fixed "gap over N% of the glyph" rule, as extractors use, reads every letter as a word:
``세 금 계 산 서``. Here each line's own typical gap between letters is the baseline, and only a
space glyph or a gap clearly wider than that baseline separates words; text set without letter
spacing has a baseline near zero, so it reads as before.

Lines keep pdfminer's grouping; text boxes (paragraphs, in reading order) are separated by blank
lines, pages too. Page count, output size and time are limited per file (:class:`FileLimits`).
"""

from __future__ import annotations

import io
import itertools
import statistics
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pdfminer.converter import PDFPageAggregator
from pdfminer.layout import (
    LAParams,
    LTChar,
    LTComponent,
    LTContainer,
    LTPage,
    LTTextBox,
    LTTextLine,
    LTTextLineVertical,
)
from pdfminer.pdfdocument import PDFDocument, PDFPasswordIncorrect
from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
from pdfminer.pdfpage import PDFPage
from pdfminer.pdfparser import PDFParser
from pdfminer.pdftypes import PDFStream, list_value, resolve1, stream_value
from pdfminer.utils import decode_text

from retrieval.errors import BadDocumentError
from retrieval.formats.limits import Deadline, FileLimits

__all__ = ["LINE_MARGIN", "WORD_GAP_EM", "pdf_to_text"]

WORD_GAP_EM = 0.15
"""A gap wider than the line's typical letter gap by this much (in ems of the font size) is a
space between words. Fonts' spaces are 0.25-0.33 em; kerning and justification inside a word
move letters by a few hundredths."""


LINE_MARGIN = 1.0
"""Lines whose vertical gap is under this many line heights belong to one paragraph: up to
1.5 line spacing; paragraphs set further apart, and columns, stay separate boxes."""


def pdf_to_text(path: Path, data: bytes, limits: FileLimits) -> tuple[str, str]:
    """``(title, text)`` of a PDF; raises :class:`BadDocumentError` naming the file.

    pdfminer signals a damaged file with many exception types (its own, but also ValueError,
    KeyError, struct and zlib errors from deep inside), so any exception it raises is reported
    as a PDF it cannot read.
    """
    deadline = Deadline(path, limits)
    try:
        document = PDFDocument(PDFParser(io.BytesIO(data)), password="")
        declared = _declared_pages(document)
        if declared > limits.max_pages:
            raise BadDocumentError(
                f"{path}: declares {declared:,} pages, over the limit of {limits.max_pages:,} "
                "pages; split it into smaller files"
            )
        title = _title(document)
        pages: list[str] = []
        total = 0
        for text in _page_texts(path, document, limits, deadline):
            total += len(text)
            if total > limits.max_output_chars:
                raise BadDocumentError(
                    f"{path}: extracted text is over the limit of {limits.max_output_chars:,} "
                    "characters; split it into smaller files"
                )
            if text:
                pages.append(text)
    except BadDocumentError:
        raise
    except PDFPasswordIncorrect as e:
        raise BadDocumentError(f"{path}: the PDF is password-protected; remove the password") from e
    except Exception as e:
        reason = " ".join(str(e).split())[:200] or type(e).__name__
        raise BadDocumentError(
            f"{path}: not a readable PDF ({reason}); re-export or repair it"
        ) from e
    return title, "\n\n".join(pages)


def _page_texts(
    path: Path, document: PDFDocument, limits: FileLimits, deadline: Deadline
) -> Iterator[str]:
    resources = PDFResourceManager(caching=True)
    # all_texts: text inside figures (form XObjects) is grouped into lines as well.
    # line_margin: lines closer than this many line heights form one box (a paragraph).
    # pdfminer's 0.5 splits text set at 1.15-1.5 line spacing (gaps of 0.5-0.9 heights) into
    # one box per line; such boxes are then ordered across columns line by line.
    laparams = LAParams(all_texts=True, line_margin=LINE_MARGIN)
    device = _BoundedAggregator(resources, laparams=laparams, path=path, limits=limits)
    device.deadline = deadline
    interpreter = _BoundedInterpreter(resources, device)
    for number, page in enumerate(PDFPage.create_pages(document), start=1):
        if number > limits.max_pages:
            raise BadDocumentError(
                f"{path}: over the limit of {limits.max_pages:,} pages; split it into smaller files"
            )
        deadline.check()
        interpreter.process_page(page)
        layout = device.get_result()
        yield _layout_text(layout)


class _BoundedAggregator(PDFPageAggregator):
    """pdfminer's page aggregator with a budget per page: one page's content stream can draw
    millions of glyphs or paths from a few kilobytes (each a Python object, analysed as a
    whole at the end of the page), or decode into gigabytes, and pdfminer has no limit of its
    own. Objects drawn and content bytes decoded are counted as the page is interpreted (form
    XObjects each time they are drawn, since their interpreters share this device), the
    file's time limit is checked every thousand objects, and going over raises
    :class:`BadDocumentError` naming the page and the limit."""

    def __init__(
        self, resources: PDFResourceManager, *, laparams: LAParams, path: Path, limits: FileLimits
    ) -> None:
        super().__init__(resources, laparams=laparams)
        self._path = path
        self._limits = limits
        self.deadline: Deadline | None = None
        self._page = 0
        self._objects = 0
        self._content = 0

    def begin_page(self, page: PDFPage, ctm: Any) -> None:
        self._page += 1
        self._objects = 0
        self._content = 0
        super().begin_page(page, ctm)

    def count_object(self) -> None:
        """One more object drawn on this page."""
        self._objects += 1
        if self._objects % 1000 == 0 and self.deadline is not None:
            self.deadline.check()
        if self._objects > self._limits.max_page_objects:
            raise BadDocumentError(
                f"{self._path}: page {self._page} draws over {self._limits.max_page_objects:,} "
                "glyphs, paths and images, over the limit per page; split or re-export it"
            )

    def take_content(self, stream: PDFStream) -> None:
        """Count a content stream's decoded size before pdfminer decodes it whole."""
        left = self._limits.max_page_content_bytes - self._content
        self._content += _decoded_size(stream, left)
        if self._content > self._limits.max_page_content_bytes:
            raise BadDocumentError(
                f"{self._path}: page {self._page} has over "
                f"{self._limits.max_page_content_bytes:,} bytes of drawing instructions, over "
                "the limit per page; split or re-export it"
            )

    def render_char(self, *args: Any, **kwargs: Any) -> float:
        self.count_object()
        return float(super().render_char(*args, **kwargs))

    def paint_path(self, *args: Any, **kwargs: Any) -> None:
        self.count_object()
        super().paint_path(*args, **kwargs)

    def render_image(self, *args: Any, **kwargs: Any) -> None:
        self.count_object()
        super().render_image(*args, **kwargs)

    def begin_figure(self, *args: Any, **kwargs: Any) -> None:
        self.count_object()
        super().begin_figure(*args, **kwargs)


class _BoundedInterpreter(PDFPageInterpreter):
    """Counts each content stream (the page's and every form's) against the page's budget
    before interpreting it; form XObjects get interpreters of this class too (``dup``)."""

    device: _BoundedAggregator

    def render_contents(
        self, resources: dict[object, object], streams: Sequence[object], ctm: Any = None
    ) -> None:
        for stream in list_value(streams):
            value = stream_value(stream)
            self.device.take_content(value)
        if ctm is None:
            super().render_contents(resources, streams)
        else:
            super().render_contents(resources, streams, ctm=ctm)


def _decoded_size(stream: PDFStream, cap: int) -> int:
    """A content stream's decoded size, or a number over ``cap`` once it is over: FlateDecode
    streams (what generators write, and what a bomb uses) are inflated at most ``cap + 1``
    bytes; other filters are decoded by pdfminer (their output is cached for the page)."""
    filters = stream.get_filters()
    names = [getattr(name, "name", name) for name, _ in filters]
    if names == ["FlateDecode"] and stream.rawdata is not None:
        inflater = zlib.decompressobj()
        try:
            return len(inflater.decompress(stream.rawdata, max(cap, 0) + 1))
        except zlib.error:
            return 0  # pdfminer reports (or tolerates) a broken stream itself
    return len(stream.get_data())


def _layout_text(layout: LTPage) -> str:
    boxes: list[str] = []
    for box in _text_boxes(layout):
        lines = (line_text(line) for line in box if isinstance(line, LTTextLine))
        text = "\n".join(line for line in lines if line)
        if text:
            boxes.append(text)
    return "\n\n".join(boxes)


def _text_boxes(container: LTContainer[LTComponent]) -> Iterator[LTTextBox]:
    for item in container:
        if isinstance(item, LTTextBox):
            yield item
        elif isinstance(item, LTContainer):
            yield from _text_boxes(item)


def line_text(line: LTTextLine) -> str:
    """One line's words from its glyphs' positions (pdfminer's own inserted spaces ignored)."""
    chars = [c for c in line if isinstance(c, LTChar)]
    if not chars:
        return " ".join(line.get_text().split())
    vertical = isinstance(line, LTTextLineVertical)

    def gap(a: LTChar, b: LTChar) -> float:
        return (a.y0 - b.y1) if vertical else (b.x0 - a.x1)

    pairs = list(itertools.pairwise(chars))
    letter_gaps = [
        gap(a, b) for a, b in pairs if not a.get_text().isspace() and not b.get_text().isspace()
    ]
    typical = max(0.0, statistics.median(letter_gaps)) if letter_gaps else 0.0
    out = [chars[0].get_text()]
    for a, b in pairs:
        size = max(a.size, b.size, 1.0)
        if gap(a, b) > typical + WORD_GAP_EM * size:
            out.append(" ")
        out.append(b.get_text())
    return " ".join("".join(out).split())


def _declared_pages(document: PDFDocument) -> int:
    pages = resolve1(document.catalog.get("Pages"))
    count = resolve1(pages.get("Count")) if isinstance(pages, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else 0


def _title(document: PDFDocument) -> str:
    for info in document.info:
        value = resolve1(info.get("Title"))
        if isinstance(value, bytes):
            value = decode_text(value)
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())
    return ""
