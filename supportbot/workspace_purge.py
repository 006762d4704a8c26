"""Everything a workspace owns outside the registry, and how it is deleted with it.

One place lists it, so that what a deleted workspace leaves behind can be checked at a glance:

==========================  =========================================================
rows                        how they belong to the workspace
==========================  =========================================================
interactions (answers)      ``interaction.workspace`` = its name
ratings, rating events      their interaction is one of its answers
signals (read from chat)    ``signal.workspace`` = its name, or their interaction is one
                            of its answers
reference answers           ``reference_answer.workspace`` = its name, or their
(teammates' replies)        interaction is one of its answers
verified answers            ``verified_answer.workspace`` = its name
handoffs, escalation        ``handoff.workspace`` / ``escalation_target.workspace`` = its
targets                     name
evaluation runs, FAQ        ``eval_run.workspace`` / ``gap_draft.workspace`` = its name
drafts
DM choices                  ``directmessagechoice.workspace`` = its name
console grants              ``console_grant.workspace`` = its name; then console users left
                            with no grant at all, and their sessions
bot replies                 their interaction is one of its answers, or their team is
                            one of its teams (Slack team, Discord guild)
channel settings            their team is one of its teams
Slack installations         their team is one of its Slack teams, or their Enterprise
                            Grid org is its org (teams of the org that another
                            workspace maps by team id are left to that workspace)
sources, credentials, sync  ``sync_source.workspace_id`` = its id (credentials are a
runs, documents, cursors    column of the source; runs and documents hang off sources)
assistant prompts           ``assistant_prompt.workspace_id`` = its id
==========================  =========================================================

:class:`WorkspaceOwnedRows` is the :class:`~retrieval.workspaces.OwnedRows` the registry calls
inside its own transaction (see :mod:`retrieval.workspaces` for the order of the whole
operation and why names are the key). Children go before parents, so the deletes hold on
PostgreSQL and on SQLite whatever its foreign-key setting; every match is exact (``=`` /
``IN``), so workspaces whose names are prefixes of each other keep their rows. Deleting a
workspace's Slack installations forgets its bot tokens: a workspace created again for that
Slack team needs the app installed again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, delete, false, or_, select
from sqlalchemy.engine import CursorResult
from sqlmodel import Session, col

from bot.models import BotReply, ChannelSetting, DirectMessageChoice
from bot.slack.models import SlackBotInstallation, SlackInstallation
from bot.slack.prompts import AssistantPrompt
from console.models import ConsoleGrant, ConsoleSession, ConsoleUser, ReviewMark
from feedback.handoffs import EscalationTargetRow, Handoff
from feedback.learning_models import EvalRun, GapDraft
from feedback.models import (
    Interaction,
    Rating,
    RatingEvent,
    ReferenceAnswer,
    Signal,
    VerifiedAnswer,
)
from retrieval.workspaces import IdentityKind, PlatformIdentity, WorkspaceKeys
from sync.models import SyncDocument, SyncRun, SyncSource

# The platform each kind of team identity speaks for (bot rows are keyed by platform + team).
_TEAM_PLATFORM = {
    IdentityKind.SLACK_TEAM.value: "slack",
    IdentityKind.DISCORD_GUILD.value: "discord",
}


class WorkspaceOwnedRows:
    """Deletes a workspace's rows of the feedback, bot and sync packages (see module doc)."""

    def delete(self, session: Session, keys: WorkspaceKeys) -> dict[str, int]:
        """Delete them in ``session``; the count of rows per kind (the caller commits)."""
        counts: dict[str, int] = {}
        answers = select(col(Interaction.id)).where(col(Interaction.workspace) == keys.name)
        teams = [(_TEAM_PLATFORM[k], i) for k, i in keys.identities if k in _TEAM_PLATFORM]

        def run(label: str, statement: Any) -> None:
            result = session.execute(statement)
            assert isinstance(result, CursorResult)
            counts[label] = counts.get(label, 0) + max(result.rowcount, 0)

        # Bot replies point at answers without a foreign key: before the answers.
        run(
            "bot replies",
            delete(BotReply).where(
                or_(col(BotReply.interaction_id).in_(answers), _in_teams(BotReply, teams))
            ),
        )
        run(
            "rating events", delete(RatingEvent).where(col(RatingEvent.interaction_id).in_(answers))
        )
        run("ratings", delete(Rating).where(col(Rating.interaction_id).in_(answers)))
        run(
            "signals",
            delete(Signal).where(
                or_(col(Signal.workspace) == keys.name, col(Signal.interaction_id).in_(answers))
            ),
        )
        run(
            "reference answers",
            delete(ReferenceAnswer).where(
                or_(
                    col(ReferenceAnswer.workspace) == keys.name,
                    col(ReferenceAnswer.interaction_id).in_(answers),
                )
            ),
        )
        run(
            "verified answers",
            delete(VerifiedAnswer).where(col(VerifiedAnswer.workspace) == keys.name),
        )
        run("evaluation runs", delete(EvalRun).where(col(EvalRun.workspace) == keys.name))
        run("FAQ drafts", delete(GapDraft).where(col(GapDraft.workspace) == keys.name))
        run(
            "review marks",
            delete(ReviewMark).where(
                or_(
                    col(ReviewMark.workspace) == keys.name,
                    col(ReviewMark.interaction_id).in_(answers),
                )
            ),
        )
        run("handoffs", delete(Handoff).where(col(Handoff.workspace) == keys.name))
        run("console grants", delete(ConsoleGrant).where(col(ConsoleGrant.workspace) == keys.name))
        # A console user left with no workspace at all can see nothing: they go, with their
        # sessions (a user of other workspaces too keeps their account).
        granted = select(col(ConsoleGrant.user_id))
        orphans = select(col(ConsoleUser.id)).where(col(ConsoleUser.id).not_in(granted))
        run(
            "console sessions",
            delete(ConsoleSession).where(col(ConsoleSession.user_id).in_(orphans)),
        )
        run("console users", delete(ConsoleUser).where(col(ConsoleUser.id).not_in(granted)))
        run(
            "escalation targets",
            delete(EscalationTargetRow).where(col(EscalationTargetRow.workspace) == keys.name),
        )
        run("answers", delete(Interaction).where(col(Interaction.workspace) == keys.name))
        run(
            "DM choices",
            delete(DirectMessageChoice).where(col(DirectMessageChoice.workspace) == keys.name),
        )
        run("channel settings", delete(ChannelSetting).where(_in_teams(ChannelSetting, teams)))
        for table in (SlackInstallation, SlackBotInstallation):
            run("Slack installations", delete(table).where(self._slack_rows(session, table, keys)))
        if keys.id is not None:
            sources = select(col(SyncSource.id)).where(col(SyncSource.workspace_id) == keys.id)
            run(
                "synced documents",
                delete(SyncDocument).where(col(SyncDocument.source_id).in_(sources)),
            )
            run("sync runs", delete(SyncRun).where(col(SyncRun.source_id).in_(sources)))
            run("sources", delete(SyncSource).where(col(SyncSource.workspace_id) == keys.id))
            run(
                "assistant prompts",
                delete(AssistantPrompt).where(col(AssistantPrompt.workspace_id) == keys.id),
            )
        return counts

    @staticmethod
    def _slack_rows(
        session: Session,
        table: type[SlackInstallation] | type[SlackBotInstallation],
        keys: WorkspaceKeys,
    ) -> ColumnElement[bool]:
        """Installations of the workspace's Slack teams and of its Enterprise Grid orgs."""
        team_ids = [i for k, i in keys.identities if k == IdentityKind.SLACK_TEAM.value]
        orgs = [i for k, i in keys.identities if k == IdentityKind.SLACK_ENTERPRISE.value]
        if not team_ids and not orgs:
            return false()
        others = select(col(PlatformIdentity.external_id)).where(
            col(PlatformIdentity.kind) == IdentityKind.SLACK_TEAM.value
        )
        if keys.id is not None:
            others = others.where(col(PlatformIdentity.workspace_id) != keys.id)
        return or_(
            col(table.team_id).in_(team_ids),
            and_(
                col(table.enterprise_id).in_(orgs),
                or_(col(table.team_id).is_(None), col(table.team_id).not_in(others)),
            ),
        )


def _in_teams(
    table: type[BotReply] | type[ChannelSetting], teams: list[tuple[str, str]]
) -> ColumnElement[bool]:
    if not teams:
        return false()
    return or_(
        *(
            and_(col(table.platform) == platform, col(table.team_id) == team)
            for platform, team in teams
        )
    )
