"""The product on a real 3-node Weaviate cluster, replication factor 3 (scripts/weaviate-cluster).

Through the product's own code (App, KnowledgeBase, KnowledgeStore, WeaviateConnection): a node
killed with SIGKILL during an ingest and a burst of searches loses no acknowledged chunk,
doubles none, and stops no search; restarted, it catches up by itself (async replication); and
when the node the product talks to dies, the product says so in one line naming the address,
within seconds, and recovers when the node is back. One cluster serves the whole module.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from weaviate.classes.config import ConsistencyLevel

from retrieval.chunking import Chunker
from retrieval.documents import SourceDocument
from retrieval.embeddings import LocalE5Embeddings
from retrieval.errors import RetrievalError, WeaviateUnreachableError
from retrieval.store import COLLECTION, chunk_uuid
from supportbot.app import App
from tests.cluster import FAST_REPAIR, LocalCluster
from tests.conftest import make_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    nodes = LocalCluster(tmp_path_factory.mktemp("weaviate-cluster"), nodes=3, env=FAST_REPAIR)
    nodes.start(timeout_s=180)
    yield nodes
    nodes.stop()


@pytest.fixture(autouse=True)
def _every_node_back(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that killed a node, start it again even if the test failed half-way, so
    one failure does not leave the next tests a 2-node cluster."""
    yield
    if "cluster" not in request.fixturenames:
        return
    nodes: LocalCluster = request.getfixturevalue("cluster")
    stopped = [name for name in nodes.names if nodes.pid(name) is None]
    for name in stopped:
        nodes.start_node(name, timeout_s=90)
    if stopped:
        nodes.wait_ready(timeout_s=90)


def cluster_app(
    cluster: LocalCluster, tmp_path: Path, embedder: LocalE5Embeddings, *, node: str = "node0"
) -> App:
    """The product configured for the cluster, talking to ``node`` (as it would to a balancer)."""
    settings = make_settings(
        tmp_path / "data",
        tmp_path / "supportbot.db",
        weaviate_url=cluster.url(node),
        weaviate_grpc_port=cluster.ports(node).grpc,
        weaviate_replication_factor=3,
    )
    return App(settings, local_embedder=embedder)


def documents(count: int, tag: str) -> list[SourceDocument]:
    """``count`` one-chunk documents with distinct, searchable text."""
    return [
        SourceDocument(
            doc_id=f"{tag}-{i}",
            title=f"Topic {i}",
            text=f"Article {i} of {tag}: to reset setting number {i}, open the panel {i * 7}.",
            source=f"https://docs.example.com/{tag}/{i}",
        )
        for i in range(count)
    ]


def local_object_count(cluster: LocalCluster, node: str, tenant: str) -> int | None:
    """Objects in ``node``'s own copy of the tenant (``/v1/nodes``), None if it has none."""
    view = cluster.nodes_view(node)[node]
    for shard in view.get("shards") or []:
        if shard.get("class") == COLLECTION and shard.get("name") == tenant:
            return int(shard.get("objectCount") or 0)
    return None


def wait_local_count(
    cluster: LocalCluster, node: str, tenant: str, expected: int, *, timeout_s: float
) -> int | None:
    """``node``'s own object count once it reaches ``expected`` (or the last seen at timeout)."""
    deadline = time.monotonic() + timeout_s
    local = None
    while time.monotonic() < deadline:
        local = local_object_count(cluster, node, tenant)
        if local == expected:
            break
        time.sleep(0.5)
    return local


def test_the_collection_is_created_replicated_with_async_repair(
    cluster: LocalCluster, tmp_path: Path, embedder: LocalE5Embeddings
):
    with cluster_app(cluster, tmp_path, embedder) as app:
        config = app.weaviate.collections.use(COLLECTION).config.get()
        assert app.replication.write == app.replication.read == "QUORUM"

    assert config.replication_config.factor == 3
    assert config.replication_config.async_enabled is True


def test_a_node_killed_during_ingest_and_searches_loses_nothing_and_catches_up(
    cluster: LocalCluster, tmp_path: Path, embedder: LocalE5Embeddings
):
    victim = "node2"
    victim_ports = {str(p) for p in vars_of(cluster, victim)}
    other_ports = {str(p) for n in cluster.names if n != victim for p in vars_of(cluster, n)}
    docs = documents(120, "kill")
    batches = [docs[i : i + 8] for i in range(0, len(docs), 8)]
    with cluster_app(cluster, tmp_path, embedder) as app:
        app.knowledge.create_workspace("acme")
        tenant = app.registry.get("acme").tenant
        settings = app.settings
        chunker = Chunker(
            embedder.token_count,
            chunk_tokens=settings.chunk_tokens,
            overlap_tokens=settings.chunk_overlap_tokens,
        )  # the product's chunker: the ids the store must hold
        acknowledged: set[str] = set()
        ingest_errors: list[str] = []
        search_errors: list[str] = []
        answered_after_kill = 0
        killed = threading.Event()
        done = threading.Event()

        def ingest() -> None:
            try:
                for batch in batches:
                    for _attempt in range(5):  # as the sync worker does: retry the batch
                        try:
                            app.knowledge.upsert_documents("acme", batch, origin="test")
                        except RetrievalError as e:
                            ingest_errors.append(str(e))
                            time.sleep(0.5)
                            continue
                        acknowledged.update(chunk_uuid(c) for d in batch for c in chunker.split(d))
                        break
            finally:
                done.set()

        def search() -> None:
            nonlocal answered_after_kill
            i = 0
            while not done.is_set():
                try:
                    app.knowledge.search("acme", f"reset setting number {i % 50}", k=3)
                except RetrievalError as e:
                    search_errors.append(str(e))
                else:
                    if killed.is_set():
                        answered_after_kill += 1
                i += 1

        threads = [threading.Thread(target=ingest), threading.Thread(target=search)]
        for thread in threads:
            thread.start()
        while len(acknowledged) < 24 and not done.is_set():
            time.sleep(0.05)
        cluster.kill(victim)  # SIGKILL, mid-ingest and mid-search
        killed.set()
        for thread in threads:
            thread.join(timeout=240)
        assert done.is_set(), "the ingest hung"

        expected = {chunk_uuid(c) for d in docs for c in chunker.split(d)}
        assert acknowledged == expected  # every batch was acknowledged in the end
        stored = app.store.documents(tenant=tenant)
        stored_ids = [cid for summary in stored.values() for cid in summary.chunk_ids]
        assert set(stored_ids) == expected and len(stored_ids) == len(expected)  # no doubles
        assert answered_after_kill > 0, "no search answered after the node was killed"
        for message in ingest_errors + search_errors:
            assert "\n" not in message
            named = {p for p in victim_ports | other_ports if p in message}
            assert not named & other_ports, f"an error names a live node: {message}"

        assert wait_local_count(cluster, "node0", tenant, len(expected), timeout_s=20) == len(
            expected
        )
        # While the node is still down, the product's own count and readiness answer at once
        # (a bare count(*) would ask every replica, wait for the dead one until the gRPC
        # deadline, and then say 0). Read once node0's own copy holds every acknowledged
        # chunk: a QUORUM write can be acknowledged by node1 and node2 before node0 has it.
        started = time.monotonic()
        assert app.store.count(tenant=tenant) == len(expected)  # nothing doubled
        assert app.knowledge.has_knowledge("acme") is True
        assert time.monotonic() - started < 5, "counting waited for the dead node"
        # Restarted, the node repairs its own copy (async replication) without any write.
        started = time.monotonic()
        cluster.start_node(victim, timeout_s=90)
        cluster.wait_ready(timeout_s=90)
        local = wait_local_count(cluster, victim, tenant, len(expected), timeout_s=90)
        assert local == len(expected), f"{victim} holds {local} of {len(expected)} after restart"
        assert app.store.count(tenant=tenant) == len(expected)
        print(f"{victim} caught up {len(expected)} objects in {time.monotonic() - started:.1f}s")

        # And it answers with its own copy: a client of that node alone, consistency ONE.
        with cluster_app(cluster, tmp_path / "victim", embedder, node=victim) as direct:
            view = (
                direct.weaviate.collections.use(COLLECTION)
                .with_tenant(tenant)
                .with_consistency_level(ConsistencyLevel.ONE)
            )
            total = view.aggregate.over_all(total_count=True).total_count
            assert total == len(expected)


def test_the_node_the_product_talks_to_dies_a_clear_error_then_recovery(
    cluster: LocalCluster, tmp_path: Path, embedder: LocalE5Embeddings
):
    node = "node0"
    with cluster_app(cluster, tmp_path, embedder, node=node) as app:
        app.knowledge.create_workspace("globex")
        app.knowledge.upsert_documents("globex", documents(5, "gx"), origin="test")
        assert app.knowledge.search("globex", "reset setting number 3", k=3)

        cluster.kill(node)
        started = time.monotonic()
        with pytest.raises(WeaviateUnreachableError) as raised:
            app.knowledge.search("globex", "reset setting number 3", k=3)
        elapsed = time.monotonic() - started
        message = str(raised.value)
        assert cluster.url(node) in message and "\n" not in message
        assert elapsed < 10, f"took {elapsed:.1f}s to fail"
        # While it is down, calls fail at once (no minute-long client retries).
        started = time.monotonic()
        with pytest.raises(WeaviateUnreachableError):
            app.knowledge.search("globex", "reset setting number 3", k=3)
        assert time.monotonic() - started < 2

        cluster.start_node(node, timeout_s=90)
        cluster.wait_ready(timeout_s=90)
        deadline = time.monotonic() + 30
        while True:
            try:
                results = app.knowledge.search("globex", "reset setting number 3", k=3)
                break
            except WeaviateUnreachableError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        assert results and results[0].doc_id == "gx-3"


def test_counts_and_readiness_answer_in_the_seconds_after_a_node_dies(
    cluster: LocalCluster, tmp_path: Path, embedder: LocalE5Embeddings
):
    """Right after a SIGKILL, before gossip has marked the node dead: the window in which a
    bare count(*) (consistency ALL) waited for the dead replica until the gRPC deadline and
    then said 0. Several tenants, since which replica a read is routed to varies."""
    names = [f"count{i}" for i in range(6)]
    with cluster_app(cluster, tmp_path, embedder) as app:
        for i, name in enumerate(names):
            app.knowledge.create_workspace(name)
            app.knowledge.upsert_documents(name, documents(i + 1, name), origin="site")
        cluster.kill("node1")
        for i, name in enumerate(names):
            tenant = app.registry.get(name).tenant
            started = time.monotonic()
            # The count is node0's own copy, which may lag a QUORUM write for a moment (acknowledged
            # by node1 and node2): read again until right, but every read must answer at once.
            while True:
                counts = (
                    app.store.count(tenant=tenant),
                    app.store.count(tenant=tenant, origin="site"),
                )
                if counts == (i + 1, i + 1) or time.monotonic() - started > 5:
                    break
                time.sleep(0.2)
            assert counts == (i + 1, i + 1)
            assert app.knowledge.has_knowledge(name) is True
            elapsed = time.monotonic() - started
            assert elapsed < 5, f"{name}: counting took {elapsed:.1f}s with a node just killed"


def vars_of(cluster: LocalCluster, node: str) -> list[int]:
    ports = cluster.ports(node)
    return [ports.http, ports.grpc, ports.gossip, ports.data, ports.raft, ports.raft_rpc]


def test_the_cluster_script_reports_every_node(cluster: LocalCluster):
    nodes = cluster.nodes_view("node1")
    assert sorted(nodes) == ["node0", "node1", "node2"]
    assert {n["status"] for n in nodes.values()} == {"HEALTHY"}
    for info in cluster.status():
        assert info.ready and info.pid is not None
        assert httpx.get(f"{info.url}/v1/.well-known/ready", timeout=5).status_code == 200


def test_consistency_levels_default_by_factor_and_bad_values_are_one_line_errors(tmp_path: Path):
    single = make_settings(tmp_path, tmp_path / "db.sqlite")
    replicated = make_settings(tmp_path, tmp_path / "db.sqlite", weaviate_replication_factor=3)
    chosen = make_settings(
        tmp_path, tmp_path / "db.sqlite", weaviate_replication_factor=3,
        weaviate_write_consistency="all", weaviate_read_consistency=" one ",
    )  # fmt: skip
    assert (single.weaviate_write_level, single.weaviate_read_level) == ("ONE", "ONE")
    assert (replicated.weaviate_write_level, replicated.weaviate_read_level) == ("QUORUM",) * 2
    assert (chosen.weaviate_write_level, chosen.weaviate_read_level) == ("ALL", "ONE")
    for bad in ({"weaviate_write_consistency": "MOST"}, {"weaviate_replication_factor": 0}):
        with pytest.raises(ValueError) as raised:
            make_settings(tmp_path, tmp_path / "db.sqlite", **bad)
        assert "ONE, QUORUM or ALL" in str(raised.value) or "greater than" in str(raised.value)
