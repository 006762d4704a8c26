"""The bundled embedder: query/passage modes, and concurrent queries batched correctly."""

from __future__ import annotations

import threading

import numpy as np

from retrieval.embeddings import LocalE5Embeddings

QUERIES = [f"How do I reset the password of account {i}?" for i in range(12)] + [
    "세금계산서는 언제 발행되나요?",
    "환불은 며칠 안에 받을 수 있나요?",
]


def test_concurrent_queries_get_their_own_vectors(embedder: LocalE5Embeddings):
    expected = [np.asarray(embedder.embed_queries([q])[0]) for q in QUERIES]
    results: list[list[float] | None] = [None] * len(QUERIES)
    start = threading.Barrier(len(QUERIES))

    def ask(i: int) -> None:
        start.wait()
        results[i] = embedder.embed_query(QUERIES[i])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(QUERIES))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for got, want in zip(results, expected, strict=True):
        assert got is not None and len(got) == 384
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_query_and_passage_modes_differ_and_rank_sensibly(embedder: LocalE5Embeddings):
    query = np.asarray(embedder.embed_query("환불 정책"))
    passages = np.asarray(
        embedder.embed_documents(
            ["첫 결제 후 14일 이내에는 전액 환불됩니다.", "Shipping takes 3 days."]
        )
    )
    as_passage = np.asarray(embedder.embed_documents(["환불 정책"])[0])
    assert not np.allclose(query, as_passage)
    assert passages[0] @ query > passages[1] @ query
