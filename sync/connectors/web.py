"""A web site: a list of URLs and/or a sitemap (sitemap indexes included).

Polite and incremental: robots.txt is obeyed (stdlib ``urllib.robotparser``), a page whose
sitemap ``<lastmod>`` has not changed is not fetched at all, and other pages are fetched with
``If-None-Match``/``If-Modified-Since`` so an unchanged page costs a 304. A page that
disappears from the sitemap, or answers 404/410, is removed from the workspace (under the
engine's mass-deletion guard). The main content is extracted by the same extractor as ingested
HTML files (:mod:`retrieval.html`), under the same per-file limits.

Sitemap ``<loc>`` entries may be relative (``/docs/a.html``, ``docs/b.html``, ``../x``): they
resolve against the sitemap's own URL, as a browser resolves a link. Sitemaps are read as a
stream (gzip too) and parsed incrementally, each capped at ``FetchLimits.max_sitemap_bytes``
after decompression; pages are capped at ``max_response_bytes`` and the run at
``max_sync_bytes``. Every connection goes only to public addresses unless
``SYNC_ALLOWED_PRIVATE_HOSTS`` opens a private host (:mod:`sync.addresses`).
"""

from __future__ import annotations

import asyncio
import collections
import xml.etree.ElementTree as ElementTree
import zlib
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpx
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from retrieval.errors import BadDocumentError
from retrieval.html import decode_html, extract_main_text
from retrieval.loaders import clean_text
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
from sync.errors import (
    BlockedAddressError,
    FetchLimitError,
    SourceConfigError,
    SourceUnavailableError,
)
from sync.http import DownloadBudget
from sync.models import SourceKind

ROBOTS_AGENT = "supportbot"
CHECKPOINT_EVERY = 50
MAX_SITEMAP_DEPTH = 3
MAX_PAGES = 200_000
"""Pages one web source may list (its sitemaps together)."""
MAX_SITEMAPS = 1_000
"""Sitemaps one web source may read (the sitemap and every sitemap its indexes list)."""
MAX_ROBOTS_BYTES = 512 * 1024
"""How much of a robots.txt is read (RFC 9309 asks for at least 500 KiB); the rest is ignored."""
_READ_CHUNK = 64 * 1024
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
    fetches_outside_urls = True

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
            sitemap = self.config["sitemap"]
            await self._read_sitemap(ctx, sitemap, targets, depth=0, seen={sitemap})
        for url in self.config["urls"]:
            targets.setdefault(url, None)
        robots = None
        if self.config.get("respect_robots", True):
            robots = _Robots(ctx.http, ctx.downloads)
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
        headers = {"Accept-Encoding": "gzip, deflate"}  # what _Decoder undoes
        if known is not None and known.etag:
            headers["If-None-Match"] = known.etag
        if known is not None and known.last_modified:
            headers["If-Modified-Since"] = known.last_modified
        max_bytes = ctx.limits.max_response_bytes
        async with limit:
            try:
                async with ctx.http.stream("GET", url, headers=headers) as response:
                    data = b""
                    if response.status_code == 200:
                        data = await _read_capped(response, max_bytes, ctx.downloads)
            except httpx.HTTPError as e:
                return Failed(url, f"{url}: {type(e).__name__}: {e}".rstrip(": "))
            except BlockedAddressError as e:
                return Failed(url, f"{url}: refused: {e}")
            except _TooLarge:
                return Failed(url, f"{url}: page over the limit of {max_bytes:,} bytes; skipped")
            except (_Undecodable, zlib.error) as e:
                return Failed(url, f"{url}: cannot decode the response ({e}); skipped")
        if response.status_code == 304:
            return Unchanged(url)
        if response.status_code in (404, 410):
            return Document(id=url, url=url, deleted=True)
        if response.status_code != 200:
            return Failed(url, f"{url}: HTTP {response.status_code}")
        content_type = response.headers.get("content-type", "text/html").split(";")[0].strip()
        if content_type in ("text/html", "application/xhtml+xml"):
            html = decode_html(data, response.charset_encoding)
            try:
                page = await asyncio.to_thread(
                    extract_main_text, html, name=url, limits=ctx.limits.file
                )
            except BadDocumentError as e:
                return Failed(url, str(e))
            title, text = page.title, page.text
        elif content_type in _TEXT_TYPES:
            title = ""
            text = clean_text(data.decode(response.charset_encoding or "utf-8", "replace"))
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
        self,
        ctx: SyncContext,
        url: str,
        targets: dict[str, str | None],
        *,
        depth: int,
        seen: set[str],
    ) -> None:
        """Collect page URLs; a sitemap that cannot be read fails the sync (and deletes nothing).

        ``seen`` holds every sitemap URL already read or queued in this sync: an index that
        lists itself or an ancestor (a loop) or the same child twice reads it once, and a
        source reads at most :data:`MAX_SITEMAPS` sitemaps in all."""
        cap = ctx.limits.max_sitemap_bytes
        children: list[str] = []
        entries = _SitemapEntries(url, targets, children)
        # Entity declarations are refused as they are read (a sitemap needs none): no
        # expansion ("billion laughs") and no external entity is ever resolved, whichever
        # expat the interpreter was built with.
        parser = DefusedXMLParser(target=entries)
        try:
            async with ctx.http.stream("GET", url) as response:
                if response.status_code != 200:
                    raise SourceUnavailableError(
                        f"sitemap {url}: HTTP {response.status_code}; check the URL "
                        "(nothing was removed)"
                    )
                decoder = _Decoder(response.headers.get("content-encoding"))
                size = 0
                async for raw in response.aiter_raw(_READ_CHUNK):
                    ctx.downloads.take(len(raw))
                    if size == 0 and raw[:2] == b"\x1f\x8b" and not decoder.inflating:
                        decoder = _Decoder("gzip")  # a .xml.gz file, not a transfer encoding
                    for data in decoder.feed(raw):
                        size += len(data)
                        if size > cap:
                            raise FetchLimitError(
                                f"sitemap {url}: over the limit of {cap:,} bytes "
                                "(decompressed); split it into a sitemap index (nothing "
                                "was removed)"
                            )
                        parser.feed(data)
                        if len(targets) + len(children) > MAX_PAGES:
                            raise FetchLimitError(
                                f"sitemap {url}: over {MAX_PAGES:,} pages listed; split the "
                                "site into several sources (nothing was removed)"
                            )
        except httpx.HTTPError as e:
            raise SourceUnavailableError(f"sitemap {url}: {type(e).__name__}: {e}") from e
        except BlockedAddressError as e:
            raise BlockedAddressError(f"sitemap {url}: refused: {e}") from e
        except (zlib.error, _Undecodable) as e:
            raise SourceUnavailableError(f"sitemap {url}: cannot decode ({e})") from e
        except ElementTree.ParseError as e:
            raise SourceUnavailableError(f"sitemap {url}: not valid XML ({e})") from e
        except DefusedXmlException as e:
            raise SourceUnavailableError(_entities_refused(url, e)) from e
        try:
            parser.close()
        except ElementTree.ParseError as e:
            raise SourceUnavailableError(f"sitemap {url}: not valid XML ({e})") from e
        except DefusedXmlException as e:
            raise SourceUnavailableError(_entities_refused(url, e)) from e
        kind = entries.kind
        if kind == "sitemapindex":
            if depth >= MAX_SITEMAP_DEPTH:
                raise SourceUnavailableError(f"sitemap {url}: sitemap indexes nested too deep")
            fresh = [child for child in dict.fromkeys(children) if child not in seen]
            if len(seen) + len(fresh) > MAX_SITEMAPS:
                raise FetchLimitError(
                    f"sitemap {url}: over {MAX_SITEMAPS:,} sitemaps listed; split the site into "
                    "several sources (nothing was removed)"
                )
            seen.update(fresh)
            for child in fresh:
                await self._read_sitemap(ctx, child, targets, depth=depth + 1, seen=seen)
        elif kind != "urlset":
            raise SourceUnavailableError(f"sitemap {url}: expected <urlset> or <sitemapindex>")


def _entities_refused(url: str, error: DefusedXmlException) -> str:
    """The one-line reason for a sitemap that declares entities (``error`` names one)."""
    name = getattr(error, "name", None)
    what = f"the entity {name!r}" if name else "an entity"
    return (
        f"sitemap {url}: declares {what} (a sitemap needs none; entities can expand into "
        "gigabytes or read other files); refused (nothing was removed)"
    )


class _TooLarge(Exception):
    """A response went over its byte limit (reading stopped there)."""


class _Undecodable(Exception):
    """A response's body cannot be decoded (unknown content encoding, broken gzip)."""


class _Decoder:
    """Undoes a ``Content-Encoding`` (gzip or deflate) a bounded piece at a time, so that a
    small compressed body cannot inflate into memory all at once (httpx's own decoders
    inflate each received chunk whole)."""

    def __init__(self, encoding: str | None) -> None:
        name = (encoding or "identity").strip().lower()
        self._inflate: Any = None
        if name in ("gzip", "x-gzip"):
            self._inflate = zlib.decompressobj(wbits=31)
        elif name == "deflate":
            self._inflate = zlib.decompressobj(wbits=47)  # zlib or gzip header, auto-detected
        elif name not in ("identity", ""):
            raise _Undecodable(f"unsupported Content-Encoding {name!r}")

    @property
    def inflating(self) -> bool:
        return self._inflate is not None

    def feed(self, raw: bytes) -> Iterator[bytes]:
        if self._inflate is None:
            if raw:
                yield raw
            return
        pending = raw
        while pending and not self._inflate.eof:
            data = self._inflate.decompress(pending, _READ_CHUNK)
            pending = self._inflate.unconsumed_tail
            if data:
                yield data


async def _read_capped(response: httpx.Response, limit: int, budget: DownloadBudget) -> bytes:
    """The body, decoded from its content encoding, up to ``limit`` bytes; raises
    :class:`_TooLarge` beyond (without reading the rest)."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    decoder = _Decoder(response.headers.get("content-encoding"))
    parts: list[bytes] = []
    size = 0
    async for raw in response.aiter_raw(_READ_CHUNK):
        budget.take(len(raw))
        for part in decoder.feed(raw):
            size += len(part)
            if size > limit:
                raise _TooLarge
            parts.append(part)
    return b"".join(parts)


async def _read_prefix(response: httpx.Response, limit: int, budget: DownloadBudget) -> bytes:
    """The body's first ``limit`` bytes (at most), decoded from its content encoding; the rest
    is neither read nor inflated."""
    decoder = _Decoder(response.headers.get("content-encoding"))
    parts: list[bytes] = []
    size = 0
    async for raw in response.aiter_raw(_READ_CHUNK):
        budget.take(len(raw))
        for part in decoder.feed(raw):
            parts.append(part[: limit - size])
            size += len(parts[-1])
            if size >= limit:
                return b"".join(parts)
    return b"".join(parts)


class _SitemapEntries:
    """An ``XMLParser`` target that keeps only what a sitemap is for: each ``<url>``'s or
    ``<sitemap>``'s ``<loc>`` (resolved) and ``<lastmod>``. No tree is built and other text is
    dropped as it streams by, so memory stays small whatever the document holds (a whitespace
    bomb, huge unknown elements)."""

    _FIELDS = ("loc", "lastmod")
    _MAX_FIELD_CHARS = 8192

    def __init__(self, base: str, targets: dict[str, str | None], children: list[str]) -> None:
        self._base = base
        self._targets = targets
        self._children = children
        self._depth = 0
        self._field: str | None = None
        self._text: list[str] = []
        self._size = 0
        self._values: dict[str, str] = {}
        self.kind = ""
        """The root element's name: "urlset" or "sitemapindex" (else not a sitemap)."""

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self._depth += 1
        name = tag.removeprefix(_SITEMAP_NS)
        if self._depth == 1:
            self.kind = name
        elif self._depth == 3 and name in self._FIELDS:
            self._field, self._text, self._size = name, [], 0

    def data(self, data: str) -> None:
        if self._field is not None and self._size < self._MAX_FIELD_CHARS:
            self._text.append(data)
            self._size += len(data)

    def end(self, tag: str) -> None:
        name = tag.removeprefix(_SITEMAP_NS)
        if self._depth == 3 and self._field is not None:
            value = "".join(self._text).strip()
            if value and self._size < self._MAX_FIELD_CHARS:
                self._values[self._field] = value
            self._field = None
        elif self._depth == 2:
            loc = self._values.get("loc")
            location = _resolve(self._base, loc) if loc else None
            if location is not None and name == "url" and self.kind == "urlset":
                self._targets[location] = self._values.get("lastmod")
            elif location is not None and name == "sitemap" and self.kind == "sitemapindex":
                self._children.append(location)
            self._values = {}
        self._depth -= 1

    def close(self) -> None:
        return None


def _resolve(base: str, loc: str) -> str | None:
    """A ``<loc>`` as an absolute http(s) URL: relative ones resolve against the sitemap's
    URL (``/a`` from the host's root, ``a`` and ``../a`` from the sitemap's folder)."""
    absolute = urljoin(base, loc.strip())
    parts = urlsplit(absolute)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return normalize_url(absolute)


class _Robots:
    """robots.txt per site, read once per sync."""

    def __init__(self, http: httpx.AsyncClient, downloads: DownloadBudget) -> None:
        self._http = http
        self._downloads = downloads
        self._parsers: dict[str, RobotFileParser | None] = {}

    async def allows(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._parsers:
            self._parsers[origin] = await self._load(origin)
        parser = self._parsers[origin]
        return parser is None or parser.can_fetch(ROBOTS_AGENT, url)

    async def _load(self, origin: str) -> RobotFileParser | None:
        data = b""
        try:
            url = f"{origin}/robots.txt"
            headers = {"Accept-Encoding": "gzip, deflate"}  # what _Decoder undoes
            async with self._http.stream("GET", url, headers=headers) as response:
                if response.status_code == 200:
                    data = await _read_prefix(response, MAX_ROBOTS_BYTES, self._downloads)
        except httpx.HTTPError as e:
            raise SourceUnavailableError(f"{origin}/robots.txt: {type(e).__name__}: {e}") from e
        except BlockedAddressError:
            return None  # its pages are refused, each with the reason, when fetched
        except (_Undecodable, zlib.error) as e:
            raise SourceUnavailableError(f"{origin}/robots.txt: cannot decode ({e})") from e
        if 400 <= response.status_code < 500:
            return None  # no robots.txt: everything is allowed
        if response.status_code != 200:
            # RFC 9309 says to assume "disallow all"; failing keeps the stored pages instead.
            raise SourceUnavailableError(
                f"{origin}/robots.txt: HTTP {response.status_code}; the sync resumes next run"
            )
        if len(data) >= MAX_ROBOTS_BYTES:  # the rest is ignored (RFC 9309 section 2.5)
            data = data[: data.rfind(b"\n") + 1]
        parser = RobotFileParser()
        parser.parse(data.decode(response.charset_encoding or "utf-8", "replace").splitlines())
        return parser


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return _aware(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError):
        return None


def _iso_date(value: str | None) -> datetime | None:
    """A sitemap ``<lastmod>`` (W3C datetime: a date alone is common) as an aware datetime."""
    if not value:
        return None
    try:
        return _aware(datetime.fromisoformat(value))
    except ValueError:
        return None


def _aware(moment: datetime) -> datetime:
    """Dates without a zone are taken as UTC (the database stores aware datetimes only)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
