"""An answer made from a workspace is never stored into another workspace of the same name.

A reply still being generated while its workspace is deleted, and created again under the same
name, used to be recorded into the NEW workspace: the record named the workspace only by name.
Now the caller passes the ``WorkspaceInfo`` it answered from and recording checks, in the
transaction that inserts the answer, that the name still belongs to that workspace (by its
never-reused tenant; integer ids can be reused on SQLite). Otherwise nothing is stored and the
store logs it at INFO.

Real App, real Weaviate and embedding model, on SQLite and PostgreSQL; the answer comes from
the real chain (extractive: no language model configured).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from bot.message import IncomingMessage
from bot.models import BotReply
from feedback.export import ExportOptions, export_dataset
from feedback.models import Interaction
from feedback.report import build_report
from feedback.store import AnswerRecord, answer_record
from retrieval.chain import Answer
from retrieval.errors import UnknownWorkspaceError
from retrieval.workspaces import IdentityKind, WorkspaceInfo
from supportbot.app import App
from tests.test_workspace_delete import NOW, app, database, identities, seed  # noqa: F401


def question(n: int) -> IncomingMessage:
    return IncomingMessage(
        platform="slack",
        delivery_id=f"Ev{n}",
        team_id="T-acme",
        channel_id="C1",
        message_id=f"1700000000.00{n}",
        user_id="U1",
        text="What is the refund approval code?",
        mentions_bot=True,
    )


def answer_from(app: App, workspace: WorkspaceInfo, message: IncomingMessage) -> Answer:  # noqa: F811
    return asyncio.run(app.conversations.answer(workspace, message.text, []))


def answers_in(app: App, name: str) -> int:  # noqa: F811
    with Session(app.engine) as session:
        return session.exec(
            select(func.count()).select_from(Interaction).where(Interaction.workspace == name)
        ).one()


def bot_replies(app: App) -> int:  # noqa: F811
    with Session(app.engine) as session:
        return session.exec(select(func.count()).select_from(BotReply)).one()


def test_an_answer_of_a_deleted_workspace_is_not_stored_in_its_successor(
    app: App,  # noqa: F811
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seed(app, "acme", "ZX-4417", tmp_path)
    message = question(1)
    old = app.conversations.workspace_for(message)  # as the bot resolves it
    assert old is not None and old.name == "acme"
    answer = answer_from(app, old, message)
    assert "ZX-4417" in answer.text  # the old customer's knowledge is in it

    app.knowledge.delete_workspace("acme")  # while the answer is on its way
    app.knowledge.create_workspace("acme", identities("acme"))
    new = app.registry.get("acme")
    assert new.tenant != old.tenant
    replies = bot_replies(app)

    with caplog.at_level(logging.INFO, logger="feedback.store"):
        stored = app.conversations.record_reply(
            message, old, answer, thread_id=message.message_id, reply_message_id="1700000000.9"
        )

    assert stored is None
    assert "answer in workspace 'acme' not recorded" in caplog.text
    assert answers_in(app, "acme") == 0
    assert bot_replies(app) == replies  # the reply is not remembered either
    known = {w.name for w in app.registry.list()}
    assert build_report(app.engine, "acme", now=NOW, known_workspaces=known).totals.answers == 0
    manifest = export_dataset(
        app.engine,
        "acme",
        tmp_path / "export",
        ExportOptions(format="sft"),
        embed=lambda texts: app.embedder.embed_queries(list(texts)),
        clock=lambda: NOW,
        known_workspaces=known,
    )
    assert manifest["source"]["answers"] == 0

    # The new workspace's own answers are stored as before.
    fresh = app.conversations.workspace_for(question(2))
    assert fresh is not None and fresh.tenant == new.tenant
    later = answer_from(app, fresh, question(2))
    stored = app.conversations.record_reply(
        question(2), fresh, later, thread_id="t2", reply_message_id="1700000000.8"
    )
    assert stored is not None and answers_in(app, "acme") == 1
    assert bot_replies(app) == replies + 1


def test_an_answer_of_a_deleted_workspace_leaves_no_leftover(app: App, tmp_path: Path) -> None:  # noqa: F811
    """Deleted and not (yet) created again: nothing stored, so nothing for a later create to
    inherit and nothing for ``delete`` of the name to find."""
    app.knowledge.create_workspace("acme", identities("acme"))
    old = app.registry.resolve(IdentityKind.DISCORD_GUILD, "G-acme")
    assert old is not None
    app.knowledge.delete_workspace("acme")

    record = AnswerRecord(
        workspace=old.name,
        tenant=old.tenant,
        platform="discord",
        question="late?",
        standalone_question="late?",
        answer="late",
        mode="extractive",
        message_id="late",
    )
    assert app.feedback.record_answer(record) is None
    assert answers_in(app, "acme") == 0
    with pytest.raises(UnknownWorkspaceError, match="nothing deleted"):
        app.knowledge.delete_workspace("acme")


def test_a_look_alike_or_neighbour_name_is_not_the_same_workspace(
    app: App,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The check is the exact name and the tenant together: another live workspace's tenant,
    or a record naming a neighbour with acme's tenant, stores nothing."""
    app.knowledge.create_workspace("acme")
    app.knowledge.create_workspace("acme2")
    acme, acme2 = app.registry.get("acme"), app.registry.get("acme2")

    def record(workspace: str, tenant: str) -> int | None:
        return app.feedback.record_answer(
            answer_record(
                Answer(text="a", sources=[], mode="extractive", standalone_question="q"),
                workspace=workspace,
                tenant=tenant,
                platform="terminal",
                question="q",
            )
        )

    assert record("acme", acme2.tenant) is None
    assert record("acme2", acme.tenant) is None
    assert answers_in(app, "acme") == 0 and answers_in(app, "acme2") == 0
    assert record("acme", acme.tenant) is not None
    assert answers_in(app, "acme") == 1 and answers_in(app, "acme2") == 0
