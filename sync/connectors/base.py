"""The connector interface: what every knowledge source looks like to the sync engine.

A connector turns one external application into an async stream of items:

* :class:`Document` -- a document with a stable id (stable within the source), title, text,
  url, updated-at, and a ``deleted`` marker for a tombstone the source reports;
* :class:`Unchanged` -- the document still exists and has not changed (e.g. HTTP 304, or the
  same ``last_edited_time``), so nothing is fetched or embedded;
* :class:`Failed` -- the document could not be read this time; what is stored stays;
* :class:`Checkpoint` -- a resumable cursor: everything before it has been yielded;
* :class:`Planned` -- how many documents to expect (for progress bars);
* :class:`Skipped` -- content the connector could not index (e.g. a Notion block type it does
  not read), counted per kind in the run's summary instead of dropped silently.

A stream that ends without raising has listed everything that exists in the source: the engine
then removes the documents that were not seen in the pass. A stream that raises (or a process
that dies) leaves the pass open; the next sync resumes it from the last checkpoint.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import httpx

from sync.errors import CredentialsError, SourceConfigError
from sync.http import DownloadBudget, FetchLimits
from sync.models import DocState, SourceKind


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    title: str = ""
    text: str = ""
    url: str | None = None
    updated_at: datetime | None = None
    deleted: bool = False
    version: str | None = None
    """A cheap change marker (a sitemap lastmod, a last_edited_time, a thread's latest reply):
    the connector compares it with :attr:`DocState.version` to skip fetching."""
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class Unchanged:
    id: str


@dataclass(frozen=True, slots=True)
class Failed:
    id: str
    error: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    cursor: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Planned:
    count: int


@dataclass(frozen=True, slots=True)
class Skipped:
    kind: str
    """What was not indexed, in words ("Notion unsupported block")."""
    count: int = 1


Item = Document | Unchanged | Failed | Checkpoint | Planned | Skipped


@dataclass(slots=True)
class SyncContext:
    """What a connector gets for one sync."""

    http: httpx.AsyncClient
    """Every request goes through the source's request budget and retry policy."""
    credentials: dict[str, Any]
    cursor: dict[str, Any] | None = None
    """The cursor of the last checkpoint; ``None`` for a first (or full) sync."""
    known: Mapping[str, DocState] = field(default_factory=dict)
    """What the engine already has of each document of this source."""
    refresh_credentials: Callable[[], Awaitable[dict[str, Any]]] | None = None
    """Gets new credentials through the connector's refresh hook (stored encrypted)."""
    limits: FetchLimits = field(default_factory=FetchLimits)
    """What a downloading connector may fetch (page, sitemap and per-run bytes)."""
    downloads: DownloadBudget = field(default_factory=lambda: DownloadBudget(2 * 1024**3))
    """Bytes this run has downloaded (a connector counts what it reads)."""

    def version_of(self, doc_id: str) -> str | None:
        state = self.known.get(doc_id)
        return state.version if state else None

    def seen_this_pass(self, doc_id: str) -> bool:
        state = self.known.get(doc_id)
        return bool(state and state.seen_this_pass)


class Connector(ABC):
    """One kind of source. Instances hold only validated options, never network state."""

    kind: ClassVar[SourceKind]
    needs_credentials: ClassVar[bool] = False
    fetches_outside_urls: ClassVar[bool] = False
    """True when the URLs it fetches come from the content (a sitemap, redirects), not from
    the settings: its connections then go only to public addresses (:mod:`sync.addresses`)."""

    def __init__(self, config: Mapping[str, Any], *, api_url: str | None = None) -> None:
        self.config = dict(config)
        self.api_url = api_url
        """The service's API base URL, from the settings (tests point it at a simulator)."""

    @classmethod
    @abstractmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """The options, checked and normalised; raises :class:`SourceConfigError`."""

    @abstractmethod
    def stream(self, ctx: SyncContext) -> AsyncIterator[Item]:
        """Every document of the source, resuming from ``ctx.cursor``."""

    def fetch(self, ctx: SyncContext, ids: Sequence[str]) -> AsyncIterator[Item]:
        """Only these documents (an event said they changed); not every connector can."""
        raise SourceConfigError(f"{self.kind} sources cannot sync single documents")

    def authorization(self, credentials: Mapping[str, Any]) -> str | None:
        """The ``Authorization`` header the credentials give (the transport sends it)."""
        return None

    async def refresh_credentials(
        self, credentials: Mapping[str, Any], http: httpx.AsyncClient
    ) -> dict[str, Any]:
        """New credentials after the service said the token expired (OAuth refresh)."""
        raise CredentialsError(
            f"the {self.kind} token was rejected (expired or revoked) and no refresh token is "
            "stored; add the source again with a new token"
        )


def require_list(config: Mapping[str, Any], key: str) -> list[str]:
    value = config.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise SourceConfigError(f"{key} must be a list of non-empty strings")
    return [v.strip() for v in value]
