"""The mass-deletion guard and relative sitemap locations, end to end.

Kind: a source that suddenly lists far fewer documents than it has (a sitemap that lost most
pages, a site that switched to relative URLs, a folder that is empty or not mounted, an API that
answers empty). Such a sync removes nothing, fails with one line saying how many documents it
would remove and how to confirm, and goes ahead only with ``--allow-mass-delete``. Relative
``<loc>`` entries (the ``sitemap-relative-loc`` case and variants) resolve against the sitemap's
URL. Real engine, Weaviate, model and HTTP to a local site; the CLI's exact form at the end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from supportbot.app import App
from supportbot.settings import Settings
from sync.connectors.folder import FolderConnector
from sync.engine import mass_deletion
from tests.conftest import REPO, make_settings
from tests.servers.website import Website, generated_page
from tests.test_cli import Cli, cli_env
from tests.test_sync_web import LOCAL_SITES, add_web, top_text

CASES = REPO.parent / "shared" / "cases"


@pytest.fixture
def settings(weaviate_data_dir: Path, tmp_path: Path) -> Settings:
    return make_settings(
        weaviate_data_dir, tmp_path / "supportbot.db", sync_allowed_private_hosts=LOCAL_SITES
    )


@pytest.fixture
def site() -> Iterator[Website]:
    with Website() as server:
        yield server


@pytest.mark.parametrize(
    ("removing", "stored", "guarded"),
    [
        (0, 0, False),
        (0, 10, False),
        (5, 10, False),  # half: real deletions happen
        (6, 10, True),
        (9, 10, True),
        (10, 10, True),
        (1, 2, False),
        (2, 3, False),  # small sources: fewer than 3 removals go, unless they empty it
        (2, 2, True),
        (1, 1, True),
        (3, 4, True),
        (600, 1000, True),
    ],
)
def test_the_rule(removing: int, stored: int, guarded: bool) -> None:
    assert mass_deletion(removing, stored) is guarded


async def test_a_sitemap_that_drops_to_1_of_10_pages_removes_nothing_until_confirmed(
    app: App, ws_name: str, site: Website
) -> None:
    for n in range(10):
        site.set_page(*generated_page(n))
    app.knowledge.create_workspace(ws_name)
    add_web(app, ws_name, "help", sitemap=site.sitemap_url)
    assert (await app.sync_engine.sync(ws_name, "help")).documents == 10
    chunks = app.knowledge.chunk_count(ws_name)

    for n in range(1, 10):
        site.unlist(generated_page(n)[0])
    run = await app.sync_engine.sync(ws_name, "help")
    assert run.status == "failed" and run.deleted == 0 and run.error is not None
    assert "would remove 9 of the source's 10 documents" in run.error
    assert "nothing was removed" in run.error and "\n" not in run.error
    assert f"--workspace {ws_name} --name help --allow-mass-delete" in run.error
    assert app.knowledge.chunk_count(ws_name) == chunks
    assert "open Settings, choose Teams" in top_text(app, ws_name, "teams setting 7 open settings")
    again = await app.sync_engine.sync(ws_name, "help")  # still refused: nothing changed
    assert again.status == "failed" and app.knowledge.chunk_count(ws_name) == chunks

    confirmed = await app.sync_engine.sync(ws_name, "help", allow_mass_delete=True)
    assert (confirmed.status, confirmed.deleted) == ("ok", 9)
    assert app.sync_sources.info(ws_name, "help").documents == 1


async def test_pages_answering_404_all_at_once_are_guarded_too(
    app: App, ws_name: str, site: Website
) -> None:
    urls = [site.set_page(*generated_page(n)) for n in range(6)]
    app.knowledge.create_workspace(ws_name)
    add_web(app, ws_name, "pages", urls=urls)
    await app.sync_engine.sync(ws_name, "pages")
    chunks = app.knowledge.chunk_count(ws_name)
    for n in range(6):  # a misconfigured server: every page says 404
        site.delete_page(generated_page(n)[0])
    run = await app.sync_engine.sync(ws_name, "pages")
    assert run.status == "failed" and "would remove 6 of the source's 6" in (run.error or "")
    assert app.knowledge.chunk_count(ws_name) == chunks


async def test_a_site_that_switches_to_relative_urls_keeps_every_page(
    app: App, ws_name: str, site: Website
) -> None:
    for n in range(8):
        site.set_page(*generated_page(n))
    app.knowledge.create_workspace(ws_name)
    add_web(app, ws_name, "help", sitemap=site.sitemap_url)
    assert (await app.sync_engine.sync(ws_name, "help")).documents == 8
    for style in ("root", "relative"):
        site.loc_style = style
        run = await app.sync_engine.sync(ws_name, "help")
        assert (run.status, run.documents, run.unchanged, run.deleted) == ("ok", 8, 8, 0)


async def test_relative_loc_case_resolves_against_the_sitemap_url(
    app: App, ws_name: str, site: Website
) -> None:
    case = CASES / "sitemap-relative-loc"
    site.set_raw("sitemap.xml", (case / "sitemap.xml").read_bytes(), "application/xml")
    for name in ("a.html", "b.html"):
        site.set_raw(f"docs/{name}", (case / "docs" / name).read_bytes(), "text/html")
    app.knowledge.create_workspace(ws_name)
    add_web(app, ws_name, "docs", sitemap=site.sitemap_url)
    run = await app.sync_engine.sync(ws_name, "docs")
    assert (run.status, run.documents, run.errors) == ("ok", 2, 0)
    assert "region b" in top_text(app, ws_name, "quarterly uptime report region b")


async def test_relative_locs_from_a_sitemap_in_a_subfolder(
    app: App, ws_name: str, site: Website
) -> None:
    page = "<html><body><main><h1>{0}</h1><p>Page {0} explains refunds in {1}.</p></main></body>"
    for path, where in (
        ("docs/a.html", "Canada"),
        ("en/b.html", "Brazil"),
        ("en/guide/c.html", "Chile"),
        ("d.html", "Denmark"),
    ):
        site.set_raw(path, page.format(path, where).encode(), "text/html")
    sitemap = (
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        "<url><loc>/docs/a.html</loc></url><url><loc>b.html</loc></url>"
        "<url><loc>./guide/c.html#top</loc></url><url><loc>../d.html</loc></url>"
        "<url><loc>mailto:x@example.com</loc></url></urlset>"
    )
    url = site.set_raw("en/sitemap.xml", sitemap.encode(), "application/xml")
    app.knowledge.create_workspace(ws_name)
    add_web(app, ws_name, "docs", sitemap=url)
    run = await app.sync_engine.sync(ws_name, "docs")
    assert (run.status, run.documents, run.errors) == ("ok", 4, 0)
    fetched = {r.path for r in site.requests}
    assert {"/docs/a.html", "/en/b.html", "/en/guide/c.html", "/d.html"} <= fetched


async def test_an_emptied_folder_source_removes_nothing_until_confirmed(
    app: App, ws_name: str, tmp_path: Path
) -> None:
    folder = tmp_path / "kb"
    folder.mkdir()
    for n in range(5):
        (folder / f"doc{n}.md").write_text(f"# Doc {n}\n\nRefund rule number {n}.\n")
    app.knowledge.create_workspace(ws_name)
    app.sync_sources.add(
        ws_name,
        "kb",
        kind="folder",
        config=FolderConnector.validate_config({"path": str(folder)}),
        credentials=None,
        schedule=None,
        requests_per_second=100,
    )
    assert (await app.sync_engine.sync(ws_name, "kb")).documents == 5
    for path in folder.iterdir():  # an unmounted share looks like this
        path.unlink()
    run = await app.sync_engine.sync(ws_name, "kb")
    assert run.status == "failed" and "would remove 5 of the source's 5" in (run.error or "")
    assert app.knowledge.chunk_count(ws_name) == 5
    (folder / "doc0.md").write_text("# Doc 0\n\nRefund rule number 0.\n")
    run = await app.sync_engine.sync(ws_name, "kb")  # 4 of 5 still too many
    assert run.status == "failed" and "would remove 4 of the source's 5" in (run.error or "")
    confirmed = await app.sync_engine.sync(ws_name, "kb", allow_mass_delete=True)
    assert (confirmed.status, confirmed.deleted) == ("ok", 4)


@pytest.mark.slow
def test_cli_sync_refuses_then_goes_ahead_with_allow_mass_delete(
    weaviate_data_dir: Path, tmp_path: Path, ws_name: str, site: Website
) -> None:
    for n in range(4):
        site.set_page(*generated_page(n))
    env = cli_env(weaviate_data_dir, tmp_path / "cli.db", SYNC_ALLOWED_PRIVATE_HOSTS=LOCAL_SITES)
    env.pop("REDIS_URL", None)
    cli = Cli(env, tmp_path)
    cli.ok("workspace", "create", ws_name)
    cli.ok(
        "source", "add", "--workspace", ws_name, "--name", "docs", "--type", "web",
        "--sitemap", site.sitemap_url,
    )  # fmt: skip
    cli.ok("source", "sync", "--workspace", ws_name, "--name", "docs")
    for n in range(4):
        site.unlist(generated_page(n)[0])  # the sitemap now lists nothing

    refused = cli("source", "sync", "--workspace", ws_name, "--name", "docs")
    assert refused.returncode == 1
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("error: sync of") and "would remove 4 of the source's 4" in last
    assert "--allow-mass-delete" in last
    failing = cli("source", "status", "--workspace", ws_name, "--json")
    assert failing.returncode == 1  # a failing source
    status = json.loads(failing.stdout)["sources"][0]
    assert (status["status"], status["documents"], status["chunks"]) == ("failed", 4, 4)

    cli.ok("source", "sync", "--workspace", ws_name, "--name", "docs", "--allow-mass-delete")
    status = cli.json("source", "status", "--workspace", ws_name, "--json")["sources"][0]
    assert (status["status"], status["documents"], status["chunks"]) == ("ok", 0, 0)
