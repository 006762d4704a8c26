"""The workspace registry: which customer a platform identity belongs to.

A workspace is one customer's knowledge. It owns one Weaviate tenant, named by an id that is
never reused, so a workspace deleted and created again under the same name starts empty.
Platform identities (a Slack team, a Slack Enterprise Grid org, a Discord guild, the default
for Discord DMs) map to exactly one workspace each.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import UniqueConstraint
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, select

from retrieval.errors import RetrievalError, UnknownWorkspaceError

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")


class IdentityKind(StrEnum):
    SLACK_TEAM = "slack_team"
    SLACK_ENTERPRISE = "slack_enterprise"
    DISCORD_GUILD = "discord_guild"
    DISCORD_DM_DEFAULT = "discord_dm_default"


class WorkspaceExistsError(RetrievalError):
    """A workspace name or platform identity is already taken."""


class Workspace(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    tenant: str = Field(unique=True)
    embedding_model: str
    created_at: datetime


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
    """Creates, finds and deletes workspaces in the relational database."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] | None = None) -> None:
        self._engine = engine
        self._clock = clock or (lambda: datetime.now(UTC))

    def create(
        self,
        name: str,
        *,
        embedding_model: str,
        identities: list[tuple[IdentityKind, str]] | None = None,
    ) -> WorkspaceInfo:
        if not _NAME_PATTERN.match(name):
            raise RetrievalError(
                f"invalid workspace name {name!r}: use 1-63 letters, digits, '-' or '_', "
                "starting with a letter or digit"
            )
        with Session(self._engine) as session:
            if session.exec(select(Workspace).where(Workspace.name == name)).first():
                raise WorkspaceExistsError(f"workspace {name!r} already exists")
            for kind, external_id in identities or []:
                owner = self._owner(session, kind, external_id)
                if owner is not None:
                    raise WorkspaceExistsError(
                        f"{kind.value} {external_id!r} already belongs to workspace {owner!r}"
                    )
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
            return self._info(session, row)

    def get(self, name: str) -> WorkspaceInfo:
        with Session(self._engine) as session:
            row = session.exec(select(Workspace).where(Workspace.name == name)).first()
            if row is None:
                raise UnknownWorkspaceError(
                    f"unknown workspace {name!r}; see `supportbot workspace list` or create it "
                    f"with `supportbot workspace create {name}`"
                )
            return self._info(session, row)

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

    def delete(self, name: str) -> None:
        with Session(self._engine) as session:
            row = session.exec(select(Workspace).where(Workspace.name == name)).first()
            if row is None:
                raise UnknownWorkspaceError(f"unknown workspace {name!r}; nothing deleted")
            for identity in session.exec(
                select(PlatformIdentity).where(PlatformIdentity.workspace_id == row.id)
            ):
                session.delete(identity)
            session.delete(row)
            session.commit()

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
