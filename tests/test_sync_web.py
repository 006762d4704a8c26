"""Web sources end to end: a local web site over real HTTP, the real engine, Weaviate and model.

Covers the first sync and incremental syncs (edits and deletions reaching search), conditional
requests (lastmod, ETag/304), robots.txt, 429 storms (Retry-After honoured, another source not
starved), a failing source that neither deletes its documents nor stops the others, and the
CLI's exact forms, including a ``source sync`` killed mid-way and run again.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from supportbot.app import App
from supportbot.settings import Settings
from sync.queue import InProcessQueue
from tests.conftest import make_settings
from tests.servers.website import Website, generated_page
from tests.test_cli import SUPPORTBOT, Cli, cli_env

LOCAL_SITES = "127.0.0.1"
"""The test sites are on loopback, which web sources refuse unless opened (SSRF guard)."""


@pytest.fixture
def settings(weaviate_data_dir: Path, tmp_path: Path) -> Settings:
    return make_settings(
        weaviate_data_dir, tmp_path / "supportbot.db", sync_allowed_private_hosts=LOCAL_SITES
    )


@pytest.fixture
def site() -> Iterator[Website]:
    with Website() as server:
        yield server


def add_web(app: App, workspace: str, name: str, **config: object) -> None:
    from sync.connectors.web import WebConnector

    app.sync_sources.add(
        workspace,
        name,
        kind="web",
        config=WebConnector.validate_config({"urls": [], **config}),
        credentials=None,
        schedule=None,
        requests_per_second=200,
    )


def top_text(app: App, workspace: str, query: str) -> str:
    results = app.knowledge.search(workspace, query, k=1, mode="keyword")
    return results[0].text if results else ""


def page_fetches(site: Website) -> list[str]:
    skip = {"/robots.txt", "/sitemap.xml"}
    return [r.path for r in site.requests if r.path not in skip]


async def test_first_sync_then_edits_and_deletions_reach_search(
    app: App, ws_name: str, site: Website
) -> None:
    for n in range(10):
        site.set_page(*generated_page(n))
    site.set_page("ko/refund", "환불 안내", "<p>환불은 결제 후 14일 이내에 신청할 수 있습니다.</p>")
    app.knowledge.create_workspace(ws_name)
    add_web(app, ws_name, "help", sitemap=site.sitemap_url)

    first = await app.sync_engine.sync(ws_name, "help")
    assert (first.status, first.documents, first.changed, first.errors) == ("ok", 11, 11, 0)
    assert "14일 이내" in top_text(app, ws_name, "환불 신청 기간")
    # Main content only: the site's menu and footer are in no chunk.
    assert "All rights reserved" not in top_text(app, ws_name, "rights reserved Example Corp")

    site.clear_requests()
    again = await app.sync_engine.sync(ws_name, "help")
    assert (again.changed, again.unchanged, again.deleted) == (0, 11, 0)
    assert page_fetches(site) == []  # every <lastmod> unchanged: no page was fetched

    site.set_page("ko/refund", "환불 안내", "<p>환불은 결제 후 30일 이내에 신청할 수 있습니다.</p>")
    site.delete_page(generated_page(3)[0])  # gone from the site and its sitemap
    site.set_page(*generated_page(4), listed=False)  # dropped from the sitemap only
    site.clear_requests()
    third = await app.sync_engine.sync(ws_name, "help")
    assert (third.changed, third.deleted) == (1, 2)
    assert page_fetches(site) == ["/ko/refund"]
    assert "30일 이내" in top_text(app, ws_name, "환불 신청 기간")
    assert "14일" not in " ".join(r.text for r in app.knowledge.search(ws_name, "환불", k=5))
    stored = app.store.documents(tenant=app.knowledge.workspace(ws_name).tenant)
    urls = {d.removeprefix(f"source/{first.id and 1}/") for d in stored}
    assert site.page_url(generated_page(3)[0]) not in {u.split("/", 2)[-1] for u in urls}
    assert len(stored) == 9
    info = app.sync_sources.info(ws_name, "help")
    assert (info.status, info.documents, info.chunks) == (
        "ok",
        9,
        app.knowledge.chunk_count(ws_name),
    )


async def test_etags_make_unchanged_pages_cost_a_304(app: App, ws_name: str) -> None:
    with Website(lastmod=False) as site:
        urls = [site.set_page(*generated_page(n)) for n in range(4)]
        app.knowledge.create_workspace(ws_name)
        add_web(app, ws_name, "pages", urls=urls)
        assert (await app.sync_engine.sync(ws_name, "pages")).changed == 4
        site.clear_requests()
        site.set_page(generated_page(1)[0], "Accounts article 1", "<p>Now with passkeys.</p>")
        run = await app.sync_engine.sync(ws_name, "pages")
        statuses = sorted(r.status for r in site.requests if r.path != "/robots.txt")
        assert statuses == [200, 304, 304, 304]
        assert all("if-none-match" in r.headers for r in site.requests if r.path != "/robots.txt")
        assert (run.changed, run.unchanged) == (1, 3)
        assert "passkeys" in top_text(app, ws_name, "passkeys")


async def test_robots_txt_is_obeyed(app: App, ws_name: str) -> None:
    with Website(robots="User-agent: *\nDisallow: /private/\n") as site:
        site.set_page("public/faq", "FAQ", "<p>Public answers about invoices.</p>")
        site.set_page("private/notes", "Internal", "<p>Internal salary notes.</p>")
        app.knowledge.create_workspace(ws_name)
        add_web(app, ws_name, "site", sitemap=site.sitemap_url)
        run = await app.sync_engine.sync(ws_name, "site")
        assert run.documents == 1
        assert site.requests_to("/private/notes") == []
        assert "salary" not in top_text(app, ws_name, "salary notes")


async def test_a_429_storm_waits_retry_after_and_starves_no_other_source(
    app: App, ws_name: str
) -> None:
    busy, calm = f"{ws_name}-busy"[-60:], f"{ws_name}-calm"[-60:]
    with Website() as slow_site, Website() as other_site:
        for n in range(3):
            slow_site.set_page(*generated_page(n))
            other_site.set_page(*generated_page(100 + n))
        slow_site.rate_limit("*", times=3, retry_after="1")
        for name, site in ((busy, slow_site), (calm, other_site)):
            app.knowledge.create_workspace(name)
            add_web(app, name, "site", sitemap=site.sitemap_url)
        queue = InProcessQueue(app.sync_engine, max_jobs=2)
        started = time.monotonic()
        assert await queue.enqueue(busy, "site")
        assert not await queue.enqueue(busy, "site")  # already queued: not twice
        assert await queue.enqueue(calm, "site")
        await queue.join()
        elapsed = time.monotonic() - started
        busy_run = app.sync_sources.runs(busy, "site")[0]
        calm_run = app.sync_sources.runs(calm, "site")[0]
        assert busy_run.status == calm_run.status == "ok"
        assert busy_run.documents == 3 and busy_run.retries >= 3
        assert elapsed >= 3.0  # three Retry-After: 1 waits, one after another
        assert calm_run.finished_at is not None and busy_run.finished_at is not None
        assert calm_run.finished_at < busy_run.finished_at  # not held up by the busy one
        # Retry-After honoured: the request after each 429 came at least 1 s later.
        times = [r.at for r in slow_site.requests]
        limited = [i for i, r in enumerate(slow_site.requests) if r.status == 429]
        assert all(times[i + 1] - times[i] >= 0.95 for i in limited)


async def test_a_failing_source_keeps_its_documents_and_stops_no_other(
    app: App, ws_name: str, site: Website
) -> None:
    for n in range(3):
        site.set_page(*generated_page(n))
    app.knowledge.create_workspace(ws_name)
    add_web(app, ws_name, "main", sitemap=site.sitemap_url)
    add_web(app, ws_name, "other", urls=[site.set_page("extra", "Extra", "<p>Gift cards.</p>")])
    await app.sync_engine.sync(ws_name, "main")
    before = app.knowledge.chunk_count(ws_name)

    site.fail("/sitemap.xml", times=100, status=404)
    queue = InProcessQueue(app.sync_engine)
    await queue.enqueue(ws_name, "main")
    await queue.enqueue(ws_name, "other")
    await queue.join()
    main, other = (app.sync_sources.info(ws_name, n) for n in ("main", "other"))
    assert main.status == "failed" and main.last_error is not None
    assert "sitemap" in main.last_error and "HTTP 404" in main.last_error
    assert other.status == "ok" and other.documents == 1
    assert app.knowledge.chunk_count(ws_name) == before + 1  # nothing of "main" was deleted


@pytest.mark.slow
def test_cli_exact_forms_and_a_sync_killed_mid_way(
    weaviate_data_dir: Path, tmp_path: Path, ws_name: str
) -> None:
    pages = 80
    with Website() as site:
        for n in range(pages):
            site.set_page(*generated_page(n))
        env = cli_env(
            weaviate_data_dir, tmp_path / "cli.db", SYNC_ALLOWED_PRIVATE_HOSTS=LOCAL_SITES
        )
        env.pop("REDIS_URL", None)  # the in-process queue and lock files
        cli = Cli(env, tmp_path)
        cli.ok("workspace", "create", ws_name)
        cli.ok(
            "source", "add", "--workspace", ws_name, "--name", "docs", "--type", "web",
            "--sitemap", site.sitemap_url, "--requests-per-second", "500",
        )  # fmt: skip
        bad = cli("source", "add", "--workspace", ws_name, "--name", "x", "--type", "web")
        assert bad.returncode == 1 and bad.stderr.startswith("error: a web source needs")
        # Tokens come from an environment variable (never argv) and are stored encrypted.
        cli.ok(
            "source", "add", "--workspace", ws_name, "--name", "chat", "--type", "slack",
            "--channel", "C0SUPPORT", "--token-env", "MY_SLACK_TOKEN", "--schedule", "manual",
            MY_SLACK_TOKEN="xoxb-from-env",
        )  # fmt: skip
        no_token = cli(
            "source", "add", "--workspace", ws_name, "--name", "wiki", "--type", "notion"
        )  # fmt: skip
        assert no_token.returncode == 1
        assert no_token.stderr.startswith("error: a notion source needs a token")
        with App(
            make_settings(
                weaviate_data_dir, tmp_path / "cli.db", sync_allowed_private_hosts=LOCAL_SITES
            )
        ) as app:
            chat = app.sync_sources.get(ws_name, "chat")
            assert app.sync_sources.credentials(chat) == {"token": "xoxb-from-env"}
            assert "xoxb" not in (chat.credentials_encrypted or "")
            assert app.sync_sources.info(ws_name, "chat").schedule is None
        cli.ok("source", "remove", "--workspace", ws_name, "--name", "chat", "--yes")

        # Kill a sync once it is past its first checkpoint (50 pages), then run it again.
        site.latency = 0.02
        database = sqlite3.connect(tmp_path / "cli.db")
        process = subprocess.Popen(
            [str(SUPPORTBOT), "source", "sync", "--workspace", ws_name, "--name", "docs"],
            env=cli.env, cwd=tmp_path, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while recorded(database) < 50 and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        done_before_kill = recorded(database)
        assert 50 <= done_before_kill < pages
        site.latency = 0.0

        site.clear_requests()
        result = cli("source", "sync", "--workspace", ws_name, "--name", "docs")
        assert result.returncode == 0, result.stderr
        assert f"{pages} documents" in result.stderr
        # Resumed: pages done before the kill were not fetched again.
        assert len(page_fetches(site)) == pages - done_before_kill
        status = cli.json("source", "status", "--workspace", ws_name, "--json")["sources"][0]
        assert (status["status"], status["documents"]) == ("ok", pages)
        # Nothing lost, nothing duplicated: exactly one chunk per page (each is one chunk).
        assert status["chunks"] == pages

        site.set_page(generated_page(7)[0], "Billing article 7", "<p>Invoices are PDF now.</p>")
        assert cli("source", "sync", "--workspace", ws_name, "--name", "docs").returncode == 0
        with App(
            make_settings(
                weaviate_data_dir, tmp_path / "cli.db", sync_allowed_private_hosts=LOCAL_SITES
            )
        ) as app:
            assert "Invoices are PDF now" in top_text(app, ws_name, "Invoices are PDF now")

        site.fail("/sitemap.xml", times=50, status=404)
        failed = cli("source", "sync", "--workspace", ws_name, "--name", "docs")
        assert failed.returncode == 1
        assert failed.stderr.strip().splitlines()[-1].startswith("error: sync of")
        listed = cli("source", "list", "--workspace", ws_name)
        assert "docs" in listed.stdout and "failed" in listed.stdout
        status_text = cli("source", "status", "--workspace", ws_name)
        assert status_text.returncode == 1 and "error: sitemap" in status_text.stdout
        cli.ok("source", "remove", "--workspace", ws_name, "--name", "docs", "--yes")
        with App(
            make_settings(
                weaviate_data_dir, tmp_path / "cli.db", sync_allowed_private_hosts=LOCAL_SITES
            )
        ) as app:
            assert app.sync_sources.list(ws_name) == []
            assert app.knowledge.chunk_count(ws_name) == 0


def recorded(database: sqlite3.Connection) -> int:
    """Documents the sync has checkpointed so far (read by another process, as an operator)."""
    try:
        return int(database.execute("SELECT count(*) FROM sync_document").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # the tables do not exist yet
