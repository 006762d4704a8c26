"""Hot and cold tenants against the real Weaviate: idle workspaces go cold, the first question
or sync brings them back (timed), `workspace list` shows it, and nothing crosses tenants.

The clock is injected: "two days later" is a number here, while every status is Weaviate's own.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from retrieval.store import KnowledgeStore
from retrieval.tenant_activity import TenantActivity, TenantState
from retrieval.workspaces import Workspace
from supportbot.app import App
from supportbot.settings import Settings, parse_idle_time
from sync.connectors.folder import FolderConnector

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
COLD_AFTER = timedelta(days=1)

ACME_DOC = """# Refund policy

Acme customers get a full refund within 14 days from Settings > Billing > Request refund.
"""
GLOBEX_DOC = """# Shipping times

Globex parcels leave the warehouse within two business days; islands take one day more.
"""


class Clock:
    """A settable clock (aware UTC), shared by the activity of one test."""

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
    """The app with tenant activity on the injected clock (before anything builds knowledge)."""
    app.__dict__["tenant_activity"] = TenantActivity(
        app.engine, app.store, cold_after=COLD_AFTER, clock=clock
    )
    return app


@pytest.fixture
def two_workspaces(tracked: App, ws_name: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two workspaces with one document each, ingested at T0; removed afterwards."""
    names = (f"{ws_name[:40]}-acme", f"{ws_name[:40]}-globex")
    for name, text in zip(names, (ACME_DOC, GLOBEX_DOC), strict=True):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "doc.md").write_text(text)
        tracked.knowledge.create_workspace(name)
        tracked.knowledge.ingest_paths(name, [folder])
    yield names
    for name in names:
        tracked.knowledge.delete_workspace(name)


def state(app: App, name: str) -> TenantState:
    return {a.workspace: a for a in app.tenant_activity.report()}[name].state


def row(app: App, name: str) -> Workspace:
    with Session(app.engine) as session:
        found = session.exec(select(Workspace).where(Workspace.name == name)).one()
        session.expunge(found)
        return found


def test_an_idle_workspace_goes_cold_and_a_used_one_stays_hot(
    tracked: App, clock: Clock, two_workspaces: tuple[str, str]
) -> None:
    acme, globex = two_workspaces
    assert state(tracked, acme) == state(tracked, globex) == TenantState.HOT

    clock.advance(hours=23)
    assert tracked.tenant_activity.cool_idle() == []  # not idle long enough yet

    tracked.knowledge.search(globex, "shipping", k=1)  # globex asked about
    clock.advance(hours=2)  # acme idle 25 h, globex 2 h
    assert tracked.tenant_activity.cool_idle() == [acme]

    assert state(tracked, acme) == TenantState.COLD
    assert state(tracked, globex) == TenantState.HOT
    assert row(tracked, acme).deactivated_at is not None
    assert tracked.tenant_activity.cool_idle() == []  # already cold: nothing more to do


def test_a_question_in_a_cold_workspace_is_answered_and_makes_it_hot(
    tracked: App, clock: Clock, two_workspaces: tuple[str, str]
) -> None:
    acme, globex = two_workspaces
    clock.advance(days=2)
    assert set(tracked.tenant_activity.cool_idle()) == {acme, globex}

    answer = tracked.answer_chain(acme).answer("How do I get a refund?")

    assert "14 days" in answer.text
    assert state(tracked, acme) == TenantState.HOT
    assert state(tracked, globex) == TenantState.COLD  # only the workspace asked about
    acme_row = row(tracked, acme)
    assert acme_row.reactivation_ms is not None and acme_row.reactivation_ms > 0
    assert acme_row.reactivated_at is not None and acme_row.last_used_at is not None
    assert row(tracked, globex).reactivation_ms is None


async def test_a_sync_in_a_cold_workspace_works(
    tracked: App, clock: Clock, two_workspaces: tuple[str, str], tmp_path: Path
) -> None:
    acme, _ = two_workspaces
    folder = tmp_path / "drive"
    folder.mkdir()
    (folder / "hours.md").write_text("# Support hours\n\nAcme support answers 9 to 18 KST.\n")
    tracked.sync_sources.add(
        acme, "drive", kind="folder",
        config=FolderConnector.validate_config({"path": str(folder)}),
        credentials=None, schedule=None, requests_per_second=100,
    )  # fmt: skip
    clock.advance(days=2)
    assert acme in tracked.tenant_activity.cool_idle()

    run = await tracked.sync_engine.sync(acme, "drive")

    assert (run.status, run.changed) == ("ok", 1)
    assert state(tracked, acme) == TenantState.HOT
    hits = tracked.knowledge.search(acme, "support hours", k=3, mode="keyword")
    assert any("9 to 18 KST" in h.text for h in hits)
    assert tracked.knowledge.chunk_count(acme) == 2  # the ingested document is still there


def test_search_never_crosses_tenants_across_cold_and_hot(
    tracked: App, clock: Clock, two_workspaces: tuple[str, str]
) -> None:
    acme, globex = two_workspaces
    clock.advance(days=2)
    tracked.tenant_activity.cool_idle()

    pairs = ((acme, "refund", "parcels", "Acme"), (globex, "parcels", "refund", "Globex"))
    for name, own, other, marker in pairs:
        for query in (own, other):
            for mode in ("hybrid", "keyword", "vector"):
                hits = tracked.knowledge.search(name, query, k=5, mode=mode)
                assert all(marker in h.text for h in hits), (name, query, mode)
                if query == own:
                    assert hits, (name, query, mode)


def test_use_is_written_at_most_once_a_minute(
    tracked: App, clock: Clock, two_workspaces: tuple[str, str]
) -> None:
    acme, _ = two_workspaces
    clock.advance(hours=1)
    tracked.knowledge.search(acme, "refund", k=1)
    first = row(tracked, acme).last_used_at
    clock.advance(seconds=30)
    for _ in range(5):
        tracked.knowledge.search(acme, "refund", k=1)
    assert row(tracked, acme).last_used_at == first  # no write per question

    clock.advance(seconds=31)
    tracked.knowledge.search(acme, "refund", k=1)
    assert row(tracked, acme).last_used_at != first


def test_two_processes_reactivating_at_once_both_succeed(
    tracked: App, clock: Clock, two_workspaces: tuple[str, str]
) -> None:
    acme, _ = two_workspaces
    clock.advance(days=2)
    tracked.tenant_activity.cool_idle()
    tenant = row(tracked, acme).tenant
    # Two independent trackers (as two bot processes have), racing on the same cold tenant.
    others = [
        TenantActivity(tracked.engine, tracked.store, cold_after=COLD_AFTER, clock=clock)
        for _ in range(2)
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda activity: activity.use(tenant), others))

    assert any(ms is not None for ms in results)
    assert state(tracked, acme) == TenantState.HOT
    assert tracked.knowledge.search(acme, "refund", k=1)


class _RefusingStore(KnowledgeStore):
    """The real store, except that one tenant cannot be set cold (a failing node)."""

    def __init__(self, store: KnowledgeStore, refused: str) -> None:
        self.__dict__.update(store.__dict__)
        self._refused = refused

    def set_tenant_active(self, *, tenant: str, active: bool) -> None:
        if tenant == self._refused and not active:
            raise RuntimeError("node unavailable")
        super().set_tenant_active(tenant=tenant, active=active)


def test_a_failure_to_set_cold_is_logged_and_the_others_still_go_cold(
    tracked: App, clock: Clock, two_workspaces: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    acme, globex = two_workspaces
    refusing = _RefusingStore(tracked.store, row(tracked, acme).tenant)
    activity = TenantActivity(tracked.engine, refusing, cold_after=COLD_AFTER, clock=clock)
    clock.advance(days=2)

    with caplog.at_level(logging.WARNING, logger="retrieval.tenant_activity"):
        assert activity.cool_idle() == [globex]

    assert f"could not set workspace {acme!r} cold" in caplog.text
    assert state(tracked, acme) == TenantState.HOT
    assert tracked.knowledge.chunk_count(acme) == 1


def test_never_cold_when_turned_off(
    tracked: App, clock: Clock, two_workspaces: tuple[str, str]
) -> None:
    off = TenantActivity(tracked.engine, tracked.store, cold_after=None, clock=clock)
    clock.advance(days=365)
    assert off.cool_idle() == []
    assert {state(tracked, name) for name in two_workspaces} == {TenantState.HOT}


def test_workspace_list_shows_hot_cold_and_the_reactivation(
    tracked: App, clock: Clock, two_workspaces: tuple[str, str], settings: Settings
) -> None:
    acme, globex = two_workspaces
    clock.advance(days=2)
    tracked.tenant_activity.cool_idle()
    tracked.knowledge.search(acme, "refund", k=1)  # reactivated, timed

    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env.update(
        SUPPORTBOT_DATA_DIR=str(settings.data_dir),
        DATABASE_URL=str(settings.database_url),
        SUPPORTBOT_SECRET_KEY="test-secret",
        COLUMNS="200",
    )
    supportbot = str(Path(sys.executable).with_name("supportbot"))
    listed = subprocess.run(
        [supportbot, "workspace", "list", "--json"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    activity = {w["name"]: w["activity"] for w in json.loads(listed.stdout)["workspaces"]}
    assert activity[acme]["state"] == "hot" and activity[globex]["state"] == "cold"
    assert activity[acme]["reactivation_ms"] > 0
    assert activity[acme]["reactivated_at"].startswith("2026-03-04")
    assert activity[globex]["reactivation_ms"] is None

    table = subprocess.run(
        [supportbot, "workspace", "list"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    lines = {name: next(ln for ln in table.splitlines() if name in ln) for name in (acme, globex)}
    assert " hot " in lines[acme] and " ms, 2026-03-04 09:00" in lines[acme]
    assert " cold " in lines[globex]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3d", timedelta(days=3)), ("12h", timedelta(hours=12)), ("45 M", timedelta(minutes=45)),
     ("0", None)],
)  # fmt: skip
def test_idle_time_setting_has_a_unit(text: str, expected: timedelta | None) -> None:
    assert parse_idle_time(text) == expected


@pytest.mark.parametrize("text", ["3", "2w", "-1d", "5m", "", "1.5h"])
def test_idle_time_without_a_unit_or_too_short_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|too short"):
        parse_idle_time(text)
