"""Ingestion against the real store and embedder: idempotence, changes, deletions, bad files."""

from __future__ import annotations

import json
import shutil
import time
import unicodedata
import urllib.parse
import zipfile
from pathlib import Path

import pytest

from retrieval.store import SearchResult
from supportbot.app import App

EN_DOC = """# Password reset

Reset links are valid for 30 minutes. Request a new link from the sign-in page if yours
has expired.

## Two-factor authentication

Use any authenticator app. Ten recovery codes are issued when you turn it on.
"""

KO_DOC = """# 세금계산서

세금계산서는 매월 10일에 전월 결제분을 합산하여 발행됩니다. 사업자등록번호를 먼저
등록해 주세요.
"""


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "password.md").write_text(EN_DOC, encoding="utf-8")
    (folder / "세금계산서.md").write_text(KO_DOC, encoding="utf-8")
    return folder


def test_reingesting_the_same_files_stores_nothing_new(app: App, ws_name: str, tmp_path: Path):
    kb = app.knowledge
    kb.create_workspace(ws_name)
    folder = _folder(tmp_path)

    first = kb.ingest_paths(ws_name, [folder])
    count = kb.chunk_count(ws_name)
    second = kb.ingest_paths(ws_name, [folder])

    assert first.documents == 2 and first.chunks_added >= 2 and not first.errors
    assert second.unchanged == 2 and second.changed == 0
    assert second.chunks_added == 0 and second.chunks_removed == 0
    assert kb.chunk_count(ws_name) == count


def test_changed_file_replaces_its_old_chunks(app: App, ws_name: str, tmp_path: Path):
    kb = app.knowledge
    kb.create_workspace(ws_name)
    folder = _folder(tmp_path)
    kb.ingest_paths(ws_name, [folder])
    before = kb.chunk_count(ws_name)

    (folder / "password.md").write_text(EN_DOC.replace("30 minutes", "2 hours"), encoding="utf-8")
    report = kb.ingest_paths(ws_name, [folder])

    assert report.changed == 1 and report.unchanged == 1
    assert report.chunks_added >= 1 and report.chunks_removed >= 1
    texts = " ".join(r.text for r in kb.search(ws_name, "reset link valid", k=10))
    assert "2 hours" in texts and "30 minutes" not in texts
    assert kb.chunk_count(ws_name) == before


def test_prune_removes_files_that_are_gone_and_nothing_else(app: App, ws_name: str, tmp_path: Path):
    kb = app.knowledge
    kb.create_workspace(ws_name)
    folder = _folder(tmp_path)
    elsewhere = tmp_path / "other.md"
    elsewhere.write_text("# Other\n\nOffice hours are 9 to 6 KST.", encoding="utf-8")
    kb.ingest_paths(ws_name, [folder, elsewhere])
    kb.ingest_jsonl(ws_name, _jsonl(tmp_path, [{"id": "faq-1", "title": "FAQ", "text": "Hi."}]))

    (folder / "password.md").unlink()
    without_prune = kb.ingest_paths(ws_name, [folder])
    assert without_prune.pruned_documents == 0
    assert any("password" in r.source for r in kb.search(ws_name, "reset link", k=10))

    report = kb.ingest_paths(ws_name, [folder], prune=True)

    assert report.pruned_documents == 1
    sources = {r.source for r in kb.search(ws_name, "reset link office hours", k=20)}
    assert not any(s.endswith("password.md") for s in sources)
    assert str(elsewhere.resolve()) in sources  # outside the pruned folder: kept
    assert {r.doc_id for r in kb.search(ws_name, "Hi", k=20)} >= {"faq-1"}  # JSONL: kept


def test_bad_files_are_skipped_with_one_line_and_lose_nothing(
    app: App, ws_name: str, tmp_path: Path
):
    kb = app.knowledge
    kb.create_workspace(ws_name)
    folder = _folder(tmp_path)
    kb.ingest_paths(ws_name, [folder])
    before = kb.chunk_count(ws_name)

    (folder / "password.md").write_bytes(b"\x00\x01\x02binary\xff" * 100)  # now broken
    (folder / "empty.txt").write_text("   \n", encoding="utf-8")
    (folder / "new.md").write_text("# New\n\nShipping takes 3 days.", encoding="utf-8")
    report = kb.ingest_paths(ws_name, [folder, tmp_path / "missing.md"])

    assert len(report.errors) == 3
    assert all("\n" not in e for e in report.errors)
    assert any("password.md" in e for e in report.errors)
    assert any("empty.txt" in e for e in report.errors)
    assert any("missing.md" in e for e in report.errors)
    # The broken file's earlier chunks are still there, and the good new file went in.
    assert any("password" in r.source for r in kb.search(ws_name, "reset link 30 minutes", k=10))
    assert kb.chunk_count(ws_name) == before + 1


def _jsonl(tmp_path: Path, records: list[dict[str, str]], extra: str = "") -> Path:
    path = tmp_path / "docs.jsonl"
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def test_jsonl_records_keep_their_ids_and_bad_lines_are_reported(
    app: App, ws_name: str, tmp_path: Path
):
    kb = app.knowledge
    kb.create_workspace(ws_name)
    path = _jsonl(
        tmp_path,
        [
            {"id": "kb-1", "title": "환불", "text": "첫 결제 후 14일 이내에는 전액 환불됩니다."},
            {
                "id": "kb-2",
                "title": "Export",
                "text": "Exports are CSV or JSON.",
                "url": "https://help.example/export",
            },
        ],
        extra='{"id": "kb-3"}\nnot json\n',
    )

    report = kb.ingest_jsonl(ws_name, path)

    assert report.documents == 2 and len(report.errors) == 2
    korean = kb.search(ws_name, "환불은 언제까지 가능한가요?", k=1)[0]
    assert korean.doc_id == "kb-1"
    english = kb.search(ws_name, "export format", k=1)[0]
    assert english.doc_id == "kb-2" and english.source == "https://help.example/export"
    assert kb.ingest_jsonl(ws_name, path).chunks_added == 0


# --- Formats, NFC and per-file limits through a real ingest ------------------------------------

CASES = Path(__file__).resolve().parent.parent.parent / "shared" / "cases"
DOCUMENTS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "documents"
NFD_NAME = unicodedata.normalize("NFD", "휴면계정-해제")


def _keyword(app: App, ws_name: str, query: str) -> list[SearchResult]:
    return app.knowledge.search(ws_name, query, k=5, mode="keyword")


def test_nfd_file_name_case_is_stored_and_found_in_nfc(app: App, ws_name: str) -> None:
    kb = app.knowledge
    kb.create_workspace(ws_name)
    folder = CASES / "nfd-file-name" / "nfd"
    assert unicodedata.is_normalized("NFD", next(folder.iterdir()).name)

    report = kb.ingest_paths(ws_name, [folder])

    assert report.documents == 1 and not report.errors
    hit = _keyword(app, ws_name, "휴면계정-해제")[0]
    assert hit.title == "휴면계정-해제" and len(hit.title) == 7
    for text in (hit.title, hit.doc_id, hit.source, hit.text):
        assert unicodedata.is_normalized("NFC", text)
    assert kb.ingest_paths(ws_name, [folder]).unchanged == 1  # the same id again


@pytest.mark.parametrize(
    "name", [NFD_NAME + ".md", unicodedata.normalize("NFD", "세금계산서 발행") + ".txt"]
)
def test_decomposed_file_names_of_any_format_get_nfc_titles_and_ids(
    app: App, ws_name: str, tmp_path: Path, name: str
) -> None:
    kb = app.knowledge
    kb.create_workspace(ws_name)
    path = tmp_path / name
    path.write_text("휴면 계정은 본인 인증 후 바로 해제됩니다.", encoding="utf-8")

    kb.ingest_paths(ws_name, [tmp_path])

    title = unicodedata.normalize("NFC", Path(name).stem)
    hit = _keyword(app, ws_name, title.split()[0])[0]
    assert hit.title == title
    assert hit.doc_id == unicodedata.normalize("NFC", str(path.resolve()))
    # An NFC-named file keeps its id: re-ingesting stores nothing new.
    again = kb.ingest_paths(ws_name, [tmp_path], prune=True)
    assert (again.unchanged, again.chunks_added, again.pruned_documents) == (1, 0, 0)


def test_jsonl_fields_are_stored_in_nfc(app: App, ws_name: str, tmp_path: Path) -> None:
    kb = app.knowledge
    kb.create_workspace(ws_name)
    nfd = lambda text: unicodedata.normalize("NFD", text)  # noqa: E731
    record = {
        "id": nfd("계정-1"), "title": nfd("휴면계정 해제"), "text": nfd("본인 인증 후 해제됩니다."),
        "url": "https://help.example/" + nfd("계정"),
    }  # fmt: skip
    kb.ingest_jsonl(ws_name, _jsonl(tmp_path, [record]))

    hit = _keyword(app, ws_name, "휴면계정")[0]
    assert (hit.doc_id, hit.title) == ("계정-1", "휴면계정 해제")
    assert hit.url is not None and urllib.parse.unquote(hit.url) == "https://help.example/계정"
    assert "본인 인증" in hit.text


def test_letter_spaced_korean_pdf_is_found_by_keyword(app: App, ws_name: str) -> None:
    kb = app.knowledge
    kb.create_workspace(ws_name)
    kb.ingest_paths(ws_name, [CASES / "pdf-spaced-hangul"])

    hits = _keyword(app, ws_name, "세금계산서")
    assert hits and "세금계산서는 매월 10일에 발행됩니다." in hits[0].text


def test_office_and_hangul_files_are_ingested_and_searchable(
    app: App, ws_name: str, tmp_path: Path
) -> None:
    kb = app.knowledge
    kb.create_workspace(ws_name)

    report = kb.ingest_paths(ws_name, [DOCUMENTS / "office", DOCUMENTS / "hwpx"])

    assert not report.errors and report.documents == 6  # 4 documents and 2 licence texts
    assert _keyword(app, ws_name, "Alpha Gamma Delta")[0].source.endswith("test.xlsx")
    assert _keyword(app, ws_name, "Nested Shape")[0].source.endswith("test.pptx")
    hit = kb.search(ws_name, "김하성 3점홈런", k=1)[0]
    assert hit.source.endswith("multipara.hwpx")


def test_bombs_among_good_files_are_skipped_and_the_rest_goes_in(
    app: App, ws_name: str, tmp_path: Path
) -> None:
    kb = app.knowledge
    kb.create_workspace(ws_name)
    folder = _folder(tmp_path)
    shutil.copy(CASES / "security" / "pdf-page-bomb" / "bomb_tree_90k.pdf", folder)
    (folder / "minified.txt").write_text("x" * 300_000, encoding="utf-8")
    with (
        zipfile.ZipFile(folder / "bomb.docx", "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("word/document.xml", "w", force_zip64=True) as handle,
    ):
        for _ in range(210):
            handle.write(b"\0" * 1_000_000)

    started = time.monotonic()
    report = kb.ingest_paths(ws_name, [folder])

    assert time.monotonic() - started < 60
    assert report.documents == 2 and len(report.errors) == 3
    assert all("\n" not in error and "limit" in error for error in report.errors)
    bad = ("bomb_tree_90k.pdf", "minified.txt", "bomb.docx")
    assert set(bad) == {name for error in report.errors for name in bad if name in error}
    assert kb.search(ws_name, "세금계산서", k=1)[0].title == "세금계산서"
