"""Stored URLs: only well-formed http(s) addresses, in normal form, on every path that stores.

The shared case ``security/source-url-pings-channel`` is a JSONL record whose ``url`` closes
Slack's link markup and pings the channel. The kind: any document URL that is not a plain
http(s) address (other schemes, markup characters, spaces, controls, credentials). Such a URL
is dropped from its document -- the document is still stored, without it -- and counted in
the summary of the ingest (JSONL, files) or the sync run (connectors).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.documents import SourceDocument
from retrieval.urls import InvalidURLError, normalise_url
from supportbot.app import App
from sync.connectors.notion import NotionConnector
from tests.conftest import REPO
from tests.servers.notion import NotionSimulator, notion_id, paragraph
from tests.test_cli import Cli, cli_env

CASE = REPO.parent / "shared" / "cases" / "security" / "source-url-pings-channel" / "kb.jsonl"

NORMALISED = [
    ("https://help.acme.example/refunds", "https://help.acme.example/refunds"),
    ("HTTPS://Help.Acme.EXAMPLE:443/a?q=1#Top", "https://help.acme.example/a?q=1#Top"),
    ("http://help.acme.example:80", "http://help.acme.example/"),
    ("http://help.acme.example:8080/x", "http://help.acme.example:8080/x"),
    ("  https://help.acme.example/x  ", "https://help.acme.example/x"),
    ("https://help.acme.example./x", "https://help.acme.example/x"),
    ("https://도움말.example/환불", "https://xn--hq1bs8i4tm.example/%ED%99%98%EB%B6%88"),
    ("https://help.acme.example/%ED%99%98", "https://help.acme.example/%ED%99%98"),
    ("http://[2001:DB8::1]:8443/", "http://[2001:db8::1]:8443/"),
    ("http://192.0.2.10/kb", "http://192.0.2.10/kb"),
]

REFUSED = [
    # The shared case: closes Slack's <url|label> and pings the channel.
    ("https://help.acme.example/refund> <!channel> <https://evil.example/login|Official", "'>'"),
    ("javascript:alert(document.cookie)", "scheme javascript:"),
    ("JaVaScRiPt:alert(1)", "scheme javascript:"),
    ("data:text/html;base64,PHNjcmlwdD4=", "scheme data:"),
    ("file:///etc/passwd", "scheme file:"),
    ("ftp://files.example/a", "scheme ftp:"),
    ("//evil.example/a", "scheme (none)"),
    ("help.acme.example/a", "scheme (none)"),
    ("https://user:hunter2@help.acme.example/", "user name or password"),
    ("https://help.acme.example@evil.example/", "user name or password"),
    ("https://help.acme.example/a b", "a space"),
    ("https://help.acme.example/a\tb", "U+0009"),
    ("https://help.acme.example/a\nhttps://evil.example", "U+000A"),
    ("https://help.acme.example/\u202egnp.exe", "U+202E"),
    ("https://help.acme.example/\u200bx", "U+200B"),
    ("https://help.acme.example/x|label", "'|'"),
    ("https://help.acme.example/`x`", "'`'"),
    ('https://help.acme.example/"onmouseover', "'\"'"),
    ("https://help.acme.example\\@evil.example/", "'\\\\'"),
    ("https://help.acme.example/<!here>", "'<'"),
    ("https:help.acme.example", "no host"),
    ("https://-bad-.example/", "not a valid domain name"),
    ("https://help.acme.example:99999/", "not a valid URL"),
    ("https://help.acme.example:0/", "port 0"),
    ("https://" + "a" * 64 + ".example/", "not a valid domain name"),
    ("https://help.acme.example/" + "a" * 3000, "longer than"),
    ("", "empty"),
]


@pytest.mark.parametrize(("raw", "expected"), NORMALISED)
def test_well_formed_urls_are_kept_in_normal_form(raw: str, expected: str) -> None:
    assert normalise_url(raw) == expected
    assert normalise_url(expected) == expected  # normal form is a fixed point


@pytest.mark.parametrize(("raw", "reason"), REFUSED)
def test_anything_else_is_refused_saying_why(raw: str, reason: str) -> None:
    with pytest.raises(InvalidURLError) as caught:
        normalise_url(raw)
    assert reason in str(caught.value)


def test_a_normal_url_holds_no_character_that_ends_markup() -> None:
    for raw, _ in NORMALISED:
        url = normalise_url(raw)
        assert url.isascii() and url.isprintable()
        assert not set(url) & set(' "<>|`\\{}^')


# --- every path that stores documents -----------------------------------------------------------

VARIANTS = [
    {"id": "js", "title": "Script", "text": "Scripts are not links.", "url": "javascript:alert(1)"},
    {"id": "creds", "title": "Creds", "text": "No passwords in links.", "url": "https://a:b@x.example/"},
    {"id": "mask", "title": "Masked", "text": "Slack link markup.", "url": "https://x.example|Bank"},
    {"id": "ok", "title": "Fine", "text": "A good address is kept.", "url": "HTTPS://Help.Example/ok"},
]  # fmt: skip


def _stored(app: App, workspace: str) -> dict[str, tuple[str | None, str]]:
    """``doc_id -> (url, source)`` of every document (a handful: one search returns all)."""
    results = app.knowledge.search(workspace, "text", k=100, mode="vector")
    return {r.doc_id: (r.url, r.source) for r in results}


def test_jsonl_ingest_drops_invalid_urls_keeps_the_documents_and_counts_them(
    weaviate_data_dir: Path, tmp_path: Path, settings, embedder, ws_name: str
) -> None:
    records = [json.loads(line) for line in CASE.read_text(encoding="utf-8").splitlines()]
    kb = tmp_path / "kb.jsonl"
    kb.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [*records, *VARIANTS]),
        encoding="utf-8",
    )
    cli = Cli(cli_env(weaviate_data_dir, tmp_path / "supportbot.db"), tmp_path)
    cli.ok("workspace", "create", ws_name)

    result = cli.ok("ingest", "--workspace", ws_name, "--jsonl", str(kb))

    output = " ".join(result.stderr.split())  # the console wraps long lines
    assert "5 documents" in output and "0 skipped, 4 invalid URLs dropped" in output
    assert "refund-form: invalid URL dropped (contains '>')" in output
    assert "js: invalid URL dropped (scheme javascript: is not http or https)" in output
    with App(settings, local_embedder=embedder) as app:
        stored = _stored(app, ws_name)
    assert stored["refund-form"] == (None, "refund-form")  # stored, without the URL
    assert stored["js"] == (None, "js")
    assert stored["creds"] == (None, "creds")
    assert stored["ok"] == ("https://help.example/ok", "https://help.example/ok")
    assert not any("evil" in (url or "") + source for url, source in stored.values())


def test_upserted_documents_are_checked_too(app: App, ws_name: str) -> None:
    """The path of synced sources and promoted answers."""
    app.knowledge.create_workspace(ws_name)
    docs = [
        SourceDocument("a", "A", "Alpha text.", "https://x.example/a> <!here>", "https://x.example/a> <!here>"),  # noqa: E501
        SourceDocument("b", "B", "Beta text.", "wiki/b", "data:text/plain,hi"),
        SourceDocument("c", "C", "Gamma text.", "https://X.example/c", "https://X.example/c"),
    ]  # fmt: skip

    report = app.knowledge.upsert_documents(ws_name, docs, origin="source:test")

    assert report.changed == 3 and len(report.invalid_urls) == 2
    assert _stored(app, ws_name) == {
        "a": (None, "a"),
        "b": (None, "wiki/b"),
        "c": ("https://x.example/c", "https://x.example/c"),
    }


@pytest.fixture
def notion() -> Iterator[NotionSimulator]:
    with NotionSimulator() as sim:
        sim.tokens.add("secret_notion")
        yield sim


async def test_a_sync_run_counts_the_urls_it_dropped(
    app: App, notion: NotionSimulator, ws_name: str
) -> None:
    app.settings.notion_api_url = notion.url
    notion.add_page("good", "Good page", [paragraph("Refunds are paid within 14 days.")])
    notion.add_page("bad", "Bad page", [paragraph("Shipping takes two days.")])
    notion.add_page("worse", "Worse page", [paragraph("Returns are free.")])
    # A connector's API is input like any other: one that answers hostile page URLs.
    with notion.lock:
        notion._pages[notion_id("bad")]["url"] = "https://x.example/a> <!channel>"
        notion._pages[notion_id("worse")]["url"] = "javascript:alert(1)"
    app.knowledge.create_workspace(ws_name)
    app.sync_sources.add(
        ws_name, "wiki", kind="notion", config=NotionConnector.validate_config({}),
        credentials={"token": "secret_notion"}, schedule=None, requests_per_second=500,
    )  # fmt: skip

    run = await app.sync_engine.sync(ws_name, "wiki")

    assert (run.status, run.documents, run.changed, run.errors) == ("ok", 3, 3, 0)
    assert run.error is not None and run.error.startswith("2 invalid URLs dropped: ")
    urls = {url for url, _ in _stored(app, ws_name).values()}
    assert urls == {None, f"https://www.notion.so/{notion_id('good').replace('-', '')}"}
