"""``supportbot feedback gaps`` run as the installed console script, as a reviewer would: the
queue drafted from stored "not found" questions and a teammate's reply, one draft shown,
approved with an entry written on standard input, one-line errors, and the next paraphrase
answered from the approved entry by ``supportbot ask``."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feedback.eval_store import recent_runs
from feedback.evaluation import question_hash
from feedback.learning_models import EvalRun
from feedback.store import AnswerRecord, SqlFeedbackStore
from supportbot.database import make_engine
from tests.conftest import SAMPLE_KB
from tests.test_cli import SUPPORTBOT, Cli, assert_one_error_line, cli_env

STUDENTS = [
    "Is there a student discount?",
    "Do you offer discounts for students?",
    "학생 할인이 있나요?",
    "학생은 할인 받을 수 있어요?",
]
WHATSAPP = "How do I connect WhatsApp?"
HUMAN = "Yes: students get 50% off the Team plan with a school email address; write to support."
EDITED = "Students get 50% off the Team plan: sign up with your school email, then write to us."
DRAFT_KEYS = {
    "id", "status", "asked", "question", "questions", "interaction_ids", "answer",
    "references", "drafted_by", "doc_id", "updated_at",
}  # fmt: skip


@pytest.fixture
def cli(weaviate_data_dir: Path, tmp_path: Path) -> Cli:
    return Cli(cli_env(weaviate_data_dir, tmp_path / "supportbot.db"), tmp_path)


def plant_gaps(database: Path, workspace: str) -> dict[str, list[int]]:
    """ "Not found" answers to four KO/EN wordings of one need and to one other question, a
    teammate's reply to the first and a mere "맞아요" to the last, in the CLI's database."""
    engine = make_engine(f"sqlite:///{database.resolve()}")
    store = SqlFeedbackStore(engine, user_hash_key=b"test-secret", clock=lambda: datetime.now(UTC))

    def not_found(question: str, n: int) -> int:
        return store.record_answer(
            AnswerRecord(
                workspace=workspace, platform="slack", question=question,
                standalone_question=question, answer="I couldn't find that.",
                mode="extractive", found=False, channel_id="C1", thread_id=f"t{n}",
                message_id=f"m{n}", user_id="U1",
            )
        )  # fmt: skip

    students = [not_found(q, n) for n, q in enumerate(STUDENTS)]
    other = not_found(WHATSAPP, 9)
    now = datetime.now(UTC)
    store.record_reference(
        students[0], workspace=workspace, text=HUMAN, agrees=False, platform="slack",
        event_id="slack:T:C1:1", event_at=now, author_id="U9",
    )  # fmt: skip
    store.record_reference(
        students[3], workspace=workspace, text="맞아요", agrees=True, platform="slack",
        event_id="slack:T:C1:2", event_at=now, author_id="U9",
    )  # fmt: skip
    engine.dispose()
    return {"students": students, "other": [other]}


def latest_run(database: Path, workspace: str) -> EvalRun:
    """The newest stored evaluation figure of ``workspace`` in the CLI's database."""
    engine = make_engine(f"sqlite:///{database.resolve()}")
    try:
        return recent_runs(engine, workspace, limit=1)[0]
    finally:
        engine.dispose()


def with_stdin(cli: Cli, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``supportbot ARGS`` with ``text`` piped on standard input (not a terminal)."""
    return subprocess.run(
        [str(SUPPORTBOT), *args],
        env=cli.env, cwd=cli.cwd, input=text, capture_output=True, text=True,
        encoding="utf-8", timeout=300, check=False,
    )  # fmt: skip


def ingest_unrelated(cli: Cli, workspace: str) -> None:
    """Knowledge that does not answer the planted questions: they are real gaps."""
    cli.ok("workspace", "create", workspace)
    cli.ok(
        "ingest", "--workspace", workspace,
        str(SAMPLE_KB / "en" / "api-and-limits.md"), str(SAMPLE_KB / "ko" / "모바일-앱-알림.md"),
    )  # fmt: skip


@pytest.mark.slow
def test_gaps_listed_shown_approved_from_stdin_and_then_answered(
    cli: Cli, tmp_path: Path, ws_name: str
):
    ingest_unrelated(cli, ws_name)
    planted = plant_gaps(tmp_path / "supportbot.db", ws_name)
    before = cli.json("ask", "--workspace", ws_name, "--json", "Do students get a discount?")
    assert not any(s["title"] == "Verified answer" for s in before["sources"])

    listed = cli.json("feedback", "gaps", "--workspace", ws_name, "--json")
    assert listed["workspace"] == ws_name
    drafts = listed["drafts"]
    assert all(set(d) == DRAFT_KEYS for d in drafts)
    top = drafts[0]  # most asked first
    assert top["asked"] == 4 and sorted(top["interaction_ids"]) == sorted(planted["students"])
    assert set(top["questions"]) == set(STUDENTS)  # Korean and English in one cluster
    assert (top["status"], top["drafted_by"]) == ("pending", "quote")
    assert top["answer"] == f"> {HUMAN}" and top["references"] == [HUMAN]  # "맞아요" left out
    lone = next(d for d in drafts if d["interaction_ids"] == planted["other"])
    assert (lone["drafted_by"], lone["answer"]) == ("none", "")

    table = cli.ok("feedback", "gaps", "-w", ws_name).stdout
    assert "FAQ drafts" in table and str(top["id"]) in table and "quote" in table
    assert "feedback gaps show ID" in table

    shown = cli.json("feedback", "gaps", "show", str(top["id"]), "--json")
    assert shown["id"] == top["id"] and shown["references"] == [HUMAN]
    text = cli.ok("feedback", "gaps", "show", str(top["id"])).stdout
    assert f"draft {top['id']}" in text and "human answer" in text and HUMAN in text
    for question in STUDENTS:
        assert question in text
    assert "(none drafted" in cli.ok("feedback", "gaps", "show", str(lone["id"])).stdout

    # A draft with no answer cannot be published as it is; an empty edit leaves it pending.
    assert "has no answer" in assert_one_error_line(
        cli("feedback", "gaps", "approve", str(lone["id"]))
    )
    assert "no answer written" in assert_one_error_line(
        with_stdin(cli, "  \n", "feedback", "gaps", "approve", str(top["id"]), "--edit")
    )
    assert cli.json("feedback", "gaps", "show", str(top["id"]), "--json")["status"] == "pending"

    done = with_stdin(cli, EDITED + "\n", "feedback", "gaps", "approve", str(top["id"]), "--edit")
    assert done.returncode == 0, done.stderr
    assert f"FAQ draft {top['id']} is now a verified answer in workspace {ws_name}" in done.stdout
    approved = cli.json("feedback", "gaps", "show", str(top["id"]), "--json")
    assert approved["status"] == "approved" and approved["answer"] == EDITED
    assert approved["doc_id"]
    # The evaluation gate ran at once, as after a sync: the stored figure holds the entry's
    # wordings, each finding the entry first.
    run = latest_run(tmp_path / "supportbot.db", ws_name)
    assert (run.trigger, run.changed_docs) == ("gaps-approve", [approved["doc_id"]])
    ranks = {r["key"]: r["rank"] for r in run.results}
    assert {question_hash(q) for q in STUDENTS} <= set(ranks)
    assert all(ranks[question_hash(q)] == 1 for q in STUDENTS)
    assert run.hit_at_5 == 1.0

    # The next paraphrase, worded as none of the stored questions, is answered from the entry.
    for question in ("Do students get a discount?", "학생 할인 받을 수 있나요?"):
        answer = cli.json("ask", "--workspace", ws_name, "--json", question)
        assert any(s["title"] == "Verified answer" for s in answer["sources"]), question
        assert answer["sources"][0]["doc_id"] == approved["doc_id"], question
        assert "50%" in answer["answer"], question

    # The approved cluster leaves the queue; the other gap keeps its id.
    left = cli.json("feedback", "gaps", "--workspace", ws_name, "--json")["drafts"]
    assert [(d["id"], d["interaction_ids"]) for d in left] == [(lone["id"], planted["other"])]
    assert "already approved" in assert_one_error_line(
        cli("feedback", "gaps", "approve", str(top["id"]))
    )


@pytest.mark.slow
def test_gaps_errors_are_one_line(cli: Cli, ws_name: str):
    cli.ok("workspace", "create", ws_name)
    assert "no FAQ draft with id 4242" in assert_one_error_line(
        cli("feedback", "gaps", "show", "4242")
    )
    assert "no FAQ draft with id 4242" in assert_one_error_line(
        cli("feedback", "gaps", "approve", "4242")
    )
    assert "no FAQ draft with id 4242" in assert_one_error_line(
        with_stdin(cli, "an entry", "feedback", "gaps", "approve", "4242", "--edit")
    )
    assert "unknown workspace 'nobody'" in assert_one_error_line(
        cli("feedback", "gaps", "--workspace", "nobody")
    )
    assert "--workspace" in assert_one_error_line(cli("feedback", "gaps"))
    empty = cli.ok("feedback", "gaps", "--workspace", ws_name)
    assert f"no knowledge gaps to draft in workspace {ws_name}" in empty.stdout
    assert cli.json("feedback", "gaps", "-w", ws_name, "--json")["drafts"] == []
