"""Which workspace answers a direct message: a pure function of what is known about the user.

A DM carries no server, so the workspace cannot come from the message. It may only come from
a server the user shares with the bot (a user must never get answers from the knowledge of a
company they are not part of), or from the one workspace an operator opened to everyone
(``DISCORD_DM_WORKSPACE``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from retrieval.workspaces import WorkspaceInfo


class DmRouteKind(StrEnum):
    ROUTED = "routed"
    # Several shared servers map to different workspaces and the user has not chosen one.
    CHOOSE = "choose"
    # No shared server maps to a workspace and there is no public DM workspace.
    NONE = "none"


@dataclass(frozen=True, slots=True)
class DmRoute:
    kind: DmRouteKind
    workspace: WorkspaceInfo | None = None
    reason: str = ""
    # The workspaces to choose from (CHOOSE), by name.
    choices: list[str] = field(default_factory=list)


def route_direct_message(
    shared: Sequence[WorkspaceInfo],
    *,
    chosen: str | None,
    public: WorkspaceInfo | None,
) -> DmRoute:
    """Route a DM given the workspaces of the servers the user shares with the bot.

    ``chosen``: the user's remembered ``/workspace`` choice, honoured only while it is still
    one of ``shared``. ``public``: the workspace open to DMs from anyone.
    """
    unique = {w.name: w for w in shared}
    if len(unique) == 1:
        only = next(iter(unique.values()))
        return DmRoute(DmRouteKind.ROUTED, only, "the one shared server's workspace")
    if len(unique) > 1:
        if chosen in unique:
            return DmRoute(DmRouteKind.ROUTED, unique[chosen], "the user's /workspace choice")
        return DmRoute(
            DmRouteKind.CHOOSE,
            reason="several shared servers, no choice yet",
            choices=sorted(unique),
        )
    if public is not None:
        return DmRoute(DmRouteKind.ROUTED, public, "the public DM workspace")
    return DmRoute(DmRouteKind.NONE, reason="no shared server maps to a workspace")


def choose_message(route: DmRoute) -> str:
    """What the user is told when their DM cannot be routed (in English and Korean)."""
    if route.kind is DmRouteKind.CHOOSE:
        names = ", ".join(f"`{name}`" for name in route.choices)
        return (
            f"You share several servers with me, each with its own knowledge ({names}). "
            "Choose one with `/workspace`, then ask again.\n"
            f"여러 서버의 지식 공간({names})이 있습니다. `/workspace` 명령으로 하나를 고른 뒤 "
            "다시 질문해 주세요."
        )
    return (
        "I can only answer questions for servers we share, and none of them is set up yet. "
        "Ask in your company's server, or ask its admins to set me up.\n"
        "함께 있는 서버 중 설정된 곳이 없어 답변할 수 없습니다. 회사 서버에서 질문하시거나 "
        "관리자에게 설정을 요청해 주세요."
    )
