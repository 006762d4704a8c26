"""One typed settings object, read from the environment and one `.env` file once, in ``main()``.

Nothing else in the project reads the environment: components get the values they need from
this object (or from the clients built from it), so tests can build a ``Settings`` directly.
Every field here is listed, with a comment, in ``.env.example``.

Which `.env` is read is explicit (:meth:`Settings.load`): the file ``SUPPORTBOT_ENV_FILE``
names, else ``.env`` in the working directory; never one in a parent directory, the home
directory or the installed package. Environment variables win over the file.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

WEAVIATE_VERSION = "1.38.11"
LOCAL_EMBEDDING_MODEL = "multilingual-e5-small-q4"
# The bot scopes the Slack bot needs: mentions, messages where it is (channels, private channels,
# DMs, group DMs) for questions and thread history, posting answers, and reading feedback reactions.
DEFAULT_SLACK_SCOPES = (
    "app_mentions:read,channels:history,groups:history,im:history,mpim:history,"
    "chat:write,reactions:read"
)


# Names the one `.env` file to read instead of ./.env (e.g. /etc/supportbot/env).
ENV_FILE_VARIABLE = "SUPPORTBOT_ENV_FILE"


_IDLE_TIME = re.compile(r"(\d+)\s*(m|h|d)", re.IGNORECASE)
_IDLE_UNIT_MINUTES = {"m": 1, "h": 60, "d": 1440}
# Below this, a workspace in use could be set cold between two of its (once a minute)
# last-use records.
MIN_COLD_AFTER = timedelta(minutes=10)


def parse_idle_time(text: str) -> timedelta | None:
    """``"30m"``, ``"12h"``, ``"3d"`` as a duration; ``"0"`` as None (never).

    Raises ValueError (a one-line reason) for anything else or for less than 10 minutes.
    """
    value = text.strip()
    if value == "0":
        return None
    match = _IDLE_TIME.fullmatch(value)
    if not match:
        raise ValueError(f"{text!r} is not a duration: use e.g. 30m, 12h, 3d, or 0 for never")
    duration = timedelta(minutes=int(match.group(1)) * _IDLE_UNIT_MINUTES[match.group(2).lower()])
    if duration < MIN_COLD_AFTER:
        raise ValueError(f"{text!r} is too short: use at least 10m (or 0 for never)")
    return duration


class SettingsError(Exception):
    """The settings cannot be loaded (the message names the variable or file to fix)."""


def _default_binary_path() -> Path:
    return Path.home() / ".cache" / "supportbot" / "weaviate"


class Settings(BaseSettings):
    """All settings of the bot, the CLI and the ingestion jobs."""

    # No implicit env_file: :meth:`load` chooses the one file (``Settings()`` reads none).
    model_config = SettingsConfigDict(
        env_file=None, env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    @classmethod
    def load(cls, *, cwd: Path | None = None) -> Settings:
        """The settings from the environment and one `.env` file.

        The file is the one ``SUPPORTBOT_ENV_FILE`` names (it must exist), else ``.env`` in
        ``cwd`` (the working directory) if there is one, else none. Raises
        :class:`SettingsError` for a named file that is missing.
        """
        named = os.environ.get(ENV_FILE_VARIABLE)
        env_file: Path | None
        if named:
            env_file = Path(named).expanduser()
            if not env_file.is_file():
                raise SettingsError(f"{ENV_FILE_VARIABLE}={named}: there is no such file")
        else:
            env_file = (cwd or Path.cwd()) / ".env"
            if not env_file.is_file():
                env_file = None
        return cls(_env_file=env_file)  # type: ignore[call-arg]

    def secret_values(self) -> list[str]:
        """The value of every secret setting (tokens, keys, the database password), so log
        output can be scrubbed of them."""
        values = [
            value.get_secret_value()
            for name in type(self).model_fields
            if isinstance(value := getattr(self, name), SecretStr)
        ]
        if self.database_url:
            password = urlsplit(self.database_url).password
            if password:
                values.append(password)
        return [value for value in values if value]

    # --- local state -------------------------------------------------------------------------
    data_dir: Path = Field(
        default=Path(".supportbot"), validation_alias=AliasChoices("SUPPORTBOT_DATA_DIR")
    )
    database_url: str | None = Field(default=None, validation_alias=AliasChoices("DATABASE_URL"))
    secret_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SUPPORTBOT_SECRET_KEY")
    )
    log_level: str = Field(default="WARNING", validation_alias=AliasChoices("SUPPORTBOT_LOG_LEVEL"))

    # --- Weaviate ----------------------------------------------------------------------------
    weaviate_url: str | None = Field(default=None, validation_alias=AliasChoices("WEAVIATE_URL"))
    weaviate_grpc_port: int = Field(
        default=50051, validation_alias=AliasChoices("WEAVIATE_GRPC_PORT")
    )
    weaviate_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("WEAVIATE_API_KEY")
    )
    weaviate_binary_path: Path = Field(
        default_factory=_default_binary_path,
        validation_alias=AliasChoices("WEAVIATE_BINARY_PATH"),
    )
    weaviate_startup_timeout_s: float = Field(
        default=60.0, validation_alias=AliasChoices("WEAVIATE_STARTUP_TIMEOUT_S")
    )
    # Copies of each workspace's chunks across the nodes of a Weaviate cluster (1: one node).
    weaviate_replication_factor: int = Field(
        default=1, ge=1, validation_alias=AliasChoices("WEAVIATE_REPLICATION_FACTOR")
    )
    # How many replicas must confirm a write / answer a read: ONE, QUORUM or ALL.
    # Unset: QUORUM when the replication factor is above 1, else ONE.
    weaviate_write_consistency: str | None = Field(
        default=None, validation_alias=AliasChoices("WEAVIATE_WRITE_CONSISTENCY")
    )
    weaviate_read_consistency: str | None = Field(
        default=None, validation_alias=AliasChoices("WEAVIATE_READ_CONSISTENCY")
    )

    # --- embeddings --------------------------------------------------------------------------
    embedding_provider: Literal["local", "openai"] = Field(
        default="local", validation_alias=AliasChoices("EMBEDDING_PROVIDER")
    )
    embedding_model: str | None = Field(
        default=None, validation_alias=AliasChoices("EMBEDDING_MODEL")
    )
    embedding_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("EMBEDDING_BASE_URL")
    )
    embedding_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("EMBEDDING_API_KEY", "OPENAI_API_KEY")
    )
    embedding_send_input_type: bool = Field(
        default=False, validation_alias=AliasChoices("EMBEDDING_SEND_INPUT_TYPE")
    )
    embedding_query_prefix: str = Field(
        default="", validation_alias=AliasChoices("EMBEDDING_QUERY_PREFIX")
    )
    embedding_passage_prefix: str = Field(
        default="", validation_alias=AliasChoices("EMBEDDING_PASSAGE_PREFIX")
    )
    embedding_batch_size: int = Field(
        default=32, validation_alias=AliasChoices("EMBEDDING_BATCH_SIZE")
    )

    # --- chat model --------------------------------------------------------------------------
    llm_model: str | None = Field(default=None, validation_alias=AliasChoices("LLM_MODEL"))
    llm_base_url: str | None = Field(default=None, validation_alias=AliasChoices("LLM_BASE_URL"))
    llm_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("LLM_API_KEY", "OPENAI_API_KEY")
    )
    llm_timeout_s: float = Field(default=60.0, validation_alias=AliasChoices("LLM_TIMEOUT_S"))
    llm_temperature: float = Field(default=0.1, validation_alias=AliasChoices("LLM_TEMPERATURE"))
    # Answers written by a chat model are shown as they are written (Slack streaming or edits).
    answer_streaming: bool = Field(default=True, validation_alias=AliasChoices("ANSWER_STREAMING"))
    # Replicas that fail safely (README "Running on a Weaviate cluster"): a question's claim is
    # held under a lease (seconds) renewed while it is answered; a claim whose replica died is
    # taken over by another replica's sweeper, which looks every CLAIM_SWEEP_INTERVAL_S.
    claim_lease_s: float = Field(
        default=30.0, ge=1.0, validation_alias=AliasChoices("CLAIM_LEASE_S")
    )
    claim_sweep_interval_s: float = Field(
        default=5.0, gt=0, validation_alias=AliasChoices("CLAIM_SWEEP_INTERVAL_S")
    )

    # --- Slack ----------------------------------------------------------------------------------
    slack_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_BOT_TOKEN")
    )
    slack_app_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_APP_TOKEN")
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET")
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/", validation_alias=AliasChoices("SLACK_API_URL")
    )
    # Multi-workspace installation (OAuth): with both set, each workspace installs the app at
    # /slack/install and its tokens are kept, encrypted, in the database.
    slack_client_id: str | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_CLIENT_ID")
    )
    slack_client_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_CLIENT_SECRET")
    )
    slack_scopes: str = Field(
        default=DEFAULT_SLACK_SCOPES, validation_alias=AliasChoices("SLACK_SCOPES")
    )
    slack_redirect_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_REDIRECT_URI")
    )

    # --- Discord --------------------------------------------------------------------------------
    discord_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DISCORD_BOT_TOKEN")
    )
    # The REST API base (the gateway address then comes from this API's /gateway/bot).
    discord_api_url: str = Field(
        default="https://discord.com/api/v10", validation_alias=AliasChoices("DISCORD_API_URL")
    )
    # Answers DMs of users who share no mapped server with the bot; unset: they are told how
    # to get access instead.
    discord_dm_workspace: str | None = Field(
        default=None, validation_alias=AliasChoices("DISCORD_DM_WORKSPACE")
    )
    # The privileged Message Content intent: "auto" asks for it only when some Discord channel
    # is set to answer every question (mentions and DMs carry their text without it).
    discord_message_content: Literal["auto", "on", "off"] = Field(
        default="auto", validation_alias=AliasChoices("DISCORD_MESSAGE_CONTENT")
    )

    # --- retrieval and ingestion ---------------------------------------------------------------
    search_k: int = Field(default=5, validation_alias=AliasChoices("SEARCH_K"))
    hybrid_alpha: float = Field(default=0.5, validation_alias=AliasChoices("HYBRID_ALPHA"))
    min_relevance: float = Field(default=0.81, validation_alias=AliasChoices("MIN_RELEVANCE"))
    chunk_tokens: int = Field(default=256, validation_alias=AliasChoices("CHUNK_TOKENS"))
    chunk_overlap_tokens: int = Field(
        default=40, validation_alias=AliasChoices("CHUNK_OVERLAP_TOKENS")
    )
    max_file_mb: float = Field(default=20.0, validation_alias=AliasChoices("MAX_FILE_MB"))
    # A workspace nobody asked, synced or ingested into for this long has its Weaviate tenant
    # set cold (off memory, data kept on disk); its next question or sync reactivates it.
    # A number with a unit: "30m", "12h", "3d"; "0" never sets tenants cold.
    workspace_cold_after: str = Field(
        default="3d", validation_alias=AliasChoices("WORKSPACE_COLD_AFTER")
    )

    # --- feedback ------------------------------------------------------------------------------
    # Query-embedding cosine at which two questions count as the same one for DPO pairs and for
    # keeping near-duplicates in one split (README "Feedback and fine-tuning data").
    feedback_dpo_similarity: float = Field(
        default=0.95, gt=0.0, le=1.0, validation_alias=AliasChoices("FEEDBACK_DPO_SIMILARITY")
    )
    # The evaluation gate (README "Evaluation and knowledge gaps"): questions replayed after a
    # sync or ingest that changed documents (0: off), and the hit@5 drop that warns.
    eval_sample_size: int = Field(
        default=50, ge=0, validation_alias=AliasChoices("EVAL_SAMPLE_SIZE")
    )
    eval_drop_margin: float = Field(
        default=0.1, ge=0.0, le=1.0, validation_alias=AliasChoices("EVAL_DROP_MARGIN")
    )
    # Also ask the chat model whether each answer agrees with the expected one.
    eval_llm_judge: bool = Field(default=False, validation_alias=AliasChoices("EVAL_LLM_JUDGE"))
    # Mean query-embedding cosine at which unanswered questions are one knowledge gap
    # (average linkage; measured in feedback/gaps.py).
    gaps_similarity: float = Field(
        default=0.83, gt=0.0, le=1.0, validation_alias=AliasChoices("GAPS_SIMILARITY")
    )

    # --- knowledge sync (see README "Keeping knowledge fresh") ---------------------------------
    redis_url: SecretStr | None = Field(default=None, validation_alias=AliasChoices("REDIS_URL"))
    sync_max_jobs: int = Field(default=4, ge=1, validation_alias=AliasChoices("SYNC_MAX_JOBS"))
    sync_job_timeout_s: float = Field(
        default=3600.0, gt=0, validation_alias=AliasChoices("SYNC_JOB_TIMEOUT_S")
    )
    sync_lock_ttl_s: float = Field(
        default=30.0, gt=0, validation_alias=AliasChoices("SYNC_LOCK_TTL_S")
    )
    sync_requests_per_second: float = Field(
        default=10.0, gt=0, validation_alias=AliasChoices("SYNC_REQUESTS_PER_SECOND")
    )
    sync_default_schedule: str = Field(
        default="1h", validation_alias=AliasChoices("SYNC_DEFAULT_SCHEDULE")
    )
    notion_api_url: str = Field(
        default="https://api.notion.com", validation_alias=AliasChoices("NOTION_API_URL")
    )
    # Web sources fetch only public addresses; these private hosts too (host:port, host, IP or
    # CIDR, comma-separated), e.g. an intranet wiki.
    sync_allowed_private_hosts: str = Field(
        default="", validation_alias=AliasChoices("SYNC_ALLOWED_PRIVATE_HOSTS")
    )
    sync_max_sitemap_mb: float = Field(
        default=50.0, gt=0, validation_alias=AliasChoices("SYNC_MAX_SITEMAP_MB")
    )
    sync_max_mb_per_sync: float = Field(
        default=2048.0, gt=0, validation_alias=AliasChoices("SYNC_MAX_MB_PER_SYNC")
    )

    # --- web console (see README "Web console") ------------------------------------------------
    # Signs the console's CSRF tokens and Slack sign-in state; unset: derived from
    # SUPPORTBOT_SECRET_KEY (or the key generated in the data directory).
    console_secret_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("CONSOLE_SECRET_KEY")
    )
    console_session_hours: float = Field(
        default=12.0, gt=0, validation_alias=AliasChoices("CONSOLE_SESSION_HOURS")
    )
    # Off only to serve the console over plain HTTP to other machines (browsers send Secure
    # cookies to https:// addresses and to localhost only).
    console_secure_cookies: bool = Field(
        default=True, validation_alias=AliasChoices("CONSOLE_SECURE_COOKIES")
    )
    # Failed sign-ins allowed per account and per client address within 15 minutes.
    console_login_attempts: int = Field(
        default=5, ge=1, validation_alias=AliasChoices("CONSOLE_LOGIN_ATTEMPTS")
    )
    console_login_attempts_per_ip: int = Field(
        default=20, ge=1, validation_alias=AliasChoices("CONSOLE_LOGIN_ATTEMPTS_PER_IP")
    )
    # Where Slack sends people back after "Sign in with Slack" (add it to the app's Redirect
    # URLs): https://HOST/login/slack/callback. Unset: built from the request's own URL.
    console_slack_redirect_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("CONSOLE_SLACK_REDIRECT_URI")
    )
    # Folders (comma-separated) under which a workspace admin may add a folder source from the
    # console; unset: none (folder sources are then added with `supportbot source add`).
    console_folder_roots: str = Field(
        default="", validation_alias=AliasChoices("CONSOLE_FOLDER_ROOTS")
    )

    @field_validator("hybrid_alpha", "min_relevance")
    @classmethod
    def _unit_interval(cls, value: float) -> float:
        if not 0.0 <= value <= 1.0:
            raise ValueError("must be between 0 and 1")
        return value

    @field_validator("workspace_cold_after")
    @classmethod
    def _idle_time(cls, value: str) -> str:
        parse_idle_time(value)
        return value.strip()

    @property
    def workspace_cold_after_time(self) -> timedelta | None:
        """``WORKSPACE_COLD_AFTER`` as a duration; None when tenants are never set cold."""
        return parse_idle_time(self.workspace_cold_after)

    @field_validator("weaviate_write_consistency", "weaviate_read_consistency")
    @classmethod
    def _consistency_level(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        level = value.strip().upper()
        if level not in ("ONE", "QUORUM", "ALL"):
            raise ValueError(f"must be ONE, QUORUM or ALL, not {value!r}")
        return level

    @property
    def weaviate_write_level(self) -> str:
        """The write consistency level in force (the default depends on the factor)."""
        return self.weaviate_write_consistency or self._default_consistency()

    @property
    def weaviate_read_level(self) -> str:
        """The read consistency level in force (the default depends on the factor)."""
        return self.weaviate_read_consistency or self._default_consistency()

    def _default_consistency(self) -> str:
        return "QUORUM" if self.weaviate_replication_factor > 1 else "ONE"

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file inside the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'supportbot.db').resolve()}"

    @property
    def resolved_embedding_model(self) -> str:
        """The model name recorded per workspace, so a later switch is detected."""
        if self.embedding_provider == "local":
            return self.embedding_model or LOCAL_EMBEDDING_MODEL
        if not self.embedding_model:
            raise ValueError("EMBEDDING_MODEL must be set when EMBEDDING_PROVIDER=openai")
        return self.embedding_model

    @property
    def slack_scope_list(self) -> list[str]:
        """``SLACK_SCOPES`` as the list the OAuth authorize URL takes (comma or space separated)."""
        return [scope for scope in self.slack_scopes.replace(",", " ").split() if scope]

    @property
    def weaviate_data_dir(self) -> Path:
        return self.data_dir / "weaviate"
