"""Every path that reads or writes a workspace's tenant, run while the tenant is cold.

Against the real Weaviate, with the clock injected as in test_tenant_activity.py: each test sets
the workspace cold through the periodic job (``cool_idle``), then takes one path and checks
that it works, that its data is complete, and whether the tenant was woken (a path that only
looks must not wake it; a question, sync or write must, timed).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bot.message import IncomingMessage
from retrieval.documents import SourceDocument
from retrieval.store import KnowledgeStore
from retrieval.tenant_activity import TenantActivity, TenantState
from retrieval.workspaces import Workspace
from supportbot.app import App
from sync.connectors.folder import FolderConnector

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
COLD_AFTER = timedelta(days=1)

REFUND = "# Refund policy\n\nAcme customers get a full refund within 14 days from Billing.\n"
HOURS = "# Support hours\n\nAcme support answers from 9 to 18 KST on weekdays.\n"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tracked(app: App, clock: Clock) -> App:
    app.__dict__["tenant_activity"] = TenantActivity(
        app.engine, app.store, cold_after=COLD_AFTER, clock=clock
    )
    return app


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    docs = tmp_path / "kb"
    docs.mkdir()
    (docs / "refund.md").write_text(REFUND)
    (docs / "hours.md").write_text(HOURS)
    return docs


@pytest.fixture
def cold(tracked: App, clock: Clock, ws_name: str, folder: Path) -> Iterator[str]:
    """A workspace with two documents, ingested at T0 and set cold two days later."""
    tracked.knowledge.create_workspace(ws_name)
    tracked.knowledge.ingest_paths(ws_name, [folder])
    clock.advance(days=2)
    assert ws_name in tracked.tenant_activity.cool_idle()
    assert state(tracked, ws_name) is TenantState.COLD
    yield ws_name
    if tracked.registry.tenant_of(ws_name) is not None:
        tracked.knowledge.delete_workspace(ws_name)


def state(app: App, name: str) -> TenantState:
    return {a.workspace: a for a in app.tenant_activity.report()}[name].state


def row(app: App, name: str) -> Workspace:
    with Session(app.engine) as session:
        found = session.exec(select(Workspace).where(Workspace.name == name)).one()
        session.expunge(found)
        return found


def tenant_of(app: App, name: str) -> str:
    tenant = app.registry.tenant_of(name)
    assert tenant is not None
    return tenant


def doc_ids(app: App, name: str) -> set[str]:
    return set(app.store.documents(tenant=tenant_of(app, name)))


def reactivated(app: App, name: str) -> bool:
    """The switch to hot was done by the tracker and timed (not by Weaviate on the side)."""
    found = row(app, name)
    return found.reactivation_ms is not None and found.reactivation_ms > 0


def message(name: str, text: str, *, mention: bool, n: int = 1) -> IncomingMessage:
    return IncomingMessage(
        platform="slack",
        delivery_id=f"Ev{name}{n}",
        team_id=f"T-{name}"[:40],
        channel_id="C1",
        message_id=f"17000000{n}.000100",
        user_id="U1",
        text=text,
        mentions_bot=mention,
    )


# --- the bots' readiness check: it runs for every message in every channel the bot is in -----


def test_chatter_in_a_cold_workspace_does_not_wake_it_nor_look_unset(
    tracked: App, cold: str
) -> None:
    """Found: the readiness check counted the chunks, which made Weaviate load the tenant for
    every channel message the bot saw, untimed and unrecorded (so it flapped hot and cold)."""
    info = tracked.registry.get(cold)

    assert tracked.conversations.workspace_ready(info) is True  # no "not set up" notice
    assert tracked.knowledge.has_knowledge(cold) is True
    assert state(tracked, cold) is TenantState.COLD  # only looked: still off memory


def test_a_question_after_the_readiness_check_is_answered_and_the_switch_is_timed(
    tracked: App, cold: str
) -> None:
    info = tracked.registry.get(cold)
    assert tracked.conversations.workspace_ready(info)

    answer = tracked.answer_chain(cold).answer("How do I get a refund?")

    assert "14 days" in answer.text
    assert state(tracked, cold) is TenantState.HOT
    assert reactivated(tracked, cold)  # the cost shows in `workspace list`


def test_chatter_routed_through_triage_keeps_the_workspace_cold(tracked: App, cold: str) -> None:
    info = tracked.registry.get(cold)

    situation = tracked.conversations.situation(
        message(cold, "lunch at noon?", mention=False), workspace=info
    )

    assert situation.workspace_ready
    assert state(tracked, cold) is TenantState.COLD


def test_an_empty_idle_workspace_stays_hot_and_still_gets_the_setup_notice(
    tracked: App, clock: Clock, ws_name: str
) -> None:
    """The invariant readiness relies on: a cold tenant always has chunks."""
    tracked.knowledge.create_workspace(ws_name)
    try:
        clock.advance(days=2)
        assert ws_name not in tracked.tenant_activity.cool_idle()
        assert state(tracked, ws_name) is TenantState.HOT
        assert tracked.conversations.workspace_ready(tracked.registry.get(ws_name)) is False
    finally:
        tracked.knowledge.delete_workspace(ws_name)


def test_a_readiness_check_of_a_missing_tenant_is_not_ready(tracked: App, cold: str) -> None:
    tracked.store.delete_tenant(tenant=tenant_of(tracked, cold))  # removed behind our back
    assert tracked.conversations.workspace_ready(tracked.registry.get(cold)) is False


# --- questions, search and evaluation ---------------------------------------------------------


@pytest.mark.parametrize("mode", ["hybrid", "keyword", "vector"])
def test_search_of_a_cold_workspace_answers_in_every_mode(
    tracked: App, cold: str, mode: str
) -> None:
    hits = tracked.knowledge.search(cold, "support hours", k=2, mode=mode)  # type: ignore[arg-type]
    assert hits and any("9 to 18 KST" in h.text for h in hits)
    assert reactivated(tracked, cold)


def test_many_searches_at_once_in_a_cold_workspace(tracked: App, cold: str) -> None:
    """`supportbot eval` and `search --file`: a batch, searched in parallel."""
    batches = tracked.knowledge.search_many(cold, ["refund", "support hours", "billing"], k=2)
    assert [bool(b) for b in batches] == [True, True, True]
    assert reactivated(tracked, cold)


# --- writes: ingest, prune, promote, reindex, source removal ----------------------------------


def test_ingest_with_prune_into_a_cold_workspace(tracked: App, cold: str, folder: Path) -> None:
    (folder / "hours.md").unlink()
    (folder / "shipping.md").write_text("# Shipping\n\nParcels leave within two days.\n")

    report = tracked.knowledge.ingest_paths(cold, [folder], prune=True)

    assert report.chunks_removed >= 1
    assert {Path(d).name for d in doc_ids(tracked, cold)} == {"refund.md", "shipping.md"}
    assert reactivated(tracked, cold)


def test_a_verified_answer_written_into_a_cold_workspace(tracked: App, cold: str) -> None:
    """What `feedback promote` and the console's Publish as verified answer write."""
    from feedback.promote import VERIFIED_ORIGIN

    doc = SourceDocument(
        doc_id="verified:1",
        title="Can I pay by invoice?",
        text="Yes: annual plans can be paid by invoice within 30 days.",
        source="verified answer",
    )
    tracked.knowledge.upsert_documents(cold, [doc], origin=VERIFIED_ORIGIN)

    hits = tracked.knowledge.search(cold, "pay by invoice", k=3, mode="keyword")
    assert any(h.doc_id == "verified:1" for h in hits)
    assert tracked.knowledge.origin_chunk_count(cold, VERIFIED_ORIGIN) == 1
    assert len(doc_ids(tracked, cold)) == 3


def test_reindex_of_a_cold_workspace_keeps_every_chunk(tracked: App, cold: str) -> None:
    assert tracked.knowledge.reindex(cold) == 2
    assert tracked.knowledge.chunk_count(cold) == 2
    assert reactivated(tracked, cold)


def test_removing_a_source_from_a_cold_workspace(tracked: App, cold: str) -> None:
    from retrieval.knowledge import FILE_ORIGIN

    assert tracked.knowledge.delete_origin(cold, FILE_ORIGIN) == 2
    assert tracked.knowledge.chunk_count(cold) == 0


# --- workspace delete and list ----------------------------------------------------------------


def test_deleting_a_cold_workspace_removes_its_tenant_and_rows(tracked: App, cold: str) -> None:
    tenant = tenant_of(tracked, cold)

    tracked.knowledge.delete_workspace(cold)

    assert tracked.registry.tenant_of(cold) is None
    assert not tracked.store.tenant_exists(tenant=tenant)
    assert tracked.store.tenant_activity([tenant]) == {}


def test_listing_reports_cold_and_missing_without_waking_anything(
    tracked: App, cold: str, clock: Clock, folder: Path
) -> None:
    missing = f"{cold[:40]}-gone"
    tracked.knowledge.create_workspace(missing)
    try:
        tracked.store.delete_tenant(tenant=tenant_of(tracked, missing))
        for _ in range(2):
            states = {a.workspace: a.state for a in tracked.tenant_activity.report()}
            assert states[cold] is TenantState.COLD
            assert states[missing] is TenantState.MISSING
        # and a cold sweep over a workspace whose tenant is missing is harmless
        clock.advance(days=2)
        tracked.tenant_activity.cool_idle()
    finally:
        tracked.knowledge.delete_workspace(missing)


# --- sync -------------------------------------------------------------------------------------


def add_folder_source(app: App, name: str, path: Path) -> None:
    app.sync_sources.add(
        name, "drive", kind="folder",
        config=FolderConnector.validate_config({"path": str(path)}),
        credentials=None, schedule=None, requests_per_second=100,
    )  # fmt: skip


async def test_source_sync_of_a_cold_workspace_counts_its_chunks(
    tracked: App, cold: str, tmp_path: Path
) -> None:
    drive = tmp_path / "drive"
    drive.mkdir()
    for n in range(3):
        (drive / f"faq{n}.md").write_text(f"# FAQ {n}\n\nAnswer number {n} for Acme users.\n")
    add_folder_source(tracked, cold, drive)

    run = await tracked.sync_engine.sync(cold, "drive")

    assert (run.status, run.changed) == ("ok", 3)
    assert tracked.sync_sources.info(cold, "drive").chunks == 3  # the engine's count
    assert tracked.knowledge.chunk_count(cold) == 5
    assert reactivated(tracked, cold)


# --- races between processes ------------------------------------------------------------------


async def test_a_sync_writing_into_a_tenant_another_process_just_set_cold(
    tracked: App, clock: Clock, cold: str, tmp_path: Path
) -> None:
    """This process saw the tenant hot a moment ago and trusts that for a minute; a worker on
    the same database, whose clock says the workspace is idle, sets it cold in between."""
    drive = tmp_path / "drive"
    drive.mkdir()
    (drive / "a.md").write_text("# Alpha\n\nAlpha is the first plan.\n")
    (drive / "c.md").write_text("# Gamma\n\nGamma is the third plan.\n")
    (drive / "d.md").write_text("# Delta\n\nDelta is the fourth plan.\n")
    add_folder_source(tracked, cold, drive)
    assert (await tracked.sync_engine.sync(cold, "drive")).status == "ok"  # seen hot now

    later = Clock()
    later.now = clock.now + timedelta(days=2)
    other = TenantActivity(tracked.engine, tracked.store, cold_after=COLD_AFTER, clock=later)
    assert other.cool_idle() == [cold]
    (drive / "b.md").write_text("# Beta\n\nBeta is the second plan.\n")
    (drive / "a.md").unlink()

    run = await tracked.sync_engine.sync(cold, "drive")

    assert (run.status, run.changed, run.deleted) == ("ok", 1, 1)
    names = {Path(d).name for d in doc_ids(tracked, cold)}
    assert names == {"refund.md", "hours.md", "b.md", "c.md", "d.md"}


class _InterleavedStore(KnowledgeStore):
    """The real store; ``between`` runs once, right after the cold sweep reads the statuses
    (when another process may use the workspace)."""

    def __init__(self, store: KnowledgeStore, between: list[object]) -> None:
        self.__dict__.update(store.__dict__)
        self._between = between

    def tenant_activity(self, tenants: Sequence[str]) -> dict[str, object]:  # type: ignore[override]
        found = super().tenant_activity(tenants)
        while self._between:
            action = self._between.pop()
            assert callable(action)
            action()
        return found  # type: ignore[return-value]


def test_a_workspace_used_by_another_process_during_the_cold_sweep_stays_hot(
    tracked: App, clock: Clock, ws_name: str, folder: Path
) -> None:
    tracked.knowledge.create_workspace(ws_name)
    try:
        tracked.knowledge.ingest_paths(ws_name, [folder])
        clock.advance(days=2)
        tenant = tenant_of(tracked, ws_name)
        bot = TenantActivity(tracked.engine, tracked.store, cold_after=COLD_AFTER, clock=clock)
        sweeper = TenantActivity(
            tracked.engine,
            _InterleavedStore(tracked.store, [lambda: bot.use(tenant)]),
            cold_after=COLD_AFTER,
            clock=clock,
        )

        assert sweeper.cool_idle() == []  # the question in between is seen: not set cold
        assert state(tracked, ws_name) is TenantState.HOT
    finally:
        tracked.knowledge.delete_workspace(ws_name)


def test_two_processes_sweeping_and_asking_concurrently_lose_nothing(
    tracked: App, clock: Clock, cold: str
) -> None:
    """Two engines on one database: one keeps setting the tenant cold, the other keeps asking
    and writing; every call answers and the data ends complete."""
    from concurrent.futures import ThreadPoolExecutor

    tenant = tenant_of(tracked, cold)
    stored = list(tracked.store.iter_chunks(tenant=tenant))

    def sweep() -> int:
        for _ in range(15):
            tracked.store.set_tenant_active(tenant=tenant, active=False)
        return 15

    def ask() -> int:
        answered = 0
        for _ in range(15):
            assert tracked.knowledge.search(cold, "refund", k=2, mode="keyword")
            tracked.store.insert(stored, tenant=tenant)
            answered += 1
        return answered

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = [pool.submit(sweep), pool.submit(ask)]
        assert [r.result(timeout=300) for r in results] == [15, 15]
    assert tracked.knowledge.chunk_count(cold) == 2
