"""Which `.env` is read: ``SUPPORTBOT_ENV_FILE``'s file, else ./.env, nothing else.

A `.env` in a parent directory (a checkout above, the home directory) must not configure the
bot by surprise; the environment always wins over the file; and every setting a `.env` may
set is documented in `.env.example`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from supportbot.settings import ENV_FILE_VARIABLE, Settings, SettingsError
from tests.conftest import REPO


@pytest.fixture(autouse=True)
def _no_env_file_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_FILE_VARIABLE, raising=False)


def test_the_working_directorys_env_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / ".env").write_text("SUPPORTBOT_LOG_LEVEL=DEBUG\nSEARCH_K=7\n")
    monkeypatch.chdir(tmp_path)

    settings = Settings.load()

    assert settings.log_level == "DEBUG" and settings.search_k == 7


def test_an_env_in_a_parent_directory_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / ".env").write_text("SUPPORTBOT_LOG_LEVEL=DEBUG\n")
    child = tmp_path / "project"
    child.mkdir()
    monkeypatch.chdir(child)

    assert Settings.load().log_level == "WARNING"


def test_the_named_file_is_read_instead_of_the_working_directorys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    (tmp_path / ".env").write_text("SUPPORTBOT_LOG_LEVEL=DEBUG\n")
    named = tmp_path / "etc" / "supportbot.env"
    named.parent.mkdir()
    named.write_text("SEARCH_K=9\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(ENV_FILE_VARIABLE, str(named))

    settings = Settings.load()

    assert settings.search_k == 9 and settings.log_level == "WARNING"


def test_the_environment_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / ".env").write_text("SEARCH_K=7\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEARCH_K", "3")

    assert Settings.load().search_k == 3


def test_a_plain_settings_object_reads_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / ".env").write_text("SEARCH_K=7\n")
    monkeypatch.chdir(tmp_path)

    assert Settings().search_k != 7


def test_a_named_file_that_is_missing_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    missing = tmp_path / "nope.env"
    monkeypatch.setenv(ENV_FILE_VARIABLE, str(missing))
    with pytest.raises(SettingsError, match="SUPPORTBOT_ENV_FILE"):
        Settings.load()

    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    result = subprocess.run(
        [str(Path(sys.executable).with_name("supportbot")), "workspace", "list"],
        env={**env, ENV_FILE_VARIABLE: str(missing)},
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {ENV_FILE_VARIABLE}={missing}: there is no such file"


def test_env_example_documents_every_setting():
    example = (REPO / ".env.example").read_text()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        choices = list(getattr(alias, "choices", [])) or [name.upper()]
        primary, *fallbacks = [str(c) for c in choices]
        assert re.search(rf"(?m)^#?\s*{primary}=", example), f"{primary} is not in .env.example"
        for other in fallbacks:
            assert other in example, f"{other} (read for {primary}) is not in .env.example"
    assert ENV_FILE_VARIABLE in example
