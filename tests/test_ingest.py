"""Ingestion against the real store and embedder: idempotence, changes, deletions, bad files."""

from __future__ import annotations

import json
from pathlib import Path

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
