"""The folder source reads every document format ``ingest`` reads, within the same limits.

Why: a folder source (and the watched folder of ``supportbot run``) is how a team keeps a
shared drive in sync; its Word, Excel, Hangul and PDF files must arrive as they do through
``ingest``, a decomposed (macOS) file name must not give a second id, and one bomb among the
files must be skipped in one line while the others go in.
"""

from __future__ import annotations

import shutil
import unicodedata
from pathlib import Path

from supportbot.app import App
from sync.connectors.folder import FolderConnector
from tests.conftest import REPO, SHARED_DATA
from tests.document_files import hwp_file, hwp_paragraph, hwpx_file, hwpx_paragraph, spaced_pdf

CASES = REPO.parent / "shared" / "cases"


def _add_folder(app: App, workspace: str, folder: Path) -> None:
    app.sync_sources.add(
        workspace, "drive", kind="folder",
        config=FolderConnector.validate_config({"path": str(folder)}),
        credentials=None, schedule=None, requests_per_second=100,
    )  # fmt: skip


async def test_folder_source_reads_every_format_and_skips_bombs(
    app: App, ws_name: str, tmp_path: Path
) -> None:
    folder = tmp_path / "drive"
    folder.mkdir()
    for name in ("test.docx", "test.xlsx"):
        shutil.copy(SHARED_DATA / "documents" / "office" / name, folder)
    shutil.copy(SHARED_DATA / "documents" / "hwpx" / "multipara.hwpx", folder)
    (folder / "요금.hwp").write_bytes(hwp_file(hwp_paragraph("베이직 요금제는 월 9,900원입니다.")))
    (folder / "계정.hwpx").write_bytes(hwpx_file([hwpx_paragraph("휴면 계정은 1년 뒤 생깁니다.")]))
    (folder / "세금.pdf").write_bytes(spaced_pdf(["세금계산서는 매월 10일에 발행됩니다."]))
    (folder / "faq.csv").write_text("질문,답변\n환불,14일\n", encoding="utf-8")
    nfd = unicodedata.normalize("NFD", "휴면계정-해제") + ".txt"
    (folder / nfd).write_text("본인 인증 후 해제됩니다.", encoding="utf-8")
    shutil.copy(CASES / "security" / "pdf-page-bomb" / "bomb_tree_90k.pdf", folder)
    app.knowledge.create_workspace(ws_name)
    _add_folder(app, ws_name, folder)

    run = await app.sync_engine.sync(ws_name, "drive")

    assert (run.status, run.documents, run.changed, run.errors) == ("ok", 9, 8, 1)
    assert run.error is not None and "bomb_tree_90k.pdf" in run.error
    assert "limit of 2,000 pages" in run.error
    search = app.knowledge.search
    assert "9,900원" in search(ws_name, "베이직 요금제 월 요금", k=1)[0].text
    assert search(ws_name, "세금계산서는", k=1, mode="keyword")[0].title == "세금"
    assert "| 환불 | 14일 |" in search(ws_name, "환불 14일", k=1, mode="keyword")[0].text
    hits = search(ws_name, "휴면계정-해제", k=3, mode="keyword")
    hit = next(h for h in hits if h.doc_id.endswith(".txt"))  # found by its NFC title
    assert hit.title == "휴면계정-해제"
    assert unicodedata.is_normalized("NFC", hit.doc_id)

    again = await app.sync_engine.sync(ws_name, "drive")
    assert (again.changed, again.deleted, again.chunks_added) == (0, 0, 0)
