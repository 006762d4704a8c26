"""A workspace's bot settings: how each channel answers (:mod:`bot.channels`), where human
handoffs go (:mod:`feedback.handoffs`), and the prompts Slack's assistant panel suggests
(:mod:`bot.slack.prompts`); each written through its own store, as its CLI command writes it.

Channel modes are stored per platform team (a Slack team, a Discord guild), not per workspace:
a workspace's channels are those of the teams linked to it (its platform identities), and a
mode can be set only for a channel of one of those teams, never for another workspace's.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, false, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.channels import ChannelSettings
from bot.decide import ChannelMode
from bot.handoff import (
    EscalationTarget,
    HandoffError,
    check_slack_channel,
    check_slack_usergroup,
    check_snowflake,
)
from bot.models import ChannelSetting
from bot.slack.prompts import PromptError, PromptStore, SuggestedPrompt, parse_prompt
from console.errors import InvalidInputError
from feedback.handoffs import HandoffStore
from retrieval.workspaces import IdentityKind, WorkspaceRegistry

TEAM_PLATFORMS = {
    IdentityKind.SLACK_TEAM.value: "slack",
    IdentityKind.DISCORD_GUILD.value: "discord",
}
MODES = tuple(m.value for m in ChannelMode)


@dataclass(frozen=True, slots=True)
class Team:
    """A platform team linked to the workspace: ``platform`` slack|discord, its id."""

    platform: str
    team_id: str

    @property
    def key(self) -> str:
        """The form value that names it: ``platform:team_id``."""
        return f"{self.platform}:{self.team_id}"


@dataclass(frozen=True, slots=True)
class ChannelRow:
    platform: str
    team_id: str
    channel_id: str
    mode: str


def workspace_teams(registry: WorkspaceRegistry, workspace: str) -> list[Team]:
    info = registry.get(workspace)
    return [
        Team(TEAM_PLATFORMS[kind], external)
        for kind, external in info.identities
        if kind in TEAM_PLATFORMS
    ]


def channel_modes(engine: Engine, registry: WorkspaceRegistry, workspace: str) -> list[ChannelRow]:
    """The configured channels of the workspace's teams (unlisted channels: mention only)."""
    teams = workspace_teams(registry, workspace)
    where = (
        or_(
            *(
                and_(
                    col(ChannelSetting.platform) == t.platform,
                    col(ChannelSetting.team_id) == t.team_id,
                )
                for t in teams
            )
        )
        if teams
        else false()
    )
    with Session(engine) as session:
        rows = session.exec(
            select(ChannelSetting)
            .where(where)
            .order_by(col(ChannelSetting.platform), col(ChannelSetting.channel_id))
        ).all()
    return [ChannelRow(r.platform, r.team_id, r.channel_id, r.mode) for r in rows]


def set_channel_mode(
    engine: Engine,
    registry: WorkspaceRegistry,
    workspace: str,
    *,
    team: str,
    channel_id: str,
    mode: str,
) -> ChannelRow:
    """Set a channel's mode (``team``: a :attr:`Team.key` of this workspace), as
    ``supportbot channel mode`` does. Raises :class:`InvalidInputError`."""
    known = {t.key: t for t in workspace_teams(registry, workspace)}
    chosen_team = known.get(team)
    if chosen_team is None:
        raise InvalidInputError(f"{team!r} is not a Slack team or Discord server of {workspace}")
    channel = channel_id.strip()
    if not channel or len(channel) > 64 or not channel.isalnum():
        raise InvalidInputError(f"invalid channel id {channel_id!r}: letters and digits only")
    try:
        chosen = ChannelMode(mode)
    except ValueError as e:
        raise InvalidInputError(f"unknown mode {mode!r}: use {' or '.join(MODES)}") from e
    ChannelSettings(engine).set_mode(chosen_team.platform, chosen_team.team_id, channel, chosen)
    return ChannelRow(chosen_team.platform, chosen_team.team_id, channel, chosen.value)


# --- suggested prompts (Slack's assistant panel; bot.slack.prompts) ----------------------------


def suggested_prompts(engine: Engine, workspace: str) -> list[SuggestedPrompt]:
    """The workspace's own prompts; empty when it uses the defaults."""
    return PromptStore(engine).get(workspace)


def set_suggested_prompts(engine: Engine, workspace: str, text: str) -> list[SuggestedPrompt]:
    """Replace the prompts with ``text``'s lines, each ``title=message`` as in ``supportbot
    workspace prompts``; blank text goes back to the defaults. :class:`InvalidInputError`."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    store = PromptStore(engine)
    try:
        if not lines:
            store.clear(workspace)
            return []
        return store.set(workspace, [parse_prompt(line) for line in lines])
    except PromptError as e:
        raise InvalidInputError(str(e)) from e


# --- escalation target (human handoff; feedback.handoffs) --------------------------------------


def escalation_target(engine: Engine, workspace: str) -> EscalationTarget:
    return HandoffStore(engine, user_hash=_no_users).target(workspace)


def set_escalation_target(
    engine: Engine,
    workspace: str,
    *,
    slack_channels: str,
    slack_usergroups: str,
    discord_channel: str,
    discord_role: str,
) -> EscalationTarget:
    """Replace the target (ids separated by spaces or commas; all blank removes it), checked as
    ``supportbot workspace escalation`` checks them. :class:`InvalidInputError`."""
    try:
        target = EscalationTarget(
            slack_channels=tuple(check_slack_channel(v) for v in _ids(slack_channels)),
            slack_usergroups=tuple(check_slack_usergroup(v) for v in _ids(slack_usergroups)),
            discord_channel=_one(discord_channel, "channel"),
            discord_role=_one(discord_role, "role"),
        )
    except HandoffError as e:
        raise InvalidInputError(str(e)) from e
    HandoffStore(engine, user_hash=_no_users).set_target(workspace, target)
    return target


def _ids(text: str) -> list[str]:
    return list(dict.fromkeys(text.replace(",", " ").split()))


def _one(text: str, what: str) -> str | None:
    value = text.strip()
    return check_snowflake(value, what) if value else None


def _no_users(user_id: str) -> str:
    return user_id  # targets only: no user ids are hashed here
