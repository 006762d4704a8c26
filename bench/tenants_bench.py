"""Tenant scale benchmark: many workspaces on one Weaviate node, every tenant hot vs 90% cold.

Run from the repository root::

    .venv/bin/python bench/tenants_bench.py                          # 1,000 x 500 chunks
    .venv/bin/python bench/tenants_bench.py --workspaces 50 --chunks 100   # a few minutes

It starts its own embedded Weaviate (the product's :class:`EmbeddedWeaviate`, own ports) in a
scratch data dir, ``bench/results/tenants-data`` (deleted first; never the tests' server), and
writes through the product's :class:`KnowledgeStore` (one tenant per workspace, as
``workspace create`` and ``ingest`` do). Figures: Weaviate's resident memory (VmRSS from
/proc after a settle), p50/p95 hybrid search latency in hot tenants (``KnowledgeStore.search``,
the product's alpha and k), the time to reactivate a cold tenant (and to answer its first
search), and the time to create the tenants. Memory is measured live and again after a restart
of the node (what a node that has been running with cold tenants holds).

Embedding 500,000 chunks with the local model would take hours on 2 cores, so a pool of real
chunks (PolicyQA and KorQuAD contexts, ``--pool``) is embedded once; each workspace's chunks
are a seeded sample of the pool, and every vector gets seeded Gaussian noise (sigma
``--noise``, then renormalised) so no two tenants hold identical vectors or graphs; each text
carries its workspace and chunk number, so BM25 indexes differ too. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import weaviate
from weaviate.classes.init import AdditionalConfig, Timeout

from retrieval.documents import Chunk
from retrieval.store import KnowledgeStore, StoredChunk
from retrieval.weaviate_server import EmbeddedWeaviate, ServerAddress
from supportbot.settings import WEAVIATE_VERSION, Settings

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "retrieval"
RESULTS = REPO / "bench" / "results"


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --- data --------------------------------------------------------------------------------------


def real_texts(limit: int) -> tuple[list[str], list[str]]:
    """Up to ``limit`` distinct contexts (half English policies, half Korean Wikipedia) and
    questions about them, read in place from ../shared/data/retrieval."""
    contexts: list[str] = []
    questions: list[str] = []
    for path in (
        DATA / "policyqa_dev" / "dev.json",
        DATA / "korquad_v1_dev" / "KorQuAD_v1.0_dev.json",
    ):
        seen: set[str] = set()
        taken = 0
        for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
            for paragraph in article["paragraphs"]:
                text = " ".join(paragraph["context"].split())
                if text in seen or len(text) < 80:
                    continue
                seen.add(text)
                contexts.append(text[:1200])  # about one 256-token chunk
                questions.extend(qa["question"] for qa in paragraph["qas"][:1])
                taken += 1
                if taken >= limit // 2:
                    break
            if taken >= limit // 2:
                break
    return contexts, questions


def embedded_pool(pool: int, cache: Path) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """The pool's texts and unit vectors, and query texts and vectors (cached on disk)."""
    texts, questions = real_texts(pool)
    questions = questions[:200]
    key = cache / f"pool-{len(texts)}-{len(questions)}.npz"
    if key.exists():
        saved = np.load(key)
        return texts, saved["chunks"], questions, saved["queries"]
    from retrieval.embeddings import LocalE5Embeddings

    embedder = LocalE5Embeddings()
    started = time.perf_counter()
    chunks = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
    queries = np.asarray(embedder.embed_queries(questions), dtype=np.float32)
    log(f"embedded {len(texts)} chunks and {len(questions)} queries in "
        f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(key, chunks=chunks, queries=queries)
    return texts, chunks, questions, queries


def workspace_chunks(
    w: int, n: int, texts: Sequence[str], vectors: np.ndarray, noise: float
) -> list[StoredChunk]:
    """Workspace ``w``'s ``n`` chunks: a seeded sample of the pool, vectors jittered."""
    rng = np.random.default_rng(1_000_003 * (w + 1))
    picks = rng.choice(len(texts), size=n, replace=n > len(texts))
    jitter = rng.normal(0.0, noise, size=(n, vectors.shape[1])).astype(np.float32)
    varied = vectors[picks] + jitter
    varied /= np.linalg.norm(varied, axis=1, keepdims=True)
    items = []
    for i, (pick, vector) in enumerate(zip(picks, varied, strict=True)):
        chunk = Chunk(
            doc_id=f"ws{w}/doc{i // 10}",
            index=i % 10,
            text=f"{texts[pick]} (workspace {w}, chunk {i})",
            title=f"Document {i // 10} of workspace {w}",
            heading="",
            source=f"bench-{w}-{i // 10}.md",
            url=None,
        )
        items.append(StoredChunk(chunk, vector.tolist(), "bench"))
    return items


# --- the node ----------------------------------------------------------------------------------


class Node:
    """The scratch Weaviate and a store on it; restartable."""

    def __init__(self, data_dir: Path) -> None:
        self.server = EmbeddedWeaviate(
            data_dir,
            binary_path=Settings(_env_file=None).weaviate_binary_path,  # type: ignore[call-arg]
            version=WEAVIATE_VERSION,
            startup_timeout_s=600,
        )
        self.address: ServerAddress | None = None
        self.client: weaviate.WeaviateClient | None = None
        self.store: KnowledgeStore | None = None

    def start(self) -> float:
        started = time.perf_counter()
        self.address = self.server.ensure_running()
        self.client = weaviate.connect_to_local(
            host=self.address.host,
            port=self.address.http_port,
            grpc_port=self.address.grpc_port,
            additional_config=AdditionalConfig(timeout=Timeout(init=30, query=120, insert=600)),
        )
        self.store = KnowledgeStore(self.client)
        self.store.ensure_schema()
        return time.perf_counter() - started

    def live_store(self) -> KnowledgeStore:
        assert self.store is not None, "the node is not started"
        return self.store

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        self.server.stop()

    def memory_mib(self) -> dict[str, float]:
        """Weaviate's resident memory from /proc/PID/status, MiB: ``rss`` (VmRSS), split into
        ``anon`` (RssAnon: the Go heap and stacks) and ``file`` (RssFile: pages of the
        memory-mapped LSM segments, which the kernel can drop under pressure)."""
        assert self.address is not None and self.address.pid is not None
        fields = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file"}
        found: dict[str, float] = {}
        for line in Path(f"/proc/{self.address.pid}/status").read_text().splitlines():
            key = line.split(":", 1)[0] + ":"
            if key in fields:
                found[fields[key]] = round(int(line.split()[1]) / 1024, 1)
        if "rss" not in found:
            raise RuntimeError("no VmRSS")
        return found


def settled_memory(node: Node, settle_s: float) -> dict[str, float]:
    """Memory after ``settle_s`` seconds: the reading with the lowest RSS of a few over the
    last third of the wait. The Go runtime frees unloaded shards only at a garbage collection
    (forced every 2 minutes on an idle process) and returns the pages to the OS after it, so a
    settle under about 150 s reads memory that is already free (measured: a tenant set cold
    gave back its heap 2 minutes later, not 30 s later)."""
    time.sleep(settle_s * 2 / 3)
    readings = []
    for _ in range(5):
        readings.append(node.memory_mib())
        time.sleep(settle_s / 15)
    return min(readings, key=lambda reading: reading["rss"])


def percentiles(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    return {"p50": round(at(50), 2), "p95": round(at(95), 2), "n": len(ordered)}


def search_latency(
    store: KnowledgeStore,
    tenants: Sequence[str],
    questions: Sequence[str],
    queries: np.ndarray,
    *,
    searches: int,
    k: int,
    alpha: float,
) -> dict[str, float]:
    for tenant in tenants:  # warm-up: one search each
        store.search(questions[0], queries[0].tolist(), tenant=tenant, k=k, alpha=alpha)
    times = []
    for i in range(searches):
        q = i % len(questions)
        started = time.perf_counter()
        store.search(
            questions[q], queries[q].tolist(), tenant=tenants[i % len(tenants)], k=k, alpha=alpha
        )
        times.append((time.perf_counter() - started) * 1000)
    return percentiles(times)


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "")
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "ram_gib": round(mem / 1024 / 1024, 1),
        "python": platform.python_version(),
        "weaviate": WEAVIATE_VERSION,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


# --- the run -----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    k, alpha = defaults.search_k, defaults.hybrid_alpha
    result: dict[str, Any] = {"machine": machine(), "config": {
        "workspaces": args.workspaces, "chunks": args.chunks, "cold_share": args.cold_share,
        "pool": args.pool, "noise": args.noise, "settle_s": args.settle, "k": k, "alpha": alpha,
        "searches": args.searches,
    }}  # fmt: skip
    texts, vectors, questions, queries = embedded_pool(args.pool, RESULTS / "tenants-cache")
    result["config"]["pool_embedded"] = len(texts)

    data_dir = args.data_dir
    if (data_dir / "server.json").exists():
        Node(data_dir).server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)
    node = Node(data_dir)
    node.start()
    store = node.store
    assert store is not None
    result["memory_empty_mib"] = settled_memory(node, args.settle)
    result["rss_empty_mib"] = result["memory_empty_mib"]["rss"]
    log(f"empty node: {result['rss_empty_mib']} MiB")

    tenants = [f"bench_{w:05d}" for w in range(args.workspaces)]
    started = time.perf_counter()
    for tenant in tenants:
        store.create_tenant(tenant=tenant)
    created_s = time.perf_counter() - started
    result["create_tenants"] = {
        "total_s": round(created_s, 2),
        "per_tenant_ms": round(created_s * 1000 / len(tenants), 2),
    }
    log(f"created {len(tenants)} tenants in {created_s:.1f} s")

    started = time.perf_counter()
    for w, tenant in enumerate(tenants):
        store.insert(workspace_chunks(w, args.chunks, texts, vectors, args.noise), tenant=tenant)
        if (w + 1) % max(1, len(tenants) // 20) == 0:
            done = time.perf_counter() - started
            log(f"filled {w + 1}/{len(tenants)} tenants ({(w + 1) * args.chunks / done:.0f} "
                f"chunks/s)")  # fmt: skip
    fill_s = time.perf_counter() - started
    result["fill"] = {
        "total_s": round(fill_s, 1),
        "chunks_per_s": round(len(tenants) * args.chunks / fill_s, 1),
    }
    assert store.count(tenant=tenants[-1]) == args.chunks

    cold_count = round(len(tenants) * args.cold_share)
    hot = tenants[cold_count:]  # the last ones stay hot
    cold = tenants[:cold_count]
    sample_hot = hot[: min(10, len(hot))]

    def latency() -> dict[str, float]:
        return search_latency(
            node.live_store(),
            sample_hot,
            questions,
            queries,
            searches=args.searches,
            k=k,
            alpha=alpha,
        )

    def touch(names: Sequence[str]) -> None:
        for tenant in names:  # Weaviate loads shards lazily: a search makes each resident
            node.live_store().search(
                questions[0], queries[0].tolist(), tenant=tenant, k=k, alpha=alpha
            )

    # 1. every tenant hot, right after the fill (memtables and the fill's garbage included)
    touch(tenants)
    result["all_hot"] = {"memory_after_fill_mib": settled_memory(node, args.settle)}
    result["all_hot"]["rss_live_mib"] = result["all_hot"]["memory_after_fill_mib"]["rss"]
    result["all_hot"]["search_ms"] = latency()
    log(f"all hot: {result['all_hot']}")

    # 2. every tenant hot, after a restart (and one search in each)
    node.stop()
    result["all_hot"]["restart_s"] = round(node.start(), 1)
    store = node.store
    assert store is not None
    touch(tenants)
    result["all_hot"]["memory_restarted_mib"] = settled_memory(node, args.settle)
    result["all_hot"]["rss_restarted_mib"] = result["all_hot"]["memory_restarted_mib"]["rss"]
    log(f"all hot after restart: {result['all_hot']}")

    # 3. 90% cold, live: the same process as 2, as when the product sets idle tenants cold
    started = time.perf_counter()
    for tenant in cold:
        store.set_tenant_active(tenant=tenant, active=False)
    deactivate_s = time.perf_counter() - started
    statuses = store.tenant_activity(tenants)
    assert sum(1 for t in cold if statuses[t].value == "INACTIVE") == len(cold)
    result["cold"] = {
        "tenants_cold": len(cold),
        "deactivate_ms_each": round(deactivate_s * 1000 / max(1, len(cold)), 2),
        "memory_live_mib": settled_memory(node, args.settle),
    }
    result["cold"]["rss_live_mib"] = result["cold"]["memory_live_mib"]["rss"]
    result["cold"]["search_ms"] = latency()
    log(f"{len(cold)} cold: {result['cold']}")

    # 4. 90% cold after a restart (hot ones searched once)
    node.stop()
    result["cold"]["restart_s"] = round(node.start(), 1)
    store = node.store
    assert store is not None
    touch(hot)
    result["cold"]["memory_restarted_mib"] = settled_memory(node, args.settle)
    result["cold"]["rss_restarted_mib"] = result["cold"]["memory_restarted_mib"]["rss"]
    result["cold"]["search_ms_restarted"] = latency()
    log(f"cold after restart: {result['cold']}")

    # 5. reactivation of cold tenants: the switch (what TenantActivity.use times), then the
    # first search in it
    rng = random.Random(7)
    switch, first = [], []
    for tenant in rng.sample(cold, min(args.reactivations, len(cold))):
        started = time.perf_counter()
        store.set_tenant_active(tenant=tenant, active=True)
        switched = time.perf_counter()
        hits = store.search(questions[1], queries[1].tolist(), tenant=tenant, k=k, alpha=alpha)
        done = time.perf_counter()
        assert hits and all(f"workspace {int(tenant[6:])}," in h.text for h in hits)
        switch.append((switched - started) * 1000)
        first.append((done - started) * 1000)
    result["reactivation_ms"] = {
        "switch": percentiles(switch),
        "switch_and_first_search": percentiles(first),
    }
    log(f"reactivation: {result['reactivation_ms']}")

    hot_part = result["all_hot"]["rss_restarted_mib"] - result["rss_empty_mib"]
    cold_part = result["cold"]["rss_restarted_mib"] - result["rss_empty_mib"]
    live_hot = hot_part  # live: the same process, before and after the tenants were set cold
    live_cold = result["cold"]["rss_live_mib"] - result["rss_empty_mib"]
    anon_empty = result["memory_empty_mib"].get("anon", 0.0)
    anon_hot = result["all_hot"]["memory_restarted_mib"].get("anon", 0.0) - anon_empty
    anon_cold = result["cold"]["memory_restarted_mib"].get("anon", 0.0) - anon_empty
    hot_share = 1 - args.cold_share
    result["ratio"] = {
        "hot_share": round(hot_share, 3),
        "tenant_memory_ratio_restarted": round(cold_part / hot_part, 3) if hot_part > 0 else None,
        "tenant_memory_ratio_live": round(live_cold / live_hot, 3) if live_hot > 0 else None,
        "tenant_anon_ratio_restarted": round(anon_cold / anon_hot, 3) if anon_hot > 0 else None,
        "total_rss_ratio_restarted": round(
            result["cold"]["rss_restarted_mib"] / result["all_hot"]["rss_restarted_mib"], 3
        ),
    }
    ratio = result["ratio"]["tenant_memory_ratio_restarted"]
    result["ratio"]["target_met_restarted"] = ratio is not None and ratio <= hot_share
    live = result["ratio"]["tenant_memory_ratio_live"]
    result["ratio"]["target_met_live"] = live is not None and live <= hot_share
    result["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["disk_mib"] = round(
        sum(f.stat().st_size for f in data_dir.rglob("*") if f.is_file()) / 2**20, 1
    )
    node.stop()
    if not args.keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    return result


def render(r: dict[str, Any]) -> str:
    m, c = r["machine"], r["config"]
    hot, cold = r["all_hot"], r["cold"]
    lines = [
        f"### Tenants: {c['workspaces']:,} workspaces x {c['chunks']} chunks, "
        f"{cold['tenants_cold']} cold",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu_model']}), {m['ram_gib']} GiB, Weaviate "
        f"{m['weaviate']}, {m['date_utc']}; load average {m['loadavg_start']} at the start, "
        f"{m['loadavg_end']} at the end. Vectors: {c['pool_embedded']} real chunks embedded once, "
        f"reused with noise sigma {c['noise']}. Settle {c['settle_s']} s before each RSS.",
        "",
        f"| | every tenant hot | {round(c['cold_share'] * 100)}% cold |",
        "|---|---:|---:|",
        f"| Weaviate RSS after a restart (MiB) | {hot['rss_restarted_mib']:,.0f} | "
        f"{cold['rss_restarted_mib']:,.0f} |",
        f"| of which anonymous / file-backed (MiB) | {_split(hot['memory_restarted_mib'])} | "
        f"{_split(cold['memory_restarted_mib'])} |",
        f"| Weaviate RSS live: the same process before and after setting tenants cold (MiB) | "
        f"{hot['rss_restarted_mib']:,.0f} | {cold['rss_live_mib']:,.0f} |",
        f"| Weaviate RSS right after filling every tenant (MiB) | {hot['rss_live_mib']:,.0f} | |",
        f"| hybrid search in a hot tenant, p50 / p95 (ms) | {hot['search_ms']['p50']} / "
        f"{hot['search_ms']['p95']} | {cold['search_ms']['p50']} / {cold['search_ms']['p95']} |",
        f"| node restart (s) | {hot['restart_s']} | {cold['restart_s']} |",
        "",
        f"Empty node: {r['rss_empty_mib']:,.0f} MiB ({_split(r['memory_empty_mib'])}). "
        f"Creating {c['workspaces']:,} tenants: "
        f"{r['create_tenants']['total_s']} s ({r['create_tenants']['per_tenant_ms']} ms each). "
        f"Filling them: {r['fill']['total_s']} s ({r['fill']['chunks_per_s']:,.0f} chunks/s). "
        f"Setting one cold: {cold['deactivate_ms_each']} ms.",
        f"Reactivating a cold tenant: p50 {r['reactivation_ms']['switch']['p50']} ms, p95 "
        f"{r['reactivation_ms']['switch']['p95']} ms; with its first search p50 "
        f"{r['reactivation_ms']['switch_and_first_search']['p50']} ms, p95 "
        f"{r['reactivation_ms']['switch_and_first_search']['p95']} ms "
        f"({r['reactivation_ms']['switch']['n']} tenants).",
        f"Tenant memory (RSS minus the empty node) with {round(c['cold_share'] * 100)}% cold, "
        f"as a share of all hot: {r['ratio']['tenant_memory_ratio_restarted']} after a restart, "
        f"{r['ratio']['tenant_memory_ratio_live']} live (target: at most the hot share, "
        f"{r['ratio']['hot_share']}): met after a restart: "
        f"{r['ratio']['target_met_restarted']}, live: {r['ratio']['target_met_live']}. "
        f"Anonymous memory alone, after a restart: "
        f"{r['ratio']['tenant_anon_ratio_restarted']}.",
        f"Data on disk: {r['disk_mib']:,.0f} MiB.",
    ]
    return "\n".join(lines) + "\n"


def _split(memory: dict[str, float]) -> str:
    return f"{memory.get('anon', 0):,.0f} / {memory.get('file', 0):,.0f}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workspaces", type=int, default=1000)
    parser.add_argument("--chunks", type=int, default=500, help="chunks per workspace")
    parser.add_argument("--cold-share", type=float, default=0.9)
    parser.add_argument("--pool", type=int, default=2000, help="real chunks embedded once")
    parser.add_argument("--noise", type=float, default=0.02, help="vector jitter (sigma)")
    parser.add_argument(
        "--settle", type=float, default=150.0, help="seconds before each memory reading"
    )
    parser.add_argument("--searches", type=int, default=300)
    parser.add_argument("--reactivations", type=int, default=30)
    parser.add_argument("--data-dir", type=Path, default=RESULTS / "tenants-data")
    parser.add_argument("--out", type=Path, help="JSON path (a .md is written beside it)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch data dir")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    out: Path = args.out or RESULTS / f"tenants-{args.workspaces}x{args.chunks}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    report = render(result)
    out.with_suffix(".md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
