"""The relational database: SQLite in the data directory by default, PostgreSQL by URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import StaticPool
from sqlmodel import create_engine

from supportbot.migrations import upgrade
from supportbot.private_files import private_directory, private_file, tighten_if_present


def make_engine(url: str) -> Engine:
    """Create the engine, migrating the database to the newest schema first.

    SQLite gets WAL and a busy timeout because the bot, an ingest run and a search may all be
    separate processes writing the same file.
    """
    database_file = sqlite_file(url)
    if database_file is not None:
        _private_sqlite_file(database_file)
    connect_args: dict[str, Any] = {}
    options: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        connect_args = {"check_same_thread": False, "timeout": 30}
    if url in ("sqlite://", "sqlite:///:memory:"):
        # One connection for every thread: otherwise each worker thread (the bots run the
        # database in threads) would get its own, empty, in-memory database.
        options["poolclass"] = StaticPool
    engine = create_engine(url, connect_args=connect_args, **options)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            if ":memory:" not in url:
                cursor.execute("PRAGMA journal_mode=WAL")
                # In WAL mode NORMAL cannot corrupt the database and keeps every commit of a
                # crashed process; only a power cut may lose the last commits. It saves an
                # fsync per commit, which the bot makes several of per answer (bench/).
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    # The schema comes from the migrations (supportbot/migrations), never from create_all:
    # a database made by an older version must be upgraded, not half-created.
    upgrade(engine)
    return engine


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL opens (any driver: ``sqlite:///``, ``sqlite+pysqlite:///``;
    a ``file:`` URI with ``uri=true`` too); None for other databases and in-memory ones."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:"):  # sqlite:///file:path?mode=rwc&uri=true
        path = urlsplit(database).path
        memory = "memory" in parsed.query.get("mode", "") or path in ("", ":memory:")
        return None if memory else Path(unquote(path))
    return Path(database)


def _private_sqlite_file(path: Path) -> None:
    """The database file owner-only (0600) before SQLite opens it.

    SQLite gives its -wal and -shm files the database file's permissions, so they follow;
    files an older version left readable to others are tightened. A missing parent directory
    is created 0700; an existing one (the user's choice) is left as it is.
    """
    private_directory(path.parent, tighten=False)
    private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        tighten_if_present(path.with_name(path.name + suffix))
