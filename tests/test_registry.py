"""Workspace registry and feedback store on an in-memory SQLite database (pure data logic)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine

from feedback.errors import FeedbackError
from feedback.store import AnswerRecord, SqlFeedbackStore
from retrieval.errors import UnknownWorkspaceError
from retrieval.workspaces import IdentityKind, WorkspaceExistsError, WorkspaceRegistry

FIXED_NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def test_registry_create_get_list_delete(engine: Engine):
    registry = WorkspaceRegistry(engine, clock=lambda: FIXED_NOW)
    created = registry.create(
        "acme", embedding_model="m1", identities=[(IdentityKind.DISCORD_GUILD, "42")]
    )

    assert registry.get("acme") == created
    assert created.created_at.replace(tzinfo=UTC) == FIXED_NOW
    assert created.identities == [("discord_guild", "42")]
    assert [w.name for w in registry.list()] == ["acme"]
    with pytest.raises(WorkspaceExistsError):
        registry.create("acme", embedding_model="m1")

    registry.delete("acme")

    assert registry.list() == []
    assert registry.resolve(IdentityKind.DISCORD_GUILD, "42") is None
    with pytest.raises(UnknownWorkspaceError):
        registry.get("acme")


def test_each_workspace_gets_a_distinct_tenant(engine: Engine):
    registry = WorkspaceRegistry(engine)
    first = registry.create("a", embedding_model="m").tenant
    registry.delete("a")
    second = registry.create("a", embedding_model="m").tenant
    assert first != second


def _record(store: SqlFeedbackStore) -> int:
    return store.record_answer(
        AnswerRecord(
            workspace="acme",
            platform="slack",
            question="q",
            standalone_question="q",
            answer="a",
            mode="llm",
            user_id="U1",
        )
    )


def test_one_current_rating_per_user_changed_and_removed(engine: Engine):
    store = SqlFeedbackStore(engine, user_hash_key=b"k", clock=lambda: FIXED_NOW)
    interaction = _record(store)

    store.rate(interaction, user_id="U1", value=1, source="reaction")
    store.rate(interaction, user_id="U1", value=1, source="reaction")  # duplicate delivery
    store.rate(interaction, user_id="U2", value=-1, source="button")
    assert sorted(store.ratings(interaction)) == [-1, 1]

    store.rate(interaction, user_id="U1", value=-1, source="button")  # changed mind
    assert sorted(store.ratings(interaction)) == [-1, -1]

    store.rate(interaction, user_id="U2", value=0, source="reaction")  # reaction removed
    assert store.ratings(interaction) == [-1]


def test_rating_errors_are_clear(engine: Engine):
    store = SqlFeedbackStore(engine, user_hash_key=b"k")
    with pytest.raises(FeedbackError, match="no answer with id 999"):
        store.rate(999, user_id="U1", value=1, source="reaction")
    with pytest.raises(FeedbackError, match=r"\+1, -1 or 0"):
        store.rate(_record(store), user_id="U1", value=5, source="reaction")
