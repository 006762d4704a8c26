"""The data behind the console's review, gaps, sources, settings and exports pages, on SQLite
and PostgreSQL: each function stays inside its workspace, and an id of another workspace is
"not found", exactly like an id that does not exist."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from console.errors import InvalidInputError, NotFoundError
from console.queries.exports import ExportForm, build_export, zip_stream
from console.queries.gaps import approve_draft, draft, gap_draft, gaps_view
from console.queries.review import mark_reviewed, review_entry, review_queue, unmark_reviewed
from console.queries.settings import channel_modes, set_channel_mode, workspace_teams
from console.queries.sources import NewSource, add_source, run_info, source_view, sync_now
from feedback.store import AnswerRecord, SqlFeedbackStore
from retrieval.documents import SourceDocument
from retrieval.workspaces import IdentityKind, WorkspaceRegistry
from sync.addresses import AddressPolicy
from sync.credentials import CredentialCipher
from sync.sources import SourceRepository

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
A, B = "acme", "globex"


def _now() -> datetime:
    return NOW


class Writer:
    """Records the documents a publication writes (the knowledge base's write interface)."""

    def __init__(self) -> None:
        self.written: list[tuple[str, SourceDocument]] = []

    def upsert_documents(self, name: str, docs: Sequence[SourceDocument], *, origin: str) -> None:
        self.written += [(name, d) for d in docs]


@pytest.fixture
def seeded(engine: Engine) -> dict[str, int]:
    registry = WorkspaceRegistry(engine)
    registry.create(A, embedding_model="m", identities=[(IdentityKind.SLACK_TEAM, "TA")])
    registry.create(B, embedding_model="m", identities=[(IdentityKind.DISCORD_GUILD, "GB")])
    store = SqlFeedbackStore(engine, user_hash_key=b"k", clock=_now)
    ids: dict[str, int] = {}

    def answer(ws: str, key: str, question: str, *, found: bool = True) -> int:
        record = AnswerRecord(
            workspace=ws,
            platform="slack",
            question=question,
            standalone_question=question,
            answer=f"answer to {question}",
            mode="extractive",
            found=found,
            retrieved=[
                {
                    "doc_id": "d1",
                    "title": "Guide",
                    "url": "https://docs.example.com/guide",
                    "text": "mail me at kim@example.com",
                    "similarity": 0.9,
                }
            ],
        )
        interaction = store.record_answer(record)
        assert interaction is not None
        ids[key] = interaction
        return interaction

    store.rate(answer(A, "a_disliked", "How do refunds work?"), user_id="u1", value=-1, source="t")
    store.rate(answer(A, "a_liked", "Where is my invoice?"), user_id="u1", value=1, source="t")
    signalled = answer(A, "a_signal", "Can I change my plan?")
    store.record_signal(
        signalled, workspace=A, kind="disapproval", weight=-1.0, platform="slack", event_id="e1"
    )
    answer(A, "a_not_found", "Do you ship to Mars?", found=False)
    store.rate(answer(B, "b_disliked", "Globex secret plan?"), user_id="u2", value=-1, source="t")
    return ids


def test_review_queue_disliked_and_signalled_scrubbed_and_isolated(
    engine: Engine, seeded: dict[str, int]
) -> None:
    queue = review_queue(engine, A, min_relevance=0.8, known_workspaces={A, B})
    assert {e.id for e in queue} == {seeded["a_disliked"], seeded["a_signal"]}
    signalled = next(e for e in queue if e.id == seeded["a_signal"])
    assert signalled.signal_kinds == ["disapproval"] and signalled.signal_net == -1.0
    chunk = queue[0].item.answer.retrieved[0]
    assert chunk["url"] == "https://docs.example.com/guide"
    assert "kim@example.com" not in str(chunk["text"])  # the review is scrubbed, as the CLI's

    # Another workspace's answer, and an id that does not exist: the same "not found".
    for other in (seeded["b_disliked"], 999_999):
        with pytest.raises(NotFoundError):
            review_entry(engine, A, other, min_relevance=0.8, known_workspaces={A, B})
        with pytest.raises(NotFoundError):
            mark_reviewed(engine, A, other, reviewer="x", now=NOW)
    assert [e.id for e in review_queue(engine, B, min_relevance=0.8, known_workspaces={A, B})] == [
        seeded["b_disliked"]
    ]


def test_mark_reviewed_leaves_the_queue_and_comes_back(
    engine: Engine, seeded: dict[str, int]
) -> None:
    target = seeded["a_disliked"]
    mark_reviewed(engine, A, target, reviewer="lead@acme.test", now=NOW)
    mark_reviewed(engine, A, target, reviewer="other@acme.test", now=NOW)  # again: one mark
    queue = review_queue(engine, A, min_relevance=0.8, known_workspaces={A})
    assert target not in {e.id for e in queue}
    everything = review_queue(
        engine, A, min_relevance=0.8, known_workspaces={A}, include_reviewed=True
    )
    marked = next(e for e in everything if e.id == target)
    assert marked.reviewed and marked.reviewed_by == "other@acme.test"
    unmark_reviewed(engine, A, target)
    assert target in {
        e.id for e in review_queue(engine, A, min_relevance=0.8, known_workspaces={A})
    }


def test_publish_writes_the_reviewers_text_as_a_verified_answer(
    engine: Engine, seeded: dict[str, int]
) -> None:
    from console.queries.review import publish_answer
    from feedback.errors import FeedbackError

    writer = Writer()
    changed: list[tuple[str, list[str], str]] = []
    target = seeded["a_disliked"]
    with pytest.raises(NotFoundError):
        publish_answer(engine, writer, A, seeded["b_disliked"], "x", reviewer="r", now=NOW)
    with pytest.raises(FeedbackError, match="no answer written"):
        publish_answer(engine, writer, A, target, "  ", reviewer="r", now=NOW)
    promotion = publish_answer(
        engine,
        writer,
        A,
        target,
        "Refunds take 5 business days.",
        reviewer="r",
        now=NOW,
        after_change=lambda w, docs, trigger: changed.append((w, list(docs), trigger)),
    )
    assert writer.written[0][0] == A
    assert writer.written[0][1].text == "# How do refunds work?\n\nRefunds take 5 business days."
    assert changed == [(A, [promotion.doc_id], "console-review")]
    entry = review_entry(engine, A, target, min_relevance=0.8, known_workspaces={A})
    assert entry.reviewed and entry.verified_doc == promotion.doc_id


def test_gaps_grouped_drafted_and_approved_per_workspace(
    engine: Engine, seeded: dict[str, int]
) -> None:
    view = gaps_view(engine, A)
    assert view.pending == [] and {q.interaction_id for q in view.undrafted} == {
        seeded["a_disliked"],
        seeded["a_signal"],
        seeded["a_not_found"],
    }
    drafts = draft(
        engine,
        A,
        embed=lambda texts: [[1.0, float(i)] for i, _ in enumerate(texts)],
        references=lambda ids: {},
        condense=None,
        threshold=0.99,
        now=NOW,
    )
    assert drafts and all(d.workspace == A for d in drafts)
    assert gaps_view(engine, A).undrafted == []
    draft(
        engine,
        B,
        embed=lambda texts: [[1.0] for _ in texts],
        references=lambda ids: {},
        condense=None,
        threshold=0.9,
        now=NOW,
    )
    other = gaps_view(engine, B).pending[0]
    assert other.id is not None
    for wrong in (other.id, 999_999):
        with pytest.raises(NotFoundError):
            gap_draft(engine, A, wrong)
        with pytest.raises(NotFoundError):
            approve_draft(engine, Writer(), A, wrong, answer="x", now=NOW)
    first = drafts[0]
    assert first.id is not None
    with pytest.raises(InvalidInputError, match="has no answer"):
        approve_draft(engine, Writer(), A, first.id, answer=None, now=NOW)
    writer = Writer()
    done = approve_draft(engine, writer, A, first.id, answer="We do not ship to Mars.", now=NOW)
    assert done.status == "approved" and writer.written[0][0] == A
    assert [d.id for d in gaps_view(engine, A).approved] == [first.id]


class Queue:
    def __init__(self) -> None:
        self.queued: list[tuple[str, str, str]] = []

    async def enqueue(
        self, workspace: str, source: str, *, full: bool = False, trigger: str = "schedule"
    ) -> bool:
        if (workspace, source, trigger) in self.queued:
            return False
        self.queued.append((workspace, source, trigger))
        return True


async def test_sources_add_validate_sync_now_and_isolation(engine: Engine, tmp_path: Path) -> None:
    registry = WorkspaceRegistry(engine)
    registry.create(A, embedding_model="m")
    registry.create(B, embedding_model="m")
    repo = SourceRepository(engine, cipher=CredentialCipher(b"k" * 32), clock=_now)
    root = tmp_path / "allowed"
    (root / "docs").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (root / "link").symlink_to(tmp_path / "secret")  # a way out of the root, followed
    options = {
        "default_schedule": "manual",
        "requests_per_second": 2.0,
        "addresses": AddressPolicy.parse(""),
        "folder_roots": [root],
    }
    web = await add_source(
        repo,
        A,
        NewSource(name="docs-site", kind="web", urls=["https://docs.example.com/a#top", ""]),
        **options,  # type: ignore[arg-type]
    )
    assert web.config["urls"] == ["https://docs.example.com/a"] and web.schedule is None
    folder = await add_source(
        repo,
        A,
        NewSource(name="handbook", kind="folder", path=str(root / "docs"), schedule="1h"),
        **options,  # type: ignore[arg-type]
    )
    assert folder.schedule == "1h"
    refusals = [
        (NewSource(name="x", kind="web", urls=["ftp://docs.example.com/"]), "not an http"),
        (NewSource(name="x", kind="web", urls=["http://127.0.0.1:8080/"]), "non-public address"),
        (NewSource(name="x", kind="web", urls=["http://10.1.2.3/"]), "non-public address"),
        (NewSource(name="x", kind="web", sitemap="http://[::1]/sitemap.xml"), "non-public"),
        (NewSource(name="x", kind="web"), "needs --sitemap"),
        (NewSource(name="x", kind="folder", path=str(tmp_path / "secret")), "not under a folder"),
        (NewSource(name="x", kind="folder", path=f"{root}/../secret"), "not under a folder"),
        (NewSource(name="x", kind="folder", path=str(root / "link")), "not under a folder"),
        (NewSource(name="x", kind="folder", path=str(root / "missing")), "not a folder"),
        (NewSource(name="x", kind="slack"), "use web or folder"),
        (NewSource(name="bad name!", kind="web", urls=["https://e.com/"]), "invalid source name"),
        (NewSource(name="docs-site", kind="web", urls=["https://e.com/"]), "already exists"),
        (NewSource(name="x", kind="web", urls=["https://e.com/"], schedule="1s"), "too frequent"),
    ]
    for new, reason in refusals:
        with pytest.raises(InvalidInputError, match=reason):
            await add_source(repo, A, new, **options)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="CONSOLE_FOLDER_ROOTS"):
        await add_source(
            repo,
            A,
            NewSource(name="y", kind="folder", path=str(root / "docs")),
            **{**options, "folder_roots": []},  # type: ignore[arg-type]
        )
    # The address policy's opened hosts are honoured, as in the sync.
    opened = {**options, "addresses": AddressPolicy.parse("127.0.0.1:8080")}
    await add_source(
        repo,
        A,
        NewSource(name="local", kind="web", urls=["http://127.0.0.1:8080/"]),
        **opened,  # type: ignore[arg-type]
    )

    queue = Queue()
    assert await sync_now(repo, queue, A, web.id)
    assert source_view(repo, A, web.id).info.status == "queued"
    assert not await sync_now(repo, queue, A, web.id)  # already queued
    assert queue.queued == [(A, "docs-site", "console")]

    other = await add_source(
        repo,
        B,
        NewSource(name="globex-site", kind="web", urls=["https://globex.example/"]),
        **options,  # type: ignore[arg-type]
    )
    run_id = repo.start_run(other.id, full=False, trigger="console", worker="test")
    for wrong in (other.id, 999_999):
        with pytest.raises(NotFoundError):
            source_view(repo, A, wrong)
        with pytest.raises(NotFoundError):
            await sync_now(repo, queue, A, wrong)
    with pytest.raises(NotFoundError):
        run_info(engine, repo, A, other.id, run_id)
    with pytest.raises(NotFoundError):  # a run of B's source through one of A's sources
        run_info(engine, repo, A, web.id, run_id)
    assert run_info(engine, repo, B, other.id, run_id).status == "running"


def test_channel_modes_only_for_the_workspaces_teams(
    engine: Engine, seeded: dict[str, int]
) -> None:
    registry = WorkspaceRegistry(engine)
    assert [t.key for t in workspace_teams(registry, A)] == ["slack:TA"]
    set_channel_mode(engine, registry, A, team="slack:TA", channel_id="C123", mode="all_questions")
    set_channel_mode(engine, registry, B, team="discord:GB", channel_id="555", mode="mention")
    assert [(r.channel_id, r.mode) for r in channel_modes(engine, registry, A)] == [
        ("C123", "all_questions")
    ]
    assert [r.channel_id for r in channel_modes(engine, registry, B)] == ["555"]
    for team, channel, mode, reason in [
        ("discord:GB", "555", "all_questions", "not a Slack team or Discord server"),
        ("slack:TB", "C1", "mention", "not a Slack team"),
        ("slack:TA", "C1; drop", "mention", "invalid channel id"),
        ("slack:TA", "C1", "always", "unknown mode"),
    ]:
        with pytest.raises(InvalidInputError, match=reason):
            set_channel_mode(engine, registry, A, team=team, channel_id=channel, mode=mode)
    assert [r.mode for r in channel_modes(engine, registry, B)] == ["mention"]


def test_export_zip_streams_the_cli_files_for_one_workspace(
    engine: Engine, seeded: dict[str, int]
) -> None:
    with pytest.raises(InvalidInputError, match="three numbers"):
        ExportForm(format="sft", split="80/20").options(0.95)
    with pytest.raises(InvalidInputError, match="unknown export format"):
        ExportForm(format="csv").options(0.95)
    built = build_export(
        engine,
        A,
        ExportForm(format="sft", split="100/0/0"),
        similarity=0.95,
        embed=lambda texts: [[1.0, float(i)] for i, _ in enumerate(texts)],
        clock=_now,
        known_workspaces={A, B},
    )
    assert built.filename.startswith(f"supportbot-{A}-sft-")
    data = b"".join(built.stream())
    assert not built.folder.exists()  # removed once streamed
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert sorted(archive.namelist()) == ["manifest.json", "train.jsonl"]
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["workspace"] == A and manifest["counts"]["train"]["rows"] == 1
    rows = archive.read("train.jsonl").decode()
    assert "Where is my invoice?" in rows and "Globex" not in rows


def test_zip_stream_yields_in_pieces(tmp_path: Path) -> None:
    (tmp_path / "big.jsonl").write_bytes(bytes(range(256)) * 4096)  # 1 MiB, barely compressible
    (tmp_path / "small.json").write_text("{}")
    pieces = list(zip_stream(tmp_path))
    assert len(pieces) > 3
    archive = zipfile.ZipFile(io.BytesIO(b"".join(pieces)))
    assert archive.read("big.jsonl") == bytes(range(256)) * 4096
    assert archive.read("small.json") == b"{}"
