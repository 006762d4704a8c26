"""Schema migrations (Alembic), run by :func:`supportbot.database.make_engine` on every start.

Revisions live in ``versions/`` and ship inside the package, so an installed ``supportbot``
upgrades its own database: SQLite files, in-memory SQLite and PostgreSQL alike. A database made
before migrations existed (tables created by ``SQLModel.metadata.create_all``, no
``alembic_version``) is adopted: the baseline revision creates only the tables it lacks, is
recorded, and the later revisions run as on any other database. Two processes starting at once
take turns (a PostgreSQL advisory lock, a file lock next to a SQLite file).
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from filelock import FileLock
from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent
BASELINE = "0001_baseline"
# Any 64-bit number no other application on the server is likely to use.
_PG_LOCK_ID = 0x5B07_F33D_0001


def target_metadata() -> MetaData:
    """Every table model of the project, registered by importing its module."""
    import bot.models
    import bot.slack.models
    import bot.slack.prompts  # noqa: F401
    import console.models  # noqa: F401
    import feedback.handoffs
    import feedback.learning_models
    import feedback.models  # noqa: F401
    import retrieval.workspaces  # noqa: F401
    import sync.models  # noqa: F401

    return SQLModel.metadata


def alembic_config(connection: Connection | None = None) -> Config:
    """A config that needs no ``alembic.ini``: the script location is this package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    heads = _script().get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads ({heads}); merge them")
    return heads[0]


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest revision; cheap when it is there already."""
    with _migration_lock(engine), engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite alters a table by copying it and dropping the original; with foreign keys
            # on, that drop would cascade and delete every row referring to it (the ratings of
            # the answers). The pragma only takes effect outside a transaction.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                _upgrade(connection)
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
    current = MigrationContext.configure(connection).get_current_revision()
    if current == head():
        return
    config = alembic_config(connection)
    if current is None and _has_unversioned_tables(connection):
        logger.info("adopting a database created without migrations at %s", BASELINE)
        command.upgrade(config, BASELINE)
    command.upgrade(config, "head")


def _has_unversioned_tables(connection: Connection) -> bool:
    names = set(inspect(connection).get_table_names())
    return bool(names & set(target_metadata().tables))


def _migration_lock(engine: Engine) -> AbstractContextManager[object]:
    from supportbot.database import sqlite_file  # that module imports this one

    database = sqlite_file(engine.url.render_as_string(hide_password=False))
    if database is not None:  # not a file: URI's text, nor an in-memory database
        return FileLock(f"{database}.migrate.lock", timeout=120)
    return nullcontext()
