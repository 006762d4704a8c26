"""A web site: a list of URLs and/or a sitemap (sitemap indexes included).

Polite and incremental: robots.txt is obeyed (stdlib ``urllib.robotparser``), a page whose
sitemap ``<lastmod>`` has not changed is not fetched at all, and other pages are fetched with
``If-None-Match``/``If-Modified-Since`` so an unchanged page costs a 304. A page that
disappears from the sitemap, or answers 404/410, is removed from the workspace. The main
content (``<main>``/``<article>``, without menus and footers) is extracted by the same HTML
loader as ingested files.
"""

from __future__ import annotations

import asyncio
import collections
import gzip
import xml.etree.ElementTree as ElementTree
from collections.abc import AsyncIterator, Awaitable, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpx

from retrieval.loaders import clean_text, html_main_text
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
from sync.errors import SourceConfigError, SourceUnavailableError
from sync.models import SourceKind

ROBOTS_AGENT = "supportbot"
CHECKPOINT_EVERY = 50
MAX_SITEMAP_DEPTH = 3
MAX_SITEMAP_BYTES = 50 * 1024 * 1024
MAX_PAGE_BYTES = 10 * 1024 * 1024
_SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
_TEXT_TYPES = ("text/plain", "text/markdown", "text/x-markdown")


def normalize_url(url: str) -> str:
    """The page's id: the URL without its fragment (``#section`` is the same page)."""
    return urldefrag(url.strip())[0]


def _check_url(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SourceConfigError(f"{what} {url!r} is not an http(s) URL")
    return normalize_url(url)


class WebConnector(Connector):
    kind = SourceKind.WEB

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        urls = [_check_url(u, "--url") for u in require_list(config, "urls")]
        sitemap = config.get("sitemap")
        if sitemap is not None:
            if not isinstance(sitemap, str):
                raise SourceConfigError("--sitemap must be a URL")
            sitemap = _check_url(sitemap, "--sitemap")
        if not urls and not sitemap:
            raise SourceConfigError("a web source needs --sitemap URL or --url URL (repeatable)")
        concurrency = int(config.get("concurrency", 8))
        if not 1 <= concurrency <= 64:
            raise SourceConfigError("concurrency must be between 1 and 64")
        return {
            "urls": list(dict.fromkeys(urls)),
            "sitemap": sitemap,
            "concurrency": concurrency,
            "respect_robots": bool(config.get("respect_robots", True)),
        }

    async def stream(self, ctx: SyncContext) -> AsyncIterator[Item]:
        targets: dict[str, str | None] = {}  # url -> sitemap lastmod
        if self.config.get("sitemap"):
            await self._read_sitemap(ctx.http, self.config["sitemap"], targets, depth=0)
        for url in self.config["urls"]:
            targets.setdefault(url, None)
        robots = _Robots(ctx.http) if self.config.get("respect_robots", True) else None
        allowed: list[tuple[str, str | None]] = []
        for url, lastmod in targets.items():
            if robots is None or await robots.allows(url):
                allowed.append((url, lastmod))
        yield Planned(len(allowed))
        window: collections.deque[Awaitable[Item]] = collections.deque()
        limit = asyncio.Semaphore(int(self.config.get("concurrency", 8)))
        done = 0
        for url, lastmod in allowed:
            window.append(asyncio.ensure_future(self._page(ctx, url, lastmod, limit)))
            if len(window) >= 2 * int(self.config.get("concurrency", 8)):
                yield await window.popleft()
                done += 1
                if done % CHECKPOINT_EVERY == 0:
                    yield Checkpoint(None)
        try:
            while window:
                yield await window.popleft()
                done += 1
                if done % CHECKPOINT_EVERY == 0:
                    yield Checkpoint(None)
        finally:
            for task in window:  # the consumer stopped early: do not leave fetches running
                if isinstance(task, asyncio.Future):
                    task.cancel()

    async def _page(
        self, ctx: SyncContext, url: str, lastmod: str | None, limit: asyncio.Semaphore
    ) -> Item:
        known = ctx.known.get(url)
        if known is not None and known.seen_this_pass:
            return Unchanged(url)  # done before this pass was interrupted
        if lastmod is not None and known is not None and known.version == lastmod:
            return Unchanged(url)
        headers: dict[str, str] = {}
        if known is not None and known.etag:
            headers["If-None-Match"] = known.etag
        if known is not None and known.last_modified:
            headers["If-Modified-Since"] = known.last_modified
        async with limit:
            try:
                response = await ctx.http.get(url, headers=headers)
            except httpx.HTTPError as e:
                return Failed(url, f"{url}: {type(e).__name__}: {e}".rstrip(": "))
        if response.status_code == 304:
            return Unchanged(url)
        if response.status_code in (404, 410):
            return Document(id=url, url=url, deleted=True)
        if response.status_code != 200:
            return Failed(url, f"{url}: HTTP {response.status_code}")
        if len(response.content) > MAX_PAGE_BYTES:
            return Failed(url, f"{url}: page over {MAX_PAGE_BYTES // 1024 // 1024} MB; skipped")
        content_type = response.headers.get("content-type", "text/html").split(";")[0].strip()
        if content_type in ("text/html", "application/xhtml+xml"):
            title, text = await asyncio.to_thread(html_main_text, response.text)
        elif content_type in _TEXT_TYPES:
            title, text = "", clean_text(response.text)
        else:
            return Failed(url, f"{url}: unsupported content type {content_type}; skipped")
        if not text.strip():
            return Failed(url, f"{url}: no text in the page's main content")
        etag = response.headers.get("etag")
        modified = response.headers.get("last-modified")
        return Document(
            id=url,
            title=title or urlsplit(url).path.rsplit("/", 1)[-1] or url,
            text=text,
            url=url,
            updated_at=_http_date(modified) or _iso_date(lastmod),
            version=lastmod or etag or modified,
            etag=etag,
            last_modified=modified,
        )

    async def _read_sitemap(
        self, http: httpx.AsyncClient, url: str, targets: dict[str, str | None], *, depth: int
    ) -> None:
        """Collect page URLs; a sitemap that cannot be read fails the sync (and deletes nothing)."""
        try:
            response = await http.get(url)
        except httpx.HTTPError as e:
            raise SourceUnavailableError(f"sitemap {url}: {type(e).__name__}: {e}") from e
        if response.status_code != 200:
            raise SourceUnavailableError(
                f"sitemap {url}: HTTP {response.status_code}; check the URL (nothing was removed)"
            )
        data = response.content[:MAX_SITEMAP_BYTES]
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        try:
            root = ElementTree.fromstring(data)
        except ElementTree.ParseError as e:
            raise SourceUnavailableError(f"sitemap {url}: not valid XML ({e})") from e
        tag = root.tag.removeprefix(_SITEMAP_NS)
        if tag == "sitemapindex":
            if depth >= MAX_SITEMAP_DEPTH:
                raise SourceUnavailableError(f"sitemap {url}: sitemap indexes nested too deep")
            for child in root.iter(f"{_SITEMAP_NS}sitemap"):
                loc = _text(child, "loc")
                if loc:
                    await self._read_sitemap(http, urljoin(url, loc), targets, depth=depth + 1)
            return
        if tag != "urlset":
            raise SourceUnavailableError(f"sitemap {url}: expected <urlset> or <sitemapindex>")
        for child in root.iter(f"{_SITEMAP_NS}url"):
            loc = _text(child, "loc")
            if loc and urlsplit(loc).scheme in ("http", "https"):
                targets[normalize_url(loc)] = _text(child, "lastmod")


class _Robots:
    """robots.txt per site, read once per sync."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http
        self._parsers: dict[str, RobotFileParser | None] = {}

    async def allows(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._parsers:
            self._parsers[origin] = await self._load(origin)
        parser = self._parsers[origin]
        return parser is None or parser.can_fetch(ROBOTS_AGENT, url)

    async def _load(self, origin: str) -> RobotFileParser | None:
        try:
            response = await self._http.get(f"{origin}/robots.txt")
        except httpx.HTTPError as e:
            raise SourceUnavailableError(f"{origin}/robots.txt: {type(e).__name__}: {e}") from e
        if 400 <= response.status_code < 500:
            return None  # no robots.txt: everything is allowed
        if response.status_code != 200:
            # RFC 9309 says to assume "disallow all"; failing keeps the stored pages instead.
            raise SourceUnavailableError(
                f"{origin}/robots.txt: HTTP {response.status_code}; the sync resumes next run"
            )
        parser = RobotFileParser()
        parser.parse(response.text.splitlines())
        return parser


def _text(element: ElementTree.Element, name: str) -> str | None:
    found = element.find(f"{_SITEMAP_NS}{name}")
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None


def _iso_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
