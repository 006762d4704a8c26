"""Handoffs to people, stored: each workspace's escalation target and every handoff's times.

Two tables (migration ``0007_handoffs``):

- ``escalation_target``: one row per workspace, who its handoffs go to
  (:class:`bot.handoff.EscalationTarget`: Slack channels and user groups, a Discord channel
  and role), set with ``supportbot workspace escalation``;
- ``handoff``: one row per handoff, tied to the conversation (platform, team, channel,
  thread) and, when there was one, to the answer (interaction) it followed; why it happened
  (``asked`` / ``not_found`` / ``button``), who was called (a description of the target, ids
  only) and when it was requested, notified, first replied to by a person and resolved (UTC).

Every call takes the workspace (tenant) first and reads or writes only its rows: a thread of
another workspace is never seen, even with the same channel and thread ids. At most one
handoff per thread is open (a partial unique index), so a second request in the same thread,
or the same request delivered to two replicas, finds the open one instead of calling people
twice. Askers are stored as keyed hashes (as answers are), compared by hash.
"""

from __future__ import annotations

import statistics
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from bot.handoff import (
    EscalationTarget,
    HandoffEvent,
    HandoffReason,
    HandoffTimes,
    ThreadHandoff,
    advance,
)
from feedback.errors import FeedbackError

_OPEN = text("resolved_at IS NULL")


class EscalationTargetRow(SQLModel, table=True):
    """A workspace's escalation target (lists as JSON arrays of ids)."""

    __tablename__ = "escalation_target"
    __table_args__ = (UniqueConstraint("workspace"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace: str
    slack_channels: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    slack_usergroups: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    discord_channel: str | None = None
    discord_role: str | None = None
    updated_at: datetime


class Handoff(SQLModel, table=True):
    """One handoff of a conversation to people (see the module doc)."""

    __table_args__ = (
        Index(
            "uq_handoff_open_thread",
            "workspace",
            "platform",
            "team_id",
            "channel_id",
            "thread_id",
            unique=True,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace: str = Field(index=True)
    interaction_id: int | None = Field(
        default=None, foreign_key="interaction.id", ondelete="SET NULL"
    )
    platform: str
    team_id: str
    channel_id: str
    thread_id: str
    asker_hash: str = ""
    reason: str
    target: str = ""
    # The bot's message in the thread telling the asker who was called (its Resolved button).
    notice_message_id: str = ""
    requested_at: datetime
    notified_at: datetime | None = None
    first_human_reply_at: datetime | None = None
    resolved_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class HandoffRequest:
    """The open handoff of a thread after :meth:`HandoffStore.request`; ``created``: False when
    one was already open (nobody should be called again)."""

    id: int
    created: bool
    times: HandoffTimes
    notice_message_id: str


@dataclass(frozen=True, slots=True)
class HandoffSummary:
    """A workspace's handoffs for the report: how many, how many a person replied to and were
    resolved, and the median time from request to first human reply (seconds; None when no
    handoff was replied to)."""

    count: int
    replied: int
    resolved: int
    median_seconds_to_first_human_reply: float | None


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value  # SQLite: naive UTC


def _times(row: Handoff) -> HandoffTimes:
    requested = _utc(row.requested_at)
    assert requested is not None
    return HandoffTimes(
        requested_at=requested,
        notified_at=_utc(row.notified_at),
        first_human_reply_at=_utc(row.first_human_reply_at),
        resolved_at=_utc(row.resolved_at),
    )


class HandoffStore:
    """Escalation targets and handoffs (see the module doc). Thread-safe.

    ``user_hash``: the keyed hash answers use for user ids (``SqlFeedbackStore.user_hash``),
    so the asker is stored and compared the same way. ``clock``: now, timezone-aware.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        user_hash: Callable[[str], str],
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._engine = engine
        self._hash = user_hash
        self._clock = clock or (lambda: datetime.now(UTC))
        self._sqlite_lock = threading.Lock() if engine.dialect.name == "sqlite" else None

    def _writing(self) -> AbstractContextManager[object]:
        return self._sqlite_lock if self._sqlite_lock is not None else nullcontext()

    # --- escalation targets ------------------------------------------------------------------

    def target(self, workspace: str) -> EscalationTarget:
        """The workspace's target; an empty one when none was set."""
        with Session(self._engine) as session:
            row = self._target_row(session, workspace)
        if row is None:
            return EscalationTarget()
        return EscalationTarget(
            slack_channels=tuple(row.slack_channels or ()),
            slack_usergroups=tuple(row.slack_usergroups or ()),
            discord_channel=row.discord_channel,
            discord_role=row.discord_role,
        )

    def set_target(self, workspace: str, target: EscalationTarget) -> None:
        """Replace the workspace's target (an empty target removes it)."""
        with self._writing(), Session(self._engine) as session:
            row = self._target_row(session, workspace)
            if target.empty:
                if row is not None:
                    session.delete(row)
                    session.commit()
                return
            row = row or EscalationTargetRow(workspace=workspace, updated_at=self._clock())
            row.slack_channels = list(target.slack_channels)
            row.slack_usergroups = list(target.slack_usergroups)
            row.discord_channel = target.discord_channel
            row.discord_role = target.discord_role
            row.updated_at = self._clock()
            session.add(row)
            session.commit()

    @staticmethod
    def _target_row(session: Session, workspace: str) -> EscalationTargetRow | None:
        return session.exec(
            select(EscalationTargetRow).where(EscalationTargetRow.workspace == workspace)
        ).first()

    # --- handoffs ----------------------------------------------------------------------------

    def request(
        self,
        workspace: str,
        *,
        platform: str,
        team_id: str,
        channel_id: str,
        thread_id: str,
        asker_id: str,
        reason: HandoffReason,
        target: str,
        interaction_id: int | None = None,
        at: datetime | None = None,
    ) -> HandoffRequest:
        """Open a handoff of the thread, or find the one already open there.

        ``asker_id``: the platform user (``platform:team:user``, as answers key users);
        ``target``: who is called (:meth:`EscalationTarget.describe`).
        """
        row = Handoff(
            workspace=workspace,
            interaction_id=interaction_id,
            platform=platform,
            team_id=team_id,
            channel_id=channel_id,
            thread_id=thread_id,
            asker_hash=self._hash(asker_id),
            reason=reason.value,
            target=target,
            requested_at=at or self._clock(),
        )
        with self._writing(), Session(self._engine) as session:
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
            else:
                session.refresh(row)
                assert row.id is not None
                return HandoffRequest(row.id, True, _times(row), "")
            found = self._open(session, workspace, platform, team_id, channel_id, thread_id)
        if found is None or found.id is None:  # resolved between the insert and the read
            raise FeedbackError(f"handoff of thread {thread_id} could not be opened; try again")
        return HandoffRequest(found.id, False, _times(found), found.notice_message_id)

    def mark(
        self,
        workspace: str,
        handoff_id: int,
        event: HandoffEvent,
        *,
        at: datetime | None = None,
        notice_message_id: str | None = None,
    ) -> HandoffTimes:
        """Record ``event`` of the workspace's handoff ``handoff_id`` (a repeat keeps the first
        time). Raises :class:`FeedbackError` when it is not a handoff of that workspace."""
        with self._writing(), Session(self._engine) as session:
            row = session.get(Handoff, handoff_id)
            if row is None or row.workspace != workspace:
                raise FeedbackError(f"no handoff {handoff_id} in workspace {workspace!r}")
            times = advance(_times(row), event, at or self._clock())
            row.notified_at = times.notified_at
            row.first_human_reply_at = times.first_human_reply_at
            row.resolved_at = times.resolved_at
            if notice_message_id is not None:
                row.notice_message_id = notice_message_id
            session.add(row)
            session.commit()
        return times

    def withdraw(self, workspace: str, handoff_id: int) -> None:
        """Forget a handoff nobody could be called for (no notification went out): asking
        again opens and calls anew, and the report counts only handoffs that reached people.
        A handoff already notified is kept."""
        with self._writing(), Session(self._engine) as session:
            row = session.get(Handoff, handoff_id)
            if row is None or row.workspace != workspace or row.notified_at is not None:
                return
            session.delete(row)
            session.commit()

    def thread(
        self,
        workspace: str,
        *,
        platform: str,
        team_id: str,
        channel_id: str,
        thread_id: str,
        user_id: str,
    ) -> ThreadHandoff | None:
        """The open handoff of the thread as seen by ``user_id``'s message, or None."""
        with Session(self._engine) as session:
            row = self._open(session, workspace, platform, team_id, channel_id, thread_id)
        if row is None:
            return None
        return ThreadHandoff(
            by_asker=bool(row.asker_hash) and row.asker_hash == self._hash(user_id),
            human_replied=row.first_human_reply_at is not None,
        )

    def human_replied(
        self,
        workspace: str,
        *,
        platform: str,
        team_id: str,
        channel_id: str,
        thread_id: str,
        user_id: str,
        at: datetime | None = None,
    ) -> bool:
        """Record a person's message in the thread as its handoff's first human reply.

        Only someone other than the asker counts (the caller excludes bots). False when the
        thread has no open handoff, the author is the asker, or a reply was recorded before.
        """
        with Session(self._engine) as session:
            row = self._open(session, workspace, platform, team_id, channel_id, thread_id)
        if row is None or row.id is None or row.first_human_reply_at is not None:
            return False
        if row.asker_hash and row.asker_hash == self._hash(user_id):
            return False
        self.mark(workspace, row.id, HandoffEvent.HUMAN_REPLIED, at=at)
        return True

    def resolve(
        self,
        workspace: str | None,
        *,
        platform: str,
        team_id: str,
        channel_id: str,
        thread_id: str,
        at: datetime | None = None,
    ) -> bool:
        """Close the thread's open handoff; False when there is none.

        ``workspace`` None: whichever workspace's handoff is open at that place. A DM has no
        team that names its workspace (a Discord DM has no guild; a DM may be routed to a
        workspace its team is not mapped to), but the place (platform, team, channel,
        thread) is one conversation, so the handoff opened there is the one to close."""
        with Session(self._engine) as session:
            row = self._open(session, workspace, platform, team_id, channel_id, thread_id)
        if row is None or row.id is None:
            return False
        self.mark(row.workspace, row.id, HandoffEvent.RESOLVED, at=at)
        return True

    def resolve_by_notice(
        self, workspace: str, *, platform: str, team_id: str, notice_message_id: str
    ) -> Handoff | None:
        """Close the open handoff whose notice (the message with the Resolved button) is
        ``notice_message_id``; the handoff, or None when no open one has that notice."""
        with Session(self._engine) as session:
            row = session.exec(
                select(Handoff)
                .where(Handoff.workspace == workspace)
                .where(Handoff.platform == platform)
                .where(Handoff.team_id == team_id)
                .where(Handoff.notice_message_id == notice_message_id)
                .where(col(Handoff.resolved_at).is_(None))
            ).first()
        if row is None or row.id is None:
            return None
        self.mark(workspace, row.id, HandoffEvent.RESOLVED)
        return row

    def handoffs(self, workspace: str) -> list[Handoff]:
        """The workspace's handoffs, oldest first."""
        with Session(self._engine) as session:
            return list(
                session.exec(
                    select(Handoff)
                    .where(Handoff.workspace == workspace)
                    .order_by(col(Handoff.requested_at), col(Handoff.id))
                )
            )

    def summary(self, workspace: str, *, since: datetime | None = None) -> HandoffSummary:
        """The report's figures over handoffs requested since ``since`` (all when None)."""
        query = select(Handoff).where(Handoff.workspace == workspace)
        if since is not None:
            query = query.where(col(Handoff.requested_at) >= since)
        with Session(self._engine) as session:
            times = [_times(row) for row in session.exec(query)]
        waits = [t.seconds_to_first_human_reply for t in times]
        replied = [w for w in waits if w is not None]
        return HandoffSummary(
            count=len(times),
            replied=len(replied),
            resolved=sum(not t.open for t in times),
            median_seconds_to_first_human_reply=statistics.median(replied) if replied else None,
        )

    @staticmethod
    def _open(
        session: Session,
        workspace: str | None,
        platform: str,
        team_id: str,
        channel_id: str,
        thread_id: str,
    ) -> Handoff | None:
        query = select(Handoff)
        if workspace is not None:
            query = query.where(Handoff.workspace == workspace)
        return session.exec(
            query.where(Handoff.platform == platform)
            .where(Handoff.team_id == team_id)
            .where(Handoff.channel_id == channel_id)
            .where(Handoff.thread_id == thread_id)
            .where(col(Handoff.resolved_at).is_(None))
        ).first()
