"""Where a multi-workspace Slack app keeps its installations: the project's own database.

Bolt authorizes every event by looking the team's tokens up in an ``AsyncInstallationStore``;
this one keeps them in the same SQLite/PostgreSQL database as everything else (so several
replicas share installations, and a backup holds them) instead of slack_sdk's file store. It
follows slack_sdk's SQLAlchemy store (latest install wins; org-wide installs are keyed by the
enterprise alone; a user's installation borrows the latest bot token) in less code, on sqlmodel.

Tokens are credentials to a customer's workspace, so every token column (and the incoming
webhook URL, itself a credential) is Fernet-encrypted with a key derived from the installation's
secret (``SUPPORTBOT_SECRET_KEY``, else ``<data dir>/secret.key``). The database alone is not
enough to act as the bot; losing or changing the secret means workspaces must reinstall, which
the error says in one line instead of a Fernet traceback.

The database calls are blocking (sync sqlmodel, like the rest of the project) and run in a
worker thread, so a slow database never stalls the event loop that acks Slack's requests.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from sqlalchemy import ColumnElement, delete, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.slack.models import SlackBotInstallation, SlackInstallation, SlackOAuthState

logger = logging.getLogger(__name__)

# HKDF's context label: the same secret also keys other things (feedback user-id hashes), and
# a distinct label gives this use its own independent key.
_KEY_CONTEXT = b"supportbot/slack-installation-tokens/v1"
DEFAULT_STATE_EXPIRATION_S = 600

KEY_CHANGED_MESSAGE = (
    "cannot decrypt the stored Slack tokens: SUPPORTBOT_SECRET_KEY changed since the app was "
    "installed; restore the previous key, or reinstall the app in each workspace"
)


class InstallationKeyError(Exception):
    """The stored tokens were encrypted with another secret key than this process has."""


class TokenCipher:
    """Encrypts tokens for the database with a Fernet key derived from the installation secret."""

    def __init__(self, secret_key: bytes) -> None:
        if not secret_key:
            raise ValueError("the secret key is empty")
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_CONTEXT).derive(
            secret_key
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, value: str | None) -> str | None:
        if value is None:
            return None
        return self._fernet.encrypt(value.encode()).decode("ascii")

    def decrypt(self, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return self._fernet.decrypt(value.encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            # ``from None``: the Fernet traceback says nothing an operator can act on.
            raise InstallationKeyError(KEY_CHANGED_MESSAGE) from None


def _db_time(timestamp: float | None) -> datetime | None:
    """slack_sdk's epoch seconds as the aware UTC datetime the columns take."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC)


def _is(column: Any, value: str | None) -> ColumnElement[bool]:
    """``column = value``, or ``IS NULL`` for None (org-wide installs have no team id)."""
    return column.is_(None) if value is None else column == value


def _scopes(scopes: Any) -> str | None:
    return ",".join(scopes) if scopes else None


class SqlInstallationStore(AsyncInstallationStore):
    """Installations and bot tokens per team (or Enterprise Grid org), tokens encrypted.

    ``client_id`` scopes the rows to one Slack app, so two apps may share a database. The
    sync methods do the work and are usable on their own (tests, CLI); the ``async_`` ones are
    what bolt calls.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        client_id: str,
        secret_key: bytes,
        logger: logging.Logger | None = None,
    ) -> None:
        self._engine = engine
        self.client_id = client_id
        self._cipher = TokenCipher(secret_key)
        self._logger = logger or logging.getLogger(__name__)

    @property
    def logger(self) -> logging.Logger:
        return self._logger

    # --- sync API --------------------------------------------------------------------------

    def save(self, installation: Installation) -> None:
        """Insert the installation (or update the same one, as token rotation re-saves it)."""
        # An org-wide install is found by the enterprise alone (find_* drop the team id), so it
        # is stored without one whatever the OAuth response carried.
        team_id = None if installation.is_enterprise_install else installation.team_id
        encrypt = self._cipher.encrypt
        values: dict[str, Any] = {
            "client_id": self.client_id,
            "app_id": installation.app_id,
            "enterprise_id": installation.enterprise_id,
            "enterprise_name": installation.enterprise_name,
            "enterprise_url": installation.enterprise_url,
            "team_id": team_id,
            "team_name": installation.team_name,
            "bot_token_encrypted": encrypt(installation.bot_token),
            "bot_id": installation.bot_id,
            "bot_user_id": installation.bot_user_id,
            "bot_scopes": _scopes(installation.bot_scopes),
            "bot_refresh_token_encrypted": encrypt(installation.bot_refresh_token),
            "bot_token_expires_at": _db_time(installation.bot_token_expires_at),
            "user_id": installation.user_id,
            "user_token_encrypted": encrypt(installation.user_token),
            "user_scopes": _scopes(installation.user_scopes),
            "user_refresh_token_encrypted": encrypt(installation.user_refresh_token),
            "user_token_expires_at": _db_time(installation.user_token_expires_at),
            "incoming_webhook_url_encrypted": encrypt(installation.incoming_webhook_url),
            "incoming_webhook_channel": installation.incoming_webhook_channel,
            "incoming_webhook_channel_id": installation.incoming_webhook_channel_id,
            "incoming_webhook_configuration_url": installation.incoming_webhook_configuration_url,
            "is_enterprise_install": bool(installation.is_enterprise_install),
            "token_type": installation.token_type,
            "installed_at": _db_time(installation.installed_at),
        }
        self._upsert(SlackInstallation, values)
        if installation.bot_token is not None:  # a user-only install has no bot to remember
            self.save_bot(installation.to_bot())

    def save_bot(self, bot: Bot) -> None:
        """Insert the bot token (or update the same install's, after a token rotation)."""
        team_id = None if bot.is_enterprise_install else bot.team_id
        values: dict[str, Any] = {
            "client_id": self.client_id,
            "app_id": bot.app_id,
            "enterprise_id": bot.enterprise_id,
            "enterprise_name": bot.enterprise_name,
            "team_id": team_id,
            "team_name": bot.team_name,
            "bot_token_encrypted": self._cipher.encrypt(bot.bot_token),
            "bot_id": bot.bot_id,
            "bot_user_id": bot.bot_user_id,
            "bot_scopes": _scopes(bot.bot_scopes),
            "bot_refresh_token_encrypted": self._cipher.encrypt(bot.bot_refresh_token),
            "bot_token_expires_at": _db_time(bot.bot_token_expires_at),
            "is_enterprise_install": bool(bot.is_enterprise_install),
            "installed_at": _db_time(bot.installed_at),
        }
        self._upsert(SlackBotInstallation, values)

    def _upsert(
        self, table: type[SlackInstallation] | type[SlackBotInstallation], values: dict[str, Any]
    ) -> None:
        """Insert the row, or update the one of the same install (same org, team and time)."""
        with Session(self._engine) as session:
            row = session.exec(
                select(table)
                .where(
                    table.client_id == self.client_id,
                    _is(col(table.enterprise_id), values["enterprise_id"]),
                    _is(col(table.team_id), values["team_id"]),
                    table.installed_at == values["installed_at"],
                )
                .limit(1)
            ).first()
            if row is None:
                session.add(table(**values))
            else:
                row.sqlmodel_update(values)
                session.add(row)
            session.commit()

    def find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        """The latest bot token of the team, or of the org for an org-wide install."""
        if is_enterprise_install:
            team_id = None
        with Session(self._engine) as session:
            row = session.exec(
                select(SlackBotInstallation)
                .where(
                    SlackBotInstallation.client_id == self.client_id,
                    _is(col(SlackBotInstallation.enterprise_id), enterprise_id),
                    _is(col(SlackBotInstallation.team_id), team_id),
                    col(SlackBotInstallation.bot_token_encrypted).is_not(None),
                )
                .order_by(col(SlackBotInstallation.installed_at).desc())
                .limit(1)
            ).first()
        return None if row is None else self._bot(row)

    def find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        """The latest installation of the team/org (by ``user_id``'s install when given).

        A user's own installation may be older than the latest bot token (the bot was
        reinstalled since, or rotated), so the latest bot token is put on it, as slack_sdk does.
        """
        if is_enterprise_install:
            team_id = None
        query = select(SlackInstallation).where(
            SlackInstallation.client_id == self.client_id,
            _is(col(SlackInstallation.enterprise_id), enterprise_id),
            _is(col(SlackInstallation.team_id), team_id),
        )
        if user_id is not None:
            query = query.where(SlackInstallation.user_id == user_id)
        with Session(self._engine) as session:
            row = session.exec(
                query.order_by(col(SlackInstallation.installed_at).desc()).limit(1)
            ).first()
        if row is None:
            return None
        installation = self._installation(row)
        if user_id is not None or installation.bot_token is None:
            bot = self.find_bot(
                enterprise_id=enterprise_id,
                team_id=team_id,
                is_enterprise_install=is_enterprise_install,
            )
            if bot is not None and bot.bot_token != installation.bot_token:
                installation.bot_id = bot.bot_id
                installation.bot_user_id = bot.bot_user_id
                installation.bot_token = bot.bot_token
                installation.bot_scopes = bot.bot_scopes
                installation.bot_refresh_token = bot.bot_refresh_token
                installation.bot_token_expires_at = bot.bot_token_expires_at
        return installation

    def delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        """Forget the team's bot token: the bot rows, and its copies in installation rows.

        slack_sdk's stores leave the copies, so a revoked token would stay at rest and still
        be tried on every event; clearing them makes revocation complete.
        """
        with self._engine.begin() as connection:
            connection.execute(
                delete(SlackBotInstallation).where(
                    col(SlackBotInstallation.client_id) == self.client_id,
                    _is(col(SlackBotInstallation.enterprise_id), enterprise_id),
                    _is(col(SlackBotInstallation.team_id), team_id),
                )
            )
            connection.execute(
                update(SlackInstallation)
                .where(
                    col(SlackInstallation.client_id) == self.client_id,
                    _is(col(SlackInstallation.enterprise_id), enterprise_id),
                    _is(col(SlackInstallation.team_id), team_id),
                )
                .values(
                    bot_token_encrypted=None,
                    bot_refresh_token_encrypted=None,
                    bot_token_expires_at=None,
                )
            )

    def delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        """Forget the team's installations, or only ``user_id``'s when given."""
        statement = delete(SlackInstallation).where(
            col(SlackInstallation.client_id) == self.client_id,
            _is(col(SlackInstallation.enterprise_id), enterprise_id),
            _is(col(SlackInstallation.team_id), team_id),
        )
        if user_id is not None:
            statement = statement.where(col(SlackInstallation.user_id) == user_id)
        with self._engine.begin() as connection:
            connection.execute(statement)

    def delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        self.delete_bot(enterprise_id=enterprise_id, team_id=team_id)
        self.delete_installation(enterprise_id=enterprise_id, team_id=team_id)

    def check_key(self) -> None:
        """Raise :class:`InstallationKeyError` now if stored tokens cannot be decrypted.

        Called at start so a changed secret stops the bot with one clear line, instead of
        every event failing later.
        """
        with Session(self._engine) as session:
            encrypted = session.exec(
                select(SlackBotInstallation.bot_token_encrypted)
                .where(
                    SlackBotInstallation.client_id == self.client_id,
                    col(SlackBotInstallation.bot_token_encrypted).is_not(None),
                )
                .limit(1)
            ).first()
        self._cipher.decrypt(encrypted)

    # --- what bolt calls ---------------------------------------------------------------------

    async def async_save(self, installation: Installation) -> None:
        await asyncio.to_thread(self.save, installation)

    async def async_save_bot(self, bot: Bot) -> None:
        await asyncio.to_thread(self.save_bot, bot)

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        return await asyncio.to_thread(
            self.find_bot,
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=is_enterprise_install,
        )

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        return await asyncio.to_thread(
            self.find_installation,
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
            is_enterprise_install=is_enterprise_install,
        )

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await asyncio.to_thread(self.delete_bot, enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        await asyncio.to_thread(
            self.delete_installation, enterprise_id=enterprise_id, team_id=team_id, user_id=user_id
        )

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await asyncio.to_thread(self.delete_all, enterprise_id=enterprise_id, team_id=team_id)

    # --- rows to slack_sdk models ------------------------------------------------------------

    def _installation(self, row: SlackInstallation) -> Installation:
        decrypt = self._cipher.decrypt
        return Installation(
            app_id=row.app_id,
            enterprise_id=row.enterprise_id,
            enterprise_name=row.enterprise_name,
            enterprise_url=row.enterprise_url,
            team_id=row.team_id,
            team_name=row.team_name,
            bot_token=decrypt(row.bot_token_encrypted),
            bot_id=row.bot_id,
            bot_user_id=row.bot_user_id,
            bot_scopes=row.bot_scopes or "",
            bot_refresh_token=decrypt(row.bot_refresh_token_encrypted),
            bot_token_expires_at=row.bot_token_expires_at,
            user_id=row.user_id,
            user_token=decrypt(row.user_token_encrypted),
            user_scopes=row.user_scopes or "",
            user_refresh_token=decrypt(row.user_refresh_token_encrypted),
            user_token_expires_at=row.user_token_expires_at,
            incoming_webhook_url=decrypt(row.incoming_webhook_url_encrypted),
            incoming_webhook_channel=row.incoming_webhook_channel,
            incoming_webhook_channel_id=row.incoming_webhook_channel_id,
            incoming_webhook_configuration_url=row.incoming_webhook_configuration_url,
            is_enterprise_install=row.is_enterprise_install,
            token_type=row.token_type,
            installed_at=row.installed_at,
        )

    def _bot(self, row: SlackBotInstallation) -> Bot:
        return Bot(
            app_id=row.app_id,
            enterprise_id=row.enterprise_id,
            enterprise_name=row.enterprise_name,
            team_id=row.team_id,
            team_name=row.team_name,
            bot_token=self._cipher.decrypt(row.bot_token_encrypted) or "",
            bot_id=row.bot_id or "",
            bot_user_id=row.bot_user_id or "",
            bot_scopes=row.bot_scopes or "",
            bot_refresh_token=self._cipher.decrypt(row.bot_refresh_token_encrypted),
            bot_token_expires_at=row.bot_token_expires_at,
            is_enterprise_install=row.is_enterprise_install,
            installed_at=row.installed_at,
        )


class SqlOAuthStateStore(AsyncOAuthStateStore):
    """OAuth ``state`` values in the database: any replica can finish an install, once.

    Consuming is a single ``DELETE ... WHERE state = ? AND expires_at > now``, so of two
    concurrent callbacks with the same state only one succeeds. Expired states are swept when
    new ones are issued. ``clock`` returns an aware UTC datetime (injectable for tests).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        expiration_seconds: int = DEFAULT_STATE_EXPIRATION_S,
        clock: Callable[[], datetime] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self._engine = engine
        self.expiration_seconds = expiration_seconds
        self._clock = clock or (lambda: datetime.now(UTC))
        self._logger = logger or logging.getLogger(__name__)

    @property
    def logger(self) -> logging.Logger:
        return self._logger

    def _now(self) -> datetime:
        return self._clock().astimezone(UTC)

    def issue(self) -> str:
        state = secrets.token_urlsafe(32)
        now = self._now()
        with Session(self._engine) as session:
            session.execute(delete(SlackOAuthState).where(col(SlackOAuthState.expires_at) <= now))
            session.add(
                SlackOAuthState(
                    state=state, expires_at=now + timedelta(seconds=self.expiration_seconds)
                )
            )
            session.commit()
        return state

    def consume(self, state: str | None) -> bool:
        """True once for a state this store issued and that has not expired; else False."""
        if not state:
            return False
        with self._engine.begin() as connection:
            result = connection.execute(
                delete(SlackOAuthState).where(
                    col(SlackOAuthState.state) == state,
                    col(SlackOAuthState.expires_at) > self._now(),
                )
            )
        return result.rowcount == 1

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        return await asyncio.to_thread(self.issue)

    async def async_consume(self, state: str) -> bool:
        return await asyncio.to_thread(self.consume, state)


# --- bolt listeners' work (registered by SlackBot in multi-workspace mode) ---------------------


def _installation_key(context: AsyncBoltContext) -> tuple[str | None, str | None]:
    """(enterprise_id, team_id) as the store keys it: org-wide installs have no team."""
    team_id = None if context.is_enterprise_install else context.team_id
    return context.enterprise_id, team_id


async def forget_installation(
    store: AsyncInstallationStore | None, context: AsyncBoltContext
) -> None:
    """``app_uninstalled``: every token of that workspace (or org) is deleted.

    Without a store (one static ``SLACK_BOT_TOKEN``) there is nothing to delete; the operator
    is told why the bot went silent.
    """
    enterprise_id, team_id = _installation_key(context)
    where = team_id or enterprise_id
    if store is None:
        logger.warning("Slack app uninstalled from %s: SLACK_BOT_TOKEN no longer works", where)
        return
    await store.async_delete_all(enterprise_id=enterprise_id, team_id=team_id)
    logger.warning("Slack app uninstalled from %s: its stored tokens were deleted", where)


async def forget_revoked_tokens(
    store: AsyncInstallationStore | None, context: AsyncBoltContext, event: Mapping[str, Any]
) -> None:
    """``tokens_revoked``: delete the revoked users' installations and, if revoked, the bot's."""
    enterprise_id, team_id = _installation_key(context)
    where = team_id or enterprise_id
    tokens = event.get("tokens") or {}
    if store is None:
        if tokens.get("bot"):
            logger.warning("Slack bot token revoked in %s: SLACK_BOT_TOKEN no longer works", where)
        return
    for user_id in tokens.get("oauth") or []:
        await store.async_delete_installation(
            enterprise_id=enterprise_id, team_id=team_id, user_id=user_id
        )
    if tokens.get("bot"):
        await store.async_delete_bot(enterprise_id=enterprise_id, team_id=team_id)
    logger.warning("Slack tokens revoked in %s: deleted from the store", where)
