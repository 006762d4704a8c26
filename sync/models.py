"""Tables of the sync package, and the data-transfer models callers see instead of rows.

A source belongs to one workspace (its rows go when the workspace goes). Its credentials are
one Fernet-encrypted JSON object; its cursor is the connector's own JSON, saved at every
checkpoint together with the per-document state, so a crash resumes from the last checkpoint.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class SourceKind(StrEnum):
    FOLDER = "folder"
    WEB = "web"
    SLACK = "slack"
    DISCORD = "discord"
    NOTION = "notion"


class SyncStatus(StrEnum):
    NEVER = "never"
    QUEUED = "queued"
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"


class SyncSource(SQLModel, table=True):
    __tablename__ = "sync_source"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE", index=True)
    name: str
    kind: str
    config_json: str = Field(sa_column=Column(Text, nullable=False))
    credentials_encrypted: str | None = Field(default=None, sa_column=Column(Text))
    schedule: str | None = None
    requests_per_second: float
    created_at: datetime
    # --- state, written by the engine -------------------------------------------------------
    cursor_json: str | None = Field(default=None, sa_column=Column(Text))
    pass_number: int = 0
    pass_open: bool = False
    status: str = SyncStatus.NEVER.value
    last_started_at: datetime | None = None
    last_finished_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    next_run_at: datetime | None = None
    documents: int = 0
    chunks: int = 0


class SyncRun(SQLModel, table=True):
    __tablename__ = "sync_run"

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="sync_source.id", ondelete="CASCADE", index=True)
    started_at: datetime
    finished_at: datetime | None = None
    status: str = SyncStatus.RUNNING.value
    full: bool = False
    trigger: str = "manual"
    worker: str | None = None
    """host:pid of the process that ran it (several workers share one queue)."""
    documents: int = 0
    changed: int = 0
    unchanged: int = 0
    deleted: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    errors: int = 0
    requests: int = 0
    retries: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text))


class SyncDocument(SQLModel, table=True):
    """What the engine knows of one document of a source: how to skip it when unchanged."""

    __tablename__ = "sync_document"
    __table_args__ = (UniqueConstraint("source_id", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="sync_source.id", ondelete="CASCADE", index=True)
    external_id: str = Field(sa_column=Column(Text, nullable=False))
    doc_id: str = Field(sa_column=Column(Text, nullable=False))
    version: str | None = Field(default=None, sa_column=Column(Text))
    etag: str | None = Field(default=None, sa_column=Column(Text))
    last_modified: str | None = None
    content_hash: str | None = None
    """None for an item that is no document (e.g. a Slack thread without an answer)."""
    seen_pass: int = 0
    updated_at: datetime | None = None
    synced_at: datetime


# --- data-transfer models ----------------------------------------------------------------------


class SourceInfo(SQLModel):
    """A source as callers see it: its options, never its credentials."""

    id: int
    workspace: str
    name: str
    kind: str
    config: dict[str, Any]
    schedule: str | None
    requests_per_second: float
    has_credentials: bool
    created_at: datetime
    status: str
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    next_run_at: datetime | None
    documents: int
    chunks: int


class RunInfo(SQLModel):
    """One sync run, for status and for scripts."""

    id: int
    source: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    full: bool
    trigger: str
    worker: str | None
    documents: int
    changed: int
    unchanged: int
    deleted: int
    chunks_added: int
    chunks_removed: int
    errors: int
    requests: int
    retries: int
    error: str | None


class DocState(SQLModel):
    """The engine's memory of one document, handed to connectors so they can skip work."""

    external_id: str
    version: str | None
    etag: str | None
    last_modified: str | None
    content_hash: str | None
    seen_this_pass: bool
