"""``supportbot feedback`` run as the installed console script, as an operator or a script
would: report, review, export, promote, and one-line errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feedback.evaluation import question_hash
from feedback.promote import VERIFIED_ORIGIN, question_key
from feedback.store import AnswerRecord, SqlFeedbackStore
from supportbot.database import make_engine
from tests.test_cli import Cli, assert_one_error_line, cli_env
from tests.test_gaps_cli import latest_run

QUESTION = "How long is the password reset link valid?"
ANSWER = "The reset link is valid for 30 minutes [1]."


def _plant(database: Path, workspace: str) -> dict[str, int]:
    """Answers and ratings written through the store into the CLI's database."""
    engine = make_engine(f"sqlite:///{database.resolve()}")
    store = SqlFeedbackStore(engine, user_hash_key=b"test-secret", clock=lambda: datetime.now(UTC))

    def record(question: str, answer: str, message: str, *, found: bool = True) -> int:
        chunk = {"chunk_id": "c-" + message, "doc_id": "password.md", "source": "password.md",
                 "title": "Passwords", "heading": "Reset", "url": None,
                 "text": "The reset link expires after 30 minutes.", "similarity": 0.9}  # fmt: skip
        source = {"n": 1, "doc_id": "password.md", "source": "password.md",
                  "title": "Passwords", "url": None}  # fmt: skip
        return store.record_answer(
            AnswerRecord(
                workspace=workspace, platform="slack", question=question,
                standalone_question=question, answer=answer, mode="llm", retrieved=[chunk],
                sources=[source] if found else [], found=found, channel_id="C1",
                thread_id=message, message_id=message, user_id="U0",
                prompt_messages=[
                    {"role": "system", "content": "Answer from the context."},
                    {"role": "user", "content": f"<context>\n[1] (Passwords)\n{chunk['text']}\n"
                                                f"</context>\n\nQuestion: {question}"},
                ],
            )
        )  # fmt: skip

    ids = {
        "liked": record(QUESTION, ANSWER, "m1"),
        "disliked": record("How long does the reset link stay valid?", "It never expires.", "m2"),
        "gap": record("Who won the world cup?", "I couldn't find that.", "m3", found=False),
    }
    store.rate(ids["liked"], user_id="U1", value=1, source="reaction")
    store.rate(ids["liked"], user_id="U2", value=1, source="button")
    store.rate(ids["disliked"], user_id="U1", value=-1, source="reaction")
    store.rate(ids["gap"], user_id="U3", value=-1, source="terminal")
    engine.dispose()
    return ids


@pytest.fixture
def cli(weaviate_data_dir: Path, tmp_path: Path) -> Cli:
    return Cli(cli_env(weaviate_data_dir, tmp_path / "supportbot.db"), tmp_path)


@pytest.mark.slow
def test_report_review_and_export_from_the_command_line(cli: Cli, tmp_path: Path, ws_name: str):
    cli.ok("workspace", "create", ws_name)
    ids = _plant(tmp_path / "supportbot.db", ws_name)

    report = cli.json("feedback", "report", "--workspace", ws_name, "--json", "--days", "7")
    assert (report["answers"], report["rated"], report["liked"], report["disliked"]) == (3, 3, 1, 2)
    assert report["like_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert report["knowledge_gaps"][0]["question"] == "Who won the world cup?"
    assert report["top_sources"][0]["source"] == "password.md"
    table = cli.ok("feedback", "report", "--workspace", ws_name).stdout
    assert "Feedback report" in table and "like rate 33%" in table and "Knowledge gaps" in table

    review = cli.json("feedback", "review", "--workspace", ws_name, "--json")["answers"]
    assert {r["interaction_id"] for r in review} == {ids["disliked"], ids["gap"]}
    assert all(r["retrieved"][0]["text"].startswith("The reset link") for r in review)
    shown = cli.ok("feedback", "review", "--workspace", ws_name).stdout
    assert "similarity 0.90" in shown and "hint:" in shown

    out = tmp_path / "kto"
    done = cli.ok("feedback", "export", "-w", ws_name, "--format", "kto", "--out", str(out))
    assert "wrote 3 kto rows" in done.stdout
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["workspace"] == ws_name and manifest["source"]["examples"] == 3
    assert sum(info["rows"] for info in manifest["files"].values()) == 3


@pytest.mark.slow
def test_promote_makes_a_cited_verified_answer(cli: Cli, tmp_path: Path, ws_name: str):
    cli.ok("workspace", "create", ws_name)
    ids = _plant(tmp_path / "supportbot.db", ws_name)

    refused = cli("feedback", "promote", str(ids["disliked"]))
    assert "not liked" in assert_one_error_line(refused)
    promoted = cli.ok("feedback", "promote", str(ids["liked"]))
    assert f"answer {ids['liked']} is now a verified answer in workspace {ws_name}" in (
        promoted.stdout
    )

    # The evaluation gate ran at once, as after a sync: the stored figure holds the question.
    run = latest_run(tmp_path / "supportbot.db", ws_name)
    assert run.trigger == "promote"
    assert run.changed_docs == [f"{VERIFIED_ORIGIN}:{question_key(QUESTION)}"]
    assert [r["key"] for r in run.results] == [question_hash(QUESTION)]

    answer = cli.json("ask", "--workspace", ws_name, "--json", QUESTION)
    assert answer["sources"][0]["title"] == "Verified answer"
    assert "30 minutes" in answer["answer"]
    replaced = cli.ok("feedback", "promote", str(ids["liked"]))
    assert f"replaces the verified answer from answer {ids['liked']}" in replaced.stdout


@pytest.mark.slow
def test_feedback_errors_are_one_line(cli: Cli, tmp_path: Path):
    line = assert_one_error_line(
        cli("feedback", "export", "--workspace", "nobody", "--format", "sft", "--out", "x")
    )
    assert "unknown workspace 'nobody'" in line
    assert "no answer with id 999" in assert_one_error_line(cli("feedback", "promote", "999"))
    assert "split ratios" in assert_one_error_line(
        cli("feedback", "export", "-w", "nobody", "-f", "sft", "-o", "x", "--split", "1/2")
    )
    assert "--format" in assert_one_error_line(
        cli("feedback", "export", "-w", "nobody", "-f", "csv", "-o", "x")
    )
    assert "unknown workspace" in assert_one_error_line(
        cli("feedback", "report", "--workspace", "nobody")
    )


TEAMMATE = "The link lasts 30 minutes; ask for a new one under Settings > Security > Reset."


def _plant_teammate_reply(database: Path, workspace: str) -> int:
    """A bot answer that the asker rephrased and a teammate then answered in the thread."""
    engine = make_engine(f"sqlite:///{database.resolve()}")
    store = SqlFeedbackStore(engine, user_hash_key=b"test-secret", clock=lambda: datetime.now(UTC))
    question = "Where do I reset my password?"
    interaction = store.record_answer(
        AnswerRecord(
            workspace=workspace, platform="slack", question=question,
            standalone_question=question, answer="Use the form on the website.", mode="llm",
            channel_id="C1", thread_id="m4", message_id="m4", user_id="U0",
        )
    )  # fmt: skip
    now = datetime.now(UTC)
    store.record_signal(interaction, workspace=workspace, kind="rephrase", weight=-0.5,
                        platform="slack", event_id="slack:T:C1:5", event_at=now)  # fmt: skip
    store.record_reference(interaction, workspace=workspace, text=TEAMMATE, agrees=False,
                           platform="slack", event_id="slack:T:C1:6", event_at=now,
                           author_id="U9")  # fmt: skip
    store.record_signal(interaction, workspace=workspace, kind="teammate_answer", weight=-1.0,
                        platform="slack", event_id="slack:T:C1:6", event_at=now)  # fmt: skip
    engine.dispose()
    return interaction


def _jsonl_rows(folder: Path) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for path in sorted(folder.glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


@pytest.mark.slow
def test_export_labels_implicit_and_all_from_the_command_line(
    cli: Cli, tmp_path: Path, ws_name: str
):
    cli.ok("workspace", "create", ws_name)
    _plant(tmp_path / "supportbot.db", ws_name)
    _plant_teammate_reply(tmp_path / "supportbot.db", ws_name)

    dpo = tmp_path / "dpo"
    done = cli.ok("feedback", "export", "-w", ws_name, "-f", "dpo", "-o", str(dpo),
                  "--labels", "implicit")  # fmt: skip
    assert "wrote 1 dpo rows" in done.stdout
    manifest = json.loads((dpo / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["labels"] == "implicit"
    assert manifest["rows_per_label_source"] == {"explicit": 0, "implicit": 1}
    [row] = _jsonl_rows(dpo)
    assert row["chosen"] == [{"role": "assistant", "content": TEAMMATE}]
    assert row["rejected"] == [{"role": "assistant", "content": "Use the form on the website."}]
    assert row["label_source"] == "implicit"
    assert row["signal_kinds"] == ["rephrase", "teammate_answer"]
    assert row["signal_weights"] == [-0.5, -1.0]

    kto = tmp_path / "kto"
    cli.ok("feedback", "export", "-w", ws_name, "-f", "kto", "-o", str(kto), "--labels", "all")
    manifest = json.loads((kto / "manifest.json").read_text(encoding="utf-8"))
    # Three rated answers keep their explicit label; the unrated one is labelled by its signals.
    assert manifest["rows_per_label_source"] == {"explicit": 3, "implicit": 1}
    rows = _jsonl_rows(kto)
    implicit = [r for r in rows if r["label_source"] == "implicit"]
    assert [(r["label"], r["signal_kinds"]) for r in implicit] == [
        (False, ["rephrase", "teammate_answer"])
    ]
    assert {r["label_source"] for r in rows} == {"explicit", "implicit"}
    assert all(r["signal_kinds"] == ["rating"] for r in rows if r["label_source"] == "explicit")

    default = tmp_path / "default"
    cli.ok("feedback", "export", "-w", ws_name, "-f", "kto", "-o", str(default))
    manifest = json.loads((default / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["rows_per_label_source"] == {"explicit": 3, "implicit": 0}
    assert "--labels" in assert_one_error_line(
        cli("feedback", "export", "-w", ws_name, "-f", "kto", "-o", "x", "--labels", "some")
    )
