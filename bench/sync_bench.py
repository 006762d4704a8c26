"""Knowledge sync benchmark: first-sync throughput of a web site, and change-to-searchable time.

Run from the repository root::

    .venv/bin/python bench/sync_bench.py              # 5,000 pages, 10 changes
    .venv/bin/python bench/sync_bench.py --quick      # 1,000 pages, 5 changes

The site is the local web simulator of the tests (``tests/servers/website.py``: help-center
pages with a menu and footer around ``<main>``, a sitemap index of 1,000 URLs per sitemap,
``<lastmod>``, ETags), served from a separate process so it takes no CPU time from the
process under test. Everything else is the product's own: an :class:`App` from a ``Settings``
made in code (current defaults, the local embedding model, an embedded Weaviate in
``bench/results/data-sync``, deleted first), the sync engine, and ``ingest --jsonl``'s path
for the comparison.

Figures (see ``bench/README.md``):

* **raw ingest**: documents/s of ``KnowledgeBase.ingest_jsonl`` for the same documents (the
  pages' extracted titles, texts and URLs written to JSONL), in a workspace of its own;
* **first sync**: documents/s of the first sync of the whole site (sitemaps, robots.txt,
  every page fetched and extracted, chunked, embedded, written, checkpointed), and its ratio
  to the raw ingest rate measured in the same run;
* **unchanged sync**: seconds of a sync that finds nothing changed (``<lastmod>`` unchanged:
  no page is fetched);
* **change to searchable**: a page is edited at a random moment while syncs run back to back
  (as a busy schedule would); the time until a search returns the new text, p50/p95.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import shutil
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from retrieval.loaders import html_main_text  # noqa: E402
from supportbot.app import App  # noqa: E402
from supportbot.settings import Settings  # noqa: E402
from sync.connectors.web import WebConnector  # noqa: E402
from tests.servers.website import Website, generated_page  # noqa: E402

RESULTS = REPO / "bench" / "results"


def serve_site(port: int, pages: int, commands: Connection) -> None:
    """The site, in its own process; edits arrive as ("set", path, title, body)."""
    site = Website(port=port, sitemap_page_size=1000)
    with site:
        for n in range(pages):
            site.set_page(*generated_page(n))
        commands.send("ready")
        while True:
            command = commands.recv()
            if command[0] == "stop":
                return
            if command[0] == "set":
                site.set_page(command[1], command[2], command[3])
                commands.send("ok")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def page_document(site_url: str, n: int) -> dict[str, Any]:
    """The JSONL record of page ``n``, with the text the web connector extracts from it."""
    path, title, body = generated_page(n)
    html = (
        f"<html><head><title>{title}</title></head><body><nav>Home</nav><main><h1>{title}</h1>"
        f"{body}</main><footer>(c)</footer></body></html>"
    )
    extracted_title, text = html_main_text(html)
    return {"id": f"{site_url}/{path}", "title": extracted_title, "text": text,
            "url": f"{site_url}/{path}"}  # fmt: skip


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = RESULTS / "data-sync"
    if data_dir.exists():
        probe = App(Settings(_env_file=None, data_dir=data_dir))  # type: ignore[call-arg]
        probe.embedded_weaviate.stop()
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=data_dir,
        secret_key="bench",
        sync_requests_per_second=1000,
        sync_allowed_private_hosts="127.0.0.1",  # the local site (web sources' SSRF guard)
    )
    port = free_port()
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve_site, args=(port, args.pages, child), daemon=True)
    server.start()
    assert parent.recv() == "ready"
    site = f"http://127.0.0.1:{port}"
    result: dict[str, Any] = {"pages": args.pages, "cpus": os.cpu_count()}
    try:
        with App(settings) as app:
            kb = app.knowledge
            app.embedder.embed_query("warm up")
            kb.create_workspace("raw")
            with tempfile.TemporaryDirectory() as tmp:
                jsonl = Path(tmp) / "pages.jsonl"
                with jsonl.open("w", encoding="utf-8") as out:
                    for n in range(args.pages):
                        out.write(json.dumps(page_document(site, n), ensure_ascii=False) + "\n")
                started = time.perf_counter()
                report = await asyncio.to_thread(kb.ingest_jsonl, "raw", jsonl)
                raw_s = time.perf_counter() - started
            assert report.documents == args.pages and not report.errors
            result["raw_ingest"] = {"seconds": raw_s, "docs_per_s": args.pages / raw_s,
                                    "chunks": report.chunks_added}  # fmt: skip
            print(f"raw ingest: {args.pages / raw_s:.1f} docs/s", file=sys.stderr)

            kb.create_workspace("site")
            app.sync_sources.add(
                "site", "help", kind="web",
                config=WebConnector.validate_config({"sitemap": f"{site}/sitemap.xml"}),
                credentials=None, schedule=None, requests_per_second=1000,
            )  # fmt: skip
            engine = app.sync_engine
            started = time.perf_counter()
            run = await engine.sync("site", "help", trigger="bench")
            sync_s = time.perf_counter() - started
            assert run.status == "ok" and run.documents == args.pages, run
            result["first_sync"] = {
                "seconds": sync_s,
                "docs_per_s": args.pages / sync_s,
                "ratio_to_raw_ingest": (args.pages / sync_s) / (args.pages / raw_s),
                "requests": run.requests,
                "chunks": run.chunks_added,
            }
            print(f"first sync: {args.pages / sync_s:.1f} docs/s", file=sys.stderr)

            started = time.perf_counter()
            run = await engine.sync("site", "help", trigger="bench")
            result["unchanged_sync_s"] = time.perf_counter() - started
            assert run.changed == 0 and run.unchanged == args.pages

            latencies = await change_latencies(app, parent, args)
            result["change_to_searchable_s"] = {
                "samples": latencies,
                "p50": statistics.median(latencies),
                "p95": sorted(latencies)[max(0, round(0.95 * len(latencies)) - 1)],
            }
    finally:
        parent.send(("stop",))
        server.join(10)
    return result


async def change_latencies(app: App, commands: Connection, args: argparse.Namespace) -> list[float]:
    """Edit pages while syncs run back to back; time each edit until a search finds it."""
    rng = random.Random(7)
    stop = asyncio.Event()

    async def sync_loop() -> None:
        while not stop.is_set():
            await app.sync_engine.sync("site", "help", trigger="bench")

    loop = asyncio.create_task(sync_loop())
    latencies = []
    try:
        for k in range(args.changes):
            await asyncio.sleep(rng.uniform(0.0, 2.0))
            n = rng.randrange(args.pages)
            path, title, _ = generated_page(n)
            marker = f"zebra{k}quartz"
            commands.send(("set", path, title, f"<p>Change {k}: the {marker} setting moved.</p>"))
            assert commands.recv() == "ok"
            changed = time.perf_counter()
            while True:
                results = await asyncio.to_thread(
                    app.knowledge.search, "site", marker, k=1, mode="keyword"
                )
                if results and marker in results[0].text:
                    break
                await asyncio.sleep(0.05)
            latencies.append(time.perf_counter() - changed)
            print(f"change {k}: searchable after {latencies[-1]:.2f}s", file=sys.stderr)
    finally:
        stop.set()
        await loop
    return latencies


def report_markdown(result: dict[str, Any]) -> str:
    raw, first = result["raw_ingest"], result["first_sync"]
    change = result["change_to_searchable_s"]
    return "\n".join(
        [
            f"# Sync benchmark ({result['pages']} pages, {result['cpus']} CPUs, {result['date']})",
            "",
            "| figure | value |",
            "| --- | --- |",
            f"| raw ingest (same documents, JSONL) | {raw['docs_per_s']:.1f} docs/s |",
            f"| first sync of the site | {first['docs_per_s']:.1f} docs/s |",
            f"| first sync / raw ingest | {first['ratio_to_raw_ingest']:.2f} |",
            f"| first sync requests | {first['requests']} |",
            f"| unchanged re-sync | {result['unchanged_sync_s']:.2f} s |",
            f"| change to searchable, p50 | {change['p50']:.2f} s |",
            f"| change to searchable, p95 | {change['p95']:.2f} s |",
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=5000)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="1,000 pages, 5 changes")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.pages, args.changes = 1000, 5
    for name in list(os.environ):
        if name.startswith(("SUPPORTBOT_", "WEAVIATE_", "EMBEDDING_", "SYNC_")) or name in (
            "DATABASE_URL", "REDIS_URL",
        ):  # fmt: skip
            del os.environ[name]
    result = asyncio.run(measure(args))
    result["date"] = datetime.now(UTC).strftime("%Y-%m-%d")
    stem = args.out or RESULTS / f"sync-{result['date']}{'-quick' if args.quick else ''}.json"
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.write_text(json.dumps(result, indent=2))
    markdown = report_markdown(result)
    stem.with_suffix(".md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
