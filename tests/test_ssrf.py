"""Web sources fetch only what they should: public addresses, capped sizes, bad pages skipped.

Kinds: a URL, a sitemap entry or a redirect that points at loopback, a private range, a
link-local address (cloud metadata), IPv6 loopback or an IPv4 address wrapped in IPv6; a sitemap
that inflates to hundreds of megabytes (the ``sitemap-gzip-bomb`` case); a page that breaks a
parser (the ``deep-html`` case) among good pages. Refusals happen before connecting: no test
sends traffic anywhere but loopback, and the servers assert they were never reached.
"""

from __future__ import annotations

import gzip
import ipaddress
import time
import tracemalloc
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpcore
import pytest

from supportbot.app import App
from supportbot.settings import Settings
from sync.addresses import AddressPolicy, GuardedBackend, is_public
from sync.errors import BlockedAddressError, SourceConfigError
from tests.conftest import REPO, make_settings
from tests.servers.website import Website, generated_page
from tests.test_sync_web import add_web, top_text

CASES = REPO.parent / "shared" / "cases"


@pytest.fixture
def site() -> Iterator[Website]:
    with Website() as server:
        yield server


@pytest.fixture
def settings(weaviate_data_dir: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Only the ``site`` fixture's host:port is opened (not loopback as a whole)."""
    allowed = ""
    if "site" in request.fixturenames:
        server: Website = request.getfixturevalue("site")
        allowed = f"127.0.0.1:{server.port}"
    return make_settings(
        weaviate_data_dir, tmp_path / "supportbot.db", sync_allowed_private_hosts=allowed
    )


# --- the address rules ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.251",
        "255.255.255.255",
        "192.0.2.10",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::1",
        "64:ff9b::a00:1",
        "2001:db8::1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert not is_public(ip)
    reason = AddressPolicy().refusal("example.com", 80, ip)
    assert reason is not None and "non-public" in reason and "SYNC_ALLOWED_PRIVATE_HOSTS" in reason


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert AddressPolicy().refusal("example.com", 443, ipaddress.ip_address(address)) is None


def test_allowed_private_hosts_parse_and_match() -> None:
    policy = AddressPolicy.parse(" wiki.internal:8443, 10.20.0.0/16 ,[::1]:9000, docs.lan, ")
    private = ipaddress.ip_address("10.99.0.5")
    assert policy.refusal("wiki.internal", 8443, private) is None
    assert policy.refusal("WIKI.internal", 8443, private) is None
    assert policy.refusal("wiki.internal", 443, private) is not None  # another port
    assert policy.refusal("docs.lan", 1234, private) is None  # any port
    assert policy.refusal("x.example", 80, ipaddress.ip_address("10.20.3.4")) is None
    assert policy.refusal("x.example", 80, ipaddress.ip_address("10.21.3.4")) is not None
    assert policy.refusal("::1", 9000, ipaddress.ip_address("::1")) is None
    assert policy.refusal("::1", 9001, ipaddress.ip_address("::1")) is not None
    for bad in ("wiki:notaport", "http://wiki/", "a b:80", "host:70000"):
        with pytest.raises(SourceConfigError, match="SYNC_ALLOWED_PRIVATE_HOSTS"):
            AddressPolicy.parse(bad)


async def test_every_resolved_address_is_checked_and_localhost_is_refused() -> None:
    with pytest.raises(BlockedAddressError, match="localhost:80 resolves to"):
        await AddressPolicy().resolve("localhost", 80)  # real resolver, nothing sent


class _Recorder(httpcore.AsyncNetworkBackend):
    """Records where a connection was asked to go instead of connecting (pure logic)."""

    def __init__(self) -> None:
        self.hosts: list[str] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.hosts.append(host)
        raise httpcore.ConnectError("recorded")


async def test_connections_go_to_the_checked_address_not_a_second_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])  # a rebinding name server

    async def getaddrinfo(self: Any, host: str, port: int, **_: Any) -> list[Any]:
        return [(2, 1, 6, "", (address, port)) for address in next(answers)]

    monkeypatch.setattr("asyncio.base_events.BaseEventLoop.getaddrinfo", getaddrinfo)
    recorder = _Recorder()
    backend = GuardedBackend(AddressPolicy(), inner=recorder)
    with pytest.raises(httpcore.ConnectError):
        await backend.connect_tcp("rebind.example", 80)
    assert recorder.hosts == ["93.184.216.34"]  # the checked answer, never the host name
    with pytest.raises(BlockedAddressError):
        await backend.connect_tcp("rebind.example", 80)  # the second answer is checked too
    assert recorder.hosts == ["93.184.216.34"]


async def test_a_name_with_one_private_answer_among_public_ones_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def getaddrinfo(self: Any, host: str, port: int, **_: Any) -> list[Any]:
        return [(2, 1, 6, "", ("93.184.216.34", port)), (10, 1, 6, "", ("::1", port, 0, 0))]

    monkeypatch.setattr("asyncio.base_events.BaseEventLoop.getaddrinfo", getaddrinfo)
    recorder = _Recorder()
    with pytest.raises(BlockedAddressError, match="::1"):
        await GuardedBackend(AddressPolicy(), inner=recorder).connect_tcp("mixed.example", 443)
    assert recorder.hosts == []


# --- through a real sync -------------------------------------------------------------------


async def test_by_default_a_local_site_is_not_fetched_at_all(app: App, ws_name: str) -> None:
    with Website() as local:  # not opened: settings allow nothing
        local.set_page("faq", "FAQ", "<p>Internal answers.</p>")
        app.knowledge.create_workspace(ws_name)
        add_web(app, ws_name, "by-url", urls=[local.page_url("faq")])
        add_web(app, ws_name, "by-sitemap", sitemap=local.sitemap_url)
        page_run = await app.sync_engine.sync(ws_name, "by-url")
        assert page_run.errors == 1 and "refused" in (page_run.error or "")
        assert "127.0.0.1" in (page_run.error or "") and "non-public" in (page_run.error or "")
        sitemap_run = await app.sync_engine.sync(ws_name, "by-sitemap")
        assert sitemap_run.status == "failed"
        assert (sitemap_run.error or "").startswith(f"sitemap {local.sitemap_url}: refused")
        assert local.requests == []  # refused before connecting


async def test_sitemap_entries_and_redirects_to_other_addresses_are_refused(
    app: App, ws_name: str, site: Website
) -> None:
    with Website() as other:  # a second local server: loopback, but not opened
        other.set_page("secret", "Secret", "<p>Other server secret.</p>")
        site.set_page("good", "Good", "<p>Gift cards never expire.</p>")
        targets = {
            "meta": "http://169.254.169.254/latest/meta-data/",
            "ten": "http://10.0.0.1/admin",
            "v6": f"http://[::1]:{site.port}/good",
            "named": f"http://localhost:{site.port}/good",
            "mapped": f"http://[::ffff:127.0.0.1]:{site.port}/good",
            "other": other.page_url("secret"),
        }
        for name, target in targets.items():
            site.redirect(f"go/{name}", target)
        locs = [site.page_url("good"), *targets.values()]
        locs += [site.page_url(f"go/{name}") for name in targets]
        sitemap = (
            '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            + "".join(f"<url><loc>{loc}</loc></url>" for loc in locs)
            + "</urlset>"
        )
        site.set_raw("sitemap.xml", sitemap.encode(), "application/xml")
        app.knowledge.create_workspace(ws_name)
        add_web(app, ws_name, "site", sitemap=site.sitemap_url)
        run = await app.sync_engine.sync(ws_name, "site")
        assert (run.status, run.documents, run.changed) == ("ok", 13, 1)
        assert run.errors == 12 and "refused" in (run.error or "")
        stored = app.sync_sources.info(ws_name, "site").documents
        assert stored == 1 and "Gift cards" in top_text(app, ws_name, "gift cards expire")
        assert other.requests == []
        assert {r.path for r in site.requests} >= {f"/go/{name}" for name in targets}


# --- sizes: the gzip bomb, per-page and per-run caps ---------------------------------------


async def test_gzip_bomb_sitemap_fails_the_source_with_small_memory(
    app: App, ws_name: str, site: Website
) -> None:
    bomb = (CASES / "security" / "sitemap-gzip-bomb" / "sitemap.xml.gz").read_bytes()
    url = site.set_raw("sitemap.xml.gz", bomb, "application/gzip")
    app.knowledge.create_workspace(ws_name)
    add_web(app, ws_name, "bomb", sitemap=url)
    tracemalloc.start()
    try:
        run = await app.sync_engine.sync(ws_name, "bomb")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert run.status == "failed"
    assert "over the limit of 52,428,800 bytes (decompressed)" in (run.error or "")
    assert peak < 16 * 1024 * 1024  # read and inflated 64 KB at a time, never held whole


_URLSET = '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
_LAUGHS = "".join(
    [f'<!ENTITY lol0 "{"lol" * 10}">']
    + [f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)]
)
ENTITY_SITEMAPS = {
    # a billion laughs: 10 levels of ten references, 3 GB once expanded
    "laughs": f"<!DOCTYPE urlset [{_LAUGHS}]>{_URLSET}<url><loc>/a&lol9;</loc></url></urlset>",
    # an external entity reading a local file into a <loc>
    "file": '<!DOCTYPE urlset [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    f"{_URLSET}<url><loc>/a?&x;</loc></url></urlset>",
    # one large entity referenced many times (quadratic blow-up, no nesting)
    "quadratic": f'<!DOCTYPE urlset [<!ENTITY big "{"A" * 100_000}">]>'
    f"{_URLSET}<url><loc>/a</loc><lastmod>{'&big;' * 2_000}</lastmod></url></urlset>",
    # a parameter entity fetching an external DTD from a (loopback) URL
    "parameter": '<!DOCTYPE urlset [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x.dtd">'
    f" %remote;]>{_URLSET}<url><loc>/a</loc></url></urlset>",
}


@pytest.mark.parametrize("kind", sorted(ENTITY_SITEMAPS))
async def test_a_sitemap_declaring_entities_fails_the_source_at_once(
    app: App, ws_name: str, site: Website, kind: str
) -> None:
    """No entity is expanded or resolved, whichever expat Python was built with: the sitemap
    is refused in one line, quickly and in little memory, and nothing is fetched or removed."""
    url = site.set_raw("sitemap.xml", ENTITY_SITEMAPS[kind].encode(), "application/xml")
    app.knowledge.create_workspace(ws_name)
    add_web(app, ws_name, "site", sitemap=url)
    tracemalloc.start()
    started = time.monotonic()
    try:
        run = await app.sync_engine.sync(ws_name, "site")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 10
    assert run.status == "failed" and run.changed == 0 and run.deleted == 0
    error = run.error or ""
    assert f"sitemap {url}: declares" in error and "refused" in error and "\n" not in error
    assert "root:" not in error
    assert peak < 16 * 1024 * 1024
    assert {r.path for r in site.requests} <= {"/robots.txt", "/sitemap.xml"}  # no page


async def test_gzip_content_encoding_bomb_page_is_skipped(
    app: App, ws_name: str, site: Website
) -> None:
    body = gzip.compress(b"<html><body><p>" + b" " * 60_000_000 + b"</p></body></html>")
    bomb = site.set_raw("bomb", body, "text/html", {"Content-Encoding": "gzip"})
    good = site.set_page("good", "Good", "<p>Returns are free within 30 days.</p>")
    app.knowledge.create_workspace(ws_name)
    add_web(app, ws_name, "pages", urls=[bomb, good])
    tracemalloc.start()
    try:
        run = await app.sync_engine.sync(ws_name, "pages")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (run.documents, run.changed, run.errors) == (2, 1, 1)
    assert f"{bomb}: page over the limit of 20,971,520 bytes" in (run.error or "")
    assert peak < 48 * 1024 * 1024


@pytest.mark.parametrize("limit_mb", [0.02])
async def test_a_sync_stops_at_its_download_limit_and_deletes_nothing(
    weaviate_data_dir: Path, tmp_path: Path, embedder: Any, ws_name: str, limit_mb: float
) -> None:
    with Website() as local:
        for n in range(40):
            local.set_page(*generated_page(n))
        settings = make_settings(
            weaviate_data_dir,
            tmp_path / "db.sqlite",
            sync_allowed_private_hosts=f"127.0.0.1:{local.port}",
            sync_max_mb_per_sync=limit_mb,
        )
        with App(settings, local_embedder=embedder) as app:
            app.knowledge.create_workspace(ws_name)
            add_web(app, ws_name, "help", sitemap=local.sitemap_url)
            run = await app.sync_engine.sync(ws_name, "help")
            assert run.status == "failed" and "SYNC_MAX_MB_PER_SYNC" in (run.error or "")
            assert run.deleted == 0


# --- a page that breaks the parser among good pages (deep-html, web half) ------------------


async def test_deep_pages_are_skipped_by_name_and_the_rest_syncs(
    app: App, ws_name: str, site: Website
) -> None:
    deep = CASES / "security" / "deep-html" / "b-deep.html"
    bad = [
        site.set_raw("deep-case.html", deep.read_bytes(), "text/html"),
        site.set_raw(
            "deeper.html",
            ("<html><body>" + "<div>" * 100_000 + "x" + "</div>" * 100_000).encode(),
            "text/html",
        ),
    ]
    good = [site.set_page(*generated_page(n)) for n in range(3)]
    app.knowledge.create_workspace(ws_name)
    add_web(app, ws_name, "site", urls=[*bad, *good])
    run = await app.sync_engine.sync(ws_name, "site")
    assert (run.status, run.changed, run.errors) == ("ok", 3, 2)
    assert all(url in (run.error or "") for url in bad) and "nested over" in (run.error or "")
    assert app.sync_sources.info(ws_name, "site").documents == 3


# --- other spellings of a private address, other schemes, other ways in ---------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",  # decimal
        "http://0x7f.1/",  # hex, short form
        "http://0x7f000001/",
        "http://017700000001/",  # octal
        "http://127.1/",
        "http://0/",
        "http://LOCALHOST/",
        "http://public.example@127.0.0.1/",  # userinfo: the host is 127.0.0.1
        "http://[::ffff:7f00:1]/",
        "http://[0:0:0:0:0:ffff:127.0.0.1]/",
        "http://[::127.0.0.1]/",  # IPv4-compatible (deprecated)
        "http://[::]/",
    ],
)
async def test_other_spellings_of_loopback_are_refused(url: str) -> None:
    """The host as httpx parses it, resolved by the real resolver (numeric forms need no DNS)
    and checked: every spelling the C library accepts lands on the same checked address."""
    import httpx

    host = httpx.URL(url).host
    with pytest.raises(BlockedAddressError, match="non-public"):
        await AddressPolicy().resolve(host, 80)


async def test_other_spellings_of_an_opened_host_are_not_opened(
    app: App, ws_name: str, site: Website
) -> None:
    """``127.0.0.1:PORT`` is opened; the same address spelled otherwise is not (the allow-list
    matches the URL's host as written, or a CIDR network given on purpose)."""
    site.set_page("good", "Good", "<p>Gift cards never expire.</p>")
    urls = [
        f"http://2130706433:{site.port}/good",
        f"http://0x7f.1:{site.port}/good",
        f"http://017700000001:{site.port}/good",
        f"http://127.1:{site.port}/good",
        f"http://localhost:{site.port}/good",
        f"http://[::ffff:7f00:1]:{site.port}/good",
    ]
    app.knowledge.create_workspace(ws_name)
    add_web(app, ws_name, "spellings", urls=urls)
    run = await app.sync_engine.sync(ws_name, "spellings")
    assert (run.changed, run.errors) == (0, len(urls)) and "non-public" in (run.error or "")
    assert site.requests == []


async def test_redirects_to_other_schemes_and_chains_inward_are_refused_quickly(
    app: App, ws_name: str, site: Website
) -> None:
    import time

    with Website() as other:
        other.set_page("secret", "Secret", "<p>Other server secret.</p>")
        site.set_page("good", "Good", "<p>Gift cards never expire.</p>")
        site.redirect("file", "file:///etc/passwd")
        site.redirect("gopher", f"gopher://127.0.0.1:{other.port}/_x")
        site.redirect("scheme-relative", f"//127.0.0.1:{other.port}/secret")
        site.redirect("hop1", site.page_url("hop2"))  # allowed -> allowed -> private
        site.redirect("hop2", other.page_url("secret"))
        site.redirect("loop", site.page_url("loop"))
        names = ["file", "gopher", "scheme-relative", "hop1", "loop"]
        app.knowledge.create_workspace(ws_name)
        add_web(app, ws_name, "r", urls=[site.page_url("good")] + [site.page_url(n) for n in names])
        started = time.monotonic()
        run = await app.sync_engine.sync(ws_name, "r")
        assert time.monotonic() - started < 8  # a redirect to file:// is not retried
        assert (run.changed, run.errors) == (1, 5)
        assert "unsupported protocol 'file://'" in (run.error or "")
        assert other.requests == []
        paths = [r.path for r in site.requests]
        assert paths.count("/file") == paths.count("/gopher") == 1


async def test_a_robots_txt_bomb_is_read_only_to_its_limit(
    app: App, ws_name: str, site: Website
) -> None:
    """robots.txt is read up to 512 KiB (RFC 9309's minimum), gzip-encoded too; the rest is
    neither downloaded whole nor inflated. A rule before the cut still holds."""
    body = b"User-agent: *\nDisallow: /private\n" + b"# padding\n" * 30_000_000
    site.set_raw("robots.txt", gzip.compress(body, 1), "text/plain", {"Content-Encoding": "gzip"})
    site.set_page("good", "Good", "<p>Gift cards never expire.</p>")
    site.set_page("private", "Private", "<p>Internal notes.</p>")
    app.knowledge.create_workspace(ws_name)
    add_web(app, ws_name, "p", urls=[site.page_url("good"), site.page_url("private")])
    tracemalloc.start()
    try:
        run = await app.sync_engine.sync(ws_name, "p")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (run.status, run.changed) == ("ok", 1)
    assert peak < 24 * 1024 * 1024
    assert "/private" not in [r.path for r in site.requests]


async def test_a_huge_plain_robots_txt_is_cut(app: App, ws_name: str, site: Website) -> None:
    site.set_raw("robots.txt", b"User-agent: *\nAllow: /\n" + b"#" * 40_000_000, "text/plain")
    site.set_page("good", "Good", "<p>Gift cards never expire.</p>")
    app.knowledge.create_workspace(ws_name)
    add_web(app, ws_name, "p", urls=[site.page_url("good")])
    tracemalloc.start()
    try:
        run = await app.sync_engine.sync(ws_name, "p")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the local server's own copies of the 40 MB body are traced too (about 80 MB); reading
    # the whole file as text, as before, added three more copies
    assert (run.status, run.changed) == ("ok", 1) and peak < 100 * 1024 * 1024


def _index(locs: Iterable[str]) -> bytes:
    return (
        '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        + "".join(f"<sitemap><loc>{loc}</loc></sitemap>" for loc in locs)
        + "</sitemapindex>"
    ).encode()


async def test_sitemap_index_loops_are_read_once(app: App, ws_name: str, site: Website) -> None:
    """An index that lists itself (many times), and a child that lists its parent back."""
    for n in range(3):
        site.set_page(*generated_page(n), listed=True)
    child = site.set_raw("child.xml", _index([site.page_url("index.xml")]), "application/xml")
    index = site.set_raw(
        "index.xml",
        _index([site.page_url("index.xml")] * 50 + [child, site.sitemap_url]),
        "application/xml",
    )
    app.knowledge.create_workspace(ws_name)
    add_web(app, ws_name, "loop", sitemap=index)
    run = await app.sync_engine.sync(ws_name, "loop")
    assert (run.status, run.changed) == ("ok", 3)
    paths = [r.path for r in site.requests]
    assert paths.count("/index.xml") == paths.count("/child.xml") == 1


async def test_a_sitemap_index_of_too_many_sitemaps_fails_before_fetching_them(
    app: App, ws_name: str, site: Website
) -> None:
    from sync.connectors.web import MAX_SITEMAPS

    children = [site.page_url(f"s/{n}.xml") for n in range(10_000)]
    index = site.set_raw("index.xml", _index(children), "application/xml")
    app.knowledge.create_workspace(ws_name)
    add_web(app, ws_name, "many", sitemap=index)
    run = await app.sync_engine.sync(ws_name, "many")
    assert run.status == "failed" and f"over {MAX_SITEMAPS:,} sitemaps" in (run.error or "")
    assert [r.path for r in site.requests] == ["/index.xml"]
