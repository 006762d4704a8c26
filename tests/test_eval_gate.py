"""The evaluation gate end to end, as an operator runs it: a folder source synced, a liked
answer promoted to a verified answer, ``supportbot eval``; then a sync that replaces the cited
document with unrelated text makes the stored figure drop and ``source status`` and
``feedback report`` warn, naming the document; fixing it brings the figure back. Ingest from
the command line runs the same gate."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feedback.store import AnswerRecord, SqlFeedbackStore
from supportbot.database import make_engine
from tests.conftest import SAMPLE_KB
from tests.test_cli import Cli, cli_env

PASSWORD_Q = "How long is the password reset link valid?"
PASSWORD_A = "The reset link is valid for 30 minutes and can be used once [1]."
REFUND_Q = "Can I get a full refund within 14 days of my first payment?"
REFUND_A = "Yes: within 14 days of your first payment you get a full refund [1]."
UNRELATED = (
    "# Sourdough starter\n\nFeed the starter with equal weights of rye flour and water every "
    "morning. Keep the jar at room temperature and discard half before each feeding. After a "
    "week it doubles within six hours and smells pleasantly sour.\n"
)


@pytest.fixture
def cli(weaviate_data_dir: Path, tmp_path: Path) -> Cli:
    return Cli(cli_env(weaviate_data_dir, tmp_path / "supportbot.db"), tmp_path)


def _liked(database: Path, workspace: str, question: str, answer: str, doc_id: str) -> int:
    """An answer citing ``doc_id``, liked by two users, written into the CLI's database."""
    engine = make_engine(f"sqlite:///{database.resolve()}")
    store = SqlFeedbackStore(engine, user_hash_key=b"test-secret", clock=lambda: datetime.now(UTC))
    source = {"n": 1, "doc_id": doc_id, "source": doc_id, "title": "t", "url": None}
    interaction = store.record_answer(
        AnswerRecord(
            workspace=workspace, platform="slack", question=question,
            standalone_question=question, answer=answer, mode="llm", sources=[source],
            channel_id="C1", message_id=question[:20], user_id="U0",
        )
    )  # fmt: skip
    store.rate(interaction, user_id="U1", value=1, source="reaction")
    store.rate(interaction, user_id="U2", value=1, source="reaction")
    engine.dispose()
    return interaction


def _doc_of(cli: Cli, workspace: str, query: str, name: str) -> str:
    results = cli.json("search", "--workspace", workspace, "--json", "--k", "20", query)["results"]
    return next(r["doc_id"] for r in results if name in r["doc_id"])


@pytest.mark.slow
def test_a_sync_that_breaks_a_cited_document_drops_the_figure_and_warns(
    cli: Cli, tmp_path: Path, ws_name: str
):
    folder = tmp_path / "kb"
    shutil.copytree(SAMPLE_KB / "en", folder / "en")
    shutil.copytree(SAMPLE_KB / "ko", folder / "ko")
    cli.ok("workspace", "create", ws_name)
    cli.ok("source", "add", "-w", ws_name, "-n", "docs", "-t", "folder", "--path", str(folder))
    cli.ok("source", "sync", "-w", ws_name, "-n", "docs")
    password_doc = _doc_of(cli, ws_name, PASSWORD_Q, "password-and-sso")
    refund_doc = _doc_of(cli, ws_name, REFUND_Q, "billing-and-refunds")
    database = tmp_path / "supportbot.db"
    promoted = _liked(database, ws_name, PASSWORD_Q, PASSWORD_A, password_doc)
    _liked(database, ws_name, REFUND_Q, REFUND_A, refund_doc)
    cli.ok("feedback", "promote", str(promoted))

    before = cli.json("eval", "--workspace", ws_name, "--json")
    assert before["questions"] == 2
    # The verified answer's own document comes first, the document it cited second.
    assert before["hit_at_5"] == 1.0 and before["mrr_at_10"] >= 0.75
    assert before["warning"] is None
    assert cli("eval", "--workspace", ws_name, "--fail-under", "0.9").returncode == 0

    (folder / "en" / "password-and-sso.md").write_text(UNRELATED, encoding="utf-8")
    cli.ok("source", "sync", "-w", ws_name, "-n", "docs")  # the gate runs after the sync

    status = cli("source", "status", "-w", ws_name)
    assert status.returncode == 0
    assert "answer quality dropped" in status.stdout and password_doc in status.stdout
    assert refund_doc not in status.stdout  # only the document that changed is named
    status_json = cli.json("source", "status", "-w", ws_name, "--json")
    assert status_json["quality_warning"]["changed_docs"] == [password_doc]
    assert status_json["quality_warning"]["hit_at_5_now"] == 0.5
    report = cli.ok("feedback", "report", "-w", ws_name).stdout
    assert "answer quality dropped" in report and password_doc in report
    report_json = cli.json("feedback", "report", "-w", ws_name, "--json")
    assert report_json["quality_warning"]["changed_docs"] == [password_doc]

    after = cli.json("eval", "--workspace", ws_name, "--json")
    assert after["hit_at_5"] == 0.5 and after["mrr_at_10"] < before["mrr_at_10"]
    missed = next(r for r in after["results"] if r["question"] == PASSWORD_Q)
    assert missed["rank"] is None or missed["rank"] > 5
    failed = cli("eval", "--workspace", ws_name, "--fail-under", "0.9")
    assert failed.returncode == 1 and "below --fail-under" in failed.stderr

    shutil.copy(SAMPLE_KB / "en" / "password-and-sso.md", folder / "en" / "password-and-sso.md")
    cli.ok("source", "sync", "-w", ws_name, "-n", "docs")
    assert "answer quality dropped" not in cli.ok("source", "status", "-w", ws_name).stdout
    assert cli.json("feedback", "report", "-w", ws_name, "--json")["quality_warning"] is None
    assert cli.json("eval", "--workspace", ws_name, "--json")["hit_at_5"] == 1.0


@pytest.mark.slow
def test_ingest_from_the_command_line_runs_the_gate(cli: Cli, tmp_path: Path, ws_name: str):
    folder = tmp_path / "kb"
    shutil.copytree(SAMPLE_KB / "en", folder)
    shutil.copytree(SAMPLE_KB / "ko", folder / "ko")
    cli.ok("workspace", "create", ws_name)
    cli.ok("ingest", "--workspace", ws_name, str(folder))
    refund_doc = _doc_of(cli, ws_name, REFUND_Q, "billing-and-refunds")
    _liked(tmp_path / "supportbot.db", ws_name, REFUND_Q, REFUND_A, refund_doc)
    assert cli.json("eval", "--workspace", ws_name, "--json")["hit_at_5"] == 1.0

    (folder / "billing-and-refunds.md").write_text(UNRELATED, encoding="utf-8")
    cli.ok("ingest", "--workspace", ws_name, str(folder))
    warning = cli.json("feedback", "report", "-w", ws_name, "--json")["quality_warning"]
    assert warning["changed_docs"] == [refund_doc]
    assert (warning["hit_at_5_before"], warning["hit_at_5_now"]) == (1.0, 0.0)

    shutil.copy(SAMPLE_KB / "en" / "billing-and-refunds.md", folder / "billing-and-refunds.md")
    cli.ok("ingest", "--workspace", ws_name, str(folder))
    assert cli.json("feedback", "report", "-w", ws_name, "--json")["quality_warning"] is None
