"""Notion pages and databases, through the official client (``notion-client``).

The integration's token reads what was shared with it: by default every page ``search``
finds; with ``--page`` the given pages and their sub-pages; with ``--database`` every entry of
the databases (their data sources, Notion API 2025-09-03). A page is fetched again only when
its ``last_edited_time`` moved (Notion moves it on any edit of the page's blocks); archived
and trashed pages, and pages no longer shared, are removed. Blocks become Markdown-like text
(headings, lists, to-dos, quotes, code), nested blocks included.

The client's own retries are off: the source's transport (request budget, ``Retry-After``,
back-off, OAuth refresh on 401) handles every request, as for the other connectors.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

import httpx
from notion_client import AsyncClient
from notion_client.errors import APIResponseError, RequestTimeoutError

from sync.connectors.base import (
    Checkpoint,
    Connector,
    Document,
    Failed,
    Item,
    Planned,
    SyncContext,
    Unchanged,
    require_list,
)
from sync.errors import CredentialsError, SourceConfigError, SourceUnavailableError
from sync.models import SourceKind

DEFAULT_API_URL = "https://api.notion.com"
PAGE_SIZE = 100
MAX_DEPTH = 8
CHECKPOINT_EVERY = 50
_PREFIX = {
    "heading_1": "# ",
    "heading_2": "## ",
    "heading_3": "### ",
    "bulleted_list_item": "- ",
    "numbered_list_item": "1. ",
    "quote": "> ",
    "callout": "> ",
}


def _normalize_id(value: str) -> str:
    """A Notion id from a bare id, a dashed UUID or a page URL ("...-<32 hex>")."""
    tail = value.strip().rstrip("/").rsplit("/", 1)[-1].split("?")[0]
    compact = tail.replace("-", "")[-32:]
    if len(compact) != 32 or any(c not in "0123456789abcdefABCDEF" for c in compact):
        raise SourceConfigError(f"not a Notion page or database id: {value!r}")
    c = compact.lower()
    return f"{c[:8]}-{c[8:12]}-{c[12:16]}-{c[16:20]}-{c[20:]}"


class NotionConnector(Connector):
    kind = SourceKind.NOTION
    needs_credentials = True

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "pages": [_normalize_id(p) for p in require_list(config, "pages")],
            "databases": [_normalize_id(d) for d in require_list(config, "databases")],
        }

    def authorization(self, credentials: Mapping[str, Any]) -> str | None:
        token = credentials.get("token")
        return f"Bearer {token}" if token else None

    @property
    def _base(self) -> str:
        return (self.api_url or DEFAULT_API_URL).rstrip("/")

    async def refresh_credentials(
        self, credentials: Mapping[str, Any], http: httpx.AsyncClient
    ) -> dict[str, Any]:
        refresh = credentials.get("refresh_token")
        if not refresh:
            return await super().refresh_credentials(credentials, http)
        basic = base64.b64encode(
            f"{credentials.get('client_id', '')}:{credentials.get('client_secret', '')}".encode()
        ).decode()
        response = await http.post(
            f"{self._base}/v1/oauth/token",
            json={"grant_type": "refresh_token", "refresh_token": refresh},
            headers={"Authorization": f"Basic {basic}"},
        )
        body = response.json() if response.content else {}
        if response.status_code != 200 or not body.get("access_token"):
            raise CredentialsError(
                f"Notion refused to refresh the token ({body.get('code', response.status_code)}); "
                "add the source again with a new token"
            )
        fresh = dict(credentials)
        fresh["token"] = body["access_token"]
        fresh["refresh_token"] = body.get("refresh_token") or refresh
        return fresh

    def _client(self, ctx: SyncContext) -> AsyncClient:
        # No ``auth``: the transport adds the (refreshable) token to every request.
        return AsyncClient(client=ctx.http, base_url=self._base, retry=False, timeout_ms=60_000)

    async def stream(self, ctx: SyncContext) -> AsyncIterator[Item]:
        notion = self._client(ctx)
        try:
            pages = await self._pages(notion)
        except APIResponseError as e:
            raise _translate(e) from e
        except RequestTimeoutError as e:
            raise SourceUnavailableError(f"Notion: {e}") from e
        yield Planned(len(pages))
        for n, page in enumerate(pages, start=1):
            yield await self._page_item(notion, ctx, page)
            if n % CHECKPOINT_EVERY == 0:
                yield Checkpoint(None)

    async def _page_item(self, notion: AsyncClient, ctx: SyncContext, page: dict[str, Any]) -> Item:
        page_id = str(page["id"])
        version = str(page.get("last_edited_time") or "")
        if version and ctx.version_of(page_id) == version:
            return Unchanged(page_id)
        try:
            lines = await self._block_text(notion, page_id, depth=0)
        except APIResponseError as e:
            if e.code in ("object_not_found", "restricted_resource"):
                return Document(id=page_id, deleted=True)
            if e.status in (401, 429) or e.status >= 500:
                raise _translate(e) from e
            return Failed(page_id, f"Notion page {page_id}: {e.code}: {e}")
        title = page_title(page)
        return Document(
            id=page_id,
            title=title or page_id,
            text=join_blocks([(False, f"# {title}")] if title else [], lines),
            url=page.get("url"),
            updated_at=_iso(page.get("last_edited_time")),
            version=version or None,
        )

    # --- which pages -----------------------------------------------------------------------

    async def _pages(self, notion: AsyncClient) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        roots, databases = self.config.get("pages", []), self.config.get("databases", [])
        if not roots and not databases:
            async for page in _paginate(
                lambda cursor: notion.search(
                    filter={"property": "object", "value": "page"},
                    page_size=PAGE_SIZE,
                    **({"start_cursor": cursor} if cursor else {}),
                )
            ):
                found.setdefault(str(page["id"]), page)
        for root in roots:
            page = await notion.pages.retrieve(root)
            await self._subtree(notion, page, found, depth=0)
        for database in databases:
            await self._database(notion, database, found)
        return [p for p in found.values() if not (p.get("archived") or p.get("in_trash"))]

    async def _subtree(
        self,
        notion: AsyncClient,
        page: dict[str, Any],
        found: dict[str, dict[str, Any]],
        depth: int,
    ) -> None:
        found.setdefault(str(page["id"]), page)
        if depth >= MAX_DEPTH:
            return
        async for block in self._children(notion, str(page["id"])):
            if block.get("type") == "child_page":
                child = await notion.pages.retrieve(block["id"])
                await self._subtree(notion, child, found, depth + 1)
            elif block.get("type") == "child_database":
                await self._database(notion, str(block["id"]), found)

    async def _database(
        self, notion: AsyncClient, database_id: str, found: dict[str, dict[str, Any]]
    ) -> None:
        database = await notion.databases.retrieve(database_id)
        for source in database.get("data_sources", []):
            source_id = str(source["id"])
            async for entry in _paginate(
                lambda cursor, sid=source_id: notion.data_sources.query(
                    sid, page_size=PAGE_SIZE, **({"start_cursor": cursor} if cursor else {})
                )
            ):
                if entry.get("object") == "page":
                    found.setdefault(str(entry["id"]), entry)

    # --- page content ------------------------------------------------------------------------

    def _children(self, notion: AsyncClient, block_id: str) -> AsyncIterator[dict[str, Any]]:
        return _paginate(
            lambda cursor: notion.blocks.children.list(
                block_id, page_size=PAGE_SIZE, **({"start_cursor": cursor} if cursor else {})
            )
        )

    async def _block_text(
        self, notion: AsyncClient, block_id: str, depth: int
    ) -> list[tuple[bool, str]]:
        """(is a list item, line) of every block with text, nested blocks in order."""
        lines: list[tuple[bool, str]] = []
        async for block in self._children(notion, block_id):
            kind = str(block.get("type", ""))
            if kind in ("child_page", "child_database"):
                continue  # its own document
            line = block_line(block)
            if line:
                listed = kind.endswith("list_item") or kind == "to_do"
                lines.append((listed, "  " * depth + line if listed else line))
            if block.get("has_children") and depth < MAX_DEPTH:
                lines.extend(await self._block_text(notion, str(block["id"]), depth + 1))
        return lines


def join_blocks(*parts: list[tuple[bool, str]]) -> str:
    """Blocks as paragraphs, but a list's items on consecutive lines (one list, one chunk)."""
    out: list[str] = []
    previous_listed = False
    for listed, line in (item for part in parts for item in part):
        if out:
            out.append("\n" if listed and previous_listed else "\n\n")
        out.append(line)
        previous_listed = listed
    return "".join(out)


def block_line(block: Mapping[str, Any]) -> str:
    """One block as a line of Markdown-like text ("" for blocks without text)."""
    kind = str(block.get("type", ""))
    content = block.get(kind) or {}
    text = rich_text(content.get("rich_text") or [])
    if kind == "to_do":
        return f"- [{'x' if content.get('checked') else ' '}] {text}" if text else ""
    if kind == "code":
        return f"```\n{text}\n```" if text else ""
    if kind == "equation":
        return str(content.get("expression") or "")
    if not text:
        return ""
    return _PREFIX.get(kind, "") + text


def rich_text(parts: list[Mapping[str, Any]]) -> str:
    return "".join(str(p.get("plain_text") or "") for p in parts).strip()


def page_title(page: Mapping[str, Any]) -> str:
    for prop in (page.get("properties") or {}).values():
        if isinstance(prop, Mapping) and prop.get("type") == "title":
            return " ".join(rich_text(prop.get("title") or []).split())
    return ""


async def _paginate(call: Any) -> AsyncIterator[dict[str, Any]]:
    cursor: str | None = None
    while True:
        body = await call(cursor)
        for result in body.get("results", []):
            yield result
        cursor = body.get("next_cursor")
        if not body.get("has_more") or not cursor:
            return


def _translate(error: APIResponseError) -> Exception:
    if error.status == 401:
        return CredentialsError(
            "Notion refused the source's token (unauthorized); add the source again with a "
            "valid integration token (--replace)"
        )
    if error.status == 404:
        return SourceUnavailableError(
            f"Notion: {error} (share the page or database with the integration)"
        )
    return SourceUnavailableError(f"Notion: HTTP {error.status} {error.code}: {error}")


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
