"""HTML main content, one extractor for `ingest` and web sources: the shared cases and variants.

Kinds: several ``<article>`` elements; a body wrapped in a ``<form>``; hidden elements,
consent banners, menus and footers; tables and headings as Markdown; Korean pages and legacy
encodings; pages built to break a parser (deep nesting, slow shapes, huge lines, size), each
refused in one line naming the page, with the next page still extracted. The ingest and web-sync
halves of the deep-nesting case are at the end (real store and model, and the real CLI).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from retrieval.chunking import split_markdown_sections
from retrieval.errors import BadDocumentError
from retrieval.formats.limits import FileLimits
from retrieval.html import MAX_DEPTH, decode_html, extract_main_text
from supportbot.app import App
from tests.conftest import REPO
from tests.test_cli import Cli, cli_env

CASES = REPO.parent / "shared" / "cases"


def extract(html: str, **limits: float) -> str:
    return extract_main_text(html, name="page.html", limits=FileLimits(**limits)).text  # type: ignore[arg-type]


def page(body: str, title: str = "Help") -> str:
    return f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>"


# --- several articles --------------------------------------------------------------------------


def test_several_articles_case_keeps_every_article_and_its_heading() -> None:
    html = (CASES / "html-several-articles" / "site" / "faq.html").read_text(encoding="utf-8")
    result = extract_main_text(html, name="faq.html")
    assert result.title == "Billing FAQ — Example Help"
    headings = [s.headings[-1] for s in split_markdown_sections(result.text) if s.headings]
    for question in (
        "Can I pay by invoice?",
        "When is my card charged?",
        "How do I get a VAT receipt?",
    ):
        assert f"## {question}" in result.text
        assert question in headings  # the chunker follows them
    for answer in ("bank transfer", "first day of each billing period", "VAT number there"):
        assert answer in result.text
    assert "Home" not in result.text and "Example Inc." not in result.text


def test_articles_inside_main_with_an_ad_between_and_korean_entries() -> None:
    text = extract(
        page(
            "<nav>Menu Pricing Blog</nav><main><h1>Release notes</h1>"
            "<article><h2>Version 2.1</h2><p>Adds passkeys and single sign-on.</p></article>"
            "<div class='ad'>Buy now</div>"
            "<article><h2>Version 2.0</h2><p>A new dashboard with charts.</p></article>"
            "<article><h2>버전 1.9</h2><p>한국어 지원이 추가되었습니다.</p></article>"
            "</main><footer>© Example</footer>"
        )
    )
    assert "# Release notes" in text
    for expected in ("## Version 2.1", "passkeys", "## Version 2.0", "dashboard", "## 버전 1.9"):
        assert expected in text
    assert "한국어 지원이 추가되었습니다." in text
    assert "Menu" not in text and "©" not in text


def test_articles_in_different_sections_are_all_kept_and_nested_ones_once() -> None:
    text = extract(
        page(
            "<div class='col'><article><h2>Refunds</h2><p>Refunds take five business days."
            "<article><p>A nested note: card refunds may take longer.</p></article></p>"
            "</article></div>"
            "<div class='col'><article><h2>Exchanges</h2><p>Exchanges are free within "
            "thirty days of delivery.</p></article></div>"
        )
    )
    assert "## Refunds" in text and "## Exchanges" in text
    assert "five business days" in text and "thirty days" in text
    assert text.count("card refunds may take longer") == 1


# --- a body wrapped in a form ---------------------------------------------------------------


def test_form_wrapped_page_case_is_found() -> None:
    html = (CASES / "html-form-wrapped-page" / "kb-article.html").read_text(encoding="utf-8")
    text = extract(html)
    assert text.startswith("# Resetting a locked account")
    assert "locked for 30 minutes" in text and "Admin console, Users, Unlock" in text
    assert "AbC123" not in text  # the view state


def test_form_wrapping_navigation_and_a_feedback_widget() -> None:
    text = extract(
        page(
            "<form id='aspnetForm' action='x.aspx'><input type='hidden' name='__VIEWSTATE' "
            "value='dDwtMTA4NzI'/><div class='nav'><ul><li><a href='/'>Home</a></li>"
            "<li><a href='/kb'>Knowledge base</a></li></ul></div>"
            "<div id='ctl00_content'><h1>비밀번호 재설정</h1><p>로그인 화면에서 비밀번호 찾기를 "
            "누르면 재설정 메일이 발송됩니다.</p><p>메일은 10분 동안 유효합니다.</p>"
            "<fieldset><label>Was this helpful?</label><button>Yes</button></fieldset></div>"
            "</form>"
        )
    )
    assert "# 비밀번호 재설정" in text and "10분 동안 유효합니다" in text
    assert "dDwtMTA4NzI" not in text and "helpful" not in text


def test_korean_form_page_with_a_table_and_legacy_encoding() -> None:
    html = page(
        "<form method='post'><h1>요금제</h1><p>요금제는 언제든 바꿀 수 있습니다.</p>"
        "<table><tr><th>요금제</th><th>월 요금</th></tr><tr><td>베이직</td><td>10,000원</td></tr>"
        "</table></form>",
        title="요금제 안내",
    ).replace("<head>", "<head><meta charset='euc-kr'>")
    data = html.encode("cp949")
    result = extract_main_text(decode_html(data), name="plans.html")
    assert result.title == "요금제 안내"
    assert "| 요금제 | 월 요금 |" in result.text and "| 베이직 | 10,000원 |" in result.text


# --- what a reader never sees ------------------------------------------------------------------


@pytest.mark.parametrize(
    "hidden",
    [
        "<div hidden><p>HIDDEN discount code for staff.</p></div>",
        "<div aria-hidden='true'><p>HIDDEN decorative text.</p></div>",
        "<div style='color:red; display : none'><p>HIDDEN promo SAVE50.</p></div>",
        "<p style='visibility:hidden'>HIDDEN placeholder text.</p>",
        "<template><p>HIDDEN template row.</p></template>",
        "<div id='cookie-banner'><p>HIDDEN We use cookies. Accept all?</p></div>",
        "<div class='consent-modal'><p>HIDDEN We value your privacy.</p></div>",
        "<div id='onetrust-banner-sdk'><p>HIDDEN Manage preferences.</p></div>",
        "<div role='navigation'><a href='/a'>HIDDEN A</a> <a href='/b'>B</a></div>",
    ],
)
def test_hidden_elements_and_banners_are_dropped(hidden: str) -> None:
    text = extract(
        page(
            f"<header><nav>Home | Pricing</nav></header>{hidden}<main><h1>Invoices</h1>"
            f"<p>Invoices are sent on the first of each month.</p>{hidden}</main>"
            "<aside>Related: newsletter</aside><footer>© 2026 Example Corp.</footer>"
        )
    )
    assert text == "# Invoices\n\nInvoices are sent on the first of each month."


def test_menus_footers_and_scripts_of_a_page_without_main_are_dropped() -> None:
    text = extract(
        "<html><head><title>Shipping</title><script>var TRACKER=1</script></head><body>"
        "<div class='top'><a href='/'>Home</a> <a href='/p'>Products</a></div>"
        "<div class='wrap'><h2>Delivery windows</h2><p>Orders ship within two business days."
        "</p><h3>Express</h3><p>Express orders arrive the next day in most regions.</p></div>"
        "<footer>© Example</footer></body></html>"
    )
    assert text == (
        "## Delivery windows\n\nOrders ship within two business days.\n\n"
        "### Express\n\nExpress orders arrive the next day in most regions."
    )


# --- structure: tables, headings, lists, code --------------------------------------------------


def test_tables_become_markdown_tables_with_short_cells_kept() -> None:
    text = extract(
        page(
            "<main><h1>Export formats</h1><table><thead><tr><th>Format</th><th>Plans</th></tr>"
            "</thead><tbody><tr><td>PDF</td><td>All</td></tr><tr><td>Email</td><td>Pro</td></tr>"
            "<tr><td>CSV</td><td>Print</td></tr></tbody></table></main>"
        )
    )
    assert text == (
        "# Export formats\n\n| Format | Plans |\n|---|---|\n| PDF | All |\n| Email | Pro |\n"
        "| CSV | Print |"
    )


def test_headings_lists_and_code_keep_their_markdown() -> None:
    text = extract(
        page(
            "<main><h1>API keys</h1><p>Create a key\n      from <b>Settings</b>.</p>"
            "<h2>Steps</h2><ol><li>Open Settings.</li><li>Choose <i>API</i>.</li></ol>"
            "<h3>Example</h3><pre>\n# not a heading\ncurl -H 'Authorization: key' x</pre></main>"
        )
    )
    assert text == (
        "# API keys\n\nCreate a key from **Settings**.\n\n## Steps\n\n1. Open Settings.\n"
        "2. Choose *API*.\n\n### Example\n\n```\n# not a heading\n"
        "curl -H 'Authorization: key' x\n```"
    )
    levels = [s.level for s in split_markdown_sections(text) if s.headings]
    assert levels[:3] == [1, 2, 3]


def test_decoding_follows_bom_header_and_meta() -> None:
    korean = "<p>환불은 14일 이내에 가능합니다.</p>"
    assert "환불" in decode_html(korean.encode("cp949"))  # no declaration: cp949 fallback
    assert "환불" in decode_html(korean.encode("euc-kr"), "EUC-KR")
    assert "환불" in decode_html(b"\xef\xbb\xbf" + korean.encode())
    meta = f"<meta http-equiv='Content-Type' content='text/html; charset=euc-kr'>{korean}"
    assert "환불" in decode_html(meta.encode("cp949"))
    assert decode_html("<p>café</p>".encode("latin-1"), "iso-8859-1") == "<p>café</p>"


# --- pages that break parsers ------------------------------------------------------------------


def _deep(levels: int, *, closed: bool = True) -> str:
    return (
        "<html><body><p>Intro text of the page.</p>"
        + "<div>" * levels
        + "deep text"
        + ("</div>" * levels if closed else "")
        + "</body></html>"
    )


@pytest.mark.parametrize(
    "html",
    [
        pytest.param(
            (CASES / "security" / "deep-html" / "b-deep.html").read_text(encoding="utf-8"),
            id="case-1000",
        ),
        pytest.param(_deep(5_000), id="5000"),
        pytest.param(_deep(100_000), id="100000"),
        pytest.param(_deep(50_000, closed=False), id="unclosed"),
        pytest.param(
            "<html><body>" + "<ul><li>" * 400 + "x" + "</li></ul>" * 400 + "</body></html>",
            id="lists-400",
        ),
    ],
)
def test_deep_nesting_is_refused_in_one_line_naming_the_page(html: str) -> None:
    started = time.monotonic()
    with pytest.raises(BadDocumentError) as raised:
        extract_main_text(html, name="docs/deep.html")
    message = str(raised.value)
    assert message.startswith("docs/deep.html: ") and "\n" not in message
    assert f"nested over {MAX_DEPTH} levels" in message
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("where", ["paragraph", "attribute"])
def test_a_huge_flat_node_is_refused_for_what_it_is_not_as_nesting(where: str) -> None:
    """One text node or attribute past libxml2's 10 MB buffer: the reason names that limit."""
    huge = "x" * 11_000_000
    body = f"<p>{huge}</p>" if where == "paragraph" else f'<p title="{huge}">short</p>'
    with pytest.raises(BadDocumentError) as raised:
        extract_main_text(page(body), name="docs/flat.html")
    message = str(raised.value)
    assert message.startswith("docs/flat.html: ") and "\n" not in message
    assert "nested" not in message


def test_nesting_just_under_the_limit_is_read() -> None:
    html = "<html><body>" + "<div>" * 200 + "<p>Deep but fine text.</p>" + "</div>" * 200
    assert "Deep but fine text." in extract(html + "</body></html>")


def test_a_slow_page_is_stopped_at_the_time_limit_and_the_next_page_works() -> None:
    slow = page("<main><p>" + "<span>x</span>" * 80_000 + "</p></main>")
    started = time.monotonic()
    with pytest.raises(BadDocumentError, match=r"^slow.html: extraction took over the limit of"):
        extract_main_text(slow, name="slow.html", limits=FileLimits(max_seconds=1.0))
    assert time.monotonic() - started < 8
    assert extract(page("<main><p>Still working.</p></main>")) == "Still working."


@pytest.mark.parametrize(
    ("html", "limits", "expected"),
    [
        (page("<p>" + "word " * 100_000 + "</p>"), {}, "a line of 499,999 characters"),
        (page("<p>" + "y" * 3_000 + "</p>"), {"max_bytes": 2_000}, "over the limit of 2,000 bytes"),
        (
            page("".join(f"<p>Paragraph {n} of the long page.</p>" for n in range(500))),
            {"max_output_chars": 5_000},
            "over the limit of 5,000 characters",
        ),
        (
            page("<div>" + "<i>x</i>" * 210_000 + "</div>"),
            {"max_bytes": 10_000_000},
            "elements, over the limit of 200,000",
        ),
    ],
)
def test_size_and_output_limits_name_the_page(
    html: str, limits: dict[str, int], expected: str
) -> None:
    with pytest.raises(BadDocumentError) as raised:
        extract_main_text(html, name="big.html", limits=FileLimits(**limits))
    assert str(raised.value).startswith("big.html: ") and expected in str(raised.value)


# --- through ingest: the deep-html case folder, API and CLI -------------------------------------


def _deep_case_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "deep-html"
    shutil.copytree(CASES / "security" / "deep-html", folder)
    (folder / "d-deeper.htm").write_text(_deep(100_000), encoding="utf-8")
    (folder / "e-fine.html").write_text(
        page("<main><h1>Gift cards</h1><p>Gift cards never expire.</p></main>"), encoding="utf-8"
    )
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder


def test_ingest_skips_deep_pages_by_name_and_stores_the_good_files(
    app: App, ws_name: str, tmp_path: Path
) -> None:
    folder = _deep_case_folder(tmp_path)
    app.knowledge.create_workspace(ws_name)
    report = app.knowledge.ingest_paths(ws_name, [folder])
    assert report.documents == 4
    assert len(report.errors) == 2
    assert all("\n" not in e and "nested over" in e for e in report.errors)
    assert {"b-deep.html", "d-deeper.htm"} == {
        name for e in report.errors for name in ("b-deep.html", "d-deeper.htm") if name in e
    }
    assert (
        "Password links last 30 minutes." in app.knowledge.search(ws_name, "password", k=1)[0].text
    )


@pytest.mark.slow
def test_cli_ingest_of_the_deep_html_case(
    weaviate_data_dir: Path, tmp_path: Path, ws_name: str
) -> None:
    folder = _deep_case_folder(tmp_path)
    cli = Cli(cli_env(weaviate_data_dir, tmp_path / "cli.db"), tmp_path)
    cli.ok("workspace", "create", ws_name)
    result = cli("ingest", "--workspace", ws_name, str(folder))
    assert result.returncode == 1
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped:")]
    assert len(skipped) == 2 and all("nested over" in line for line in skipped)
    assert "4 documents" in result.stderr and "2 skipped" in " ".join(result.stderr.split())
    found = cli.json("search", "--workspace", ws_name, "--json", "invoices issued monthly")
    assert "Invoices are issued monthly." in found["results"][0]["text"]
