"""The composition root: builds every client once from :class:`Settings` and hands them down.

Clients are built on first use, so a command that needs only the database (``source list``)
never starts Weaviate or loads the embedding model.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import weaviate
from langchain_core.language_models import BaseChatModel
from sqlalchemy.engine import Engine
from weaviate import WeaviateClient
from weaviate.classes.init import AdditionalConfig, Auth, Timeout

from bot.claims import ClaimStore
from bot.service import ConversationService
from bot.signals import SignalDetector
from feedback.store import SqlFeedbackStore
from retrieval.chain import AnswerChain
from retrieval.chunking import Chunker
from retrieval.connection import WeaviateConnection, http_answering
from retrieval.embeddings import LocalE5Embeddings, OpenAICompatibleEmbeddings, QueryBatchEmbeddings
from retrieval.knowledge import KnowledgeBase
from retrieval.store import KnowledgeStore, Replication
from retrieval.tenant_activity import TenantActivity
from retrieval.weaviate_server import EmbeddedWeaviate, ServerAddress
from retrieval.workspaces import WorkspaceRegistry
from supportbot.database import make_engine
from supportbot.private_files import private_directory, tighten_if_present
from supportbot.settings import WEAVIATE_VERSION, Settings

if TYPE_CHECKING:
    from feedback.eval_store import EvalGate
    from sync.engine import EngineOptions, SyncEngine
    from sync.locks import WorkspaceLocks
    from sync.sources import SourceRepository


class App:
    """Holds the clients of one process; close it (or use ``with``) to release them."""

    def __init__(
        self, settings: Settings, *, local_embedder: LocalE5Embeddings | None = None
    ) -> None:
        self.settings = settings
        if local_embedder is not None:  # tests share one loaded model across apps
            self.__dict__["local_embedder"] = local_embedder

    def __enter__(self) -> App:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def aclose(self) -> None:
        """Close what lives on the event loop (the chat model's async HTTP client).

        Called by the bots before their loop ends; :meth:`close` then closes the rest.
        """
        model = self.__dict__.get("chat_model")
        client = getattr(model, "root_async_client", None)
        if client is not None:
            await client.close()

    def close(self) -> None:
        if "weaviate_connection" in self.__dict__:
            self.weaviate_connection.close()
        if "engine" in self.__dict__:
            self.engine.dispose()

    @cached_property
    def engine(self) -> Engine:
        if not self.settings.database_url:  # the default SQLite file inside the data directory
            self.private_data_dir()
        return make_engine(self.settings.resolved_database_url)

    def private_data_dir(self) -> Path:
        """The data directory, created (or tightened) owner-only: it holds the database, the
        secret key and the knowledge, whatever the umask."""
        return private_directory(Path(self.settings.data_dir))

    @cached_property
    def registry(self) -> WorkspaceRegistry:
        """Workspaces; deleting one deletes every row it owned (supportbot.workspace_purge)."""
        from supportbot.workspace_purge import WorkspaceOwnedRows

        return WorkspaceRegistry(self.engine, owned_rows=WorkspaceOwnedRows())

    @cached_property
    def embedded_weaviate(self) -> EmbeddedWeaviate:
        self.private_data_dir()
        return EmbeddedWeaviate(
            self.settings.weaviate_data_dir,
            binary_path=self.settings.weaviate_binary_path,
            version=WEAVIATE_VERSION,
            startup_timeout_s=self.settings.weaviate_startup_timeout_s,
        )

    @cached_property
    def weaviate_connection(self) -> WeaviateConnection[Any]:
        """The Weaviate client holder: connects now, reconnects by itself when Weaviate
        restarts, moves to new ports (the embedded server) or is briefly unreachable.

        The embedded server is started here if none runs; later reconnections only look for
        the one recorded in the data directory (whoever restarted it), they never start one.
        """
        config = AdditionalConfig(timeout=Timeout(init=10, query=30, insert=120))
        s = self.settings
        connection: WeaviateConnection[Any]
        if s.weaviate_url:
            url = urlparse(s.weaviate_url)
            secure = url.scheme == "https"
            host = url.hostname or "localhost"
            port = url.port or (443 if secure else 8080)
            base = f"{url.scheme or 'http'}://{host}:{port}"
            api_key = s.weaviate_api_key

            def connect_remote(_address: str) -> WeaviateClient:
                client = weaviate.connect_to_custom(
                    http_host=host,
                    http_port=port,
                    http_secure=secure,
                    grpc_host=host,
                    grpc_port=s.weaviate_grpc_port,
                    grpc_secure=secure,
                    auth_credentials=Auth.api_key(api_key.get_secret_value()) if api_key else None,
                    additional_config=config,
                )
                return _with_schema(client, self.replication)

            connection = WeaviateConnection(
                locate=lambda: base if http_answering(base) else None,
                connect=connect_remote,
                where=f"Weaviate at {base}",
            )
        else:
            embedded = self.embedded_weaviate
            embedded.ensure_running()

            def connect_local(address: ServerAddress) -> WeaviateClient:
                client = weaviate.connect_to_local(
                    host=address.host,
                    port=address.http_port,
                    grpc_port=address.grpc_port,
                    additional_config=config,
                )
                return _with_schema(client, self.replication)

            connection = WeaviateConnection(
                locate=embedded.running_address,
                connect=connect_local,
                where=f"the embedded Weaviate in {s.weaviate_data_dir}",
            )
        connection.client()  # a broken setup fails now, with the reason
        return connection

    @property
    def weaviate(self) -> WeaviateClient:
        """The current Weaviate client (it changes when Weaviate restarts: do not keep it)."""
        return self.weaviate_connection.client()

    @cached_property
    def replication(self) -> Replication:
        """The collection's replication factor and the write/read consistency levels."""
        s = self.settings
        return Replication(
            factor=s.weaviate_replication_factor,
            write=s.weaviate_write_level,
            read=s.weaviate_read_level,
        )

    @cached_property
    def store(self) -> KnowledgeStore:
        return KnowledgeStore(self.weaviate_connection, replication=self.replication)

    @cached_property
    def local_embedder(self) -> LocalE5Embeddings:
        """The bundled model; also the tokenizer that sizes chunks, whatever model embeds them."""
        return LocalE5Embeddings(batch_size=self.settings.embedding_batch_size)

    @cached_property
    def embedder(self) -> QueryBatchEmbeddings:
        s = self.settings
        if s.embedding_provider == "local":
            return self.local_embedder
        return OpenAICompatibleEmbeddings(
            model=s.resolved_embedding_model,
            base_url=s.embedding_base_url,
            api_key=s.embedding_api_key.get_secret_value() if s.embedding_api_key else None,
            send_input_type=s.embedding_send_input_type,
            query_prefix=s.embedding_query_prefix,
            passage_prefix=s.embedding_passage_prefix,
            batch_size=s.embedding_batch_size,
        )

    @cached_property
    def knowledge(self) -> KnowledgeBase:
        s = self.settings
        chunker = Chunker(
            self.local_embedder.token_count,
            chunk_tokens=s.chunk_tokens,
            overlap_tokens=s.chunk_overlap_tokens,
        )
        return KnowledgeBase(
            self.registry,
            self.store,
            self.embedder,
            chunker,
            embedding_model=s.resolved_embedding_model,
            hybrid_alpha=s.hybrid_alpha,
            max_file_bytes=int(s.max_file_mb * 1024 * 1024),
            activity=self.tenant_activity,
        )

    @cached_property
    def tenant_activity(self) -> TenantActivity:
        """Hot and cold tenants: records each workspace's use, reactivates cold ones, and sets
        idle ones cold (``WORKSPACE_COLD_AFTER``; see retrieval.tenant_activity)."""
        return TenantActivity(
            self.engine, self.store, cold_after=self.settings.workspace_cold_after_time
        )

    @cached_property
    def chat_model(self) -> BaseChatModel | None:
        s = self.settings
        if not s.llm_model:
            return None
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            model=s.llm_model,
            base_url=s.llm_base_url,
            api_key=s.llm_api_key.get_secret_value() if s.llm_api_key else "not-needed",  # type: ignore[arg-type]
            timeout=s.llm_timeout_s,
            max_retries=2,
            temperature=s.llm_temperature,
        )

    def answer_chain(self, workspace: str) -> AnswerChain:
        return AnswerChain(
            self.knowledge.searcher(workspace, k=self.settings.search_k),
            chat_model=self.chat_model,
            min_relevance=self.settings.min_relevance,
            model_name=self.settings.llm_model or "",
        )

    @cached_property
    def conversations(self) -> ConversationService:
        return ConversationService(
            engine=self.engine,
            registry=self.registry,
            knowledge=self.knowledge,
            chain_for=self.answer_chain,
            feedback=self.feedback,
            # Implicit feedback read with the bundled model, whatever model embeds the knowledge:
            # its thresholds were measured with it (bench/signals_bench.py).
            signals=SignalDetector(self.local_embedder.embed_queries),
            claims=ClaimStore(self.engine, lease_s=self.settings.claim_lease_s),
        )

    @cached_property
    def feedback(self) -> SqlFeedbackStore:
        return SqlFeedbackStore(self.engine, user_hash_key=self.secret_key())

    @cached_property
    def sync_sources(self) -> SourceRepository:
        """Knowledge sources (web, Slack, ...) and their sync state; credentials encrypted."""
        from sync.credentials import CredentialCipher
        from sync.sources import SourceRepository

        return SourceRepository(self.engine, cipher=CredentialCipher(self.secret_key()))

    @cached_property
    def sync_locks(self) -> WorkspaceLocks:
        """One sync (or deletion) per workspace at a time: in Redis when REDIS_URL is set."""
        from sync.locks import FileWorkspaceLocks, RedisWorkspaceLocks

        s = self.settings
        if s.redis_url is not None:
            from redis.asyncio import Redis

            redis = Redis.from_url(s.redis_url.get_secret_value())
            return RedisWorkspaceLocks(redis, ttl_s=s.sync_lock_ttl_s)
        return FileWorkspaceLocks(self.private_data_dir() / "sync-locks")

    @cached_property
    def sync_engine(self) -> SyncEngine:
        """Syncs sources into their workspace, one workspace at a time (``sync_locks``)."""
        from sync.engine import SyncEngine

        return SyncEngine(
            self.sync_sources,
            self.knowledge,
            self.sync_locks,
            api_urls=self.sync_api_urls,
            options=self.sync_engine_options,
            after_change=self.after_knowledge_change,
        )

    @cached_property
    def eval_gate(self) -> EvalGate:
        """Replays a bounded sample of known questions after each knowledge change."""
        from datetime import UTC, datetime

        from feedback.eval_store import EvalGate

        return EvalGate(
            self.engine,
            self.knowledge,
            sample_size=self.settings.eval_sample_size,
            clock=lambda: datetime.now(UTC),
        )

    def after_knowledge_change(self, workspace: str, changed: Sequence[str], trigger: str) -> None:
        """A sync, an ingest, a promotion or an approved FAQ entry changed ``changed``
        documents: store the evaluation figure (``trigger`` names which)."""
        self.eval_gate.after_change(workspace, changed, trigger=trigger)

    @cached_property
    def sync_engine_options(self) -> EngineOptions:
        """Sync limits and the web sources' address policy, from the settings."""
        from retrieval.formats.limits import FileLimits
        from sync.addresses import AddressPolicy
        from sync.engine import EngineOptions
        from sync.http import FetchLimits

        s = self.settings
        file_limits = FileLimits(max_bytes=int(s.max_file_mb * 1024 * 1024))
        return EngineOptions(
            fetch=FetchLimits(
                max_response_bytes=file_limits.max_bytes,
                max_sitemap_bytes=int(s.sync_max_sitemap_mb * 1024 * 1024),
                max_sync_bytes=int(s.sync_max_mb_per_sync * 1024 * 1024),
                file=file_limits,
            ),
            addresses=AddressPolicy.parse(s.sync_allowed_private_hosts),
        )

    @property
    def sync_api_urls(self) -> dict[str, str]:
        """Each connector's API base URL (tests point them at local simulators)."""
        s = self.settings
        return {
            "slack": s.slack_api_url,
            "discord": s.discord_api_url,
            "notion": s.notion_api_url,
        }

    def secret_key(self) -> bytes:
        """The installation's secret: from the environment, else generated once per data dir."""
        configured = self.settings.secret_key
        if configured:
            return configured.get_secret_value().encode()
        path = self.private_data_dir() / "secret.key"
        if not path.exists():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process wrote it meanwhile
                pass
            else:
                os.chmod(path, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(secrets.token_hex(32))
        tighten_if_present(path)
        return path.read_text().strip().encode()


def _with_schema(client: WeaviateClient, replication: Replication) -> WeaviateClient:
    """``client`` after making sure the collection exists (a new server may be empty)."""
    try:
        KnowledgeStore(client, replication=replication).ensure_schema()
    except Exception:
        client.close()
        raise
    return client
