"""Deleting a workspace leaves nothing of it in ANY table, including tables added later.

``tests/test_workspace_delete.py`` checks the kinds of rows it knows by name. This module does
not name any table: it reflects the whole database (``MetaData.reflect``) after the delete and
checks every row of every table (``alembic_version`` aside) in two ways:

- **markers**: no value of any text or JSON column mentions the workspace's name, its Slack
  team, Enterprise Grid org or Discord guild, its DM channel or its tenant (as a whole token:
  ``acme2`` and ``acm`` are other workspaces, seeded too and kept);
- **row diff**: every table holds exactly the rows it held before the workspace was created,
  so rows that carry no marker (a rating keyed only by its answer's integer id, a token stored
  encrypted, a hashed user id) are caught too, and so is a neighbour's row deleted by mistake.

Why this covers a table added later without a purge rule: both checks take their list of
tables from the database itself at the time of the check, so a new table is checked as soon as
a migration or ``create_all`` makes it, and any row of the deleted workspace left in it fails
the test (the marker check if it names the workspace, the diff if it holds only ids). The one
thing reflection cannot do is seed the new table: a feature that adds a table must make
``seed`` write a row into it. ``test_an_unpurged_table_is_detected`` proves the detection with
two such tables created on the spot, one keyed by name and one by an answer id.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.engine import Engine

from bot.handoff import EscalationTarget, HandoffEvent, HandoffReason
from bot.slack.prompts import PromptStore, SuggestedPrompt
from console.users import ConsoleUsers
from supportbot.app import App
from tests.test_workspace_delete import (  # noqa: F401
    NOW,
    Seeded,
    app,
    database,
    identities,
    seed,
)

IGNORED_TABLES = {"alembic_version"}

Snapshot = dict[str, Counter[tuple[str, ...]]]


def seed_all(app: App, name: str, code: str, tmp_path: Path) -> Seeded:  # noqa: F811
    """``seed``, plus the kinds of rows it does not write: a teammate's reference answer."""
    seeded = seed(app, name, code, tmp_path)
    app.feedback.record_reference(
        seeded.disliked_id,
        workspace=name,
        text=f"Use code {code} only for refunds.",
        agrees=False,
        platform="slack",
        event_id=f"{name}-ref1",
        event_at=NOW,
        author_id=f"U-teammate-{name}",
    )
    PromptStore(app.engine).set(name, [SuggestedPrompt(f"{name} refunds", f"Refund code {code}?")])
    handoffs = app.conversations.handoffs
    handoffs.set_target(name, EscalationTarget(slack_usergroups=(f"S{code.upper()}000",)))
    opened = handoffs.request(
        name,
        platform="slack",
        team_id=f"T-{name}",
        channel_id=f"C-{name}",
        thread_id="1700000000.000100",
        asker_id=f"slack:T-{name}:U-asker",
        reason=HandoffReason.NOT_FOUND,
        target=f"@S{code.upper()}000",
        interaction_id=seeded.disliked_id,
    )
    handoffs.mark(name, opened.id, HandoffEvent.NOTIFIED, at=NOW)
    users = ConsoleUsers(app.engine)
    lead = users.slack_user(
        email=f"lead@{name}.example", slack_user_id=f"U-lead-{name}", workspace=name
    )
    users.start_session(lead, timedelta(hours=1))
    return seeded


def markers(app: App, name: str) -> list[str]:  # noqa: F811
    """What identifies workspace ``name`` in a row: its name, identities and tenant."""
    tenant = app.registry.get(name).tenant
    return [name, *(external_id for _, external_id in identities(name)), f"DM-{name}", tenant]


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return None


def _key(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return _text(value) if _text(value) is not None else repr(value)


def _rows(engine: Engine) -> Iterator[tuple[str, list[str], list[tuple[Any, ...]]]]:
    """Every table of the database as it is now (reflected, not from the models)."""
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            if table.name in IGNORED_TABLES:
                continue
            rows = [tuple(r) for r in connection.execute(select(table))]
            yield table.name, [c.name for c in table.columns], rows


def snapshot(engine: Engine) -> Snapshot:
    """Every row of every table, as a multiset of printable tuples."""
    return {
        name: Counter(tuple(_key(v) for v in row) for row in rows)
        for name, _, rows in _rows(engine)
    }


def marked(engine: Engine, words: list[str]) -> dict[str, list[str]]:
    """``{table: ["column=value", ...]}`` for every value that mentions one of ``words``."""
    pattern = re.compile(
        r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?![\w])", re.UNICODE
    )
    hits: dict[str, list[str]] = {}
    for name, columns, rows in _rows(engine):
        for row in rows:
            for column, value in zip(columns, row, strict=True):
                text = _text(value)
                if text is not None and pattern.search(text):
                    hits.setdefault(name, []).append(f"{column}={text[:80]!r}")
    return hits


def changes(before: Snapshot, after: Snapshot) -> dict[str, dict[str, int]]:
    """Per table, how many rows are left over and how many are missing since ``before``."""
    out: dict[str, dict[str, int]] = {}
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name, Counter()), after.get(name, Counter())
        extra, missing = sum((new - old).values()), sum((old - new).values())
        if extra or missing:
            out[name] = {"left over": extra, "missing": missing}
    return out


def test_nothing_of_a_deleted_workspace_is_left_in_any_table(app: App, tmp_path: Path) -> None:  # noqa: F811
    seed_all(app, "acme2", "QW-9021", tmp_path)
    seed_all(app, "acm", "PL-3358", tmp_path)
    before = snapshot(app.engine)
    acme = seed_all(app, "acme", "ZX-4417", tmp_path)
    words = markers(app, acme.name)
    # Not vacuous: acme's rows are in many tables, and the checks see them.
    seeded = changes(before, snapshot(app.engine))
    named = marked(app.engine, words)
    assert len(seeded) >= 16 and len(named) >= 12, (seeded, named)
    assert {"rating", "rating_event", "reference_answer", "workspace"} <= seeded.keys(), seeded
    assert not marked(app.engine, ["acme3"])  # the token match is exact

    app.knowledge.delete_workspace(acme.name)

    assert marked(app.engine, words) == {}
    assert changes(before, snapshot(app.engine)) == {}


def test_an_unpurged_table_is_detected(app: App, tmp_path: Path) -> None:  # noqa: F811
    """A table that no purge rule knows, as a later feature could add: both checks fail."""
    seed_all(app, "acme2", "QW-9021", tmp_path)
    future = MetaData()
    notes = Table(
        "future_note",
        future,
        Column("id", Integer, primary_key=True),
        Column("workspace", String),
        Column("body", String),
    )
    votes = Table(
        "future_vote",
        future,
        Column("id", Integer, primary_key=True),
        Column("interaction_id", Integer),
    )
    future.create_all(app.engine)
    with app.engine.begin() as connection:
        connection.execute(insert(notes).values(workspace="acme2", body="a neighbour's note"))
    before = snapshot(app.engine)
    acme = seed_all(app, "acme", "ZX-4417", tmp_path)
    words = markers(app, acme.name)
    with app.engine.begin() as connection:
        connection.execute(insert(notes).values(workspace="acme", body="pinned"))
        connection.execute(insert(votes).values(interaction_id=acme.liked_id))

    app.knowledge.delete_workspace(acme.name)

    assert marked(app.engine, words) == {"future_note": ["workspace='acme'"]}
    assert changes(before, snapshot(app.engine)) == {
        "future_note": {"left over": 1, "missing": 0},
        "future_vote": {"left over": 1, "missing": 0},
    }


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_the_checks_see_a_neighbours_row_deleted_by_mistake(app: App, tmp_path: Path) -> None:  # noqa: F811
    """The diff also fails when a delete reaches too far (here: by hand, into acme2's rows)."""
    seed_all(app, "acme2", "QW-9021", tmp_path)
    before = snapshot(app.engine)
    acme = seed_all(app, "acme", "ZX-4417", tmp_path)
    app.knowledge.delete_workspace(acme.name)
    metadata = MetaData()
    metadata.reflect(app.engine)
    signal = metadata.tables["signal"]
    with app.engine.begin() as connection:
        connection.execute(signal.delete().where(signal.c.workspace == "acme2"))

    assert changes(before, snapshot(app.engine)) == {"signal": {"left over": 0, "missing": 1}}
