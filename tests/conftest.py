"""Shared fixtures: one real Weaviate server and one loaded embedding model per test session.

Weaviate is started through the product's own :class:`EmbeddedWeaviate` in a temporary data
directory, so the tests exercise the same start/connect path as the CLI. Each test gets its own
SQLite database and workspace names derived from the test's name, so tests never see each
other's workspaces and ids are reproducible.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from retrieval.embeddings import LocalE5Embeddings
from retrieval.weaviate_server import EmbeddedWeaviate
from supportbot.app import App
from supportbot.database import make_engine
from supportbot.settings import WEAVIATE_VERSION, Settings

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
SAMPLE_KB = REPO / "supportbot" / "sample_kb"

# Settings read the environment; a developer's or CI's own keys must not leak into tests.
_SETTING_VARIABLES = [
    "SUPPORTBOT_DATA_DIR",
    "DATABASE_URL",
    "SUPPORTBOT_SECRET_KEY",
    "SUPPORTBOT_LOG_LEVEL",
    "WEAVIATE_URL",
    "WEAVIATE_GRPC_PORT",
    "WEAVIATE_API_KEY",
    "EMBEDDING_PROVIDER",
    "EMBEDDING_MODEL",
    "EMBEDDING_BASE_URL",
    "EMBEDDING_API_KEY",
    "OPENAI_API_KEY",
    "EMBEDDING_SEND_INPUT_TYPE",
    "EMBEDDING_QUERY_PREFIX",
    "EMBEDDING_PASSAGE_PREFIX",
    "LLM_MODEL",
    "LLM_BASE_URL",
    "LLM_API_KEY",
    "LLM_TIMEOUT_S",
    "SEARCH_K",
    "HYBRID_ALPHA",
    "MIN_RELEVANCE",
    "CHUNK_TOKENS",
    "CHUNK_OVERLAP_TOKENS",
    "MAX_FILE_MB",
    "WORKSPACE_COLD_AFTER",
    "FEEDBACK_DPO_SIMILARITY",
    "EVAL_SAMPLE_SIZE",
    "EVAL_DROP_MARGIN",
    "EVAL_LLM_JUDGE",
    "GAPS_SIMILARITY",
    "SUPPORTBOT_ENV_FILE",
    "SYNC_ALLOWED_PRIVATE_HOSTS",
    "SYNC_MAX_SITEMAP_MB",
    "SYNC_MAX_MB_PER_SYNC",
]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _SETTING_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session", autouse=True)
def _no_weaviate_left_running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """At the end of the session, stop every embedded Weaviate a test started under the
    session's temporary directory (a CLI test with its own data directory starts one, and it
    keeps running detached by design): each holds hundreds of MiB."""
    yield
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    for record in tmp_path_factory.getbasetemp().rglob("server.json"):
        server = EmbeddedWeaviate(
            record.parent, binary_path=settings.weaviate_binary_path, version=WEAVIATE_VERSION
        )
        try:
            server.stop()
        except Exception as e:  # one that cannot be stopped must not hide the others
            print(f"could not stop the Weaviate recorded in {record}: {e}")


@pytest.fixture(scope="session")
def weaviate_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The data directory whose embedded Weaviate all tests share (started once)."""
    data_dir = tmp_path_factory.mktemp("supportbot-data")
    server = EmbeddedWeaviate(
        data_dir / "weaviate",
        binary_path=Settings(_env_file=None).weaviate_binary_path,  # type: ignore[call-arg]
        version=WEAVIATE_VERSION,
        startup_timeout_s=120,
    )
    server.ensure_running()
    yield data_dir
    server.stop()


@pytest.fixture(scope="session")
def embedder() -> LocalE5Embeddings:
    return LocalE5Embeddings()


def make_settings(data_dir: Path, database: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": f"sqlite:///{database}",
        "secret_key": "test-secret",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(weaviate_data_dir: Path, tmp_path: Path) -> Settings:
    return make_settings(weaviate_data_dir, tmp_path / "supportbot.db")


@pytest.fixture
def app(settings: Settings, embedder: LocalE5Embeddings) -> Iterator[App]:
    with App(settings, local_embedder=embedder) as application:
        yield application


@pytest.fixture
def ws_name(request: pytest.FixtureRequest) -> str:
    """A workspace name unique to this test, derived from its name (reproducible)."""
    name = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")
    return name[-50:].lstrip("-_") or "ws"


# Slack settings too; bolt also reads SLACK_CLIENT_ID/SECRET and SLACK_*SCOPES from the
# environment itself, so a developer's real app credentials would switch tests to OAuth mode.
_SETTING_VARIABLES.extend(
    [
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_API_URL",
        "SLACK_CLIENT_ID",
        "SLACK_CLIENT_SECRET",
        "SLACK_SCOPES",
        "SLACK_USER_SCOPES",
        "SLACK_REDIRECT_URI",
        "CONSOLE_SLACK_REDIRECT_URI",
        "DISCORD_BOT_TOKEN",
        "DISCORD_API_URL",
        "DISCORD_DM_WORKSPACE",
        "DISCORD_MESSAGE_CONTENT",
    ]
)
# Knowledge sync: a developer's Redis must not turn the in-process tests into queue tests.
_SETTING_VARIABLES.extend(
    [
        "REDIS_URL",
        "SYNC_MAX_JOBS",
        "SYNC_JOB_TIMEOUT_S",
        "SYNC_LOCK_TTL_S",
        "SYNC_REQUESTS_PER_SECOND",
        "SYNC_DEFAULT_SCHEDULE",
        "NOTION_API_URL",
    ]
)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The same database tests on in-memory SQLite and on a real PostgreSQL (see ./dev test)."""
    if request.param == "sqlite":
        memory = make_engine("sqlite:///:memory:")
        yield memory
        memory.dispose()
        return
    url = os.environ.get("SUPPORTBOT_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail(
                "SUPPORTBOT_TEST_POSTGRES_URL is not set on CI: run the suite via ./dev test"
            )
        pytest.skip("no PostgreSQL (set SUPPORTBOT_TEST_POSTGRES_URL or run ./dev test)")
    reset_postgres(url)
    postgres = make_engine(url)
    yield postgres
    postgres.dispose()
    reset_postgres(url)


def reset_postgres(url: str) -> None:
    """An empty database: every table gone, migration history included."""
    cleaner = create_engine(url)
    with cleaner.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    cleaner.dispose()
