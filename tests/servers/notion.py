"""A local server that speaks Notion's public API (version 2025-09-03) for the Notion connector.

The real ``notion-client`` is pointed at it with ``base_url``. Surface: ``POST /v1/search``
(pages), ``GET /v1/pages/{id}``, ``GET /v1/blocks/{id}/children`` (paginated, nested blocks),
``GET /v1/databases/{id}`` (with its data sources), ``POST /v1/data_sources/{id}/query``, and
``POST /v1/oauth/token`` (``grant_type=refresh_token``, HTTP Basic client credentials).
Errors have Notion's shape (``{"object": "error", "status", "code", "message"}``); a missing
``Notion-Version`` is 400, an unknown or expired token 401, and faults can be queued: 429
with ``Retry-After``, 5xx. Pages are edited in place (``last_edited_time`` moves), archived or
trashed, and every request is recorded.
"""

from __future__ import annotations

import base64
import collections
import copy
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from tests.servers.background import BackgroundServer

BASE_TIME = datetime(2026, 2, 1, tzinfo=UTC)
_NAMESPACE = uuid.UUID("0b5c8f0e-5a1e-4d9b-8a5e-5d4c0f0e1a2b")


def notion_id(name: str) -> str:
    """A deterministic Notion-style UUID for a test object."""
    return str(uuid.uuid5(_NAMESPACE, name))


def paragraph(text: str) -> dict[str, Any]:
    return {"type": "paragraph", "text": text}


def heading(text: str, level: int = 2) -> dict[str, Any]:
    return {"type": f"heading_{level}", "text": text}


def bullet(text: str, children: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "bulleted_list_item", "text": text, "children": children or []}


def rich(text: str) -> list[dict[str, Any]]:
    """A rich-text array holding ``text``."""
    return [{"type": "text", "plain_text": text, "text": {"content": text}}]


def block(
    kind: str,
    body: dict[str, Any],
    children: list[dict[str, Any]] | None = None,
    *,
    name: str | None = None,
) -> dict[str, Any]:
    """Any block type; ``body`` is the type's object (``{"rich_text": rich("...")}``), ``name``
    gives the block a known id (``notion_id(name)``), e.g. an original synced block."""
    spec: dict[str, Any] = {"type": kind, "body": body, "children": children or []}
    if name is not None:
        spec["id"] = notion_id(name)
    return spec


class NotionSimulator(BackgroundServer):
    thread_name = "notion-simulator"

    def __init__(self, *, page_size_cap: int = 100, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port)
        self.page_size_cap = page_size_cap
        self.tokens: set[str] = set()
        self.expired: set[str] = set()
        self.clients: dict[str, str] = {}
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> new access token
        self._pages: dict[str, dict[str, Any]] = {}
        self._blocks: dict[str, list[dict[str, Any]]] = {}  # parent id -> child blocks
        self._databases: dict[str, dict[str, Any]] = {}  # database id -> {title, source}
        self._faults: collections.deque[tuple[int, str | None]] = collections.deque()
        self._clock = itertools.count(1)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/search", self._search)
        app.router.add_get("/v1/pages/{id}", self._page)
        app.router.add_get("/v1/blocks/{id}/children", self._children)
        app.router.add_get("/v1/databases/{id}", self._database)
        app.router.add_post("/v1/data_sources/{id}/query", self._query)
        app.router.add_post("/v1/oauth/token", self._oauth_token)

    # --- content -----------------------------------------------------------------------------

    def _now(self) -> str:
        return (
            (BASE_TIME + timedelta(minutes=next(self._clock)))
            .isoformat()
            .replace("+00:00", ".000Z")
        )

    def add_page(
        self,
        name: str,
        title: str,
        blocks: list[dict[str, Any]],
        *,
        parent: str | None = None,
        database: str | None = None,
    ) -> str:
        """Create (or replace) a page with blocks; ``parent``: a page name (adds a child_page
        block there); ``database``: a database name (an entry of it). Returns its id."""
        page_id = notion_id(name)
        with self.lock:
            if database is not None:
                parent_ref = {
                    "type": "data_source_id",
                    "data_source_id": self._databases[notion_id(database)]["source"],
                }
            elif parent is not None:
                parent_ref = {"type": "page_id", "page_id": notion_id(parent)}
                siblings = self._blocks.setdefault(notion_id(parent), [])
                if not any(b["id"] == page_id for b in siblings):
                    siblings.append(self._block({"type": "child_page", "title": title}, page_id))
            else:
                parent_ref = {"type": "workspace", "workspace": True}
            self._pages[page_id] = {
                "object": "page",
                "id": page_id,
                "created_time": self._now(),
                "last_edited_time": self._now(),
                "archived": False,
                "in_trash": False,
                "url": f"https://www.notion.so/{page_id.replace('-', '')}",
                "parent": parent_ref,
                "properties": {
                    "title": {
                        "id": "title",
                        "type": "title",
                        "title": [
                            {"type": "text", "plain_text": title, "text": {"content": title}}
                        ],
                    }
                },
            }
            self._set_blocks(page_id, blocks)
        return page_id

    def set_raw_blocks(self, parent_id: str, blocks: list[dict[str, Any]]) -> None:
        """Serve ``blocks`` (Notion's JSON, as the API returns it) as the children of a page or
        block id, in place of any there (child pages of a page are kept)."""
        with self.lock:
            keep = [
                b
                for b in self._blocks.get(parent_id, [])
                if b["type"] in ("child_page", "child_database")
            ]
            self._blocks[parent_id] = copy.deepcopy(blocks) + keep

    def edit_page(self, name: str, blocks: list[dict[str, Any]]) -> None:
        """Replace a page's blocks; its last_edited_time moves on, as in Notion."""
        page_id = notion_id(name)
        with self.lock:
            self._pages[page_id]["last_edited_time"] = self._now()
            self._set_blocks(page_id, blocks)

    def trash_page(self, name: str) -> None:
        with self.lock:
            page = self._pages[notion_id(name)]
            page.update(archived=True, in_trash=True, last_edited_time=self._now())

    def add_database(self, name: str, title: str) -> str:
        database_id = notion_id(name)
        with self.lock:
            self._databases[database_id] = {"title": title, "source": notion_id(f"{name}/source")}
        return database_id

    def _set_blocks(self, parent_id: str, blocks: list[dict[str, Any]]) -> None:
        keep = [
            b
            for b in self._blocks.get(parent_id, [])
            if b["type"] in ("child_page", "child_database")
        ]
        built = []
        for n, spec in enumerate(blocks):
            block_id = spec.get("id") or notion_id(f"{parent_id}/{n}/{spec.get('text', '')}")
            built.append(self._block(spec, block_id))
            if spec.get("children"):
                self._set_blocks(block_id, spec["children"])
        self._blocks[parent_id] = built + keep

    def _block(self, spec: dict[str, Any], block_id: str) -> dict[str, Any]:
        kind = spec["type"]
        if "body" in spec:  # the block type's own object, as Notion's API shapes it
            body: dict[str, Any] = copy.deepcopy(spec["body"])
        elif kind == "child_page":
            body = {"title": spec["title"]}
        else:
            body = {
                "rich_text": [
                    {"type": "text", "plain_text": spec["text"], "text": {"content": spec["text"]}}
                ]
            }
        return {
            "object": "block",
            "id": block_id,
            "type": kind,
            "has_children": bool(spec.get("children")),
            "archived": False,
            kind: body,
        }

    # --- faults and auth -----------------------------------------------------------------------

    def rate_limit(self, times: int = 1, retry_after: str = "1") -> None:
        with self.lock:
            self._faults.extend([(429, retry_after)] * times)

    def fail(self, times: int = 1, status: int = 502) -> None:
        with self.lock:
            self._faults.extend([(status, None)] * times)

    def _error(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        return web.json_response(
            {"object": "error", "status": status, "code": code, "message": message},
            status=status,
            headers=headers,
        )

    def _check(self, request: web.Request) -> web.Response | None:
        with self.lock:
            if self._faults:
                status, retry_after = self._faults.popleft()
                if status == 429:
                    return self._error(
                        429, "rate_limited", "Rate limited", {"Retry-After": retry_after or "1"}
                    )
                return self._error(status, "service_unavailable", "Notion is unavailable")
        if "Notion-Version" not in request.headers:
            return self._error(400, "missing_version", "Notion-Version header failed validation")
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        with self.lock:
            valid = scheme == "Bearer" and token in self.tokens and token not in self.expired
        if not valid:
            return self._error(401, "unauthorized", "API token is invalid.")
        return None

    # --- handlers ------------------------------------------------------------------------------

    def _list(self, items: list[dict[str, Any]], cursor: str | None, size: int) -> dict[str, Any]:
        size = max(1, min(size, self.page_size_cap))
        start = int(cursor) if cursor else 0
        page = items[start : start + size]
        more = start + size < len(items)
        return {
            "object": "list",
            "results": copy.deepcopy(page),
            "next_cursor": str(start + size) if more else None,
            "has_more": more,
        }

    async def _search(self, request: web.Request) -> web.Response:
        if (error := self._check(request)) is not None:
            return error
        body = await request.json() if request.can_read_body else {}
        with self.lock:
            pages = [p for p in self._pages.values() if not p["in_trash"]]
        pages.sort(key=lambda p: p["last_edited_time"], reverse=True)
        result = self._list(pages, body.get("start_cursor"), int(body.get("page_size", 100)))
        result["type"] = "page_or_data_source"
        return web.json_response(result)

    async def _page(self, request: web.Request) -> web.Response:
        if (error := self._check(request)) is not None:
            return error
        with self.lock:
            page = self._pages.get(request.match_info["id"])
        if page is None:
            return self._error(404, "object_not_found", "Could not find page")
        return web.json_response(copy.deepcopy(page))

    async def _children(self, request: web.Request) -> web.Response:
        if (error := self._check(request)) is not None:
            return error
        block_id = request.match_info["id"]
        with self.lock:
            if block_id in self._pages and self._pages[block_id]["in_trash"]:
                return self._error(404, "object_not_found", "Could not find block")
            blocks = list(self._blocks.get(block_id, []))
        query = request.query
        return web.json_response(
            self._list(blocks, query.get("start_cursor"), int(query.get("page_size", 100)))
        )

    async def _database(self, request: web.Request) -> web.Response:
        if (error := self._check(request)) is not None:
            return error
        with self.lock:
            database = self._databases.get(request.match_info["id"])
        if database is None:
            return self._error(404, "object_not_found", "Could not find database")
        return web.json_response(
            {
                "object": "database",
                "id": request.match_info["id"],
                "title": [{"type": "text", "plain_text": database["title"]}],
                "data_sources": [{"id": database["source"], "name": database["title"]}],
            }
        )

    async def _query(self, request: web.Request) -> web.Response:
        if (error := self._check(request)) is not None:
            return error
        source = request.match_info["id"]
        body = await request.json() if request.can_read_body else {}
        with self.lock:
            entries = [
                p
                for p in self._pages.values()
                if p["parent"].get("data_source_id") == source and not p["in_trash"]
            ]
        entries.sort(key=lambda p: p["created_time"])
        return web.json_response(
            self._list(entries, body.get("start_cursor"), int(body.get("page_size", 100)))
        )

    async def _oauth_token(self, request: web.Request) -> web.Response:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            client_id, secret = "", ""
        if scheme != "Basic" or self.clients.get(client_id) != secret:
            return self._error(401, "unauthorized", "Invalid client credentials.")
        body = await request.json()
        with self.lock:
            new_token = self.refresh_tokens.pop(str(body.get("refresh_token")), None)
            if body.get("grant_type") != "refresh_token" or new_token is None:
                return self._error(400, "invalid_grant", "Invalid refresh token.")
            self.tokens.add(new_token)
        return web.json_response(
            {
                "access_token": new_token,
                "refresh_token": f"{new_token}-refresh",
                "token_type": "bearer",
                "bot_id": notion_id("bot"),
                "workspace_id": notion_id("workspace"),
            }
        )
