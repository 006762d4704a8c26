"""Notion pages and databases, through the official client (``notion-client``).

The integration's token reads what was shared with it: by default every page ``search``
finds; with ``--page`` the given pages and their sub-pages; with ``--database`` every entry of
the databases (their data sources, Notion API 2025-09-03). A page is fetched again only when
its ``last_edited_time`` moved (Notion moves it on any edit of the page's blocks); archived
and trashed pages, and pages no longer shared, are removed. Blocks become Markdown-like text,
nested blocks included: headings, lists, to-dos, quotes, callouts, toggles, code, equations,
tables (``table_row`` children as Markdown table rows), columns, synced blocks (an original's
children, and a reference's through its original), child pages and databases by title, and
bookmarks, embeds and media by caption and URL. A block type that carries text this connector
cannot read (``unsupported``, a type Notion adds later) is yielded as :class:`Skipped` and
counted in the run's summary, per type, never dropped silently. All text is NFC.

The client's own retries are off: the source's transport (request budget, ``Retry-After``,
back-off, OAuth refresh on 401) handles every request, as for the other connectors.
"""

from __future__ import annotations

import base64
import collections
import unicodedata
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
    Skipped,
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
# Blocks whose children are their content, not nested under them (no indentation).
_CONTAINERS = frozenset({"column_list", "column", "synced_block", "table", "template"})
# Known blocks that never carry text of their own.
_NO_TEXT = frozenset(
    {"divider", "breadcrumb", "table_of_contents", "column_list", "column", "synced_block",
     "link_to_page", "table", "table_row"}
)  # fmt: skip
_RICH_TEXT = frozenset(
    {"paragraph", "heading_1", "heading_2", "heading_3", "bulleted_list_item",
     "numbered_list_item", "quote", "callout", "toggle", "template"}
)  # fmt: skip
_MEDIA = frozenset({"image", "video", "audio", "file", "pdf"})
_LINKS = frozenset({"bookmark", "embed", "link_preview"})
_GONE = ("object_not_found", "restricted_resource")


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
            skipped: collections.Counter[str] = collections.Counter()
            item = await self._page_item(notion, ctx, page, skipped)
            for kind, count in sorted(skipped.items()):
                yield Skipped(f"Notion {kind} block", count)
            yield item
            if n % CHECKPOINT_EVERY == 0:
                yield Checkpoint(None)

    async def _page_item(
        self,
        notion: AsyncClient,
        ctx: SyncContext,
        page: dict[str, Any],
        skipped: collections.Counter[str],
    ) -> Item:
        page_id = str(page["id"])
        version = str(page.get("last_edited_time") or "")
        if version and ctx.version_of(page_id) == version:
            return Unchanged(page_id)
        try:
            lines = await self._block_text(notion, page_id, 0, 0, skipped)
        except APIResponseError as e:
            if e.code in _GONE:
                return Document(id=page_id, deleted=True)
            if e.status in (401, 429) or e.status >= 500:
                raise _translate(e) from e
            return Failed(page_id, f"Notion page {page_id}: {e.code}: {e}")
        title = page_title(page)
        url = page.get("url")
        return Document(
            id=page_id,
            title=title or page_id,
            text=_nfc(join_blocks([("", f"# {title}")] if title else [], lines)),
            url=_nfc(url) if isinstance(url, str) else None,
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
        self,
        notion: AsyncClient,
        block_id: str,
        depth: int,
        indent: int,
        skipped: collections.Counter[str],
    ) -> list[tuple[str, str]]:
        """(group, line) of every block with text, nested blocks in order.

        ``group`` is "list" or "table" for lines that belong on consecutive lines, "" for a
        paragraph of its own. ``depth`` bounds the recursion; ``indent`` is the list nesting.
        """
        lines: list[tuple[str, str]] = []
        async for block in self._children(notion, block_id):
            kind = str(block.get("type", ""))
            content = block.get(kind) or {}
            if kind == "table":
                lines.extend(await self._table(notion, block, skipped))
                continue
            line = block_line(block)
            if line is None:
                skipped[kind or "untyped"] += 1
            elif line:
                listed = kind.endswith("list_item") or kind == "to_do"
                lines.append(("list", "  " * indent + line) if listed else ("", line))
            if kind == "synced_block" and (content.get("synced_from") or {}).get("block_id"):
                original = str(content["synced_from"]["block_id"])
                try:
                    lines.extend(
                        await self._block_text(notion, original, depth + 1, indent, skipped)
                    )
                except APIResponseError as e:
                    if e.code not in _GONE:
                        raise
                    skipped["synced_block (original not shared)"] += 1
                continue
            if kind in ("child_page", "child_database"):
                continue  # its own document (or a database's entries)
            if block.get("has_children") and depth < MAX_DEPTH:
                inner = indent if kind in _CONTAINERS else indent + 1
                lines.extend(
                    await self._block_text(notion, str(block["id"]), depth + 1, inner, skipped)
                )
        return lines

    async def _table(
        self, notion: AsyncClient, block: Mapping[str, Any], skipped: collections.Counter[str]
    ) -> list[tuple[str, str]]:
        """A table block's ``table_row`` children as Markdown table rows (header row first)."""
        rows: list[list[str]] = []
        async for child in self._children(notion, str(block["id"])):
            if child.get("type") != "table_row":
                skipped[str(child.get("type") or "untyped")] += 1
                continue
            cells = (child.get("table_row") or {}).get("cells") or []
            rows.append([rich_text(cell).replace("|", "\\|") for cell in cells])
        rows = [row for row in rows if any(row)]
        if not rows:
            return []
        width = max(len(row) for row in rows)
        out: list[tuple[str, str]] = []
        for n, row in enumerate(rows):
            padded = [" ".join(cell.split()) for cell in row] + [""] * (width - len(row))
            out.append(("table", "| " + " | ".join(padded) + " |"))
            if n == 0:
                out.append(("table", "|" + " --- |" * width))
        return out


def join_blocks(*parts: list[tuple[str, str]]) -> str:
    """Blocks as paragraphs, but a list's items and a table's rows on consecutive lines."""
    out: list[str] = []
    previous = ""
    for group, line in (item for part in parts for item in part):
        if out:
            out.append("\n" if group and group == previous else "\n\n")
        out.append(line)
        previous = group
    return "".join(out)


def block_line(block: Mapping[str, Any]) -> str | None:
    """One block as a line of Markdown-like text: "" for a block without text, ``None`` for a
    block type this connector does not read (the caller counts it)."""
    kind = str(block.get("type", ""))
    content = block.get(kind) or {}
    text = rich_text(content.get("rich_text") or [])
    if kind == "to_do":
        return f"- [{'x' if content.get('checked') else ' '}] {text}" if text else ""
    if kind == "code":
        caption = rich_text(content.get("caption") or [])
        code = f"```{content.get('language') or ''}\n{text}\n```" if text else ""
        return "\n\n".join(part for part in (caption, code) if part)
    if kind == "equation":
        return str(content.get("expression") or "").strip()
    if kind in ("child_page", "child_database"):
        return " ".join(str(content.get("title") or "").split())
    if kind in _LINKS or kind in _MEDIA:
        caption = rich_text(content.get("caption") or [])
        hosted = content.get(str(content.get("type") or "")) or {}
        url = content.get("url") or (hosted.get("url") if isinstance(hosted, Mapping) else None)
        name = str(content.get("name") or "")
        if kind in _MEDIA:  # a hosted file's URL expires within the hour: not worth indexing
            return " ".join(part for part in (caption, name) if part)
        return " ".join(part for part in (caption, str(url or "")) if part)
    if kind in _NO_TEXT:
        return ""
    if kind not in _RICH_TEXT and kind not in _PREFIX:
        return None
    if not text:
        return ""
    if kind == "callout":
        icon = content.get("icon") or {}
        emoji = icon.get("emoji") if isinstance(icon, Mapping) else None
        return "> " + (f"{emoji} " if emoji else "") + text
    return _PREFIX.get(kind, "") + text


def rich_text(parts: list[Mapping[str, Any]]) -> str:
    return "".join(str(p.get("plain_text") or "") for p in parts).strip()


def page_title(page: Mapping[str, Any]) -> str:
    for prop in (page.get("properties") or {}).values():
        if isinstance(prop, Mapping) and prop.get("type") == "title":
            return _nfc(" ".join(rich_text(prop.get("title") or []).split()))
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


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


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
