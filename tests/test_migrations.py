"""Schema migrations: the models and the revisions agree, a database made before migrations
is adopted without losing a row, and processes starting together do not trip over each other.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from feedback.models import Interaction, Rating
from supportbot.database import make_engine
from supportbot.migrations import BASELINE, alembic_config, head, target_metadata
from tests.conftest import reset_postgres


def _revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, target_metadata()))


def test_models_and_migrations_agree(engine: Engine):
    assert _revision(engine) == head()
    assert _differences(engine) == []


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database that is not opened yet: a SQLite file, or the test PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'legacy.db'}"
        return
    url = os.environ.get("SUPPORTBOT_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("SUPPORTBOT_TEST_POSTGRES_URL is not set on CI: run ./dev test")
        pytest.skip("no PostgreSQL (set SUPPORTBOT_TEST_POSTGRES_URL or run ./dev test)")
    reset_postgres(url)
    yield url
    reset_postgres(url)


def _legacy_database(url: str) -> None:
    """A database as ``create_all`` made it before migrations: the baseline tables, rows in
    them, and no ``alembic_version``."""
    legacy = create_engine(url)
    with legacy.begin() as connection:
        command.upgrade(alembic_config(connection), BASELINE)
        connection.execute(text("DROP TABLE alembic_version"))
        connection.execute(
            text(
                "INSERT INTO workspace (id, name, tenant, embedding_model, created_at) "
                "VALUES (1, 'acme', 'ws_1', 'm', '2026-11-01 10:00:00+00:00')"
            )
        )
        for row_id, message in ((1, "M1"), (2, "M1"), (3, "")):
            # Two answers to one message: nothing prevented it before migrations.
            connection.execute(
                text(
                    "INSERT INTO interaction (id, workspace, platform, channel_id, thread_id, "
                    "message_id, user_hash, question, standalone_question, retrieved, answer, "
                    "mode, model, latency_ms, created_at) VALUES (:id, 'acme', 'slack', 'C1', "
                    "'M1', :message, 'h', 'q?', 'q?', '[]', 'a', 'llm', 'gpt', 5, "
                    "'2026-11-01 10:00:00+00:00')"
                ),
                {"id": row_id, "message": message},
            )
        connection.execute(
            text(
                "INSERT INTO rating (id, interaction_id, user_hash, value, source, created_at, "
                "updated_at) VALUES (1, 1, 'u', 1, 'reaction', '2026-11-01 10:00:00+00:00', "
                "'2026-11-01 10:00:00+00:00')"
            )
        )
    legacy.dispose()


def test_a_database_made_before_migrations_is_adopted_without_losing_rows(database_url: str):
    _legacy_database(database_url)

    engine = make_engine(database_url)
    try:
        assert _revision(engine) == head()
        assert _differences(engine) == []
        with Session(engine) as session:
            interactions = session.exec(select(Interaction).order_by(Interaction.id)).all()
            ratings = session.exec(select(Rating)).all()
        assert [i.id for i in interactions] == [1, 2, 3]
        # The repeated message keeps its row, marked so the new unique index holds.
        assert [i.message_id for i in interactions] == ["M1", "M1#duplicate-2", ""]
        assert all(i.found is True and i.prompt_messages == [] for i in interactions)
        assert all(i.sources == [] for i in interactions)
        assert [(r.interaction_id, r.value) for r in ratings] == [(1, 1)]
        with engine.connect() as connection:
            names = set(inspect(connection).get_table_names())
        assert {"rating_event", "verified_answer", "workspace"} <= names
    finally:
        engine.dispose()

    again = make_engine(database_url)  # already at head: nothing to do, nothing lost
    try:
        assert _revision(again) == head()
        with Session(again) as session:
            assert len(session.exec(select(Interaction)).all()) == 3
    finally:
        again.dispose()


def test_processes_starting_together_migrate_once(database_url: str):
    errors: list[BaseException] = []
    engines: list[Engine] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        try:
            barrier.wait(timeout=10)
            engines.append(make_engine(database_url))
        except BaseException as e:  # collected: a thread's exception would be lost
            errors.append(e)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert len(engines) == 4
        assert all(_revision(e) == head() for e in engines)
        assert _differences(engines[0]) == []
    finally:
        for made in engines:
            made.dispose()


def test_migrations_have_one_head_and_go_down_to_nothing_and_up_again(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    engine = make_engine(url)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    with engine.connect() as connection:
        assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    again = make_engine(url)
    assert _revision(again) == head()
    assert _differences(again) == []
    again.dispose()
