"""Tenant isolation against the real Weaviate server: a workspace never sees another's chunks."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.errors import RetrievalError, UnknownWorkspaceError
from retrieval.workspaces import IdentityKind, WorkspaceExistsError
from supportbot.app import App

SHARED_TEXT = (
    "# Refund policy\n\nCustomers can request a full refund within 14 days of their first "
    "payment from Settings > Billing > Request refund.\n"
)


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_identical_text_in_two_workspaces_stays_in_each(app: App, ws_name: str, tmp_path: Path):
    kb = app.knowledge
    a, b = f"{ws_name}-a", f"{ws_name}-b"
    kb.create_workspace(a)
    kb.create_workspace(b)
    kb.ingest_paths(a, [_write(tmp_path / "a", "refunds.md", SHARED_TEXT)])
    kb.ingest_paths(b, [_write(tmp_path / "b", "refunds.md", SHARED_TEXT)])
    kb.ingest_paths(
        b, [_write(tmp_path / "b", "only-b.md", "# Secret\n\nThe B-only code is 4711.")]
    )

    results_a = kb.search(a, "refund within 14 days", k=10)
    results_b = kb.search(b, "refund within 14 days", k=10)

    assert results_a and results_b
    assert {r.source for r in results_a} == {str((tmp_path / "a" / "refunds.md").resolve())}
    assert str((tmp_path / "b" / "refunds.md").resolve()) in {r.source for r in results_b}
    # Same text, separate objects: no chunk id is shared across tenants' result sets' sources.
    assert all("only-b" not in r.source for r in kb.search(a, "B-only code 4711", k=10))
    assert any("only-b" in r.source for r in kb.search(b, "B-only code 4711", k=10))
    assert kb.chunk_count(a) == 1


def test_unknown_workspace_is_a_clear_error(app: App):
    with pytest.raises(UnknownWorkspaceError, match=r"unknown workspace 'nope'.*workspace create"):
        app.knowledge.search("nope", "hello", k=3)
    with pytest.raises(UnknownWorkspaceError):
        app.knowledge.ingest_paths("nope", [])


def test_store_refuses_unknown_tenant_and_never_creates_it(app: App):
    vector = app.embedder.embed_query("hello")
    with pytest.raises(UnknownWorkspaceError, match="does not exist"):
        app.store.search("hello", vector, tenant="ws_does_not_exist", k=3)
    assert not app.store.tenant_exists(tenant="ws_does_not_exist")


def test_delete_workspace_removes_tenant_and_data(app: App, ws_name: str, tmp_path: Path):
    kb = app.knowledge
    info = kb.create_workspace(ws_name)
    kb.ingest_paths(ws_name, [_write(tmp_path, "doc.md", SHARED_TEXT)])
    assert app.store.count(tenant=info.tenant) == 1

    kb.delete_workspace(ws_name)

    assert not app.store.tenant_exists(tenant=info.tenant)
    with pytest.raises(UnknownWorkspaceError):
        kb.search(ws_name, "refund", k=3)
    # Created again under the same name: a new, empty tenant.
    again = kb.create_workspace(ws_name)
    assert again.tenant != info.tenant
    assert kb.chunk_count(ws_name) == 0


def test_platform_identities_map_to_one_workspace(app: App, ws_name: str):
    kb = app.knowledge
    kb.create_workspace(
        f"{ws_name}-1",
        [(IdentityKind.SLACK_TEAM, "T111"), (IdentityKind.DISCORD_GUILD, "G222")],
    )
    resolved = app.registry.resolve(IdentityKind.SLACK_TEAM, "T111")
    assert resolved is not None and resolved.name == f"{ws_name}-1"
    assert app.registry.resolve(IdentityKind.SLACK_TEAM, "T999") is None
    with pytest.raises(WorkspaceExistsError, match="T111"):
        kb.create_workspace(f"{ws_name}-2", [(IdentityKind.SLACK_TEAM, "T111")])
    # The refused workspace left nothing behind.
    assert [w.name for w in app.registry.list()] == [f"{ws_name}-1"]


@pytest.mark.parametrize(
    "bad", ["", "has space", "x" * 64, "-leading", "../etc", "acme\n", "ac\u200bme", "ａｃｍｅ"]
)
def test_invalid_workspace_names_are_refused(app: App, bad: str):
    with pytest.raises(RetrievalError, match="invalid workspace name"):
        app.knowledge.create_workspace(bad)


def test_a_weaviate_error_no_store_method_translates_is_a_one_line_retrieval_error(app: App):
    """The store's shared wrapper turns what Weaviate raises into a RetrievalError, so the
    callers' retries (sync worker, ingest) see it: here Weaviate refusing a tenant name
    (the registry never makes such a name; the store call is made directly)."""
    with pytest.raises(RetrievalError) as raised:
        app.store.create_tenant(tenant="not a tenant name!")
    assert "\n" not in str(raised.value)
