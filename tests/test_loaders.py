"""Tests for :mod:`retrieval.loaders`.

Why: the loaders decide what text the bot can ever answer from. A heading lost here is a
heading path the chunker cannot build, navigation text kept here pollutes every chunk of a
page, and a bad file must be reported in one readable line instead of crashing an ingest run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fpdf import FPDF

from retrieval.documents import SourceDocument
from retrieval.errors import BadDocumentError
from retrieval.loaders import SUPPORTED_SUFFIXES, iter_files, load_file, load_jsonl

MARKDOWN = """\
```bash
# not a title: a shell comment in a code block
pip install haneul-cli
```

# Billing and refunds

How billing works for Haneul Desk workspaces.

## Refunds

Refunds are issued within 14 days of the first payment.
"""

HTML = """\
<!DOCTYPE html>
<html>
<head>
  <title>Password &amp; SSO</title>
  <style>body { color: red; }</style>
  <script>var tracking = "SECRET_TRACKER";</script>
</head>
<body>
  <header><a href="/">Haneul Desk home</a></header>
  <nav><ul><li>Pricing</li><li>Blog</li></ul></nav>
  <main>
    <h1>Password and SSO</h1>
    <p>Reset your password from
       <b>Settings &rarr; Security</b>.<br>Admins can force a reset.</p>
    <h2>Single sign-on</h2>
    <p>SSO with SAML 2.0 is available on the Business plan.</p>
    <ul>
      <li>Okta</li>
      <li>Azure AD</li>
    </ul>
    <pre>
# a comment in code
saml enable --idp okta</pre>
    <form><label>Was this helpful?</label><button>Yes</button></form>
  </main>
  <aside>Related articles</aside>
  <footer>&copy; 2026 Haneul Desk</footer>
  <script>console.log("SECRET_TRACKER")</script>
</body>
</html>
"""


def _write_pdf(path: Path, pages: list[str], *, title: str | None = None) -> Path:
    pdf = FPDF()
    if title is not None:
        pdf.set_title(title)
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 10, text)
    pdf.output(str(path))
    return path


def _assert_one_line_naming(error: BadDocumentError, path: Path) -> None:
    message = str(error)
    assert path.name in message
    assert "\n" not in message


def test_markdown_keeps_headings_and_takes_the_first_h1_as_title(tmp_path: Path) -> None:
    path = tmp_path / "billing.md"
    path.write_text(MARKDOWN, encoding="utf-8")

    doc = load_file(path)

    assert doc.title == "Billing and refunds"
    assert doc.text == MARKDOWN
    assert "## Refunds" in doc.text
    assert doc.doc_id == doc.source == str(path.resolve())
    assert doc.url is None


def test_markdown_without_heading_is_titled_by_its_file_name(tmp_path: Path) -> None:
    path = tmp_path / "getting-started.markdown"
    path.write_text("Invite your team from Settings.\n", encoding="utf-8")

    assert load_file(path).title == "getting-started"


def test_plain_text_normalises_line_ends_bom_and_nul(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    # A NUL near the start means binary; one further in is a stray byte in a text file.
    padding = b"." * 9000
    path.write_bytes(b"\xef\xbb\xbfFirst line\r\n" + padding + b"\x00\rThird line\r\n")

    doc = load_file(path)

    assert doc.text == "First line\n" + padding.decode() + "\nThird line\n"
    assert doc.title == "notes"


def test_legacy_korean_text_in_cp949_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "공지.txt"
    path.write_bytes("환불은 영업일 기준 5일 이내에 처리됩니다.\n".encode("cp949"))

    assert load_file(path).text == "환불은 영업일 기준 5일 이내에 처리됩니다.\n"


def test_utf16_text_with_a_bom_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "windows.txt"
    path.write_bytes("Notepad saved this as Unicode.\r\n".encode("utf-16"))

    assert load_file(path).text == "Notepad saved this as Unicode.\n"


def test_decomposed_korean_is_normalised_to_whole_syllables(tmp_path: Path) -> None:
    path = tmp_path / "macos.md"
    # "환불" as macOS writes it in file names and some exports: jamo, not syllables.
    path.write_text("\u1112\u116a\u11ab\u1107\u116e\u11af 안내\n", encoding="utf-8")

    assert load_file(path).text == "환불 안내\n"


def test_html_becomes_markdown_without_scripts_navigation_or_forms(tmp_path: Path) -> None:
    path = tmp_path / "sso.html"
    path.write_text(HTML, encoding="utf-8")

    doc = load_file(path)

    assert doc.title == "Password & SSO"
    assert doc.text == (
        "# Password and SSO\n\n"
        "Reset your password from **Settings → Security**.\n\nAdmins can force a reset.\n\n"
        "## Single sign-on\n\n"
        "SSO with SAML 2.0 is available on the Business plan.\n\n"
        "- Okta\n"
        "- Azure AD\n\n"
        "```\n# a comment in code\nsaml enable --idp okta\n```"
    )
    for dropped in ("SECRET_TRACKER", "color: red", "Pricing", "home", "helpful", "2026"):
        assert dropped not in doc.text


def test_html_without_title_tag_uses_the_first_h1(tmp_path: Path) -> None:
    path = tmp_path / "page.htm"
    path.write_text(
        "<body><h1>Mobile  app\nalerts</h1><p>Turn alerts on.</p><table>"
        "<tr><th>Plan</th><th>Alerts</th></tr><tr><td>Free</td><td>Email</td></tr></table>",
        encoding="utf-8",
    )

    doc = load_file(path)

    assert doc.title == "Mobile app alerts"
    assert doc.text == (
        "# Mobile app alerts\n\nTurn alerts on.\n\n| Plan | Alerts |\n|---|---|\n| Free | Email |"
    )


def test_html_lists_keep_markers_when_items_hold_paragraphs(tmp_path: Path) -> None:
    path = tmp_path / "steps.html"
    path.write_text(
        "<title> </title><h1>Export</h1><ol><li><p>Open Settings.</p></li>"
        "<li>Choose a format<ul><li>CSV</li><li>JSON</li></ul></li></ol><h2></h2><p>Done.</p>",
        encoding="utf-8",
    )

    doc = load_file(path)

    assert doc.title == "Export"
    assert doc.text == (
        "# Export\n\n1. Open Settings.\n2. Choose a format\n  - CSV\n  - JSON\n\nDone."
    )


def test_pdf_pages_load_with_the_metadata_title(tmp_path: Path) -> None:
    path = _write_pdf(
        tmp_path / "guide.pdf",
        ["Refunds are issued within 14 days.", "Invoices are sent by email every month."],
        title="Refund Guide",
    )

    doc = load_file(path)

    assert doc.title == "Refund Guide"
    assert (
        doc.text == "Refunds are issued within 14 days.\n\nInvoices are sent by email every month."
    )
    assert doc.doc_id == str(path.resolve())


def test_pdf_without_metadata_title_is_titled_by_its_file_name(tmp_path: Path) -> None:
    path = _write_pdf(tmp_path / "export-data.pdf", ["Exports are ready within an hour."])

    assert load_file(path).title == "export-data"


def _binary(tmp_path: Path) -> Path:
    path = tmp_path / "logo.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    return path


def _not_utf8(tmp_path: Path) -> Path:
    path = tmp_path / "latin1.md"
    path.write_bytes("Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e".encode("latin-1"))
    return path


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "blank.md"
    path.write_text(" \n\n\t\n", encoding="utf-8")
    return path


def _only_chrome(tmp_path: Path) -> Path:
    path = tmp_path / "menu.html"
    path.write_text("<nav>Home</nav><script>x()</script><footer>(c)</footer>", encoding="utf-8")
    return path


def _unsupported(tmp_path: Path) -> Path:
    path = tmp_path / "contract.key"
    path.write_bytes(b"PK\x03\x04")
    return path


def _corrupt_pdf(tmp_path: Path) -> Path:
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.7\nthis is not really a PDF\n")
    return path


def _truncated_pdf(tmp_path: Path) -> Path:
    whole = _write_pdf(tmp_path / "whole.pdf", ["Refunds are issued within 14 days."])
    path = tmp_path / "truncated.pdf"
    path.write_bytes(whole.read_bytes()[:300])
    return path


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "nowhere.md"


def _folder(tmp_path: Path) -> Path:
    path = tmp_path / "docs.md"
    path.mkdir()
    return path


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (_binary, "binary"),
        (_not_utf8, "not UTF-8"),
        (_empty, "empty"),
        (_only_chrome, "no text"),
        (_unsupported, "unsupported file type '.key'"),
        (_corrupt_pdf, "not a readable PDF"),
        (_truncated_pdf, "not a readable PDF"),
        (_missing, "no such file"),
        (_folder, "folder"),
    ],
)
def test_bad_files_raise_one_line_naming_the_file(
    tmp_path: Path, make: Callable[[Path], Path], expected: str
) -> None:
    path = make(tmp_path)

    with pytest.raises(BadDocumentError) as caught:
        load_file(path)

    _assert_one_line_naming(caught.value, path)
    assert expected in str(caught.value)


def test_too_large_file_says_its_size_and_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "huge.md"
    path.write_text("# Huge\n\n" + "word " * 400, encoding="utf-8")

    with pytest.raises(BadDocumentError) as caught:
        load_file(path, max_bytes=1000)

    _assert_one_line_naming(caught.value, path)
    assert "2,008 bytes" in str(caught.value)
    assert "1,000 bytes" in str(caught.value)


def test_scanned_pdf_without_text_layer_says_no_extractable_text(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 120, 160)  # a drawing, as a scan would be an image: no text to extract
    path = tmp_path / "scan.pdf"
    pdf.output(str(path))

    with pytest.raises(BadDocumentError) as caught:
        load_file(path)

    _assert_one_line_naming(caught.value, path)
    assert "no extractable text" in str(caught.value)


def test_errors_keep_their_cause(tmp_path: Path) -> None:
    for path in (_corrupt_pdf(tmp_path), _missing(tmp_path), _not_utf8(tmp_path)):
        with pytest.raises(BadDocumentError) as caught:
            load_file(path)
        assert caught.value.__cause__ is not None


def test_unreadable_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.md"
    path.write_text("# Secret\n", encoding="utf-8")
    opened = Path.open

    def deny(self: Path, *args: object, **kwargs: object) -> object:
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return opened(self, *args, **kwargs)  # type: ignore[call-overload]

    # Tests may run as root, for whom chmod 000 does not deny anything.
    monkeypatch.setattr(Path, "open", deny)

    with pytest.raises(BadDocumentError) as caught:
        load_file(path)

    _assert_one_line_naming(caught.value, path)
    assert "permission denied" in str(caught.value)
    assert isinstance(caught.value.__cause__, PermissionError)


def test_supported_suffixes_are_the_documented_ones() -> None:
    expected = {".md", ".markdown", ".txt", ".text", ".rst", ".html", ".htm", ".pdf"}
    office = {".docx", ".pptx", ".xlsx", ".csv", ".tsv", ".hwpx", ".hwp"}
    assert expected | office == SUPPORTED_SUFFIXES


def test_iter_files_expands_folders_in_path_order_and_skips_hidden(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    for name in (
        "b.md",
        "a/z.txt",
        "a/b/c.html",
        "c.PDF",
        "image.png",
        ".hidden.md",
        ".git/config.md",
        "a/.cache/x.md",
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x", encoding="utf-8")
    explicit = tmp_path / "report.key"

    found = list(iter_files([root, explicit, tmp_path / "missing.md"]))

    assert found == [
        root / "a/b/c.html",
        root / "a/z.txt",
        root / "b.md",
        root / "c.PDF",
        explicit,
        tmp_path / "missing.md",
    ]


def test_iter_files_yields_explicit_hidden_files(tmp_path: Path) -> None:
    hidden = tmp_path / ".notes.md"
    hidden.write_text("x", encoding="utf-8")

    assert list(iter_files([hidden])) == [hidden]


def test_jsonl_loads_good_records_and_reports_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    lines = [
        json.dumps(
            {
                "id": "faq-1",
                "title": "Refunds",
                "text": "Refunds take 14 days.",
                "url": "https://help.example/refunds",
            }
        ),
        "",
        json.dumps({"id": 42, "text": "환불은 영업일 기준 5일 이내에 처리됩니다."}),
        "{not json",
        json.dumps({"title": "No id", "text": "x"}),
        json.dumps({"id": "empty", "text": "   "}),
        json.dumps({"id": "typed", "title": 7, "text": "x"}),
        json.dumps(["a", "list"]),
        json.dumps({"id": "faq-1", "text": "Same id again."}),
        json.dumps({"id": "last", "title": "", "text": "Still read after bad lines."}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    results = list(load_jsonl(path))

    docs = [r for r in results if isinstance(r, SourceDocument)]
    errors = [r for r in results if isinstance(r, BadDocumentError)]
    assert len(results) == len(docs) + len(errors) == 9
    assert docs == [
        SourceDocument(
            doc_id="faq-1",
            title="Refunds",
            text="Refunds take 14 days.",
            source="https://help.example/refunds",
            url="https://help.example/refunds",
        ),
        SourceDocument(
            doc_id="42",
            title="42",
            text="환불은 영업일 기준 5일 이내에 처리됩니다.",
            source="export.jsonl#42",
        ),
        SourceDocument(
            doc_id="last",
            title="last",
            text="Still read after bad lines.",
            source="export.jsonl#last",
        ),
    ]
    assert [str(e).split(": ")[0] for e in errors] == [f"{path}:{n}" for n in (4, 5, 6, 7, 8, 9)]
    for error in errors:
        assert "\n" not in str(error)
    assert "duplicate id 'faq-1' (first on line 1)" in str(errors[-1])


def test_jsonl_that_cannot_be_opened_raises(tmp_path: Path) -> None:
    path = tmp_path / "gone.jsonl"

    with pytest.raises(BadDocumentError) as caught:
        list(load_jsonl(path))

    _assert_one_line_naming(caught.value, path)
