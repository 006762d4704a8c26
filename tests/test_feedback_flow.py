"""From the terminal chat to fine-tuning data: a real chat session (real store, embedder and
Weaviate; a local OpenAI-compatible server as the model) is rated, then reported on, reviewed,
exported and promoted."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import datasets
import pytest
from rich.console import Console
from sqlmodel import Session, col, select

from bot.formatting import format_answer
from feedback.errors import FeedbackError
from feedback.export import ExportOptions, export_dataset
from feedback.models import Interaction, VerifiedAnswer
from feedback.promote import VERIFIED_TITLE, promote
from feedback.report import build_report
from feedback.review import disliked_answers
from retrieval.embeddings import LocalE5Embeddings
from supportbot.app import App
from supportbot.chat import run_chat
from supportbot.settings import Settings
from tests.conftest import SAMPLE_KB, make_settings
from tests.servers.openai_chat import OpenAIChatSimulator, default_responder, message_text

RESET = "How long is the password reset link valid?"
INVOICE = "세금계산서는 언제 발행되나요?"
RATE_LIMIT = "What is the API rate limit?"
WORLD_CUP = "Who won the football world cup in 2002?"
TWO_FA = "How do I turn on two-factor authentication?"


def _responder(messages: Sequence[Mapping[str, Any]]) -> str:
    """The default answers (a real one for the reset link); the condense step gets the question
    back as it was asked (the default responder does that)."""
    if message_text(messages[-1]).endswith(f"Question: {RESET}"):
        return "The reset link is valid for 30 minutes and works only once [1]."
    return default_responder(messages)


@pytest.fixture(scope="module")
def llm() -> Iterator[OpenAIChatSimulator]:
    with OpenAIChatSimulator(api_key="test-llm-key", responder=_responder) as server:
        yield server


@pytest.fixture
def llm_app(
    settings: Settings, llm: OpenAIChatSimulator, tmp_path: Path, embedder: LocalE5Embeddings
) -> Iterator[App]:
    configured = make_settings(
        settings.data_dir,
        tmp_path / "flow.db",
        llm_model="sim-model",
        llm_base_url=llm.base_url,
        llm_api_key="test-llm-key",
        llm_timeout_s=5,
    )
    with App(configured, local_embedder=embedder) as application:
        yield application


def _chat(application: App, workspace: str, lines: list[str]) -> str:
    feed = iter(lines)

    def read(_prompt: str) -> str:
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    screen = io.StringIO()
    run_chat(application, workspace, console=Console(file=screen, width=200), read=read)
    return screen.getvalue()


def _interactions(application: App) -> list[Interaction]:
    with Session(application.engine) as session:
        return list(session.exec(select(Interaction).order_by(col(Interaction.id))))


@pytest.mark.slow
def test_chat_ratings_become_report_review_exports_and_verified_answers(
    llm_app: App, llm: OpenAIChatSimulator, ws_name: str, tmp_path: Path
):
    llm_app.knowledge.create_workspace(ws_name)
    llm_app.knowledge.ingest_paths(ws_name, [SAMPLE_KB / "en", SAMPLE_KB / "ko"])
    sent_before = len(llm.chat_requests())

    _chat(llm_app, ws_name, [RESET, "+", INVOICE, "+", RATE_LIMIT, "-", WORLD_CUP, "-", TWO_FA, ""])

    interactions = _interactions(llm_app)
    assert [i.question for i in interactions] == [RESET, INVOICE, RATE_LIMIT, WORLD_CUP, TWO_FA]
    # Each answer keeps the exact messages its model call sent; "not found" asked no model.
    answer_calls = [
        [{"role": m["role"], "content": message_text(m)} for m in request["messages"]]
        for request in llm.chat_requests()[sent_before:]
        if "standalone question" not in message_text(request["messages"][0])
    ]
    found = [i for i in interactions if i.found]
    assert [i.prompt_messages for i in found] == answer_calls
    assert found[0].prompt_messages[0]["role"] == "system"
    assert "30 minutes" in found[0].prompt_messages[-1]["content"]
    gap = interactions[3]
    assert gap.found is False and gap.prompt_messages == [] and gap.retrieved
    assert all(i.sources for i in found) and gap.sources == []

    # --- the report shows the session's real figures ---------------------------------------
    known = {ws_name}
    report = build_report(
        llm_app.engine, ws_name, now=datetime.now(UTC), days=7, known_workspaces=known
    )
    totals = report.as_dict()
    assert {k: totals[k] for k in ("answers", "rated", "liked", "disliked", "not_found")} == {
        "answers": 5, "rated": 4, "liked": 2, "disliked": 2, "not_found": 1,
    }  # fmt: skip
    assert totals["rated_share"] == 0.8 and totals["like_rate"] == 0.5
    assert [d["answers"] for d in totals["by_day"]] == [5]
    assert [q.question for q in report.knowledge_gaps] == [WORLD_CUP]
    assert {q.question for q in report.most_disliked} == {RATE_LIMIT, WORLD_CUP}
    sources = {s.source.rsplit("/", 1)[-1]: s for s in report.top_sources}
    assert sources["password-and-sso.md"].cited >= 1 and sources["password-and-sso.md"].liked >= 1
    assert sources["api-and-limits.md"].disliked >= 1

    # --- review: each disliked answer with what was retrieved for it -----------------------
    review = disliked_answers(llm_app.engine, ws_name, min_relevance=0.81, known_workspaces=known)
    by_question = {item.answer.question: item for item in review}
    assert set(by_question) == {RATE_LIMIT, WORLD_CUP}
    assert by_question[WORLD_CUP].hint.startswith("retrieval: no passage was relevant")
    assert by_question[RATE_LIMIT].hint.startswith("relevant passages were retrieved")
    assert any("requests" in str(c["text"]) for c in by_question[RATE_LIMIT].answer.retrieved)

    # --- exports of the session load with datasets ----------------------------------------
    for format_name, rows in (("sft", 2), ("kto", 4)):
        out = tmp_path / format_name
        manifest = export_dataset(
            llm_app.engine, ws_name, out, ExportOptions(format=format_name),
            embed=llm_app.embedder.embed_queries, clock=lambda: datetime.now(UTC),
            known_workspaces=known,
        )  # fmt: skip
        files = {i["split"]: str(out / n) for n, i in manifest["files"].items()}
        loaded = datasets.load_dataset("json", data_files=files, cache_dir=str(tmp_path / "hf"))
        assert sum(len(split) for split in loaded.values()) == rows

    # --- promotion: a liked answer becomes a cited "verified answer" ----------------------
    with pytest.raises(FeedbackError, match="not liked"):
        promote(llm_app.engine, llm_app.knowledge, interactions[2].id or 0, clock=_now)
    with pytest.raises(FeedbackError, match="no answer with id 999999"):
        promote(llm_app.engine, llm_app.knowledge, 999999, clock=_now)
    first = promote(llm_app.engine, llm_app.knowledge, interactions[0].id or 0, clock=_now)
    assert not first.replaced

    again = llm_app.answer_chain(ws_name).answer(RESET)
    assert again.retrieved[0].title == VERIFIED_TITLE
    assert again.sources[0].title == VERIFIED_TITLE
    assert "[1] Verified answer" in format_answer(again, "slack")
    assert again.retrieved[0].text == "The reset link is valid for 30 minutes and works only once."

    # The question asked and liked again: promoting the new answer replaces the old one.
    _chat(llm_app, ws_name, [RESET, "+"])
    newest = _interactions(llm_app)[-1]
    second = promote(llm_app.engine, llm_app.knowledge, newest.id or 0, clock=_now)
    assert second.replaced and second.replaced_interaction_id == interactions[0].id
    assert second.doc_id == first.doc_id
    tenant = llm_app.registry.get(ws_name).tenant
    assert len(llm_app.store.chunk_ids_of(first.doc_id, tenant=tenant)) >= 1
    with Session(llm_app.engine) as session:
        rows = session.exec(select(VerifiedAnswer)).all()
    assert [(r.workspace, r.interaction_id) for r in rows] == [(ws_name, newest.id)]


def _now() -> datetime:
    return datetime.now(UTC)
