"""Alembic's environment: the models' metadata, and the connection to migrate.

:func:`supportbot.migrations.upgrade` hands its open connection in through
``config.attributes["connection"]``, so an in-memory SQLite database (one shared connection)
is migrated in place. Run by the ``alembic`` command instead (``scripts/new-migration``), it
connects to ``sqlalchemy.url`` from the config.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import engine_from_config, pool
from sqlalchemy.engine import Connection
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

from supportbot.migrations import target_metadata

config = context.config


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Write sqlmodel's own types as the plain SQLAlchemy types they store as.

    Revisions then import no sqlmodel, and stay valid whatever sqlmodel's types become.
    """
    if type_ == "type" and isinstance(obj, AutoString):
        return "sa.String()"
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata(),
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying
        render_item=_render_item,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as fresh:
        _run(fresh)


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run them against a database")
run_migrations_online()
