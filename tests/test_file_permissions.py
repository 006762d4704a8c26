"""The data directory is 0700 and the database and secret files 0600, whatever the umask.

They hold customers' questions and answers, installation tokens and the key that encrypts
them. The tests create them the way the CLI does (through :class:`App`) under a permissive
umask, and also meet files an older version left world-readable.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from supportbot.app import App
from supportbot.settings import Settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(
    params=[0o022, 0o000, 0o002, 0o077], ids=["umask-022", "umask-000", "umask-002", "umask-077"]
)
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def settings_for(data_dir: Path, **values: object) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir, **values)  # type: ignore[call-arg]


def write_something(application: App) -> None:
    with application.engine.begin() as connection:  # a write: SQLite makes -wal and -shm
        connection.execute(text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
        connection.execute(text("INSERT INTO probe VALUES (1)"))


def test_a_new_data_directory_database_and_key_are_owner_only(umask: int, tmp_path: Path):
    data_dir = tmp_path / "nested" / "data"
    with App(settings_for(data_dir)) as application:
        write_something(application)
        application.secret_key()
        database = data_dir / "supportbot.db"
        wal, shm = Path(f"{database}-wal"), Path(f"{database}-shm")
        assert wal.exists() and shm.exists()

        assert mode(data_dir) == 0o700
        assert mode(data_dir.parent) == 0o700  # a parent it had to create, too
        for path in (database, wal, shm, data_dir / "secret.key"):
            assert mode(path) == 0o600, f"{path.name}: {oct(mode(path))}"


def test_files_an_older_version_left_readable_are_tightened(umask: int, tmp_path: Path):
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    database = data_dir / "supportbot.db"
    for path in (database, data_dir / "secret.key"):
        path.write_text("" if path == database else "0" * 64)
        os.chmod(path, 0o644)

    with App(settings_for(data_dir)) as application:
        write_something(application)
        application.secret_key()
        assert mode(Path(f"{database}-wal")) == 0o600  # while open (SQLite removes it at close)

    assert mode(data_dir) == 0o700
    assert mode(database) == 0o600 and mode(data_dir / "secret.key") == 0o600


def test_a_database_elsewhere_is_owner_only_and_its_existing_folder_is_left_alone(
    umask: int, tmp_path: Path
):
    chosen = tmp_path / "shared-folder"
    chosen.mkdir()
    os.chmod(chosen, 0o755)
    new_folder = tmp_path / "new" / "db-folder"
    for database in (chosen / "bot.db", new_folder / "bot.db"):
        url = f"sqlite:///{database}"
        with App(settings_for(tmp_path / "data", database_url=url)) as application:
            write_something(application)
            assert mode(database) == 0o600 and mode(Path(f"{database}-wal")) == 0o600

    assert mode(chosen) == 0o755  # the user's folder: not ours to change
    assert mode(new_folder) == 0o700  # made by us: owner only


@pytest.mark.parametrize(
    "template",
    ["sqlite+pysqlite:///{path}", "sqlite:///{path}?timeout=5", "sqlite:///file:{path}?uri=true"],
    ids=["driver-named", "query", "file-uri"],
)
def test_every_spelling_of_a_sqlite_url_is_owner_only(
    umask: int, tmp_path: Path, template: str
) -> None:
    database = tmp_path / "new-dir" / "bot.db"
    url = template.format(path=database)
    with App(settings_for(tmp_path / "data", database_url=url)) as application:
        write_something(application)
        assert mode(database) == 0o600 and mode(Path(f"{database}-wal")) == 0o600
    assert mode(database.parent) == 0o700


def test_a_secret_key_an_older_version_wrote_0644_is_tightened_and_kept(
    umask: int, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    key = data_dir / "secret.key"
    key.write_text("ab" * 32 + "\n")
    os.chmod(key, 0o644)
    with App(settings_for(data_dir)) as application:
        assert application.secret_key() == b"ab" * 32  # the same key: old credentials decrypt
    assert mode(key) == 0o600
