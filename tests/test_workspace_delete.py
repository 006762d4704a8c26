"""Deleting a workspace deletes what was its own, and nothing of any other workspace.

Shared case (security/README.md): "A re-created workspace inherits the deleted one's data".
Answers, ratings, verified answers and DM choices were keyed by the workspace *name* and
survived ``workspace delete``, so a new workspace of the same name showed the old customer's
answers in the report and the export, and ``promote`` put them into the new tenant.

Against the real Weaviate and the real embedding model, on SQLite and on PostgreSQL: workspace
``acme`` gets knowledge, answers, ratings, a signal, a verified answer, a DM choice, channel
settings, a bot reply, Slack installations and a source with credentials, sync runs and a
cursor; so do ``acme2`` and ``acm`` (names that share a prefix with it). ``acme`` is deleted
and created again: it is empty everywhere, and the other two keep every row.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.oauth.installation_store.models.installation import Installation
from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from bot.channels import ChannelSettings
from bot.decide import ChannelMode
from bot.models import BotReply, ChannelSetting, DirectMessageChoice
from bot.slack.installations import SqlInstallationStore
from bot.slack.models import SlackBotInstallation, SlackInstallation
from feedback.errors import FeedbackError
from feedback.export import ExportOptions, export_dataset
from feedback.models import Interaction, Rating, RatingEvent, Signal, VerifiedAnswer
from feedback.promote import promote
from feedback.report import build_report
from feedback.review import disliked_answers
from feedback.store import AnswerRecord
from retrieval.embeddings import LocalE5Embeddings
from retrieval.errors import UnknownWorkspaceError
from retrieval.workspaces import IdentityKind, PlatformIdentity, Workspace
from supportbot.app import App
from supportbot.workspace_purge import WorkspaceOwnedRows
from sync.models import SyncDocument, SyncRun, SyncSource
from sync.sources import CheckpointBatch, DocWrite
from tests.conftest import make_settings, reset_postgres

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
SUPPORTBOT = Path(sys.executable).with_name("supportbot")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The database URL: a SQLite file, or a real PostgreSQL as the ``engine`` fixture uses."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'supportbot.db'}"
        return
    url = os.environ.get("SUPPORTBOT_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail(
                "SUPPORTBOT_TEST_POSTGRES_URL is not set on CI: run the suite via ./dev test"
            )
        pytest.skip("no PostgreSQL (set SUPPORTBOT_TEST_POSTGRES_URL or run ./dev test)")
    reset_postgres(url)
    yield url
    reset_postgres(url)


@pytest.fixture
def app(
    database: str, weaviate_data_dir: Path, tmp_path: Path, embedder: LocalE5Embeddings
) -> Iterator[App]:
    settings = make_settings(weaviate_data_dir, tmp_path / "unused.db", database_url=database)
    with App(settings, local_embedder=embedder) as application:
        yield application
        for workspace in application.registry.list():  # tenants live in the shared Weaviate
            application.knowledge.delete_workspace(workspace.name)


# --- seeding -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    name: str
    code: str
    liked_id: int
    disliked_id: int
    source_id: int


def identities(name: str) -> list[tuple[IdentityKind, str]]:
    return [
        (IdentityKind.SLACK_TEAM, f"T-{name}"),
        (IdentityKind.SLACK_ENTERPRISE, f"E-{name}"),
        (IdentityKind.DISCORD_GUILD, f"G-{name}"),
    ]


def seed(app: App, name: str, code: str, tmp_path: Path) -> Seeded:
    """One workspace with a row of every kind it can own."""
    kb = app.knowledge
    kb.create_workspace(name, identities(name))
    doc = tmp_path / name / "refunds.md"
    doc.parent.mkdir(parents=True)
    doc.write_text(
        f"# Refund codes\n\nThe refund approval code of {name} is {code}. Quote it to support.\n",
        encoding="utf-8",
    )
    kb.ingest_paths(name, [doc])

    feedback = app.feedback
    ids = []
    for n, question in enumerate(["What is the refund code?", "How do refunds work?"]):
        ids.append(
            feedback.record_answer(
                AnswerRecord(
                    workspace=name,
                    platform="slack",
                    question=question,
                    standalone_question=question,
                    answer=f"The code is {code}.",
                    mode="llm",
                    user_id=f"U-{name}",
                    channel_id="C1",
                    thread_id=f"th{n}",
                    message_id=f"m{n}",
                )
            )
        )
    liked, disliked = ids
    feedback.rate(liked, user_id="u1", value=1, source="slack", event_id=f"{name}-e1")
    feedback.rate(disliked, user_id="u2", value=-1, source="slack", event_id=f"{name}-e2")
    feedback.record_signal(
        liked, workspace=name, kind="thanks", weight=1.0, platform="slack", event_id=f"{name}-s1"
    )
    promote(app.engine, app.knowledge, liked, clock=lambda: NOW)

    conversations = app.conversations
    conversations.choose_direct_message_workspace("discord", f"DM-{name}", name)
    conversations.remember_reply("slack", f"T-{name}", "C1", "th0", f"r0-{name}", liked)
    channels = ChannelSettings(app.engine)
    channels.set_mode("slack", f"T-{name}", "C1", ChannelMode.ALL_QUESTIONS)
    channels.set_mode("discord", f"G-{name}", "D1", ChannelMode.ALL_QUESTIONS)

    installations = SqlInstallationStore(app.engine, client_id="app", secret_key=b"secret")
    installations.save(
        Installation(team_id=f"T-{name}", bot_token=f"xoxb-{name}", user_id="UINSTALL")
    )
    installations.save(
        Installation(
            enterprise_id=f"E-{name}",
            is_enterprise_install=True,
            bot_token=f"xoxb-org-{name}",
            user_id="UINSTALL",
        )
    )

    sources = app.sync_sources
    source = sources.add(
        name,
        "help-center",
        kind="web",
        config={"urls": ["https://help.example.com/"]},
        credentials={"token": f"secret-{name}"},
        schedule=None,
        requests_per_second=1.0,
    )
    run_id = sources.start_run(source.id, full=True, trigger="test", worker="test")
    pass_number, _, _ = sources.begin_pass(source.id, full=True)
    sources.checkpoint(
        source.id,
        pass_number,
        CheckpointBatch(
            written=[
                DocWrite(
                    external_id="https://help.example.com/refunds",
                    doc_id=f"web:{name}:refunds",
                    version="1",
                    etag=None,
                    last_modified=None,
                    content_hash="abc",
                    updated_at=None,
                )
            ]
        ),
        cursor={"page": 2},
        save_cursor=True,
    )
    sources.finish_run(run_id, failed=False, error=None, counts={"documents": 1}, chunks=1)
    return Seeded(name, code, liked, disliked, source.id)


def owned(app: App, name: str) -> dict[str, int]:
    """Every row that is ``name``'s by any key: its name, its teams, its org, its source ids."""
    teams = [f"T-{name}", f"G-{name}"]
    with Session(app.engine) as session:

        def count(table: Any, *where: Any) -> int:
            return session.exec(select(func.count()).select_from(table).where(*where)).one()

        answers = select(col(Interaction.id)).where(col(Interaction.workspace) == name)
        workspace_ids = select(col(Workspace.id)).where(col(Workspace.name) == name)
        sources = select(col(SyncSource.id)).where(col(SyncSource.workspace_id).in_(workspace_ids))
        slack: list[Any] = [SlackInstallation, SlackBotInstallation]
        return {
            "answers": count(Interaction, col(Interaction.workspace) == name),
            "ratings": count(Rating, col(Rating.interaction_id).in_(answers)),
            "rating events": count(RatingEvent, col(RatingEvent.interaction_id).in_(answers)),
            "signals": count(Signal, col(Signal.workspace) == name),
            "verified answers": count(VerifiedAnswer, col(VerifiedAnswer.workspace) == name),
            "DM choices": count(DirectMessageChoice, col(DirectMessageChoice.workspace) == name),
            "bot replies": count(
                BotReply,
                or_(col(BotReply.team_id).in_(teams), col(BotReply.interaction_id).in_(answers)),
            ),
            "channel settings": count(ChannelSetting, col(ChannelSetting.team_id).in_(teams)),
            "Slack installations": sum(
                count(
                    t,
                    or_(col(t.team_id) == f"T-{name}", col(t.enterprise_id) == f"E-{name}"),
                )
                for t in slack
            ),
            "sources": count(SyncSource, col(SyncSource.workspace_id).in_(workspace_ids)),
            "sync runs": count(SyncRun, col(SyncRun.source_id).in_(sources)),
            "synced documents": count(SyncDocument, col(SyncDocument.source_id).in_(sources)),
            "platform identities": count(
                PlatformIdentity, col(PlatformIdentity.external_id).like(f"%-{name}")
            ),
        }


# --- the case ------------------------------------------------------------------------------------


def test_a_recreated_workspace_starts_empty_and_neighbours_keep_everything(
    app: App, tmp_path: Path
) -> None:
    acme = seed(app, "acme", "ZX-4417", tmp_path)
    neighbours = [seed(app, "acme2", "QW-9021", tmp_path), seed(app, "acm", "PL-3358", tmp_path)]
    before = {s.name: owned(app, s.name) for s in [acme, *neighbours]}
    for counts in before.values():  # every kind was seeded, or the test proves nothing
        assert all(counts.values()), counts
    old_tenant = app.registry.get("acme").tenant

    counts = app.knowledge.delete_workspace("acme")

    assert counts["workspace"] == 1
    assert counts["answers"] == 2 and counts["ratings"] == 2 and counts["signals"] == 1
    assert counts["verified answers"] == 1 and counts["sources"] == 1
    assert not app.store.tenant_exists(tenant=old_tenant)
    assert not any(owned(app, "acme").values()), owned(app, "acme")

    app.knowledge.create_workspace("acme", identities("acme"))

    # Search: the new tenant is empty (the verified answer went with the old one).
    assert app.knowledge.search("acme", f"refund approval code {acme.code}", k=5) == []
    assert app.knowledge.chunk_count("acme") == 0
    # Report, review, export: nothing of the old customer.
    known = {w.name for w in app.registry.list()}
    report = build_report(app.engine, "acme", now=NOW, known_workspaces=known)
    assert report.totals.answers == 0
    assert report.most_disliked == [] and report.top_sources == []
    assert disliked_answers(app.engine, "acme", min_relevance=0.0, known_workspaces=known) == []
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
    assert sum(manifest["counts"][s]["rows"] for s in manifest["counts"]) == 0
    # Promote: the old answers are gone, not moved into the new tenant.
    for old_id in (acme.liked_id, acme.disliked_id):
        with pytest.raises(FeedbackError, match=f"no answer with id {old_id}"):
            promote(app.engine, app.knowledge, old_id, force=True, clock=lambda: NOW)
    assert app.knowledge.chunk_count("acme") == 0
    # The bots: no DM choice, default channel modes, no remembered thread, no tokens.
    conversations = app.conversations
    assert conversations.direct_message_choice("discord", "DM-acme") is None
    assert conversations.channel_mode("slack", "T-acme", "C1") is ChannelMode.MENTION
    assert not conversations.bot_answered_thread("slack", "T-acme", "C1", "th0")
    installations = SqlInstallationStore(app.engine, client_id="app", secret_key=b"secret")
    assert installations.find_bot(enterprise_id=None, team_id="T-acme") is None
    assert app.sync_sources.list("acme") == []
    assert owned(app, "acme") == {k: 0 for k in before["acme"]} | {"platform identities": 3}

    # The neighbours: every row kept, their knowledge and feedback as before.
    for neighbour in neighbours:
        assert owned(app, neighbour.name) == before[neighbour.name], neighbour.name
        found = app.knowledge.search(neighbour.name, f"refund approval code {neighbour.code}", k=5)
        assert any(neighbour.code in r.text for r in found)
        report = build_report(app.engine, neighbour.name, now=NOW, known_workspaces=known)
        assert report.totals.answers == 2
        assert installations.find_bot(enterprise_id=None, team_id=f"T-{neighbour.name}")
        assert app.sync_sources.credentials(app.sync_sources.get(neighbour.name, "help-center"))


def test_an_interrupted_delete_finishes_when_run_again(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tenant goes first, then one transaction: a failure in it leaves the workspace
    registered with all its rows, and the next ``delete`` finishes the job."""
    acme = seed(app, "acme", "ZX-4417", tmp_path)
    before = owned(app, "acme")
    original = WorkspaceOwnedRows.delete

    def fail_half_way(self: WorkspaceOwnedRows, session: Session, keys: Any) -> dict[str, int]:
        original(self, session, keys)  # every delete issued, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(WorkspaceOwnedRows, "delete", fail_half_way)
    with pytest.raises(KeyboardInterrupt):
        app.knowledge.delete_workspace("acme")
    monkeypatch.setattr(WorkspaceOwnedRows, "delete", original)

    assert [w.name for w in app.registry.list()] == ["acme"]
    assert owned(app, "acme") == before  # rolled back: nothing half-deleted
    assert not app.store.tenant_exists(tenant=app.registry.get("acme").tenant)  # went first

    counts = app.knowledge.delete_workspace("acme")

    assert counts["workspace"] == 1 and counts["answers"] == 2
    assert app.registry.list() == []
    assert not any(owned(app, "acme").values())
    with pytest.raises(FeedbackError):
        promote(app.engine, app.knowledge, acme.liked_id, force=True, clock=lambda: NOW)


def test_rows_written_after_the_delete_never_reach_a_new_workspace(
    app: App, tmp_path: Path
) -> None:
    """A reply still being generated when its workspace was deleted records its answer
    afterwards, keyed by the old name: creating the name again removes such leftovers, and
    so does ``delete`` of a name no workspace has."""
    seed(app, "acme", "ZX-4417", tmp_path)
    app.knowledge.delete_workspace("acme")

    def late_answer() -> int:
        return app.feedback.record_answer(
            AnswerRecord(
                workspace="acme",
                platform="discord",
                question="late?",
                standalone_question="late?",
                answer="late",
                mode="llm",
                message_id="late",
            )
        )

    late_answer()
    app.knowledge.create_workspace("acme")
    known = {w.name for w in app.registry.list()}
    assert build_report(app.engine, "acme", now=NOW, known_workspaces=known).totals.answers == 0

    app.knowledge.delete_workspace("acme")
    late_answer()
    with pytest.raises(UnknownWorkspaceError):
        app.registry.get("acme")
    leftovers = app.knowledge.delete_workspace("acme")
    assert leftovers["workspace"] == 0 and leftovers["answers"] == 1
    assert sum(leftovers.values()) == 1, leftovers
    with pytest.raises(UnknownWorkspaceError, match="nothing deleted"):
        app.knowledge.delete_workspace("acme")


# --- the CLI, end to end -------------------------------------------------------------------------


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_cli_delete_then_create_shows_nothing_of_the_old_workspace(
    app: App, tmp_path: Path, weaviate_data_dir: Path
) -> None:
    """As an operator does it (SQLite only: the rows on PostgreSQL are checked above)."""
    acme = seed(app, "acme", "ZX-4417", tmp_path)
    seed(app, "acme2", "QW-9021", tmp_path)
    keep = owned(app, "acme2")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SUPPORTBOT_", "WEAVIATE_", "EMBEDDING_", "LLM_"))
        and k != "DATABASE_URL"
    } | {
        "SUPPORTBOT_DATA_DIR": str(weaviate_data_dir),
        "DATABASE_URL": str(app.engine.url),
        "SUPPORTBOT_SECRET_KEY": "test-secret",
        "PYTHONUTF8": "1",
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SUPPORTBOT), *args],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    deleted = cli("workspace", "delete", "acme", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert "deleted workspace acme (" in deleted.stdout and "2 answers" in deleted.stdout
    gone = cli("feedback", "report", "--workspace", "acme")
    assert gone.returncode == 1 and "unknown workspace 'acme'" in gone.stderr
    assert cli("workspace", "create", "acme").returncode == 0

    report = cli("feedback", "report", "--workspace", "acme", "--json")
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["answers"] == 0
    review = cli("feedback", "review", "--workspace", "acme", "--json")
    assert json.loads(review.stdout)["answers"] == []
    refused = cli("feedback", "promote", str(acme.liked_id), "--force")
    assert refused.returncode == 1 and f"no answer with id {acme.liked_id}" in refused.stderr
    assert owned(app, "acme2") == keep


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_delete_waits_for_a_running_sync_of_the_workspace(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync holds its workspace's lock; ``workspace delete`` takes it too, so no sync writes
    into a workspace while it is deleted (or into one created again under its name)."""
    from supportbot import cli

    app.knowledge.create_workspace("acme")
    monkeypatch.setattr(cli, "DELETE_LOCK_WAIT_S", 0.5)

    async def scenario() -> dict[str, int]:
        async with app.sync_locks.hold("acme", wait_s=0):  # a sync of acme is running
            with pytest.raises(cli.CliError, match=r"still running.*nothing deleted"):
                await cli._delete_workspace(app, "acme")
            assert [w.name for w in app.registry.list()] == ["acme"]
        return await cli._delete_workspace(app, "acme")

    assert asyncio.run(scenario())["workspace"] == 1
    assert app.registry.list() == []
