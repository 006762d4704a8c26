"""A local web site for the web connector: pages that change, a sitemap, robots.txt, ETags.

Pages are HTML with site chrome (a nav menu and a footer) around a ``<main>`` holding the
content, as a help center's would be. The sitemap lists every page with its ``<lastmod>``
(optional), or, with ``sitemap_page_size``, a sitemap index over several sitemaps. Every page
answers with an ``ETag`` and ``Last-Modified`` and honours ``If-None-Match`` and
``If-Modified-Since`` with 304. Faults: 429 storms with ``Retry-After``, 5xx errors, latency.

From the command line (serves until Ctrl-C), e.g. for the benchmark::

    python -m tests.servers.website --pages 5000 --port 8097
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import html
import signal
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

from aiohttp import web

from tests.servers.background import BackgroundServer

BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class Page:
    title: str
    body: str
    modified: datetime
    content_type: str = "text/html"

    @property
    def etag(self) -> str:
        digest = hashlib.sha256(f"{self.title}\x00{self.body}".encode()).hexdigest()[:16]
        return f'"{digest}"'


class Website(BackgroundServer):
    thread_name = "website-simulator"

    def __init__(
        self,
        *,
        lastmod: bool = True,
        sitemap_page_size: int | None = None,
        robots: str = "User-agent: *\nAllow: /\n",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.lastmod = lastmod
        self.sitemap_page_size = sitemap_page_size
        self.robots = robots
        self.latency = 0.0
        self._pages: dict[str, Page] = {}
        self._unlisted: set[str] = set()
        self._gone: set[str] = set()
        self._faults: dict[str, collections.deque[tuple[int, str | None]]] = {}
        self._tick = 0
        self._pause = threading.Event()
        self._pause.set()
        self.loc_style = "absolute"
        """How the sitemap writes ``<loc>``: "absolute", "root" (``/path``) or "relative"."""
        self._raw: dict[str, tuple[bytes, str, dict[str, str]]] = {}
        self._redirects: dict[str, tuple[str, int]] = {}

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/robots.txt", self._robots)
        app.router.add_get("/sitemap.xml", self._sitemap_or_raw)
        app.router.add_get("/sitemaps/{n}.xml", self._sitemap_part)
        app.router.add_get("/{path:.*}", self._page)

    # --- content ---------------------------------------------------------------------------

    def set_page(
        self,
        path: str,
        title: str,
        body: str,
        *,
        listed: bool = True,
        content_type: str = "text/html",
    ) -> str:
        """Create or change a page; returns its URL. Each change moves its modified time on."""
        with self.lock:
            self._tick += 1
            self._pages[path] = Page(
                title, body, BASE_TIME + timedelta(minutes=self._tick), content_type
            )
            self._gone.discard(path)
            if listed:
                self._unlisted.discard(path)
            else:
                self._unlisted.add(path)
        return self.page_url(path)

    def delete_page(self, path: str, *, status: int = 404) -> None:
        """Remove a page from the site and its sitemap (``status`` 410 answers Gone)."""
        with self.lock:
            self._pages.pop(path, None)
            self._unlisted.discard(path)
            if status == 410:
                self._gone.add(path)

    def unlist(self, path: str) -> None:
        """Drop a page from the sitemap, leaving it reachable."""
        with self.lock:
            self._unlisted.add(path)

    def set_raw(
        self,
        path: str,
        body: bytes,
        content_type: str = "application/octet-stream",
        headers: dict[str, str] | None = None,
    ) -> str:
        """Serve ``body`` as it is at ``path`` (a sitemap of one's own, a gzip file)."""
        with self.lock:
            self._raw[path.lstrip("/")] = (body, content_type, dict(headers or {}))
        return self.page_url(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        """Answer ``path`` with a redirect to ``location``."""
        with self.lock:
            self._redirects[path.lstrip("/")] = (location, status)
        return self.page_url(path)

    def page_url(self, path: str) -> str:
        return f"{self.url}/{path.lstrip('/')}"

    @property
    def sitemap_url(self) -> str:
        return f"{self.url}/sitemap.xml"

    # --- faults ----------------------------------------------------------------------------

    def rate_limit(self, path: str = "*", times: int = 1, retry_after: str | None = "1") -> None:
        """The next ``times`` requests (of ``path`` or any) answer 429 with ``Retry-After``."""
        with self.lock:
            self._faults.setdefault(path, collections.deque()).extend([(429, retry_after)] * times)

    def fail(self, path: str = "*", times: int = 1, status: int = 503) -> None:
        with self.lock:
            self._faults.setdefault(path, collections.deque()).extend([(status, None)] * times)

    def pause(self) -> None:
        """Hold every page request until :meth:`resume` (to catch a sync mid-way)."""
        self._pause.clear()

    def resume(self) -> None:
        self._pause.set()

    def _fault(self, path: str) -> web.Response | None:
        with self.lock:
            for key in (path, "*"):
                queue = self._faults.get(key)
                if queue:
                    status, retry_after = queue.popleft()
                    headers = {"Retry-After": retry_after} if retry_after is not None else {}
                    return web.Response(status=status, text="slow down", headers=headers)
        return None

    # --- handlers --------------------------------------------------------------------------

    async def _robots(self, request: web.Request) -> web.Response:
        if "robots.txt" in self._raw:
            return await self._page(request, "robots.txt")
        if self.robots is None:
            return web.Response(status=404)
        return web.Response(text=self.robots, content_type="text/plain")

    def _listed(self) -> list[tuple[str, Page]]:
        with self.lock:
            return sorted((p, page) for p, page in self._pages.items() if p not in self._unlisted)

    def _urlset(self, pages: list[tuple[str, Page]]) -> str:
        rows = []
        for path, page in pages:
            lastmod = f"<lastmod>{page.modified.isoformat()}</lastmod>" if self.lastmod else ""
            loc = {"absolute": self.page_url(path), "root": f"/{path}", "relative": path}[
                self.loc_style
            ]
            rows.append(f"<url><loc>{html.escape(loc)}</loc>{lastmod}</url>")
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            + "".join(rows)
            + "</urlset>"
        )

    async def _sitemap_or_raw(self, request: web.Request) -> web.Response:
        if "sitemap.xml" in self._raw:
            return await self._page(request, "sitemap.xml")
        return await self._sitemap(request)

    async def _sitemap(self, request: web.Request) -> web.Response:
        fault = self._fault("/sitemap.xml")
        if fault is not None:
            return fault
        pages = self._listed()
        size = self.sitemap_page_size
        if size is None:
            return web.Response(text=self._urlset(pages), content_type="application/xml")
        parts = max(1, -(-len(pages) // size))
        rows = "".join(
            f"<sitemap><loc>{self.url}/sitemaps/{n}.xml</loc></sitemap>" for n in range(parts)
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"{rows}</sitemapindex>"
        )
        return web.Response(text=body, content_type="application/xml")

    async def _sitemap_part(self, request: web.Request) -> web.Response:
        size = self.sitemap_page_size or 1
        n = int(request.match_info["n"])
        pages = self._listed()[n * size : (n + 1) * size]
        return web.Response(text=self._urlset(pages), content_type="application/xml")

    async def _page(self, request: web.Request, path: str | None = None) -> web.Response:
        path = request.match_info["path"] if path is None else path
        fault = self._fault("/" + path)
        if fault is not None:
            return fault
        with self.lock:
            raw = self._raw.get(path)
            redirect = self._redirects.get(path)
        if redirect is not None:
            return web.Response(status=redirect[1], headers={"Location": redirect[0]})
        if raw is not None:
            return web.Response(body=raw[0], content_type=raw[1], headers=raw[2])
        if not self._pause.is_set():
            await asyncio.to_thread(self._pause.wait)
        if self.latency:
            await asyncio.sleep(self.latency)
        with self.lock:
            page = self._pages.get(path)
            gone = path in self._gone
        if page is None:
            return web.Response(status=410 if gone else 404, text="not found")
        headers = {"ETag": page.etag, "Last-Modified": format_datetime(page.modified, usegmt=True)}
        if request.headers.get("If-None-Match") == page.etag:
            return web.Response(status=304, headers=headers)
        since = request.headers.get("If-Modified-Since")
        if since and "If-None-Match" not in request.headers:
            try:
                if page.modified <= parsedate_to_datetime(since):
                    return web.Response(status=304, headers=headers)
            except (TypeError, ValueError):
                pass
        if page.content_type != "text/html":
            return web.Response(text=page.body, content_type=page.content_type, headers=headers)
        document = (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(page.title)}</title></head><body>"
            "<header><nav><a href='/'>Home</a> | <a href='/pricing'>Pricing</a> | "
            "Sign in</nav></header>"
            f"<main><h1>{html.escape(page.title)}</h1>{page.body}</main>"
            "<aside>Related: cookie settings, newsletter</aside>"
            "<footer>© 2026 Example Corp. All rights reserved.</footer>"
            "</body></html>"
        )
        return web.Response(text=document, content_type="text/html", headers=headers)


def generated_page(n: int) -> tuple[str, str, str]:
    """A deterministic help-center page number ``n``: (path, title, body)."""
    topics = ["billing", "accounts", "shipping", "returns", "security", "api", "mobile", "teams"]
    topic = topics[n % len(topics)]
    title = f"{topic.title()} article {n}"
    paragraphs = "".join(
        f"<p>Article {n} about {topic}, section {k}: to change the {topic} setting number "
        f"{n * 7 + k}, open Settings, choose {topic.title()} and follow step {k}. "
        f"Contact support if option {n}-{k} is not shown.</p>"
        for k in range(1, 4)
    )
    return f"help/{topic}/{n}", title, paragraphs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8097)
    parser.add_argument("--pages", type=int, default=100)
    args = parser.parse_args(argv)
    site = Website(port=args.port, sitemap_page_size=1000)
    for n in range(args.pages):
        site.set_page(*generated_page(n))
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with site:
        print(f"serving {args.pages} pages; sitemap {site.sitemap_url}", flush=True)
        done.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
