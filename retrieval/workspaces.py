"""The workspace registry: which customer a platform identity belongs to.

A workspace is one customer's knowledge. It owns one Weaviate tenant, named by an id that is
never reused, so a workspace deleted and created again under the same name starts empty.
Platform identities (a Slack team, a Slack Enterprise Grid org, a Discord guild, the default
for Discord DMs) map to exactly one workspace each.

Names follow :mod:`retrieval.workspace_names`: validated with a full-match pattern, NFC, and
refused when they look like an existing workspace's name (case, full-width, invisible
characters).

Deleting a workspace deletes what was its own. Other packages key their rows by the workspace
*name* (answers, ratings, verified answers, DM choices) or by its teams (channel settings, bot
replies, Slack installations); this package knows none of their tables, so the application
injects an :class:`OwnedRows` that deletes them inside the registry's own transaction:

- ``delete`` removes the owned rows, the platform identities and the workspace row in one
  transaction, after the caller removed the Weaviate tenant (the registry row goes last, so an
  interrupted delete leaves the row to find, and running ``delete`` again finishes the job);
- ``create`` first removes rows still keyed by the new name (an answer recorded by a reply that
  was still being generated while its workspace was deleted, or rows that an older version left
  behind) in the transaction that registers the name, so a new workspace starts empty.

Why names and not a never-reused id as the key: every reader (report, review, export,
promote, the bots) and the rows already written use the name, so re-keying would rewrite the
schema and every query of four packages, and SQLite may hand a deleted workspace's integer id
to the next one anyway (no AUTOINCREMENT). Names of live workspaces are unique, so "rows keyed
by a name no live workspace has" is exactly "leftovers", and deleting them at both ends gives
the same guarantee. Every delete matches names and ids exactly (``=``, never ``LIKE``): ``acm``,
``acme`` and ``acme2`` never touch each other's rows.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from sqlalchemy import UniqueConstraint, delete
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from retrieval.errors import RetrievalError, UnknownWorkspaceError
from retrieval.workspace_names import (
    InvalidWorkspaceNameError,
    normalize_workspace_name,
    workspace_skeleton,
)


class IdentityKind(StrEnum):
    SLACK_TEAM = "slack_team"
    SLACK_ENTERPRISE = "slack_enterprise"
    DISCORD_GUILD = "discord_guild"
    DISCORD_DM_DEFAULT = "discord_dm_default"


class WorkspaceExistsError(RetrievalError):
    """A workspace name or platform identity is already taken."""


class WorkspaceNameTooSimilarError(WorkspaceExistsError):
    """A new name differs from an existing workspace's only in case or look-alike characters."""


@dataclass(frozen=True, slots=True)
class WorkspaceKeys:
    """What other packages' rows of one workspace are keyed by.

    ``id`` is None and ``identities`` empty for the leftovers of a name that no live workspace
    has; ``identities`` are ``(kind, external_id)`` pairs (kinds: :class:`IdentityKind`).
    """

    name: str
    id: int | None = None
    identities: list[tuple[str, str]] = field(default_factory=list)


class OwnedRows(Protocol):
    """Deletes the rows of other packages that belong to one workspace."""

    def delete(self, session: Session, keys: WorkspaceKeys) -> dict[str, int]:
        """Delete them in ``session`` (the caller commits); the count of rows per kind."""
        ...


class Workspace(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    tenant: str = Field(unique=True)
    embedding_model: str
    created_at: datetime
    # Tenant activity (retrieval.tenant_activity): the last question, sync or ingest (written
    # at most once a minute), when the tenant was last set cold, and the last reactivation.
    last_used_at: datetime | None = None
    deactivated_at: datetime | None = None
    reactivated_at: datetime | None = None
    reactivation_ms: float | None = None


class PlatformIdentity(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("kind", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str
    external_id: str
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE", index=True)


class WorkspaceInfo(SQLModel):
    """What callers see of a workspace (the table row stays inside this module)."""

    name: str
    tenant: str
    embedding_model: str
    created_at: datetime
    identities: list[tuple[str, str]]


class WorkspaceRegistry:
    """Creates, finds and deletes workspaces in the relational database.

    ``owned_rows``: deletes other packages' rows of a workspace (see the module docstring);
    without it only the registry's own rows are deleted (tests of the registry alone).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], datetime] | None = None,
        owned_rows: OwnedRows | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock or (lambda: datetime.now(UTC))
        self._owned_rows = owned_rows

    def create(
        self,
        name: str,
        *,
        embedding_model: str,
        identities: list[tuple[IdentityKind, str]] | None = None,
    ) -> WorkspaceInfo:
        """Register a workspace with a new tenant name; ``name`` as the user typed it.

        Raises :class:`WorkspaceExistsError` (the name, a look-alike of it, or an identity is
        taken: the message names the existing workspace) or
        :class:`~retrieval.workspace_names.InvalidWorkspaceNameError`.
        """
        with Session(self._engine) as session:
            self._refuse_look_alike(session, name)
            name = normalize_workspace_name(name)
            for kind, external_id in identities or []:
                owner = self._owner(session, kind, external_id)
                if owner is not None:
                    raise WorkspaceExistsError(
                        f"{kind.value} {external_id!r} already belongs to workspace {owner!r}"
                    )
            if self._owned_rows is not None:
                self._owned_rows.delete(session, WorkspaceKeys(name=name))
            row = Workspace(
                name=name,
                tenant=f"ws_{uuid.uuid4().hex}",
                embedding_model=embedding_model,
                created_at=self._clock(),
            )
            session.add(row)
            session.flush()
            assert row.id is not None
            for kind, external_id in identities or []:
                session.add(
                    PlatformIdentity(kind=kind.value, external_id=external_id, workspace_id=row.id)
                )
            try:
                session.commit()
            except IntegrityError as e:
                raise WorkspaceExistsError(
                    f"workspace {name!r} or one of its identities was taken at the same moment"
                ) from e
            self._undo_if_raced(session, row)
            return self._info(session, row)

    @staticmethod
    def _refuse_look_alike(session: Session, name: str) -> None:
        name = unicodedata.normalize("NFC", name)
        wanted = workspace_skeleton(name)
        for existing in session.exec(select(Workspace.name).order_by(col(Workspace.id))):
            if existing == name:
                raise WorkspaceExistsError(f"workspace {name!r} already exists")
            if workspace_skeleton(existing) == wanted:
                raise WorkspaceNameTooSimilarError(
                    f"workspace name {name!r} looks like existing workspace {existing!r} "
                    "(it differs only in case or look-alike characters); choose another name"
                )

    def _undo_if_raced(self, session: Session, row: Workspace) -> None:
        """Two look-alike names created at the same moment: the later row gives way.

        No unique index can hold a skeleton without a schema change, so the check runs again
        after the commit: of two look-alikes the one with the higher id removes itself.
        """
        wanted = workspace_skeleton(row.name)
        earlier = session.exec(
            select(Workspace.name).where(col(Workspace.id) < row.id).order_by(col(Workspace.id))
        ).all()
        winner = next((n for n in earlier if workspace_skeleton(n) == wanted), None)
        if winner is None:
            return
        session.execute(
            delete(PlatformIdentity).where(col(PlatformIdentity.workspace_id) == row.id)
        )
        session.execute(delete(Workspace).where(col(Workspace.id) == row.id))
        session.commit()
        raise WorkspaceNameTooSimilarError(
            f"workspace name {row.name!r} looks like workspace {winner!r}, created at the same "
            "moment; choose another name"
        )

    def get(self, name: str) -> WorkspaceInfo:
        """The workspace named exactly ``name`` (after NFC).

        Raises :class:`UnknownWorkspaceError` for an invalid name too (no workspace can have
        it), and names a look-alike workspace when there is one.
        """
        try:
            name = normalize_workspace_name(name)
        except InvalidWorkspaceNameError as e:
            raise UnknownWorkspaceError(f"unknown workspace: {e}") from None
        with Session(self._engine) as session:
            row = session.exec(select(Workspace).where(Workspace.name == name)).first()
            if row is None:
                wanted = workspace_skeleton(name)
                alike = [
                    n
                    for n in session.exec(select(Workspace.name))
                    if workspace_skeleton(n) == wanted
                ]
                if alike:
                    raise UnknownWorkspaceError(
                        f"unknown workspace {name!r}; did you mean {alike[0]!r}? "
                        "(names are matched exactly)"
                    )
                raise UnknownWorkspaceError(
                    f"unknown workspace {name!r}; see `supportbot workspace list` or create it "
                    f"with `supportbot workspace create {name}`"
                )
            return self._info(session, row)

    def tenant_of(self, name: str) -> str | None:
        """The tenant of the workspace named exactly ``name`` (no validation), else None."""
        with Session(self._engine) as session:
            return session.exec(select(Workspace.tenant).where(Workspace.name == name)).first()

    def list(self) -> list[WorkspaceInfo]:
        with Session(self._engine) as session:
            rows = session.exec(select(Workspace).order_by(Workspace.name)).all()
            return [self._info(session, row) for row in rows]

    def resolve(self, kind: IdentityKind, external_id: str) -> WorkspaceInfo | None:
        """The workspace a platform identity maps to, or None when it maps to none."""
        with Session(self._engine) as session:
            statement = (
                select(Workspace)
                .join(PlatformIdentity, PlatformIdentity.workspace_id == Workspace.id)  # type: ignore[arg-type]
                .where(PlatformIdentity.kind == kind.value)
                .where(PlatformIdentity.external_id == external_id)
            )
            row = session.exec(statement).first()
            return self._info(session, row) if row else None

    def set_embedding_model(self, name: str, model: str) -> None:
        with Session(self._engine) as session:
            row = session.exec(select(Workspace).where(Workspace.name == name)).one()
            row.embedding_model = model
            session.add(row)
            session.commit()

    def delete(self, name: str) -> dict[str, int]:
        """Delete the workspace named exactly ``name`` with everything it owned, in one
        transaction; the count of deleted rows per kind (``workspace``, ``platform
        identities`` and the kinds ``owned_rows`` reports).

        The caller removes the Weaviate tenant first (see
        :meth:`retrieval.knowledge.KnowledgeBase.delete_workspace`). No validation of the name
        beyond an exact match, so a name that an older version accepted (``"acme\\n"``) can
        still be deleted. With no such workspace, rows still keyed by ``name`` are deleted as
        leftovers; :class:`UnknownWorkspaceError` when there are none either.
        """
        with Session(self._engine) as session:
            # Locked first: an answer being recorded for this workspace (which holds the row
            # FOR SHARE, see feedback.store) either commits before and is deleted here, or
            # waits and finds the workspace gone (PostgreSQL; SQLite has one writer anyway).
            row = session.exec(
                select(Workspace).where(Workspace.name == name).with_for_update()
            ).first()
            if row is None:
                counts = (
                    self._owned_rows.delete(session, WorkspaceKeys(name=name))
                    if self._owned_rows is not None
                    else {}
                )
                if not any(counts.values()):
                    raise UnknownWorkspaceError(f"unknown workspace {name!r}; nothing deleted")
                session.commit()
                return {"workspace": 0, **counts}
            assert row.id is not None
            identities = session.exec(
                select(PlatformIdentity).where(PlatformIdentity.workspace_id == row.id)
            ).all()
            keys = WorkspaceKeys(
                name=row.name,
                id=row.id,
                identities=sorted((i.kind, i.external_id) for i in identities),
            )
            counts = self._owned_rows.delete(session, keys) if self._owned_rows else {}
            session.execute(
                delete(PlatformIdentity).where(col(PlatformIdentity.workspace_id) == row.id)
            )
            session.execute(delete(Workspace).where(col(Workspace.id) == row.id))
            session.commit()
            return {"workspace": 1, "platform identities": len(identities), **counts}

    @staticmethod
    def _owner(session: Session, kind: IdentityKind, external_id: str) -> str | None:
        statement = (
            select(Workspace.name)
            .join(PlatformIdentity, PlatformIdentity.workspace_id == Workspace.id)  # type: ignore[arg-type]
            .where(PlatformIdentity.kind == kind.value)
            .where(PlatformIdentity.external_id == external_id)
        )
        return session.exec(statement).first()

    @staticmethod
    def _info(session: Session, row: Workspace) -> WorkspaceInfo:
        identities = session.exec(
            select(PlatformIdentity).where(PlatformIdentity.workspace_id == row.id)
        ).all()
        return WorkspaceInfo(
            name=row.name,
            tenant=row.tenant,
            embedding_model=row.embedding_model,
            created_at=row.created_at,
            identities=sorted((i.kind, i.external_id) for i in identities),
        )
