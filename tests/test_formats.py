"""The document formats companies keep knowledge in, read by :func:`load_file`.

Why: a help centre's knowledge sits in Word, PowerPoint, Excel, CSV, PDF and (in Korea) Hangul
files. Headings, lists and tables must come out as Markdown (the chunker follows them), Korean
letter-spaced PDFs must give whole words (or keyword search misses them), and a file built to
exhaust the reader (a page bomb, a zip bomb, one endless line) must be skipped in one line
naming the file and the limit, quickly. Real files from ``shared/data/documents`` and variants
the tests build with the formats' own libraries or per the formats' specs.
"""

from __future__ import annotations

import datetime
import html
import io
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import docx
import openpyxl
import pptx
import pytest
from fpdf import FPDF

from retrieval.errors import BadDocumentError
from retrieval.formats.limits import FileLimits
from retrieval.loaders import SUPPORTED_SUFFIXES, load_file
from tests.conftest import SHARED_DATA
from tests.document_files import (
    hwp_file,
    hwp_paragraph,
    hwp_table,
    hwpx_file,
    hwpx_paragraph,
    hwpx_table,
    spaced_pdf,
)

DOCUMENTS = SHARED_DATA / "documents"
CASES = SHARED_DATA.parent / "cases"


def _one_line(error: BadDocumentError, path: Path) -> str:
    message = str(error)
    assert path.name in message and "\n" not in message
    return message


# --- Office files made by their programs -------------------------------------------------------


def test_real_word_document_keeps_headings_and_tables() -> None:
    doc = load_file(DOCUMENTS / "office" / "test.docx")
    assert "# Abstract" in doc.text and "# Introduction" in doc.text
    rows = [line for line in doc.text.splitlines() if line.startswith("| ")]
    assert any("49e168b7-d2ae-407f-a055-2167576f39a1" in row for row in rows)  # in a table
    assert "data:image" not in doc.text and "![" not in doc.text


def test_real_powerpoint_keeps_slide_titles_tables_and_charts() -> None:
    doc = load_file(DOCUMENTS / "office" / "test.pptx")
    assert doc.title == "AutoGen: Enabling Next-Gen LLM Applications via Multi-Agent Conversation"
    assert "# A table to test parsing:" in doc.text
    assert "| 7 | 8 | 9 | 1b92870d-e3b5-4e65-8153-919f4ff45592 | 11 | 12 |" in doc.text
    assert "a3f6004b-6f4f-4ea8-bee3-3741f4dc385f" in doc.text  # the chart's title
    assert "This phrase of the caption is Human-written." in doc.text  # an image's alt text
    assert "<!--" not in doc.text and "Picture4.jpg" not in doc.text


def test_real_workbook_gives_every_sheet_as_a_table() -> None:
    doc = load_file(DOCUMENTS / "office" / "test.xlsx")
    assert "## Sheet1\n| Alpha | Beta | Gamma | Delta |\n| --- |" in doc.text
    assert "| 58 | 6ff4173b-42a5-4784-9b19-f49caff4d93d | 22 | 9 |" in doc.text
    assert "| 13 | 14 | 15 | affc7dad-52dc-4b98-9b5d-51e65d8a8ad0 |" in doc.text


def test_korean_word_document_with_heading_list_and_table(tmp_path: Path) -> None:
    document = docx.Document()
    document.core_properties.title = "환불 정책"
    document.add_heading("환불 정책", level=1)
    document.add_paragraph("결제 후 14일 안에 환불을 요청할 수 있습니다.")
    document.add_heading("환불 방법", level=2)
    document.add_paragraph("설정에서 결제 내역을 엽니다", style="List Bullet")
    document.add_paragraph("환불 요청을 누릅니다", style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    for cell, text in zip(table._cells, ["결제 수단", "환불 기간", "카드", "3영업일"], strict=True):
        cell.text = text
    path = tmp_path / "환불.docx"
    document.save(str(path))

    doc = load_file(path)

    assert doc.title == "환불 정책"
    assert "# 환불 정책" in doc.text and "## 환불 방법" in doc.text
    assert "* 설정에서 결제 내역을 엽니다\n* 환불 요청을 누릅니다" in doc.text
    # Word tables without a marked header row get an empty one (mammoth, via markitdown).
    assert "| --- | --- |\n| 결제 수단 | 환불 기간 |\n| 카드 | 3영업일 |" in doc.text


def test_korean_slides_and_notes(tmp_path: Path) -> None:
    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "휴면 계정 안내"
    slide.placeholders[1].text = "1년 동안 로그인하지 않으면 휴면 계정이 됩니다."
    slide.notes_slide.notes_text_frame.text = "발표자 메모: 해제는 본인 인증 후 즉시."
    path = tmp_path / "휴면.pptx"
    deck.save(str(path))

    doc = load_file(path)

    assert "# 휴면 계정 안내" in doc.text
    assert "1년 동안 로그인하지 않으면" in doc.text
    assert "해제는 본인 인증 후 즉시" in doc.text


def test_workbook_with_korean_sheets_and_empty_cells(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "요금제"
    sheet.append(["요금제", "월 요금", "비고"])
    sheet.append(["베이직", "9,900원", None])
    book.create_sheet("환불").append(["기간", "14일"])
    path = tmp_path / "요금.xlsx"
    book.save(str(path))

    doc = load_file(path)

    assert "## 요금제\n| 요금제 | 월 요금 | 비고 |" in doc.text
    assert "| 베이직 | 9,900원 |" in doc.text
    assert "## 환불" in doc.text


def test_workbook_as_people_lay_it_out_gives_clean_tables(tmp_path: Path) -> None:
    """A title row above the table, a blank row, a gap in a number column, a date, an unused
    column, an empty sheet: no NaN, Unnamed, 9900.0 or midnight times for search to match."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "요금"
    sheet["B1"] = "2024년 요금 안내"
    sheet.merge_cells("B1:D1")
    sheet.append([])
    sheet.append([None, "플랜", "월 요금", "비고"])
    sheet.append([None, "베이직", 9900, None])
    sheet.append([None, "프로", 19900.0, "연간 | 할인"])
    sheet.append([None, "마감일", datetime.datetime(2024, 3, 31), 0.15])
    sheet.append([None, "공지", "줄\n바꿈", True])
    book.create_sheet("빈 시트")
    book.create_sheet("Notes").append(["Only one note"])
    path = tmp_path / "plans.xlsx"
    book.save(str(path))

    text = load_file(path).text

    assert text.startswith("## 요금\n2024년 요금 안내\n\n| 플랜 | 월 요금 | 비고 |\n| --- |")
    assert "| 베이직 | 9900 |  |" in text
    assert "| 프로 | 19900 | 연간 \\| 할인 |" in text
    assert "| 마감일 | 2024-03-31 | 0.15 |" in text
    assert "| 공지 | 줄 바꿈 | TRUE |" in text
    assert "## Notes\nOnly one note" in text
    assert "빈 시트" not in text
    for noise in ("NaN", "Unnamed", "9900.0", "00:00:00", "None"):
        assert noise not in text


def test_a_workbook_declaring_a_million_empty_rows_is_read_quickly(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["질문", "답변"])
    sheet.append(["환불", "14일"])
    sheet.cell(row=1_048_576, column=2, value=None).number_format = "0%"
    sheet.cell(row=200_000, column=1, value="끝")
    path = tmp_path / "sparse.xlsx"
    book.save(str(path))

    started = time.monotonic()
    text = load_file(path).text

    assert "| 환불 | 14일 |" in text and "| 끝 |  |" in text
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    ("encoding", "prefix"), [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("cp949", b"")]
)
def test_csv_becomes_a_markdown_table_in_any_usual_encoding(
    tmp_path: Path, encoding: str, prefix: bytes
) -> None:
    path = tmp_path / "faq.csv"
    rows = '질문,답변\n"환불은 언제?","14일 안에, 카드로"\n요금제 | 변경,설정 > 결제\n'
    path.write_bytes(prefix + rows.encode(encoding))

    doc = load_file(path)

    assert doc.text.startswith("| 질문 | 답변 |\n| --- | --- |")
    assert "| 환불은 언제? | 14일 안에, 카드로 |" in doc.text
    assert "요금제 \\| 변경" in doc.text  # a pipe in a cell does not open a new column


@pytest.mark.parametrize(
    ("name", "content"),
    [
        # Excel where the decimal mark is a comma writes ";"-separated CSV.
        ("prices.csv", '플랜;가격\nBasic plan;"9,99 EUR"\nPro plan;19,99 EUR\n'),
        ("prices.tsv", "플랜\t가격\nBasic plan\t9,99 EUR\nPro plan\t19,99 EUR\n"),
        ("prices.csv", "플랜\t가격\nBasic plan\t9,99 EUR\nPro plan\t19,99 EUR\n"),
        ("prices.csv", "플랜|가격\nBasic plan|9,99 EUR\nPro plan|19,99 EUR\n"),
    ],
)
def test_csv_with_another_delimiter_keeps_its_columns(
    tmp_path: Path, name: str, content: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="cp949" if name.endswith(".tsv") else "utf-8")

    doc = load_file(path)

    assert doc.text.startswith("| 플랜 | 가격 |\n| --- | --- |")
    assert "| Basic plan | 9,99 EUR |" in doc.text
    assert "| Pro plan | 19,99 EUR |" in doc.text


def test_semicolons_inside_comma_separated_values_are_text(tmp_path: Path) -> None:
    path = tmp_path / "faq.csv"
    path.write_text("id,answer\n1,a card; or PayPal\n2,7 days; ask billing\n3,x; y; z\n")

    doc = load_file(path)

    assert "| 1 | a card; or PayPal |" in doc.text
    assert "| 3 | x; y; z |" in doc.text


@pytest.mark.parametrize("suffix", [".docx", ".pptx", ".xlsx", ".hwpx"])
def test_a_file_that_is_no_zip_package_is_named_in_one_line(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"contract{suffix}"
    path.write_bytes(b"PK\x03\x04 but then nothing")
    with pytest.raises(BadDocumentError) as caught:
        load_file(path)
    assert "not a ZIP package" in _one_line(caught.value, path)


def test_a_damaged_word_document_is_reported_not_raised_raw(tmp_path: Path) -> None:
    path = tmp_path / "broken.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("word/document.xml", "<w:document><unclosed")
    with pytest.raises(BadDocumentError) as caught:
        load_file(path)
    assert "not a readable Word document" in _one_line(caught.value, path)


# --- Hangul documents --------------------------------------------------------------------------


def test_real_hwpx_document_gives_its_paragraphs() -> None:
    doc = load_file(DOCUMENTS / "hwpx" / "multipara.hwpx")
    assert doc.text.startswith(
        "'어썸킴' 김하성(27·샌디에이고 파드리스)이 시원한 3점홈런을 폭발했다."
    )
    assert "\n\n김하성은 2일(이하 한국시간)" in doc.text
    assert doc.text.endswith("김하성의 3점홈런은 결승타로 남았다.")
    assert doc.title == "multipara"  # no title property: the file name


def test_hwpx_headings_lists_and_tables_become_markdown(tmp_path: Path) -> None:
    body = (
        hwpx_paragraph("계정 안내", style="2")
        + hwpx_paragraph("휴면 계정", shape="22")
        + hwpx_paragraph("1년 동안 로그인하지 않은 계정")
        + hwpx_paragraph("로그인", shape="20")
        + hwpx_paragraph("본인 인증", shape="21")
        + hwpx_table([["상태", "해제 방법"], ["휴면", "본인 인증 | 로그인"]])
    )
    path = tmp_path / "계정.hwpx"
    path.write_bytes(hwpx_file([body, hwpx_paragraph("둘째 구역")], title="계정 안내서"))

    doc = load_file(path)

    assert doc.title == "계정 안내서"
    assert doc.text == (
        "# 계정 안내\n\n### 휴면 계정\n\n1년 동안 로그인하지 않은 계정\n\n"
        "- 로그인\n  - 본인 인증\n\n"
        "| 상태 | 해제 방법 |\n| --- | --- |\n| 휴면 | 본인 인증 \\| 로그인 |\n\n둘째 구역"
    )


def test_hwp_binary_paragraphs_and_tables(tmp_path: Path) -> None:
    # No HWP file is in the shared data: this one is built per the HWP 5.0 format document.
    section = (
        hwp_paragraph("휴면 계정 해제 안내")
        + hwp_paragraph("로그인 후 본인 인증을 하면 해제됩니다.", tab_before=True)
        + hwp_table([["요금제", "월 요금"], ["베이직", "9,900원"]])
        + hwp_paragraph("문의는 고객센터로.")
    )
    for compressed in (True, False):
        path = tmp_path / f"안내-{compressed}.hwp"
        path.write_bytes(hwp_file(section, compressed=compressed))

        doc = load_file(path)

        assert doc.text == (
            "휴면 계정 해제 안내\n\n로그인 후 본인 인증을 하면 해제됩니다.\n\n"
            "| 요금제 | 월 요금 |\n| --- | --- |\n| 베이직 | 9,900원 |\n\n문의는 고객센터로."
        )


@pytest.mark.parametrize(
    ("flags", "expected"), [(0b10, "password-protected"), (0b100, "distribution document")]
)
def test_protected_hwp_documents_are_refused_in_one_line(
    tmp_path: Path, flags: int, expected: str
) -> None:
    path = tmp_path / "secret.hwp"
    path.write_bytes(hwp_file(hwp_paragraph("비밀"), flags=flags))
    with pytest.raises(BadDocumentError) as caught:
        load_file(path)
    assert expected in _one_line(caught.value, path)


def test_a_file_named_hwp_that_is_not_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fake.hwp"
    path.write_bytes(b"HWP Document File but plain bytes")
    with pytest.raises(BadDocumentError) as caught:
        load_file(path)
    assert "not an HWP 5.0 document" in _one_line(caught.value, path)


# --- PDF: letter-spaced Korean comes out as words -------------------------------------------


def test_letter_spaced_korean_pdf_case_gives_whole_words() -> None:
    doc = load_file(CASES / "pdf-spaced-hangul" / "세금계산서-안내.pdf")
    assert (
        doc.text == "세금계산서는 매월 10일에 발행됩니다. 환불은 영업일 기준 5일 이내에 처리됩니다."
    )
    assert doc.title == "Tax invoice guide"


@pytest.mark.parametrize(
    ("size", "tracking", "space"),
    [
        (11, 3, None),  # the case: space glyphs between words
        (9, 6, None),  # wider tracking than the font's own space
        (14, 1.5, None),
        (11, 3, 9.0),  # no space glyphs at all: words only by a wider gap
        (10, 0, 3.0),  # no letter spacing, words set by moving the pen
    ],
)
def test_letter_spaced_pdf_variants_give_whole_words(
    tmp_path: Path, size: float, tracking: float, space: float | None
) -> None:
    lines = ["휴면계정은 본인 인증 후 해제됩니다.", "Refunds take 5 business days."]
    path = tmp_path / "spaced.pdf"
    path.write_bytes(spaced_pdf(lines, size=size, tracking=tracking, space=space))

    assert load_file(path).text.split() == " ".join(lines).split()


def test_english_pdfs_from_a_real_generator_stay_correct(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.set_title("Refund policy")
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    pdf.multi_cell(0, 8, "Refunds are issued within 14 days of the first payment.")
    pdf.set_char_spacing(4)  # letter-spaced, as a heading style might be
    pdf.set_x(pdf.l_margin)
    pdf.cell(0, 8, "Contact billing support")
    path = tmp_path / "refunds.pdf"
    pdf.output(str(path))

    doc = load_file(path)

    assert doc.title == "Refund policy"
    assert "Refunds are issued within 14 days of the first payment." in doc.text
    assert "Contact billing support" in doc.text


@pytest.mark.parametrize("line_height", [5, 6, 7])  # 11 pt text at 1.2 to 1.7 line spacing
def test_a_pdf_paragraph_set_with_wide_line_spacing_stays_one_paragraph(
    tmp_path: Path, line_height: int
) -> None:
    sentence = "To reset your password, open the account settings and choose Reset password. "
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    pdf.multi_cell(0, line_height, sentence * 3)
    pdf.ln(12)
    pdf.multi_cell(0, line_height, "A second paragraph after a blank line.")
    path = tmp_path / "spacing.pdf"
    pdf.output(str(path))

    paragraphs = load_file(path).text.split("\n\n")

    assert " ".join(paragraphs[0].split()) == (sentence * 3).strip()
    assert paragraphs[-1] == "A second paragraph after a blank line."


@pytest.mark.parametrize("gutter", [10, 20])
def test_a_two_column_pdf_reads_one_column_after_the_other(tmp_path: Path, gutter: int) -> None:
    left = "The left column explains how invoices are issued to the billing contact. " * 4
    right = "The right column describes shipping times for international orders. " * 4
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    width = (pdf.epw - gutter) / 2
    top = pdf.get_y()
    pdf.multi_cell(width, 6, left, align="L")
    pdf.set_xy(pdf.l_margin + width + gutter, top)
    pdf.multi_cell(width, 6, right, align="L")
    path = tmp_path / "columns.pdf"
    pdf.output(str(path))

    text = " ".join(load_file(path).text.split())

    assert left.strip() in text
    assert right.strip() in text


# --- Limits per file ----------------------------------------------------------------------------


def test_page_bomb_pdf_is_refused_at_once_naming_the_limit() -> None:
    path = CASES / "security" / "pdf-page-bomb" / "bomb_tree_90k.pdf"
    started = time.monotonic()
    with pytest.raises(BadDocumentError) as caught:
        load_file(path)
    assert time.monotonic() - started < 5
    message = _one_line(caught.value, path)
    assert "90,000 pages" in message and "limit of 2,000 pages" in message


def _one_page_pdf(content: bytes, forms: list[bytes] | None = None) -> bytes:
    """A one-page PDF (Helvetica as F1) whose page draws ``content``, Flate-compressed as
    generators write it; ``forms[i]`` become form XObjects ``/X{i}`` (each may draw the
    ones before it), objects 6 onwards."""
    forms = forms or []
    names = " ".join(f"/X{i} {6 + i} 0 R" for i in range(len(forms)))
    resources = f"<< /Font << /F1 5 0 R >> /XObject << {names} >> >>".encode()

    def stream(data: bytes, head: bytes = b"") -> bytes:
        packed = zlib.compress(data, 9)
        return (
            b"<< " + head + b"/Length %d /Filter /FlateDecode >>\nstream\n" % len(packed)
            + packed + b"\nendstream"
        )  # fmt: skip

    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources "
        + resources + b" >>",
        stream(content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        *(
            stream(form, b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources "
                   + resources + b" ")
            for form in forms
        ),
    ]  # fmt: skip
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return out


_GLYPHS = b"BT /F1 1 Tf 10 700 Td " + b"(ab) Tj " * 300_000 + b"ET"
_PAGE_BOMBS = {
    # 600,000 glyphs from a 5 KB file: each a Python object, analysed together
    "glyphs": _one_page_pdf(_GLYPHS),
    # 900,000 line segments, no text at all
    "paths": _one_page_pdf(b"0 0 m 1 1 l S\n" * 300_000),
    # a few readable words, then 400 MB of spaces (inflated at once by pdfminer)
    "inflates": _one_page_pdf(b"BT /F1 12 Tf 10 700 Td (Refunds) Tj ET" + b" " * 400_000_000),
    # forms drawing forms: 20 x 20 x 20 x 20 = 160,000 draws of a short line of text
    "forms": _one_page_pdf(
        b"/X3 Do " * 20,
        [b"BT /F1 12 Tf 10 700 Td (Refund) Tj ET"]
        + [b"/X%d Do " % level * 20 for level in range(3)],
    ),
}


@pytest.mark.parametrize("kind", sorted(_PAGE_BOMBS))
def test_one_page_that_draws_too_much_is_refused_quickly(tmp_path: Path, kind: str) -> None:
    """pdfminer has no limit inside a page: a few kilobytes drawing millions of objects took
    87 s and 3.6 GB. The page's objects and decoded instructions are counted as it is read."""
    path = tmp_path / f"{kind}.pdf"
    path.write_bytes(_PAGE_BOMBS[kind])
    assert path.stat().st_size < 500_000
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(BadDocumentError) as caught:
            load_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 30
    assert peak < 400 * 1024 * 1024
    message = _one_line(caught.value, path)
    assert "page 1 " in message and "over the limit per page" in message


def test_a_busy_page_under_the_page_limits_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "busy.pdf"
    lines = b"".join(
        b"BT /F1 9 Tf 20 %d Td (Refunds are paid within 30 days of the request.) Tj ET\n"
        % (780 - 9 * n)
        for n in range(80)
    )
    path.write_bytes(_one_page_pdf(lines + b"0 0 m 1 1 l S\n" * 2_000))
    text = load_file(path, limits=FileLimits(max_page_objects=10_000)).text
    assert text.count("Refunds are paid within 30 days") == 80


def test_pdf_with_more_real_pages_than_the_limit_is_refused(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for n in range(12):
        pdf.add_page()
        pdf.cell(0, 10, f"Page {n}")
    path = tmp_path / "long.pdf"
    pdf.output(str(path))
    with pytest.raises(BadDocumentError) as caught:
        load_file(path, limits=FileLimits(max_pages=10))
    assert "limit of 10 pages" in _one_line(caught.value, path)


def test_time_limit_stops_a_slow_file(tmp_path: Path) -> None:
    path = tmp_path / "slow.pdf"
    path.write_bytes(spaced_pdf(["세금계산서"]))
    with pytest.raises(BadDocumentError) as caught:
        load_file(path, limits=FileLimits(max_seconds=0))
    assert "limit of 0 seconds" in _one_line(caught.value, path)


def _zip_bomb(path: Path, member: str, size: int) -> Path:
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open(member, "w", force_zip64=True) as handle,
    ):
        chunk = b"\0" * 1_000_000
        for _ in range(size // len(chunk)):
            handle.write(chunk)
    return path


@pytest.mark.parametrize(
    ("suffix", "member"),
    [(".docx", "word/document.xml"), (".xlsx", "xl/worksheets/sheet1.xml"),
     (".hwpx", "Contents/section0.xml")],
)  # fmt: skip
def test_zip_bombs_are_refused_before_inflating(tmp_path: Path, suffix: str, member: str) -> None:
    path = _zip_bomb(tmp_path / f"bomb{suffix}", member, 210_000_000)
    assert path.stat().st_size < 1_000_000
    started = time.monotonic()
    with pytest.raises(BadDocumentError) as caught:
        load_file(path)
    assert time.monotonic() - started < 5
    message = _one_line(caught.value, path)
    assert "unpacks to 210,000,000 bytes" in message and "limit of 200,000,000" in message


# --- XML entity expansion in ZIP packages (billion laughs, external entities) -------------


_LAUGHS = "".join(
    [f'<!ENTITY lol0 "{"lol" * 10}">']
    + [f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)]
)
_ENTITY_ATTACKS = {
    "laughs": (f"[{_LAUGHS}]", "&lol9;"),
    "file": ('[<!ENTITY x SYSTEM "file:///etc/passwd">]', "&x;"),
    "quadratic": (f'[<!ENTITY big "{"A" * 100_000}">]', "&big;" * 500),
    "parameter": ('[<!ENTITY % d SYSTEM "http://127.0.0.1:9/x.dtd"> %d;]', ""),
    "external-subset": ('SYSTEM "file:///etc/passwd"', ""),
}
_MARKER = "ENTITYMARKER"


def _office_package(suffix: str, text: str = _MARKER) -> tuple[bytes, str]:
    """A real package from the format's own library (``text`` in it) and its main part."""
    out = io.BytesIO()
    if suffix == ".docx":
        document = docx.Document()
        document.add_paragraph(text)
        document.save(out)
        return out.getvalue(), "word/document.xml"
    if suffix == ".pptx":
        deck = pptx.Presentation()
        slide = deck.slides.add_slide(deck.slide_layouts[5])
        slide.shapes.title.text = text
        deck.save(out)
        return out.getvalue(), "ppt/slides/slide1.xml"
    if suffix == ".xlsx":
        workbook = openpyxl.Workbook()
        workbook.active.append([text, "x"])
        workbook.save(out)
        return out.getvalue(), "xl/worksheets/sheet1.xml"
    return hwpx_file([hwpx_paragraph(html.escape(text))]), "Contents/section0.xml"


def _with_doctype(
    data: bytes, member: str, subset: str, reference: str, encoding: str = "utf-8"
) -> bytes:
    """``data`` with a ``<!DOCTYPE root subset>`` put into ``member``'s prolog and
    ``reference`` after the marker text, the part re-encoded in ``encoding``."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            raw = source.read(info.filename)
            if info.filename == member:
                text = raw.decode("utf-8")
                if text.startswith("<?xml"):
                    text = text[text.index("?>") + 2 :]
                root = text.lstrip().split(None, 1)[0].lstrip("<")
                text = text.replace(_MARKER, _MARKER + reference, 1)
                declaration = f'<?xml version="1.0" encoding="{encoding}"?>'
                raw = f"{declaration}<!DOCTYPE {root} {subset}>{text}".encode(encoding)
            target.writestr(info.filename, raw)
    return out.getvalue()


@pytest.mark.parametrize("attack", sorted(_ENTITY_ATTACKS))
@pytest.mark.parametrize("suffix", [".docx", ".pptx", ".xlsx", ".hwpx"])
def test_xml_entities_in_a_package_are_refused_before_any_parser(
    tmp_path: Path, suffix: str, attack: str
) -> None:
    """Whichever library reads the format (mammoth's minidom, python-pptx's and openpyxl's
    lxml, defusedxml) and whatever its settings: a part declaring a document type is refused
    in one line, at once, so no entity is expanded and no file or URL is read."""
    data, member = _office_package(suffix)
    path = tmp_path / f"entities{suffix}"
    path.write_bytes(_with_doctype(data, member, *_ENTITY_ATTACKS[attack]))
    started = time.monotonic()
    with pytest.raises(BadDocumentError) as caught:
        load_file(path)
    assert time.monotonic() - started < 5
    message = _one_line(caught.value, path)
    assert f"part {member} declares a document type (DTD)" in message
    assert "root:" not in message


@pytest.mark.parametrize(
    ("suffix", "member", "encoding"),
    [
        (".docx", "docProps/core.xml", "utf-8"),  # a part no converter reads for text
        (".pptx", "[Content_Types].xml", "utf-16"),  # UTF-16, as a package may hold
        (".xlsx", "xl/workbook.xml", "euc-kr"),  # an encoding expat lacks: found by its bytes
        (".hwpx", "Contents/header.xml", "utf-16-le"),
    ],
)
def test_a_doctype_in_any_part_and_encoding_is_refused(
    tmp_path: Path, suffix: str, member: str, encoding: str
) -> None:
    data, _ = _office_package(suffix)
    path = tmp_path / f"elsewhere{suffix}"
    path.write_bytes(_with_doctype(data, member, *_ENTITY_ATTACKS["file"], encoding=encoding))
    with pytest.raises(BadDocumentError) as caught:
        load_file(path)
    assert f"part {member} declares a document type" in _one_line(caught.value, path)


@pytest.mark.parametrize("suffix", [".docx", ".pptx", ".xlsx", ".hwpx"])
def test_packages_without_a_doctype_still_read(tmp_path: Path, suffix: str) -> None:
    """The check reads each part's prolog only and lets a real package through (the text
    ``<!DOCTYPE`` inside a document's body is just text)."""
    data, _ = _office_package(suffix, "Write <!DOCTYPE html> first")
    path = tmp_path / f"plain{suffix}"
    path.write_bytes(data)
    assert "<!DOCTYPE html> first" in load_file(path).text


def test_hwp_section_that_inflates_past_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.hwp"
    path.write_bytes(hwp_file(hwp_paragraph("가" * 200_000)))
    with pytest.raises(BadDocumentError) as caught:
        load_file(path, limits=FileLimits(max_unpacked_bytes=100_000))
    assert "over the limit of unpacked bytes" in _one_line(caught.value, path)


def test_a_huge_single_line_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "minified.txt"
    path.write_text("a" * 300_000, encoding="utf-8")
    with pytest.raises(BadDocumentError) as caught:
        load_file(path)
    assert "a line of 300,000 characters" in _one_line(caught.value, path)


def test_output_over_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "long.md"
    path.write_text("word\n" * 5_000, encoding="utf-8")
    with pytest.raises(BadDocumentError) as caught:
        load_file(path, limits=FileLimits(max_output_chars=10_000))
    assert "over the limit of 10,000 characters" in _one_line(caught.value, path)


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_a_table_whose_cells_are_over_the_output_limit_is_refused_before_it_is_built(
    tmp_path: Path, suffix: str
) -> None:
    """Every cell reaches the Markdown table, so a huge table is refused from its cells alone
    (building it first had cost 670 MB and 6 s for 20 MB of CSV)."""
    separator = "\t" if suffix == ".tsv" else ","
    path = tmp_path / f"rows{suffix}"
    rows = "".join(f"{i}{separator}item {i}{separator}{i * 3}\n" for i in range(100_000))
    path.write_text(f"id{separator}name{separator}value\n{rows}", encoding="utf-8")
    tracemalloc.start()
    started = time.monotonic()
    with pytest.raises(BadDocumentError) as caught:
        load_file(path, limits=FileLimits(max_output_chars=1_000_000))
    elapsed = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert "over the limit of 1,000,000 characters" in _one_line(caught.value, path)
    assert elapsed < 5 and peak < 40_000_000


def test_a_table_just_under_the_output_limit_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("id,name\n" + "".join(f"{i},item {i}\n" for i in range(200)))
    doc = load_file(path, limits=FileLimits(max_output_chars=20_000))
    assert "| 199 | item 199 |" in doc.text


def test_supported_suffixes_include_the_office_and_hangul_formats() -> None:
    assert {".docx", ".pptx", ".xlsx", ".csv", ".hwpx", ".hwp", ".pdf"} <= SUPPORTED_SUFFIXES


def test_in_memory_helpers_are_real_zip_packages() -> None:
    assert zipfile.is_zipfile(io.BytesIO(hwpx_file([hwpx_paragraph("x")])))
