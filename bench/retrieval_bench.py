"""Retrieval benchmark: quality, alpha sweep, ingest throughput, latency, relevance gate.

Run from the repository root::

    .venv/bin/python bench/retrieval_bench.py [--quick] [--out bench/results/DATE.json]

It starts its own embedded Weaviate through :class:`supportbot.app.App` in a fresh data
directory under ``bench/results/`` (git-ignored), reads the evaluation sets in place from
``../shared/data/retrieval/`` and prints a Markdown report (also written next to the JSON).
See ``bench/README.md`` for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import SecretStr

from retrieval.documents import SourceDocument
from retrieval.embeddings import QueryBatchEmbeddings
from retrieval.knowledge import KnowledgeBase
from retrieval.loaders import load_jsonl
from retrieval.store import KnowledgeStore, SearchMode, StoredChunk, embedding_text
from retrieval.weaviate_server import EmbeddedWeaviate
from supportbot.app import App
from supportbot.settings import WEAVIATE_VERSION, Settings

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "retrieval"
KORQUAD_PATH = DATA / "korquad_v1_dev" / "KorQuAD_v1.0_dev.json"
POLICYQA_PATH = DATA / "policyqa_dev" / "dev.json"
# English vendor/support emails (BIPIA EmailQA contexts): an off-topic English workspace.
EMAILS_PATH = (
    REPO.parent / "shared" / "data" / "prompt_injection" / "bipia" / "email" / "train.jsonl"
)
RESULTS = REPO / "bench" / "results"

ALPHAS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
K_CHUNKS = 20  # chunks asked for per search, so that ~10 distinct documents come back
RECALL_AT = (1, 5)
MRR_AT = 10
KEEP_RIGHT_PCT = 95  # the relevance gate must keep this share of right-workspace searches
MATCH_TOLERANCE = 0.005  # MRR@10 difference still called "matches"
SEARCH_THREADS = 4  # as KnowledgeBase.search_many
LATENCY_QUERIES = 300
LATENCY_WARMUP = 10
LATENCY_CHUNK_TOKENS = 56  # small chunks so KorQuAD + PolicyQA give >= 10,000 real chunks
LATENCY_OVERLAP_TOKENS = 8
KORQUAD_WS = "bench-korquad"
KORQUAD_EVEN_WS = "bench-korquad-even-articles"  # for same-language wrong-workspace searches
KORQUAD_ODD_WS = "bench-korquad-odd-articles"
EMAILS_WS = "bench-emails"
LATENCY_WS = "bench-latency"

# Environment variables Settings would read: the benchmark measures the defaults, not a .env.
_SETTING_VARIABLES = (
    "SUPPORTBOT_DATA_DIR", "DATABASE_URL", "SUPPORTBOT_SECRET_KEY", "WEAVIATE_URL",
    "WEAVIATE_GRPC_PORT", "WEAVIATE_API_KEY", "EMBEDDING_PROVIDER", "EMBEDDING_MODEL",
    "EMBEDDING_BASE_URL", "EMBEDDING_API_KEY", "OPENAI_API_KEY", "EMBEDDING_SEND_INPUT_TYPE",
    "EMBEDDING_QUERY_PREFIX", "EMBEDDING_PASSAGE_PREFIX", "EMBEDDING_BATCH_SIZE", "SEARCH_K",
    "HYBRID_ALPHA", "MIN_RELEVANCE", "CHUNK_TOKENS", "CHUNK_OVERLAP_TOKENS", "MAX_FILE_MB",
)  # fmt: skip

_STARTED = time.monotonic()


def log(message: str) -> None:
    elapsed = time.monotonic() - _STARTED
    print(f"[{elapsed:7.1f}s] {message}", file=sys.stderr, flush=True)


# --- data ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Doc:
    id: str
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    workspace: str
    gold: frozenset[str]  # doc ids that count as a hit
    # PolicyQA only: every paragraph of the policy holding a question with the same text.
    lenient: frozenset[str]


@dataclass(slots=True)
class EvalSet:
    name: str
    workspaces: dict[str, list[Doc]]
    queries: list[Query]
    notes: list[str] = field(default_factory=list)


def load_korquad(*, quick: bool) -> EvalSet:
    with KORQUAD_PATH.open(encoding="utf-8") as handle:
        articles = json.load(handle)["data"]
    quick_limit = 600
    docs: list[Doc] = []
    by_text: dict[str, set[str]] = {}
    raw_queries: list[tuple[str, str]] = []  # (question, doc id)
    for a_index, article in enumerate(articles):
        if quick and len(raw_queries) >= quick_limit:
            break  # --quick: only the articles the first 600 questions come from
        for p_index, paragraph in enumerate(article["paragraphs"]):
            doc = Doc(f"{a_index}-{p_index}", article["title"], paragraph["context"])
            docs.append(doc)
            by_text.setdefault(doc.text, set()).add(doc.id)
            raw_queries.extend((qa["question"], doc.id) for qa in paragraph["qas"])
    text_of = {d.id: d.text for d in docs}
    if quick:
        raw_queries = raw_queries[:quick_limit]
    queries = [
        Query(q, KORQUAD_WS, frozenset(by_text[text_of[d]]), frozenset()) for q, d in raw_queries
    ]
    duplicates = [sorted(ids) for ids in by_text.values() if len(ids) > 1]
    notes = []
    if duplicates:
        affected = sum(1 for q in queries if len(q.gold) > 1)
        notes.append(
            f"{len(duplicates)} groups of byte-identical paragraphs ({duplicates}); "
            f"for the {affected} questions on them any copy counts as the gold paragraph"
        )
    if quick:
        notes.append(
            f"--quick: corpus = the {len(docs)} paragraphs of the first articles only, "
            "so figures are higher than on the full 964-paragraph corpus"
        )
    return EvalSet("KorQuAD 1.0 dev", {KORQUAD_WS: docs}, queries, notes)


def policy_workspace(title: str) -> str:
    return "bench-pqa-" + re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-")


def load_policyqa(*, quick: bool) -> EvalSet:
    with POLICYQA_PATH.open(encoding="utf-8") as handle:
        policies = json.load(handle)["data"]
    workspaces: dict[str, list[Doc]] = {}
    queries: list[Query] = []
    for policy in policies:
        name = policy_workspace(policy["title"])
        docs: list[Doc] = []
        holders: dict[str, set[str]] = {}
        pairs: list[tuple[str, str]] = []
        for p_index, paragraph in enumerate(policy["paragraphs"]):
            doc = Doc(str(p_index), policy["title"], paragraph["context"])
            docs.append(doc)
            for qa in paragraph["qas"]:
                holders.setdefault(qa["question"], set()).add(doc.id)
                pairs.append((qa["question"], doc.id))
        if quick:
            pairs = pairs[:60]
        workspaces[name] = docs
        queries.extend(Query(q, name, frozenset({d}), frozenset(holders[q])) for q, d in pairs)
    ambiguous = sum(1 for q in queries if len(q.lenient) > 1)
    distinct = len({(q.workspace, q.text) for q in queries})
    notes = [
        f"{ambiguous} of {len(queries)} questions have a text that other paragraphs of the same "
        f"policy also carry ({distinct} distinct (policy, question) pairs): one ranking cannot "
        "put every such gold paragraph first, so strict Recall@1 has a ceiling below 1 "
        "(see 'ceiling' and the lenient metrics, where any paragraph holding the same "
        "question counts)"
    ]
    return EvalSet("PolicyQA dev", workspaces, queries, notes)


def write_jsonl(path: Path, docs: Sequence[Doc]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for doc in docs:
            record = {"id": doc.id, "title": doc.title, "text": doc.text}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def loaded_documents(path: Path) -> list[SourceDocument]:
    """The documents exactly as ``ingest_jsonl`` will see them (title and text cleaned)."""
    docs = []
    for item in load_jsonl(path):
        if not isinstance(item, SourceDocument):
            raise SystemExit(f"bad benchmark record: {item}")
        docs.append(item)
    return docs


# --- machine ---------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
                break
    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "weaviate": WEAVIATE_VERSION,
        "loadavg_start": load_average(),
        # libgomp's wait policy decides how the embedder behaves on a busy machine.
        "omp_env": {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "GOMP_"))},
        "commit": _commit(),
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _commit() -> str:
    """The checked-out commit, read from .git without running git."""
    head = REPO / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            name = ref[5:]
            path = REPO / ".git" / name
            if path.exists():
                return path.read_text().strip()[:12]
            packed = REPO / ".git" / "packed-refs"
            for line in packed.read_text().splitlines():
                if line.endswith(" " + name):
                    return line.split()[0][:12]
            return ""
        return ref[:12]
    except OSError:
        return ""


class CpuClock:
    """CPU seconds of this process (the embedder's threads included) plus Weaviate's."""

    def __init__(self, weaviate_pid: int | None) -> None:
        self._pid = weaviate_pid
        self._tick = os.sysconf("SC_CLK_TCK")

    def weaviate(self) -> float:
        if self._pid is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self._pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime

    def now(self) -> tuple[float, float]:
        return time.process_time(), self.weaviate()


@dataclass(slots=True)
class Timed:
    wall_s: float = 0.0
    cpu_self_s: float = 0.0
    cpu_weaviate_s: float = 0.0


@contextmanager
def timed(into: Timed, clock: CpuClock) -> Iterator[None]:
    own, server = clock.now()
    start = time.perf_counter()
    yield
    into.wall_s += time.perf_counter() - start
    own_end, server_end = clock.now()
    into.cpu_self_s += own_end - own
    into.cpu_weaviate_s += server_end - server


# --- search ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hit:
    doc_id: str
    similarity: float


SearchKey = tuple[str, str, SearchMode, float, int]  # tenant, query, mode, alpha, k


class Searcher:
    """Store searches with precomputed query vectors, each distinct search run once."""

    def __init__(self, store: KnowledgeStore) -> None:
        self._store = store
        self._cache: dict[SearchKey, list[Hit]] = {}
        self.searches = 0
        self.wall_s = 0.0

    def run(self, requests: Sequence[tuple[SearchKey, Sequence[float]]]) -> list[list[Hit]]:
        todo: dict[SearchKey, Sequence[float]] = {}
        for key, vector in requests:
            if key not in self._cache:
                todo[key] = vector

        def one(item: tuple[SearchKey, Sequence[float]]) -> tuple[SearchKey, list[Hit]]:
            (tenant, query, mode, alpha, k), vector = item
            results = self._store.search(query, vector, tenant=tenant, k=k, mode=mode, alpha=alpha)
            return item[0], [Hit(r.doc_id, r.similarity) for r in results]

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=SEARCH_THREADS) as pool:
            for key, hits in pool.map(one, todo.items()):
                self._cache[key] = hits
        self.wall_s += time.perf_counter() - start
        self.searches += len(todo)
        return [self._cache[key] for key, _ in requests]


def first_rank(hits: Sequence[Hit], gold: frozenset[str]) -> int | None:
    """1-based rank of the first gold document after deduplicating by doc id."""
    seen: list[str] = []
    for hit in hits:
        if hit.doc_id not in seen:
            seen.append(hit.doc_id)
            if hit.doc_id in gold:
                return len(seen)
    return None


def distinct_docs(hits: Sequence[Hit]) -> int:
    return len({hit.doc_id for hit in hits})


def metrics(ranks: Sequence[int | None]) -> dict[str, float]:
    n = len(ranks)
    out: dict[str, float] = {"n": n}
    for at in RECALL_AT:
        out[f"recall@{at}"] = sum(1 for r in ranks if r is not None and r <= at) / n
    out[f"mrr@{MRR_AT}"] = sum(1 / r for r in ranks if r is not None and r <= MRR_AT) / n
    return out


def reciprocal_ranks(ranks: Sequence[int | None]) -> np.ndarray:
    return np.array([1 / r if r is not None and r <= MRR_AT else 0.0 for r in ranks])


def paired_bootstrap(a: np.ndarray, b: np.ndarray, *, seed: int = 0) -> list[float]:
    """95% interval of mean(a - b) over queries (1,000 paired resamples)."""
    diff = a - b
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(1000, len(diff)))].mean(axis=1)
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]


Config = tuple[SearchMode, float]  # mode, alpha (alpha unused unless hybrid)


def config_name(config: Config) -> str:
    mode, alpha = config
    return f"hybrid a={alpha:.1f}" if mode == "hybrid" else mode


# --- the benchmark ---------------------------------------------------------------------------


@dataclass(slots=True)
class Context:
    app: App
    kb: KnowledgeBase
    store: KnowledgeStore
    embedder: QueryBatchEmbeddings
    searcher: Searcher
    clock: CpuClock
    tmp: Path
    quick: bool
    tenants: dict[str, str] = field(default_factory=dict)


def ingest_korquad(ctx: Context, korquad: EvalSet) -> dict[str, Any]:
    """Ingest KorQuAD in slices, timing the raw embedder on each slice's chunk texts beside it.

    Slices alternate the order (raw then ingest, ingest then raw) so that both see the same
    background load on average; the per-slice ratios show how noisy the machine was.
    """
    docs = korquad.workspaces[KORQUAD_WS]
    ctx.kb.create_workspace(KORQUAD_WS)
    ctx.tenants[KORQUAD_WS] = ctx.kb.workspace(KORQUAD_WS).tenant
    chunker = ctx.kb._chunker
    ctx.embedder.embed_documents(["warm-up passage"])  # model load outside the timings
    slices = 2 if ctx.quick else 4
    size = math.ceil(len(docs) / slices)
    raw_total, ingest_total = Timed(), Timed()
    per_slice = []
    chunks_total = 0
    for index in range(slices):
        part = docs[index * size : (index + 1) * size]
        if not part:
            continue
        path = write_jsonl(ctx.tmp / f"korquad-{index}.jsonl", part)
        chunks = [c for d in loaded_documents(path) for c in chunker.split(d)]
        texts = [embedding_text(c) for c in chunks]
        raw, ingest = Timed(), Timed()

        def run_raw(raw: Timed = raw, texts: list[str] = texts) -> None:
            with timed(raw, ctx.clock):
                ctx.embedder.embed_documents(texts)

        def run_ingest(ingest: Timed = ingest, path: Path = path, n: int = len(chunks)) -> None:
            with timed(ingest, ctx.clock):
                report = ctx.kb.ingest_jsonl(KORQUAD_WS, path)
            if report.errors or report.chunks_added != n:
                raise SystemExit(
                    f"KorQuAD ingest added {report.chunks_added} chunks, expected {n}; "
                    f"errors: {report.errors[:3]}"
                )

        order = ("raw", "ingest") if index % 2 == 0 else ("ingest", "raw")
        for step in order:
            if step == "raw":
                run_raw()
            else:
                run_ingest()
        chunks_total += len(chunks)
        for total, one in ((raw_total, raw), (ingest_total, ingest)):
            total.wall_s += one.wall_s
            total.cpu_self_s += one.cpu_self_s
            total.cpu_weaviate_s += one.cpu_weaviate_s
        per_slice.append(
            {
                "order": "+".join(order),
                "chunks": len(chunks),
                "raw_chunks_per_s": round(len(chunks) / raw.wall_s, 2),
                "ingest_chunks_per_s": round(len(chunks) / ingest.wall_s, 2),
                "ratio": round(raw.wall_s / ingest.wall_s, 3),
                "loadavg": load_average(),
            }
        )
        log(f"KorQuAD slice {index + 1}/{slices}: {per_slice[-1]}")
    stored = ctx.kb.chunk_count(KORQUAD_WS)
    raw_cpu = raw_total.cpu_self_s + raw_total.cpu_weaviate_s
    ingest_cpu = ingest_total.cpu_self_s + ingest_total.cpu_weaviate_s
    return {
        "documents": len(docs),
        "chunks": chunks_total,
        "chunks_stored": stored,
        "method": f"{len(per_slice)} slices; order alternates raw+ingest / ingest+raw",
        "raw_chunks_per_s": round(chunks_total / raw_total.wall_s, 2),
        "ingest_chunks_per_s": round(chunks_total / ingest_total.wall_s, 2),
        "ratio_wall": round(raw_total.wall_s / ingest_total.wall_s, 3),
        "raw_wall_s": round(raw_total.wall_s, 1),
        "ingest_wall_s": round(ingest_total.wall_s, 1),
        "raw_cpu_s": round(raw_cpu, 1),
        "ingest_cpu_s": round(ingest_cpu, 1),
        "ingest_cpu_weaviate_s": round(ingest_total.cpu_weaviate_s, 1),
        "ratio_cpu": round(raw_cpu / ingest_cpu, 3) if ingest_cpu else None,
        "slices": per_slice,
    }


def ingest_policyqa(ctx: Context, policyqa: EvalSet) -> dict[str, Any]:
    timing = Timed()
    added = 0
    for name, docs in policyqa.workspaces.items():
        ctx.kb.create_workspace(name)
        ctx.tenants[name] = ctx.kb.workspace(name).tenant
        path = write_jsonl(ctx.tmp / f"{name}.jsonl", docs)
        with timed(timing, ctx.clock):
            report = ctx.kb.ingest_jsonl(name, path)
        if report.errors:
            raise SystemExit(f"PolicyQA ingest of {name} failed: {report.errors[:3]}")
        added += report.chunks_added
    return {
        "workspaces": len(policyqa.workspaces),
        "documents": sum(len(d) for d in policyqa.workspaces.values()),
        "chunks": added,
        "ingest_chunks_per_s": round(added / timing.wall_s, 2),
    }


def embed_queries(ctx: Context, texts: Sequence[str]) -> tuple[dict[str, list[float]], float]:
    """Each distinct query text embedded once (batched); returns vectors and queries/s."""
    distinct = list(dict.fromkeys(texts))
    vectors: list[list[float]] = []
    start = time.perf_counter()
    for begin in range(0, len(distinct), 256):
        vectors.extend(ctx.embedder.embed_queries(distinct[begin : begin + 256]))
    elapsed = time.perf_counter() - start
    return dict(zip(distinct, vectors, strict=True)), len(distinct) / elapsed


def evaluate(
    ctx: Context, evalset: EvalSet, vectors: dict[str, list[float]], configs: Sequence[Config]
) -> dict[Config, list[list[Hit]]]:
    out: dict[Config, list[list[Hit]]] = {}
    for config in configs:
        mode, alpha = config
        requests = [
            ((ctx.tenants[q.workspace], q.text, mode, alpha, K_CHUNKS), vectors[q.text])
            for q in evalset.queries
        ]
        out[config] = ctx.searcher.run(requests)
        log(f"{evalset.name}: {config_name(config)} done ({ctx.searcher.searches} searches)")
    return out


def quality(
    evalset: EvalSet, hits: dict[Config, list[list[Hit]]]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    table: dict[str, Any] = {}
    rr: dict[str, np.ndarray] = {}
    for config, per_query in hits.items():
        name = config_name(config)
        ranks = [first_rank(h, q.gold) for h, q in zip(per_query, evalset.queries, strict=True)]
        row: dict[str, Any] = dict(metrics(ranks))
        row["fewer_than_10_docs"] = round(
            sum(1 for h in per_query if distinct_docs(h) < MRR_AT) / len(per_query), 4
        )
        if any(len(q.lenient) > 1 for q in evalset.queries):
            lenient = [
                first_rank(h, q.lenient) for h, q in zip(per_query, evalset.queries, strict=True)
            ]
            row["lenient"] = metrics(lenient)
        table[name] = row
        rr[name] = reciprocal_ranks(ranks)
    return table, rr


def strict_ceiling(evalset: EvalSet) -> dict[str, float]:
    """Best strict Recall@k any ranking can reach when several questions share one text."""
    groups: dict[tuple[str, str], int] = {}
    for q in evalset.queries:
        groups[(q.workspace, q.text)] = groups.get((q.workspace, q.text), 0) + 1
    n = len(evalset.queries)
    return {f"recall@{at}": sum(min(c, at) for c in groups.values()) / n for at in RECALL_AT}


def choose_alpha(
    sets: dict[str, dict[str, Any]], rr: dict[str, dict[str, np.ndarray]]
) -> dict[str, Any]:
    key = f"mrr@{MRR_AT}"

    def hybrid_score(table: dict[str, Any], alpha: float) -> float:
        return float(table[config_name(("hybrid", alpha))][key])

    best_per_set = {
        name: max(ALPHAS, key=lambda a, t=table: hybrid_score(t, a))  # type: ignore[misc]
        for name, table in sets.items()
    }
    mean = {a: float(np.mean([hybrid_score(t, a) for t in sets.values()])) for a in ALPHAS}
    best = max(ALPHAS, key=lambda a: mean[a])
    checks: dict[str, Any] = {}
    for name, table in sets.items():
        hybrid = config_name(("hybrid", best))
        better_single = "keyword" if table["keyword"][key] >= table["vector"][key] else "vector"
        other_single = "vector" if better_single == "keyword" else "keyword"
        diff = table[hybrid][key] - table[better_single][key]
        checks[name] = {
            "better_single": better_single,
            "hybrid_minus_better_single_mrr": round(diff, 4),
            "ci95_vs_better_single": paired_bootstrap(rr[name][hybrid], rr[name][better_single]),
            "matches_better_single": diff >= -MATCH_TOLERANCE,
            "hybrid_minus_other_single_mrr": round(
                table[hybrid][key] - table[other_single][key], 4
            ),
            "beats_both": table[hybrid][key] > table[better_single][key],
            "beats_both_ci_excludes_0": paired_bootstrap(rr[name][hybrid], rr[name][better_single])[
                0
            ]
            > 0,
        }
    return {
        "metric": key,
        "best_alpha_per_set": best_per_set,
        "mean_mrr_per_alpha": {str(a): round(m, 4) for a, m in mean.items()},
        "best_alpha_on_average": best,
        "checks": checks,
    }


# --- relevance gate --------------------------------------------------------------------------


def percentiles(values: Sequence[float]) -> dict[str, float]:
    array = np.asarray(values)
    return {
        "n": len(values),
        "p5": round(float(np.percentile(array, 5)), 4),
        "p50": round(float(np.percentile(array, 50)), 4),
        "p95": round(float(np.percentile(array, 95)), 4),
    }


def calibrate(
    ctx: Context,
    korquad: EvalSet,
    policyqa: EvalSet,
    vectors: dict[str, list[float]],
    alpha: float,
) -> dict[str, Any]:
    """Top similarity of right- vs wrong-workspace searches, two ways.

    ``top1``: similarity of the first vector-mode result (the best cosine in the workspace).
    ``gate``: the highest similarity among the hybrid top ``search_k`` at ``alpha``, which is
    what the answer chain compares with ``min_relevance`` ("any retrieved chunk >= it").
    """
    k_gate = ctx.app.settings.search_k
    policies = list(policyqa.workspaces)
    build_negative_workspaces(ctx)

    def other_half(query: Query) -> str:
        article = int(next(iter(query.gold)).split("-")[0])
        return KORQUAD_ODD_WS if article % 2 == 0 else KORQUAD_EVEN_WS

    def stats(queries: Sequence[tuple[str, str]]) -> dict[str, list[float]]:
        top1 = ctx.searcher.run(
            [((ctx.tenants[ws], q, "vector", 0.0, K_CHUNKS), vectors[q]) for ws, q in queries]
        )
        gate = ctx.searcher.run(
            [((ctx.tenants[ws], q, "hybrid", alpha, k_gate), vectors[q]) for ws, q in queries]
        )
        return {
            "top1": [h[0].similarity if h else 0.0 for h in top1],
            "gate": [max((x.similarity for x in h), default=0.0) for h in gate],
        }

    distributions = {
        "right: KorQuAD": stats([(q.workspace, q.text) for q in korquad.queries]),
        "right: PolicyQA": stats([(q.workspace, q.text) for q in policyqa.queries]),
        "wrong: KorQuAD -> a PolicyQA policy": stats(
            [(policies[i % len(policies)], q.text) for i, q in enumerate(korquad.queries)]
        ),
        "wrong: PolicyQA -> KorQuAD": stats([(KORQUAD_WS, q.text) for q in policyqa.queries]),
        "wrong, same language: KorQuAD -> other KorQuAD articles": stats(
            [(other_half(q), q.text) for q in korquad.queries]
        ),
        "wrong, same language: PolicyQA -> vendor emails": stats(
            [(EMAILS_WS, q.text) for q in policyqa.queries]
        ),
        "wrong-ish: PolicyQA -> another policy": stats(
            [
                (policies[(policies.index(q.workspace) + 1) % len(policies)], q.text)
                for q in policyqa.queries
            ]
        ),
    }
    log("calibration searches done")
    out: dict[str, Any] = {"alpha": alpha, "k_gate": k_gate, "distributions": {}}
    for name, values in distributions.items():
        out["distributions"][name] = {kind: percentiles(v) for kind, v in values.items()}
    out["thresholds"] = {}
    for kind in ("gate", "top1"):
        right = [distributions[n][kind] for n in distributions if n.startswith("right")]
        # The highest threshold that keeps >= 95% on each set: the lowest per-set quantile.
        exact = min(float(sorted(v)[(100 - KEEP_RIGHT_PCT) * len(v) // 100]) for v in right)
        chosen = math.floor(exact * 100) / 100  # a round config value, rounded down (keeps more)
        current = ctx.app.settings.min_relevance
        out["thresholds"][kind] = {
            "exact": round(exact, 4),
            "recommended": chosen,
            "at_recommended": _gate_rates(distributions, kind, chosen),
            "current_default": current,
            "at_current_default": _gate_rates(distributions, kind, current),
        }
    # The trade-off around the recommendation, for choosing another operating point.
    out["grid"] = {
        f"{t / 100:.2f}": _gate_rates(distributions, "gate", t / 100) for t in range(75, 89)
    }
    return out


def build_negative_workspaces(ctx: Context) -> None:
    """Same-language workspaces that cannot hold the answer.

    KorQuAD's chunks are copied with their stored vectors (no re-embedding) into one
    workspace of the even-numbered and one of the odd-numbered articles: a question is
    searched in the half without its article. The BIPIA email contexts (English vendor and
    support emails) make an English workspace unrelated to privacy policies.
    """
    halves: dict[str, list[StoredChunk]] = {KORQUAD_EVEN_WS: [], KORQUAD_ODD_WS: []}
    for name in halves:
        ctx.kb.create_workspace(name)
        ctx.tenants[name] = ctx.kb.workspace(name).tenant
    for stored in ctx.store.iter_chunks(tenant=ctx.tenants[KORQUAD_WS]):
        article = int(stored.chunk.doc_id.split("-")[0])
        halves[KORQUAD_EVEN_WS if article % 2 == 0 else KORQUAD_ODD_WS].append(stored)
    for name, chunks in halves.items():
        for start in range(0, len(chunks), 200):
            ctx.store.insert(chunks[start : start + 200], tenant=ctx.tenants[name])
    contexts: list[str] = []
    with EMAILS_PATH.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                contexts.append(json.loads(line)["context"])
    emails = [Doc(f"email-{i}", "Email", t) for i, t in enumerate(dict.fromkeys(contexts))]
    ctx.kb.create_workspace(EMAILS_WS)
    ctx.tenants[EMAILS_WS] = ctx.kb.workspace(EMAILS_WS).tenant
    report = ctx.kb.ingest_jsonl(EMAILS_WS, write_jsonl(ctx.tmp / "emails.jsonl", emails))
    if report.errors:
        raise SystemExit(f"email ingest failed: {report.errors[:3]}")
    log(
        f"negative workspaces: {[len(c) for c in halves.values()]} KorQuAD chunks, "
        f"{report.chunks_added} email chunks"
    )


def _gate_rates(
    distributions: dict[str, dict[str, list[float]]], kind: str, threshold: float
) -> dict[str, float]:
    rates = {}
    for name, values in distributions.items():
        passed = sum(1 for v in values[kind] if v >= threshold) / len(values[kind])
        if name.startswith("right"):
            rates[f"kept {name[7:]}"] = round(passed, 4)
        else:
            rates[f"rejected {name.split(': ', 1)[1]}"] = round(1 - passed, 4)
    return rates


# --- latency ---------------------------------------------------------------------------------


def build_latency_workspace(
    ctx: Context, korquad_full: EvalSet, policyqa: EvalSet, target: int
) -> tuple[App, dict[str, Any]]:
    settings = ctx.app.settings.model_copy(
        update={
            "chunk_tokens": LATENCY_CHUNK_TOKENS,
            "chunk_overlap_tokens": LATENCY_OVERLAP_TOKENS,
        }
    )
    small = App(settings, local_embedder=ctx.app.local_embedder)
    kb = small.knowledge
    kb.create_workspace(LATENCY_WS)
    chunker = kb._chunker
    candidates = [
        Doc(f"korquad-{d.id}", d.title, d.text) for d in korquad_full.workspaces[KORQUAD_WS]
    ]
    for name, docs in policyqa.workspaces.items():
        candidates.extend(Doc(f"{name}-{d.id}", d.title, d.text) for d in docs)
    chosen: list[Doc] = []
    expected = 0
    probe = write_jsonl(ctx.tmp / "latency-probe.jsonl", candidates)
    for doc, loaded in zip(candidates, loaded_documents(probe), strict=True):
        if expected >= target:
            break
        chosen.append(doc)
        expected += len(chunker.split(loaded))
    path = write_jsonl(ctx.tmp / "latency.jsonl", chosen)
    log(f"latency workspace: ingesting {len(chosen)} documents, {expected} chunks")
    start = time.perf_counter()
    report = kb.ingest_jsonl(LATENCY_WS, path)
    elapsed = time.perf_counter() - start
    stored = kb.chunk_count(LATENCY_WS)
    info = {
        "chunk_tokens": LATENCY_CHUNK_TOKENS,
        "overlap_tokens": LATENCY_OVERLAP_TOKENS,
        "documents": len(chosen),
        "korquad_documents": sum(1 for d in chosen if d.id.startswith("korquad-")),
        "chunks_stored": stored,
        "ingest_chunks_per_s": round(report.chunks_added / elapsed, 2),
        "ingest_errors": report.errors[:3],
    }
    return small, info


def latency(
    ctx: Context, small: App, korquad: EvalSet, policyqa: EvalSet, *, queries: int
) -> dict[str, Any]:
    rng = random.Random(0)
    half = queries // 2
    texts = rng.sample([q.text for q in korquad.queries], half) + rng.sample(
        [q.text for q in policyqa.queries], queries - half
    )
    kb = small.knowledge
    tenant = kb.workspace(LATENCY_WS).tenant
    alpha = small.settings.hybrid_alpha
    k = small.settings.search_k
    vectors = ctx.embedder.embed_queries(texts)
    baseline_tenant = ctx.tenants[KORQUAD_WS]
    samples: dict[str, list[float]] = {
        "end_to_end": [],
        "store_only": [],
        "embed_query": [],
        "store_only_korquad_ws": [],
    }

    def e2e(text: str, vector: Sequence[float]) -> None:
        kb.search(LATENCY_WS, text, k=k)

    def store(text: str, vector: Sequence[float]) -> None:
        small.store.search(text, vector, tenant=tenant, k=k, mode="hybrid", alpha=alpha)

    def embed(text: str, vector: Sequence[float]) -> None:
        ctx.embedder.embed_query(text)

    def baseline(text: str, vector: Sequence[float]) -> None:
        ctx.store.search(text, vector, tenant=baseline_tenant, k=k, mode="hybrid", alpha=alpha)

    steps: list[tuple[str, Callable[[str, Sequence[float]], None]]] = [
        ("end_to_end", e2e),
        ("store_only", store),
        ("embed_query", embed),
        ("store_only_korquad_ws", baseline),
    ]
    for text, vector in zip(texts[:LATENCY_WARMUP], vectors, strict=False):
        for _, step in steps:
            step(text, vector)
    # CPU time of this process per call: the embedder's share, unaffected by waiting for a
    # core that other programs hold (Weaviate's own CPU is not in it).
    cpu: dict[str, list[float]] = {name: [] for name in samples}
    loadavg_before = load_average()
    for index, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
        rotation = steps[index % len(steps) :] + steps[: index % len(steps)]  # vary the order
        for name, step in rotation:
            cpu_start = time.process_time()
            start = time.perf_counter()
            step(text, vector)
            samples[name].append((time.perf_counter() - start) * 1000)
            cpu[name].append((time.process_time() - cpu_start) * 1000)
    out: dict[str, Any] = {
        "queries": len(texts),
        "k": k,
        "alpha": alpha,
        "mode": "hybrid",
        "loadavg": [loadavg_before, load_average()],
    }
    for name, values in samples.items():
        array = np.asarray(values)
        out[name] = {
            "p50_ms": round(float(np.percentile(array, 50)), 2),
            "p95_ms": round(float(np.percentile(array, 95)), 2),
            "mean_ms": round(float(array.mean()), 2),
            "max_ms": round(float(array.max()), 2),
            "client_cpu_p50_ms": round(float(np.percentile(cpu[name], 50)), 2),
            "client_cpu_p95_ms": round(float(np.percentile(cpu[name], 95)), 2),
        }
    out["p50_ratio_10k_vs_korquad_ws"] = round(
        out["store_only"]["p50_ms"] / out["store_only_korquad_ws"]["p50_ms"], 3
    )
    return out


# --- report ----------------------------------------------------------------------------------


def fmt(value: float) -> str:
    return f"{value:.3f}"


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"# Retrieval benchmark {m['date_utc']}{' (--quick)' if result['quick'] else ''}",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['ram_gib']} GiB RAM; "
        f"Python {m['python']}, Weaviate {m['weaviate']}, commit {m['commit'] or '?'}; "
        f"load average at start {m['loadavg_start']}, at end {result['loadavg_end']}; "
        f"OpenMP environment {m.get('omp_env') or 'unset'}; "
        f"total {result['total_s'] / 60:.1f} min.",
        "",
        "Settings defaults when the run started (the '(default)' rows, the latency searches "
        f"and 'current default' below use them): {result['settings']}.",
        "",
        "## Retrieval quality (k=20 chunks, deduplicated by document)",
        "",
        "| set | mode | n | Recall@1 | Recall@5 | MRR@10 | <10 docs |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    default_alpha = result["settings"]["hybrid_alpha"]
    for set_name, table in result["quality"].items():
        for name in ("keyword", "vector", config_name(("hybrid", default_alpha))):
            row = table[name]
            label = f"{name} (default)" if name.startswith("hybrid") else name
            lines.append(
                f"| {set_name} | {label} | {row['n']} | {fmt(row['recall@1'])} | "
                f"{fmt(row['recall@5'])} | {fmt(row['mrr@10'])} | {row['fewer_than_10_docs']:.1%} |"
            )
    policy = result["quality"].get("PolicyQA dev")
    if policy:
        ceiling = result["policyqa_strict_ceiling"]
        lines += [
            "",
            "PolicyQA strict ceiling (identical question texts on several paragraphs): "
            f"Recall@1 {fmt(ceiling['recall@1'])}, Recall@5 {fmt(ceiling['recall@5'])}. "
            "Lenient (any paragraph of the policy holding the same question counts):",
            "",
            "| mode | Recall@1 | Recall@5 | MRR@10 |",
            "|---|---:|---:|---:|",
        ]
        for name in ("keyword", "vector", config_name(("hybrid", default_alpha))):
            row = policy[name]["lenient"]
            lines.append(
                f"| {name} | {fmt(row['recall@1'])} | {fmt(row['recall@5'])} | "
                f"{fmt(row['mrr@10'])} |"
            )
    sweep = result["alpha"]
    lines += [
        "",
        "## Hybrid alpha sweep (MRR@10 / Recall@1)",
        "",
        "| alpha | " + " | ".join(result["quality"]) + " | mean MRR@10 |",
        "|---:|" + "---:|" * (len(result["quality"]) + 1),
    ]
    for alpha in ALPHAS:
        name = config_name(("hybrid", alpha))
        cells = [
            f"{fmt(t[name]['mrr@10'])} / {fmt(t[name]['recall@1'])}"
            for t in result["quality"].values()
        ]
        mean = sweep["mean_mrr_per_alpha"][str(alpha)]
        lines.append(f"| {alpha:.1f} | " + " | ".join(cells) + f" | {fmt(mean)} |")
    for single in ("keyword", "vector"):
        cells = [
            f"{fmt(t[single]['mrr@10'])} / {fmt(t[single]['recall@1'])}"
            for t in result["quality"].values()
        ]
        lines.append(f"| {single} | " + " | ".join(cells) + " | |")
    lines += [
        "",
        f"Best alpha per set: {sweep['best_alpha_per_set']}; best on average: "
        f"**{sweep['best_alpha_on_average']}**.",
    ]
    for set_name, check in sweep["checks"].items():
        lines.append(
            f"- {set_name}: hybrid@{sweep['best_alpha_on_average']} minus the better single "
            f"method ({check['better_single']}) = {check['hybrid_minus_better_single_mrr']:+.4f} "
            f"MRR@10 (95% CI {check['ci95_vs_better_single']}), minus the other = "
            f"{check['hybrid_minus_other_single_mrr']:+.4f}; matches the better single: "
            f"{'yes' if check['matches_better_single'] else 'NO'}; beats both: "
            f"{'yes' if check['beats_both'] else 'no'} (significant: "
            f"{'yes' if check['beats_both_ci_excludes_0'] else 'no'})"
        )
    t = result["throughput"]
    lines += [
        "",
        "## Ingestion throughput (KorQuAD, default chunking)",
        "",
        "| chunks | raw embedder chunks/s | ingest chunks/s | ratio (wall) | ratio (CPU) |",
        "|---:|---:|---:|---:|---:|",
        f"| {t['chunks']} | {t['raw_chunks_per_s']} | {t['ingest_chunks_per_s']} | "
        f"**{t['ratio_wall']}** | {t['ratio_cpu']} |",
        "",
        f"Method: {t['method']}. Per-slice wall ratios: "
        f"{[s['ratio'] for s in t['slices']]}. CPU seconds (bench process + Weaviate): "
        f"raw {t['raw_cpu_s']}, ingest {t['ingest_cpu_s']} (of which Weaviate "
        f"{t['ingest_cpu_weaviate_s']}). Target ratio >= 0.90.",
        f"Query embedding (batched, distinct texts): {result['query_embedding']}.",
    ]
    lat = result.get("latency")
    if lat:
        ws = result["latency_workspace"]
        lines += [
            "",
            f"## Search latency, one tenant with {ws['chunks_stored']} chunks "
            f"(hybrid, k={lat['k']}, {lat['queries']} queries)",
            "",
            "| what | p50 ms | p95 ms | mean ms | max ms | client CPU p50 / p95 ms |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name in ("end_to_end", "store_only", "embed_query", "store_only_korquad_ws"):
            row = lat[name]
            lines.append(
                f"| {name} | {row['p50_ms']} | {row['p95_ms']} | {row['mean_ms']} | "
                f"{row['max_ms']} | {row['client_cpu_p50_ms']} / {row['client_cpu_p95_ms']} |"
            )
        lines += [
            "",
            f"Workspace: {ws['documents']} documents ({ws['korquad_documents']} KorQuAD "
            f"paragraphs, the rest PolicyQA) at chunk_tokens={ws['chunk_tokens']}, "
            f"overlap={ws['overlap_tokens']}; ingested at {ws['ingest_chunks_per_s']} chunks/s. "
            f"store_only p50 at {ws['chunks_stored']} chunks / at the KorQuAD workspace "
            f"({t['chunks_stored']} chunks) = {lat['p50_ratio_10k_vs_korquad_ws']}. "
            f"Load average before/after: {lat['loadavg']}. Target: end-to-end p95 < 50 ms.",
        ]
    cal = result["calibration"]
    lines += [
        "",
        f"## Relevance gate calibration (hybrid alpha={cal['alpha']}, k={cal['k_gate']})",
        "",
        "`gate` = highest similarity among the hybrid top-k (what min_relevance is compared "
        "with); `top1` = similarity of the first vector-mode result.",
        "",
        "| distribution | n | gate p5 | gate p50 | gate p95 | top1 p5 | top1 p50 | top1 p95 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, dist in cal["distributions"].items():
        g, v = dist["gate"], dist["top1"]
        lines.append(
            f"| {name} | {g['n']} | {g['p5']} | {g['p50']} | {g['p95']} | {v['p5']} | "
            f"{v['p50']} | {v['p95']} |"
        )
    for kind, threshold in cal["thresholds"].items():
        lines.append(
            f"- {kind}: highest threshold keeping >= 95% of right-workspace searches on each "
            f"set = {threshold['exact']} -> **{threshold['recommended']}**: "
            f"{threshold['at_recommended']}; at the current default "
            f"{threshold['current_default']}: {threshold['at_current_default']}"
        )
    grid = cal["grid"]
    columns = list(next(iter(grid.values())))
    lines += [
        "",
        "Gate statistic at other thresholds:",
        "",
        "| min_relevance | " + " | ".join(columns) + " |",
        "|---:|" + "---:|" * len(columns),
    ]
    for threshold, rates in grid.items():
        lines.append(f"| {threshold} | " + " | ".join(f"{rates[c]:.1%}" for c in columns) + " |")
    lines += ["", "## Notes", ""]
    lines += [f"- {note}" for note in result["notes"]]
    return "\n".join(lines) + "\n"


# --- main ------------------------------------------------------------------------------------


def make_settings(data_dir: Path) -> Settings:
    for name in _SETTING_VARIABLES:
        os.environ.pop(name, None)
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'supportbot.db'}",
        secret_key=SecretStr("bench"),
    )


def fresh_data_dir(path: Path) -> None:
    """Stop a Weaviate left running in ``path`` by an earlier run, then delete the folder."""
    if (path / "weaviate").exists():
        EmbeddedWeaviate(
            path / "weaviate",
            binary_path=Settings(_env_file=None).weaviate_binary_path,  # type: ignore[call-arg]
            version=WEAVIATE_VERSION,
        ).stop()
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)


def weaviate_pid(data_dir: Path) -> int | None:
    try:
        return int(json.loads((data_dir / "weaviate" / "server.json").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few minutes: subsets")
    parser.add_argument("--out", type=Path, help="JSON path (a .md is written beside it)")
    parser.add_argument("--data-dir", type=Path, help="scratch data dir (deleted first)")
    parser.add_argument(
        "--latency-chunks", type=int, help="chunks in the latency workspace (10,000; quick 500)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    quick: bool = args.quick
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    out: Path = args.out or RESULTS / f"{today}{'-quick' if quick else ''}.json"
    data_dir: Path = (args.data_dir or RESULTS / f"data-{'quick' if quick else 'full'}").resolve()
    latency_target: int = args.latency_chunks or (500 if quick else 10_000)
    machine = machine_info()
    log(f"machine: {machine}")
    fresh_data_dir(data_dir)

    korquad = load_korquad(quick=quick)
    korquad_full = load_korquad(quick=False) if quick else korquad
    policyqa = load_policyqa(quick=quick)
    app = App(make_settings(data_dir))
    try:
        with tempfile.TemporaryDirectory(prefix="retrieval-bench-") as tmp:
            ctx = Context(
                app=app,
                kb=app.knowledge,
                store=app.store,  # starts the embedded Weaviate
                embedder=app.embedder,
                searcher=Searcher(app.store),
                clock=CpuClock(weaviate_pid(data_dir)),
                tmp=Path(tmp),
                quick=quick,
            )
            result = run(ctx, korquad, korquad_full, policyqa, latency_target)
    finally:
        app.close()
        app.embedded_weaviate.stop()
    result["machine"] = machine
    result["loadavg_end"] = load_average()
    result["total_s"] = round(time.monotonic() - _STARTED, 1)
    report = render(result)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(report, encoding="utf-8")
    print(report)
    log(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


def run(
    ctx: Context, korquad: EvalSet, korquad_full: EvalSet, policyqa: EvalSet, latency_target: int
) -> dict[str, Any]:
    settings = ctx.app.settings
    result: dict[str, Any] = {
        "quick": ctx.quick,
        "settings": {
            "hybrid_alpha": settings.hybrid_alpha,
            "min_relevance": settings.min_relevance,
            "search_k": settings.search_k,
            "chunk_tokens": settings.chunk_tokens,
            "chunk_overlap_tokens": settings.chunk_overlap_tokens,
            "embedding_model": settings.resolved_embedding_model,
        },
        "notes": [],
    }
    log(f"KorQuAD: {len(korquad.workspaces[KORQUAD_WS])} paragraphs, {len(korquad.queries)} q")
    result["throughput"] = ingest_korquad(ctx, korquad)
    log(f"throughput: {result['throughput']['ratio_wall']}")
    result["policyqa_ingest"] = ingest_policyqa(ctx, policyqa)
    log(f"PolicyQA ingested: {result['policyqa_ingest']}")

    # search_many would embed the queries again on every call: embed once, reuse everywhere.
    probe = [q.text for q in korquad.queries[:8]] + [q.text for q in policyqa.queries[:8]]
    batched = np.asarray(ctx.embedder.embed_queries(probe))
    single = np.asarray([ctx.embedder.embed_query(t) for t in probe])
    result["embed_queries_vs_embed_query_max_abs_diff"] = float(np.abs(batched - single).max())
    vectors: dict[str, list[float]] = {}
    rates = {}
    for evalset in (korquad, policyqa):
        found, rate = embed_queries(ctx, [q.text for q in evalset.queries])
        vectors.update(found)
        rates[evalset.name] = f"{len(found)} distinct queries at {rate:.1f}/s"
    result["query_embedding"] = rates
    log(f"queries embedded: {rates}")

    configs: list[Config] = [("keyword", 0.0), ("vector", 0.0)]
    configs += [("hybrid", a) for a in ALPHAS]
    result["quality"] = {}
    rr: dict[str, dict[str, np.ndarray]] = {}
    for evalset in (korquad, policyqa):
        hits = evaluate(ctx, evalset, vectors, configs)
        result["quality"][evalset.name], rr[evalset.name] = quality(evalset, hits)
        result["notes"].extend(f"{evalset.name}: {n}" for n in evalset.notes)
    result["policyqa_strict_ceiling"] = strict_ceiling(policyqa)
    result["alpha"] = choose_alpha(result["quality"], rr)
    result["search_throughput"] = {
        "searches": ctx.searcher.searches,
        "per_s": round(ctx.searcher.searches / ctx.searcher.wall_s, 1),
        "threads": SEARCH_THREADS,
    }
    alpha = result["alpha"]["best_alpha_on_average"]
    result["calibration"] = calibrate(ctx, korquad, policyqa, vectors, alpha)
    if alpha != settings.hybrid_alpha:
        result["notes"].append(
            f"calibration used the recommended alpha {alpha}, not the configured default "
            f"{settings.hybrid_alpha}"
        )

    small, result["latency_workspace"] = build_latency_workspace(
        ctx, korquad_full, policyqa, latency_target
    )
    try:
        if result["latency_workspace"]["chunks_stored"] < latency_target:
            result["notes"].append(
                f"latency workspace holds {result['latency_workspace']['chunks_stored']} chunks, "
                f"fewer than the {latency_target} asked for"
            )
        result["latency"] = latency(ctx, small, korquad_full, policyqa, queries=LATENCY_QUERIES)
    finally:
        small.close()
    log("latency done")
    if ctx.quick:
        result["notes"].append(
            f"--quick: latency measured at {latency_target} chunks, not 10,000; throughput "
            "on the quick KorQuAD subset"
        )
    return result


if __name__ == "__main__":
    sys.exit(main())
