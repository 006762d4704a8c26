"""The terminal chat: questions in, answers with sources out, ratings stored."""

from __future__ import annotations

import io
from collections.abc import Iterator

from rich.console import Console
from sqlmodel import Session, select

from feedback.models import Interaction, Rating
from supportbot.app import App
from supportbot.chat import run_chat
from tests.conftest import SAMPLE_KB


def _scripted(lines: list[str]):
    feed: Iterator[str] = iter(lines)

    def read(_prompt: str) -> str:
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    return read


def test_chat_answers_with_sources_and_stores_ratings(app: App, ws_name: str):
    app.knowledge.create_workspace(ws_name)
    app.knowledge.ingest_paths(ws_name, [SAMPLE_KB / "en", SAMPLE_KB / "ko"])
    screen = io.StringIO()
    console = Console(file=screen, width=200, force_terminal=False)

    run_chat(
        app,
        ws_name,
        console=console,
        read=_scripted(
            [
                "How long is the password reset link valid?",
                "+",
                "세금계산서는 언제 발행되나요?",
                "-",
                "Who won the football world cup in 2002?",
                "",
                "/quit",
            ]
        ),
    )

    output = screen.getvalue()
    assert "30 minutes" in output
    assert "password-and-sso.md" in output
    assert "매월 10일" in output and "결제-및-환불.md" in output
    assert "couldn't find" in output
    with Session(app.engine) as session:
        interactions = session.exec(select(Interaction).order_by(Interaction.id)).all()
        ratings = session.exec(select(Rating).order_by(Rating.interaction_id)).all()
    assert [i.question for i in interactions] == [
        "How long is the password reset link valid?",
        "세금계산서는 언제 발행되나요?",
        "Who won the football world cup in 2002?",
    ]
    assert all(i.platform == "terminal" and i.mode == "extractive" for i in interactions)
    assert interactions[0].retrieved and "chunk_id" in interactions[0].retrieved[0]
    assert [(r.interaction_id, r.value, r.source) for r in ratings] == [
        (interactions[0].id, 1, "terminal"),
        (interactions[1].id, -1, "terminal"),
    ]
    assert all(r.user_hash and len(r.user_hash) == 64 for r in ratings)  # hashed, not raw
