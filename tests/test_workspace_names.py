"""Workspace names: full-match validation, NFC, and no two workspaces that look the same.

Shared case (security/README.md): "``acme`` followed by a newline is accepted as a second
workspace". The kind: any name that prints like an existing one, or carries characters that do
not print at all. Registry tests run on SQLite and PostgreSQL (the ``engine`` fixture); the CLI
tests run ``supportbot.cli.main`` in-process, as the console script does.
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main
from sqlalchemy.engine import Engine

from retrieval.errors import RetrievalError, UnknownWorkspaceError
from retrieval.workspace_names import (
    InvalidWorkspaceNameError,
    normalize_workspace_name,
    workspace_skeleton,
)
from retrieval.workspaces import (
    Workspace,
    WorkspaceExistsError,
    WorkspaceNameTooSimilarError,
    WorkspaceRegistry,
)
from supportbot import cli

HANGUL = "고객지원"  # "customer support"
HANGUL_DECOMPOSED = unicodedata.normalize("NFD", HANGUL)  # the same name typed as jamo

# Look-alikes of an existing "acme": (name, what makes it look alike).
LOOK_ALIKES = [
    ("ACME", "upper case"),
    ("Acme", "title case"),
    ("ａｃｍｅ", "full-width forms"),
    ("ＡＣＭＥ", "full-width upper case"),
    ("ac\u200bme", "zero-width space"),
    ("acme\u200d", "zero-width joiner"),
    ("\ufeffacme", "byte-order mark"),
    ("ac\u00adme", "soft hyphen"),
    ("acme\u200f", "right-to-left mark"),
    ("acme\n", "trailing newline"),
    ("acme\r\n", "trailing CR LF"),
    (" acme", "leading space"),
    ("acme\u3000", "ideographic space"),
]


# --- the rules, as pure functions ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["acme", "acme2", "a", "ACME-support_2", "7eleven", "x" * 63, HANGUL, "고객-A_1"]
)
def test_valid_names_are_kept_as_typed(name: str) -> None:
    assert normalize_workspace_name(name) == name


def test_names_are_nfc_normalised() -> None:
    assert HANGUL_DECOMPOSED != HANGUL
    assert normalize_workspace_name(HANGUL_DECOMPOSED) == HANGUL


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("acme\n", "U+000A"),  # the shared case: `$` let a trailing newline through
        ("acme\r", "U+000D"),
        ("acme\t", "U+0009"),
        ("ac\u200bme", "U+200B ZERO WIDTH SPACE"),
        ("ａｃｍｅ", "U+FF41 FULLWIDTH LATIN SMALL LETTER A"),
        ("\u0430\u0441me", "U+0430 CYRILLIC SMALL LETTER A"),  # Cyrillic а, с
        ("\u03bfps", "U+03BF GREEK SMALL LETTER OMICRON"),
        ("caf\u00e9", "U+00E9 LATIN SMALL LETTER E WITH ACUTE"),
        ("\u3131\u3134", "U+3131 HANGUL LETTER KIYEOK"),  # compatibility jamo, not syllables
        ("\u3164acme", "U+3164 HANGUL FILLER"),  # an invisible Hangul letter
        ("has space", "U+0020 SPACE"),
        ("../etc", "'.'"),
        ("-leading", "starts with '-'"),
        ("_leading", "starts with '_'"),
        ("", "empty"),
        ("x" * 64, "64 characters long"),
    ],
)
def test_invalid_names_name_the_character_and_the_rule(name: str, named: str) -> None:
    with pytest.raises(InvalidWorkspaceNameError) as caught:
        normalize_workspace_name(name)
    message = str(caught.value)
    assert named in message
    assert "ASCII letters" in message and "Hangul syllables" in message
    assert "\n" not in message  # one line, with the bad character shown escaped


@pytest.mark.parametrize(("name", "why"), LOOK_ALIKES)
def test_look_alikes_have_the_same_skeleton(name: str, why: str) -> None:
    assert workspace_skeleton(name) == workspace_skeleton("acme"), why


@pytest.mark.parametrize(
    ("name", "existing"),
    [
        ("acme1", "acmel"),  # digit one, small L
        ("acmeI", "acmel"),  # capital i
        ("acme0", "acmeo"),  # digit zero, letter o
        ("ACME0", "acmeO"),
        ("rnodern", "modem"),  # r + n reads as m
        ("vvorld", "world"),
        ("ＩＩ", "ll"),  # full-width capital i
    ],
)
def test_ascii_look_alikes_share_a_skeleton(name: str, existing: str) -> None:
    assert workspace_skeleton(name) == workspace_skeleton(existing)


def test_an_ascii_look_alike_of_an_existing_workspace_is_refused(engine: Engine) -> None:
    registry = WorkspaceRegistry(engine)
    registry.create("acme1", embedding_model="m")
    for name in ("acmel", "acmeI", "ACMEl"):
        with pytest.raises(WorkspaceNameTooSimilarError, match="'acme1'"):
            registry.create(name, embedding_model="m")
    registry.create("acme2", embedding_model="m")
    assert [w.name for w in registry.list()] == ["acme1", "acme2"]


def test_different_names_have_different_skeletons() -> None:
    names = ["acme", "acme2", "acm", "acme-2", "acme_2", HANGUL, "고객"]
    assert len({workspace_skeleton(n) for n in names}) == len(names)


# --- the registry -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "why"), LOOK_ALIKES)
def test_a_look_alike_of_an_existing_workspace_is_refused_naming_it(
    engine: Engine, name: str, why: str
) -> None:
    registry = WorkspaceRegistry(engine)
    registry.create("acme", embedding_model="m")
    with pytest.raises(WorkspaceExistsError) as caught:
        registry.create(name, embedding_model="m")
    assert "'acme'" in str(caught.value), why
    assert "\n" not in str(caught.value)
    assert [w.name for w in registry.list()] == ["acme"]


def test_cyrillic_look_alike_is_refused_as_not_ascii(engine: Engine) -> None:
    registry = WorkspaceRegistry(engine)
    registry.create("acme", embedding_model="m")
    with pytest.raises(InvalidWorkspaceNameError, match=r"CYRILLIC SMALL LETTER A.*ASCII"):
        registry.create("\u0430\u0441me", embedding_model="m")
    assert [w.name for w in registry.list()] == ["acme"]


def test_the_existing_name_itself_is_already_taken(engine: Engine) -> None:
    registry = WorkspaceRegistry(engine)
    registry.create("acme", embedding_model="m")
    with pytest.raises(WorkspaceExistsError, match="'acme' already exists"):
        registry.create("acme", embedding_model="m")


def test_look_alike_is_refused_whichever_was_first(engine: Engine) -> None:
    registry = WorkspaceRegistry(engine)
    registry.create("ACME", embedding_model="m")
    with pytest.raises(WorkspaceNameTooSimilarError, match="'ACME'"):
        registry.create("acme", embedding_model="m")


def test_prefixes_and_near_names_are_distinct_workspaces(engine: Engine) -> None:
    registry = WorkspaceRegistry(engine)
    for name in ["acme", "acme2", "acm", "acme-eu"]:
        registry.create(name, embedding_model="m")
    assert [w.name for w in registry.list()] == ["acm", "acme", "acme-eu", "acme2"]


def test_korean_names_are_nfc_and_unique(engine: Engine) -> None:
    registry = WorkspaceRegistry(engine)
    created = registry.create(HANGUL_DECOMPOSED, embedding_model="m")
    assert created.name == HANGUL
    assert registry.get(HANGUL_DECOMPOSED).name == HANGUL
    with pytest.raises(WorkspaceExistsError, match=f"'{HANGUL}' already exists"):
        registry.create(HANGUL, embedding_model="m")
    registry.create("고객", embedding_model="m")  # a prefix is another name
    assert sorted(w.name for w in registry.list()) == sorted(["고객", HANGUL])


@pytest.mark.parametrize("typed", ["ACME", "ａｃｍｅ", "ac\u200bme", "acme\n"])
def test_lookups_match_exactly_and_point_to_the_look_alike(engine: Engine, typed: str) -> None:
    registry = WorkspaceRegistry(engine)
    registry.create("acme", embedding_model="m")
    with pytest.raises(UnknownWorkspaceError) as caught:
        registry.get(typed)
    message = str(caught.value)
    assert "\n" not in message
    assert "did you mean 'acme'" in message or "invalid workspace name" in message


def test_two_look_alikes_created_at_once_leave_one(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both pass the check before either commits (simulated): the later one gives way."""
    registry = WorkspaceRegistry(engine)
    registry.create("acme", embedding_model="m")
    monkeypatch.setattr(WorkspaceRegistry, "_refuse_look_alike", staticmethod(lambda *_: None))
    with pytest.raises(WorkspaceNameTooSimilarError, match=r"'acme'.*same moment"):
        registry.create("ACME", embedding_model="m")
    assert [w.name for w in registry.list()] == ["acme"]


def test_a_name_an_older_version_accepted_can_still_be_deleted(engine: Engine) -> None:
    from sqlmodel import Session

    with Session(engine) as session:  # as the old `$` pattern let it in
        session.add(Workspace(name="acme\n", tenant="ws_old", embedding_model="m", created_at=_t()))
        session.commit()
    registry = WorkspaceRegistry(engine)
    with pytest.raises(UnknownWorkspaceError):
        registry.get("acme\n")
    assert registry.delete("acme\n")["workspace"] == 1
    assert registry.list() == []


def _t() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 1, 1, tzinfo=UTC)


# --- the CLI: every --workspace goes through the same validation --------------------------------


def _commands_with_workspace_option() -> Iterator[tuple[list[str], list[str]]]:
    """(command path, the option's names) of every command that takes a workspace option."""

    def walk(command: Any, path: list[str]) -> Iterator[tuple[list[str], list[str]]]:
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, [*path, name])
        for param in getattr(command, "params", []):
            if "--workspace" in getattr(param, "opts", []):
                yield path, param.opts

    yield from walk(typer.main.get_command(cli.app), [])


def _run_cli(monkeypatch: pytest.MonkeyPatch, capsys: Any, args: list[str]) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["supportbot", *args])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    captured = capsys.readouterr()
    assert captured.out == ""
    return int(exited.value.code or 0), captured.err


def test_the_walk_finds_the_workspace_commands() -> None:
    paths = {" ".join(p) for p, _ in _commands_with_workspace_option()}
    assert {"ingest", "search", "ask", "chat", "demo", "feedback report", "source add"} <= paths


@pytest.mark.parametrize("bad", ["acme\n", "ac\u200bme", "ａｃｍｅ", "\u0430\u0441me"])
def test_every_workspace_option_refuses_a_bad_name_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Any, bad: str
) -> None:
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    commands = list(_commands_with_workspace_option())
    for path, _ in commands:
        code, err = _run_cli(monkeypatch, capsys, [*path, "--workspace", bad])
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2, (path, err)
        assert len(lines) == 1, (path, err)
        assert lines[0].startswith("error:") and "invalid workspace name" in lines[0], (path, err)
    # Nothing was created: the database was never opened.
    assert not (tmp_path / "supportbot.db").exists()


def test_workspace_create_refuses_a_look_alike_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Any
) -> None:
    """No Weaviate needed: the registry refuses before any tenant is made."""
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite'}")
    monkeypatch.chdir(tmp_path)
    registry = WorkspaceRegistry(_engine(tmp_path / "db.sqlite"))
    registry.create("acme", embedding_model="m")
    for typed in ["ACME", "ａｃｍｅ", "acme\n"]:
        code, err = _run_cli(monkeypatch, capsys, ["workspace", "create", typed])
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 1 and len(lines) == 1, err
        assert "'acme'" in lines[0], err
    code, err = _run_cli(monkeypatch, capsys, ["feedback", "report", "--workspace", "ACME"])
    assert code == 1 and "did you mean 'acme'" in err


def _engine(path: Any) -> Engine:
    from supportbot.database import make_engine

    return make_engine(f"sqlite:///{path}")


def test_retrieval_error_is_the_base(engine: Engine) -> None:
    """The CLI and the bots catch RetrievalError: every name error is one."""
    assert issubclass(InvalidWorkspaceNameError, RetrievalError)
    assert issubclass(WorkspaceNameTooSimilarError, RetrievalError)
