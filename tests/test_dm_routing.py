"""Routing a DM (no server) to a workspace: pure rules, then the same rules over the database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import discord
import pytest

from bot.discord.events import vote_of
from bot.routing import DmRouteKind, choose_message, route_direct_message
from retrieval.workspaces import IdentityKind, WorkspaceInfo
from supportbot.app import App

CREATED = datetime(2026, 11, 1, tzinfo=UTC)


def _workspace(name: str) -> WorkspaceInfo:
    return WorkspaceInfo(
        name=name, tenant=f"ws_{name}", embedding_model="m", created_at=CREATED, identities=[]
    )


ACME, GLOBEX, PUBLIC = _workspace("acme"), _workspace("globex"), _workspace("public")


@pytest.mark.parametrize(
    ("shared", "chosen", "public", "kind", "workspace"),
    [
        ([ACME], None, None, DmRouteKind.ROUTED, "acme"),
        ([ACME, ACME], None, None, DmRouteKind.ROUTED, "acme"),  # two servers, one workspace
        ([ACME], "globex", None, DmRouteKind.ROUTED, "acme"),  # a stale choice is ignored
        ([ACME, GLOBEX], None, None, DmRouteKind.CHOOSE, None),
        ([ACME, GLOBEX], "globex", None, DmRouteKind.ROUTED, "globex"),
        ([ACME, GLOBEX], "initech", PUBLIC, DmRouteKind.CHOOSE, None),  # never the public one
        ([], None, PUBLIC, DmRouteKind.ROUTED, "public"),
        ([], "acme", None, DmRouteKind.NONE, None),  # chose acme, but left its server
    ],
)
def test_route_direct_message(shared, chosen, public, kind, workspace):
    route = route_direct_message(shared, chosen=chosen, public=public)

    assert route.kind is kind
    assert (route.workspace.name if route.workspace else None) == workspace


def test_the_choice_message_names_the_choices_in_both_languages():
    route = route_direct_message([GLOBEX, ACME], chosen=None, public=None)

    text = choose_message(route)

    assert route.choices == ["acme", "globex"]
    assert "`acme`, `globex`" in text and "/workspace" in text and "다시 질문해" in text
    assert "none of them is set up" in choose_message(
        route_direct_message([], chosen=None, public=None)
    )


@pytest.mark.parametrize(
    ("emoji", "vote"),
    [("👍", 1), ("👎", -1), ("👍🏽", 1), ("👎🏿", -1), ("✅", None), ("thumbsup", None)],
)
def test_only_thumbs_count_as_votes(emoji: str, vote: int | None):
    assert vote_of(discord.PartialEmoji(name=emoji)) == vote


def test_custom_emoji_named_like_a_thumb_is_not_a_vote():
    assert vote_of(discord.PartialEmoji(name="👍", id=123456789012345678)) is None


def _with_knowledge(app: App, name: str, guild: str, folder: Path) -> None:
    app.knowledge.create_workspace(name, [(IdentityKind.DISCORD_GUILD, guild)])
    doc = folder / f"{name}.md"
    doc.write_text(f"# {name}\n\nRefunds take 5 days at {name}.\n", encoding="utf-8")
    app.knowledge.ingest_paths(name, [doc])


def test_service_routes_by_shared_servers_and_remembers_the_choice(
    app: App, ws_name: str, tmp_path: Path
):
    service = app.conversations
    _with_knowledge(app, f"{ws_name}-a", "9100", tmp_path)
    _with_knowledge(app, f"{ws_name}-b", "9200", tmp_path)
    # A server mapped to a workspace without knowledge is no choice: it could not answer.
    app.knowledge.create_workspace(f"{ws_name}-empty", [(IdentityKind.DISCORD_GUILD, "9300")])

    assert service.mapped_teams("discord", ["9100", "9200", "9300", "9400"]) == [
        "9100",
        "9200",
        "9300",
    ]
    one = service.route_direct_message("discord", "77", ["9100", "9300"], None)
    assert one.kind is DmRouteKind.ROUTED and one.workspace.name == f"{ws_name}-a"
    both = service.route_direct_message("discord", "77", ["9100", "9200", "9300"], None)
    assert both.kind is DmRouteKind.CHOOSE
    assert both.choices == [f"{ws_name}-a", f"{ws_name}-b"]
    only_empty = service.route_direct_message("discord", "77", ["9300"], None)
    assert only_empty.kind is DmRouteKind.NONE

    service.choose_direct_message_workspace("discord", "77", f"{ws_name}-b")
    service.choose_direct_message_workspace("discord", "77", f"{ws_name}-b")  # idempotent

    chosen = service.route_direct_message("discord", "77", ["9100", "9200"], None)
    assert chosen.workspace is not None and chosen.workspace.name == f"{ws_name}-b"
    other_user = service.route_direct_message("discord", "78", ["9100", "9200"], None)
    assert other_user.kind is DmRouteKind.CHOOSE
    assert service.workspaces_of_teams("discord", ["9200", "9100", "9200", "9300"]) == [
        f"{ws_name}-a",
        f"{ws_name}-b",
    ]


def test_service_falls_back_to_the_public_dm_workspace(app: App, ws_name: str):
    app.registry.create(f"{ws_name}-pub", embedding_model="m", identities=[])
    app.registry.create(
        f"{ws_name}-dflt",
        embedding_model="m",
        identities=[(IdentityKind.DISCORD_DM_DEFAULT, "default")],
    )

    by_setting = app.conversations.route_direct_message("discord", "5", [], f"{ws_name}-pub")
    by_registry = app.conversations.route_direct_message("discord", "5", [], None)

    assert by_setting.workspace is not None and by_setting.workspace.name == f"{ws_name}-pub"
    assert by_registry.workspace is not None and by_registry.workspace.name == f"{ws_name}-dflt"
