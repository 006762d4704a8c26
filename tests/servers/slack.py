"""A local server that speaks Slack's wire protocols: the Web API, Socket Mode and signed Events.

Why this exists: the bot must be tested against Slack without reaching Slack (no network, no
workspace, no flakiness), yet mocking ``slack_sdk`` or ``slack_bolt`` would hide exactly the bugs
we care about -- a wrong ``base_url``, a token sent to the wrong workspace, a missing ack, a
retry that does not honour ``Retry-After``, a reconnect that never happens. So instead of a mock
we run a real HTTP + WebSocket server on ``127.0.0.1`` and point the *real* clients at it:
``WebClient(token=..., base_url=sim.base_url)``, ``AsyncWebClient(...)`` and the Socket Mode
clients (which find the WebSocket through ``apps.connections.open``).

Supported wire surface (enough for a support bot, nothing more):

* **Web API** -- ``POST``/``GET /api/<method>`` with form-encoded, JSON or query-string
  arguments (merged in that order of precedence: query < body), the token in
  ``Authorization: Bearer`` or a ``token`` field. Answers are Slack-shaped
  (``{"ok": true, ...}`` / ``{"ok": false, "error": "..."}``, HTTP 200 even for errors, like
  Slack). Methods: ``api.test``, ``auth.test``, ``chat.postMessage``, ``chat.update``,
  ``chat.delete``, ``chat.postEphemeral``, ``conversations.replies``,
  ``conversations.history``, ``conversations.info``, ``users.info``, ``reactions.add``,
  ``reactions.remove``, ``bots.info``, ``oauth.v2.access`` and ``apps.connections.open``.
  Anything else gets ``unknown_method``.
* **Streaming** -- ``chat.startStream`` / ``chat.appendStream`` / ``chat.stopStream`` with
  Slack's checks (``thread_ts`` required; ``recipient_team_id``/``recipient_user_id`` in
  channels; 12,000 characters of ``markdown_text`` per call; ``message_not_in_streaming_state``
  after the stop); :meth:`~SlackSimulator.streams` records each stream's appends and final
  blocks, and :meth:`~SlackSimulator.refuse_streaming` makes a team refuse them.
* **Sign in with Slack** -- the authorize page, ``openid.connect.token``,
  ``openid.connect.userInfo`` and the JWKS (tests/servers/slack_openid.py; ``sim.openid``).
* **Socket Mode** -- ``apps.connections.open`` (app-level token) hands out a single-use
  ``ws://127.0.0.1:PORT/link/?ticket=...`` URL served by the same server. On connect the server
  sends Slack's ``hello``; tests push ``events_api`` / ``interactive`` / ``slash_commands``
  envelopes, read back the client's acks, and trigger reconnects with ``disconnect`` messages or
  server-side closes.
* **Events over signed HTTP** -- pure helpers (:func:`signed_event_request`,
  :func:`event_envelope`) that build the exact bytes and headers Slack POSTs to a Request URL,
  for testing the bot's own HTTP endpoint.

State is in memory: workspaces (bot tokens), app tokens, channels, users, bots, channel history
(threads included), ephemeral messages, OAuth codes. Every Web API call is recorded
(:attr:`SlackSimulator.calls`) with its parsed arguments and the answer given, and faults can be
injected at runtime from any thread (:meth:`~SlackSimulator.rate_limit`,
:meth:`~SlackSimulator.fail`, :attr:`~SlackSimulator.latency`).

Usage in a test::

    with SlackSimulator() as sim:
        sim.add_workspace("T111", "xoxb-t111", "U0BOT", "B0BOT", team_name="Acme")
        client = WebClient(token="xoxb-t111", base_url=sim.base_url)
        client.chat_postMessage(channel="C111", text="hi")
        assert sim.calls_to("chat.postMessage")[0].args["text"] == "hi"

From the command line (serves until Ctrl-C, with a demo workspace)::

    python -m tests.servers.slack --port 8098
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import collections
import contextlib
import copy
import hashlib
import hmac
import json
import re
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import parse_qsl, urlencode

from aiohttp import WSCloseCode, WSMsgType, web

from tests.servers.slack_openid import AUTHORIZE_PATH, KEYS_PATH, SlackOpenId

__all__ = [
    "SHARED_SLACK_DIR",
    "SlackCall",
    "SlackSimulator",
    "SocketAck",
    "SocketConnection",
    "SocketEnvelope",
    "SocketModeNotConnected",
    "Workspace",
    "event_envelope",
    "load_shared_fixture",
    "sign_request",
    "signed_command_request",
    "signed_event_request",
    "signed_interactive_request",
]

T = TypeVar("T")

API_PREFIX = "/api/"
SOCKET_PATH = "/link/"
CONTROL_PREFIX = "/_sim/"
RESPONSE_PREFIX = "/_response/"
MAX_VIEW_BLOCKS = 100
MAX_MESSAGE_BLOCKS = 50
MAX_SUGGESTED_PROMPTS = 4
MAX_LOADING_MESSAGES = 10
DEFAULT_TS_START = 1_700_000_000
"""Seconds part of the first generated message ``ts`` ("1700000000.000100")."""
TS_STEP_US = 100
"""Generated ``ts`` values grow by 100 microseconds, so they are unique and strictly increasing."""
MAX_TEXT = 40_000
STREAM_TEXT_LIMIT = 12_000
"""``markdown_text`` of one chat.startStream/appendStream/stopStream call, in characters."""
REPLIES_DEFAULT_LIMIT = 1000
HISTORY_DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_SLACK_DIR = REPO_ROOT.parent / "shared" / "data" / "slack"
"""Where the shared Slack payload fixtures live (``<repo>/../shared/data/slack``)."""

# Slack ids: channels C/G/D, users U/W, all upper-case alphanumerics.
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_USER_ID = re.compile(r"^[UWB][A-Z0-9]{2,}$")
_TS = re.compile(r"^\d{1,12}(\.\d{1,6})?$")

# Which credential each method needs; methods missing from both sets need a bot token.
_APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
_NO_TOKEN_METHODS = frozenset(
    {"api.test", "oauth.v2.access", "openid.connect.token", "openid.connect.userInfo"}
)

# Form-encoded clients send these as JSON strings; Slack parses them, and so do we.
_JSON_ARGS = {
    "blocks": "invalid_blocks",
    "attachments": "invalid_attachments",
    "metadata": "invalid_metadata_format",
}


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Workspace:
    """One installed workspace: the bot token and who the bot is there.

    ``enterprise_id`` is set for workspaces in an Enterprise Grid org; ``auth.test`` then
    returns it, which is how multi-tenant bots tell org installs apart.
    """

    team_id: str
    bot_token: str
    bot_user_id: str
    bot_id: str
    team_name: str
    domain: str
    enterprise_id: str | None = None
    enterprise_name: str | None = None
    app_id: str = "A111"
    bot_name: str = "supportbot"

    @property
    def url(self) -> str:
        """The workspace URL as ``auth.test`` reports it."""
        return f"https://{self.domain}.slack.com/"


@dataclass(frozen=True)
class SlackCall:
    """One Web API call as the simulator received and answered it.

    ``headers`` keys are lower-cased. ``args`` merges the query string, form fields and JSON
    body (form values are strings, as on the wire; ``blocks``/``attachments`` stay as sent).
    ``token`` is the credential used (bearer header first, then the ``token`` field).
    ``status`` and ``response`` are what the client got back -- recorded before any injected
    :attr:`SlackSimulator.latency`, so a client that timed out still shows up here.
    """

    method: str
    http_method: str
    headers: dict[str, str]
    args: dict[str, Any]
    token: str | None
    status: int
    response: dict[str, Any] | None
    received_at: float
    raw_body: bytes = b""

    @property
    def ok(self) -> bool:
        """Whether the answer was a successful ``{"ok": true}`` with HTTP 200."""
        return self.status == 200 and bool(self.response and self.response.get("ok"))

    @property
    def error(self) -> str | None:
        """The ``error`` string of a failed answer, else ``None``."""
        return None if self.response is None else self.response.get("error")


@dataclass(frozen=True)
class SocketConnection:
    """One Socket Mode WebSocket connection (a snapshot; ``closed_at`` is None while open)."""

    id: int
    app_id: str
    ticket: str
    opened_at: float
    closed_at: float | None = None

    @property
    def open(self) -> bool:
        """Whether the connection was still open when this snapshot was taken."""
        return self.closed_at is None


@dataclass(frozen=True)
class SocketEnvelope:
    """One envelope the simulator sent over Socket Mode (``body`` is the exact JSON object)."""

    envelope_id: str
    type: str
    body: dict[str, Any]
    connection_id: int
    sent_at: float


@dataclass(frozen=True)
class SocketAck:
    """One acknowledgement received from a Socket Mode client.

    ``known`` tells whether the ``envelope_id`` matches an envelope the simulator sent -- an
    ack for an unknown id usually means the app echoed the wrong field.
    """

    envelope_id: str
    payload: Any
    connection_id: int
    received_at: float
    raw: str
    known: bool


@dataclass(frozen=True)
class _Fault:
    """One queued injected failure for one Web API method (or ``"*"``)."""

    status: int
    error: str
    retry_after: int | None = None
    body: Mapping[str, Any] | str | bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _Conn:
    """A live Socket Mode connection (internal; see :class:`SocketConnection`)."""

    id: int
    app_id: str
    ticket: str
    ws: web.WebSocketResponse
    opened_at: float
    closed_at: float | None = None

    def snapshot(self) -> SocketConnection:
        return SocketConnection(self.id, self.app_id, self.ticket, self.opened_at, self.closed_at)


@dataclass
class _Request:
    """A parsed Web API request handed to one method implementation."""

    method: str
    args: dict[str, Any]
    token: str | None
    headers: dict[str, str]
    workspace: Workspace | None = None
    app_id: str | None = None


class SocketModeNotConnected(RuntimeError):
    """Raised when an envelope is pushed while no Socket Mode client is connected."""


class _SlackError(Exception):
    """Raised by a method implementation to answer ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


def _missing(name: str) -> _SlackError:
    """Slack's answer for a missing required argument."""
    return _SlackError(
        "invalid_arguments",
        response_metadata={"messages": [f"[ERROR] missing required field: {name}"]},
    )


# --------------------------------------------------------------------------- small helpers


def _parse_ts(ts: str) -> int:
    """``"1700000000.000100"`` -> microseconds; raises ``ValueError`` for malformed values."""
    if not isinstance(ts, str) or not _TS.match(ts):
        raise ValueError(f"not a Slack ts: {ts!r}")
    seconds, _, fraction = ts.partition(".")
    return int(seconds) * 1_000_000 + int((fraction + "000000")[:6])


def _format_ts(micros: int) -> str:
    """Microseconds -> Slack's ``"<seconds>.<6 digits>"``."""
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def _ts_key(message: Mapping[str, Any]) -> int:
    return _parse_ts(message["ts"])


def _flag(value: Any) -> bool:
    """Slack's boolean arguments: JSON booleans, or ``"true"``/``"1"`` in forms."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def _int_arg(args: Mapping[str, Any], name: str, default: int) -> int:
    try:
        return int(args.get(name) or default)
    except (TypeError, ValueError):
        return default


def _str_arg(args: Mapping[str, Any], name: str) -> str | None:
    value = args.get(name)
    if value is None or value == "":
        return None
    return str(value)


def _encode_cursor(ts: str) -> str:
    """Opaque cursor in Slack's style: base64 of ``next_ts:<ts>``."""
    return base64.b64encode(f"next_ts:{ts}".encode()).decode()


def _decode_cursor(cursor: str) -> str:
    try:
        decoded = base64.b64decode(cursor.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _SlackError("invalid_cursor") from exc
    prefix, _, ts = decoded.partition(":")
    if prefix != "next_ts" or not _TS.match(ts):
        raise _SlackError("invalid_cursor")
    return ts


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "workspace"


def _in_running_loop() -> bool:
    """Whether the calling thread is running an asyncio event loop right now."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


# --------------------------------------------------------------------------- the simulator


class SlackSimulator:
    """Local Slack (Web API + Socket Mode) for tests and manual trials (a context manager).

    Nothing happens in ``__init__``; :meth:`start` runs an aiohttp server on its own event loop
    in a background daemon thread (so it serves sync and async clients alike, and never depends
    on the test's loop), and :meth:`stop` closes WebSockets and the listener promptly.

    Args:
        host: interface to bind (default ``127.0.0.1``).
        port: TCP port, 0 (default) for any free one.
        latency: seconds added to every Web API response (see :attr:`latency`).
        autocreate: when true (default), channel ids (``C``/``G``/``D`` + alphanumerics) and
            user ids (``U``/``W``) never seen before are created on first use, so tests need not
            register every channel. Set false to get ``channel_not_found``/``user_not_found``
            like a real workspace would for ids the bot cannot see.
        ts_start: seconds part of the first generated ``ts``; ``ts`` values are deterministic:
            ``"1700000000.000100"``, ``"1700000000.000200"``, ...
        client_id, client_secret: if set, ``oauth.v2.access`` checks them (HTTP Basic or form
            fields) and answers ``invalid_client_id``/``bad_client_secret`` on mismatch.
        verbose: print one line per Web API call and Socket Mode event to stderr.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        autocreate: bool = True,
        ts_start: int = DEFAULT_TS_START,
        client_id: str | None = None,
        client_secret: str | None = None,
        verbose: bool = False,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.autocreate = autocreate
        self.client_id = client_id
        self.client_secret = client_secret
        self.verbose = verbose
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._latency = 0.0
        self.latency = latency
        # directory
        self._workspaces: dict[str, Workspace] = {}  # bot token -> workspace
        self._teams: dict[str, Workspace] = {}  # team id -> workspace (last added wins)
        self._app_tokens: dict[str, str] = {}  # app-level token -> app id
        self._revoked: set[str] = set()
        self._expired: set[str] = set()  # rotated tokens past their expiry: token_expired
        self._refresh_tokens: dict[str, dict[str, Any]] = {}
        self._oauth_codes: dict[str, dict[str, Any]] = {}
        self._used_codes: set[str] = set()
        # Sign in with Slack (OpenID Connect): tests/servers/slack_openid.py
        self.openid = SlackOpenId(self._lock)
        self.openid.client_id, self.openid.client_secret = client_id, client_secret
        self._channels: dict[str, dict[str, Any]] = {}
        # team id -> its user groups, as usergroups.list returns them
        self._usergroups: dict[str, list[dict[str, Any]]] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._bots: dict[str, dict[str, Any]] = {}
        # content
        self._messages: dict[str, list[dict[str, Any]]] = {}
        self._ephemeral: list[dict[str, Any]] = []
        # response_url token -> the messages posted through it (see response_url_for)
        self._response_urls: dict[str, dict[str, Any]] = {}
        self._responses: list[dict[str, Any]] = []
        self._assistant_threads: dict[tuple[str, str], dict[str, Any]] = {}
        self._home_views: dict[str, dict[str, Any]] = {}
        # streamed messages (ts -> record) and teams whose streaming calls are refused
        self._streams: dict[str, dict[str, Any]] = {}
        self._streaming_refused: dict[str, str] = {}
        self._last_ts_us = ts_start * 1_000_000
        # recording and faults
        self._calls: list[SlackCall] = []
        self._faults: dict[str, collections.deque[_Fault]] = {}
        # socket mode
        self._tickets: dict[str, str] = {}  # ticket -> app id
        self._ticket_counter = 0
        self._conn_counter = 0
        self._conns: dict[int, _Conn] = {}
        self._envelopes: list[SocketEnvelope] = []
        self._envelope_ids: set[str] = set()
        self._acks: list[SocketAck] = []
        self._client_messages: list[Any] = []
        self._tasks: set[asyncio.Future[None]] = set()
        # server plumbing
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> Self:
        """Bind the socket and serve from a background thread; returns ``self``."""
        if self._loop is not None:
            raise RuntimeError("SlackSimulator is already running")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="slack-simulator", daemon=True)
        thread.start()
        try:
            self._port = asyncio.run_coroutine_threadsafe(self._astart(), loop).result(10)
        except BaseException:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(2)
            loop.close()
            raise
        self._loop, self._thread = loop, thread
        thread.name = f"slack-simulator-{self._port}"
        return self

    def stop(self) -> None:
        """Close every WebSocket, stop serving and end the thread; safe to call twice."""
        loop, thread = self._loop, self._thread
        if loop is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._astop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(5)
        if not loop.is_running():
            loop.close()
        self._loop = self._thread = self._runner = None
        self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def _astart(self) -> int:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", API_PREFIX + "{method}", self._handle_api)
        app.router.add_get(SOCKET_PATH, self._handle_socket)
        app.router.add_route("*", CONTROL_PREFIX + "{action}", self._handle_control)
        app.router.add_post(RESPONSE_PREFIX + "{token}", self._handle_response_url)
        app.router.add_get(AUTHORIZE_PATH, self.openid.handle_authorize)
        app.router.add_get(KEYS_PATH, self.openid.handle_keys)
        app.router.add_route("*", "/{tail:.*}", self._handle_not_found)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.requested_port)
        await site.start()
        self._runner = runner
        return int(runner.addresses[0][1])

    async def _astop(self) -> None:
        with self._lock:
            conns = [c for c in self._conns.values() if c.closed_at is None]
        for conn in conns:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(code=WSCloseCode.GOING_AWAY), 1.0)
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._loop is not None

    @property
    def port(self) -> int:
        """The bound TCP port (only after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("SlackSimulator is not running; call start() first")
        return self._port

    @property
    def url(self) -> str:
        """Server root, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to pass as ``base_url`` to ``WebClient``/``AsyncWebClient``: ends with ``/api/``.

        slack_sdk joins it with the method name using ``urljoin``, so the trailing slash
        matters (the SDK adds one if missing), exactly as with ``https://slack.com/api/``.
        """
        return f"{self.url}{API_PREFIX}"

    @property
    def socket_url(self) -> str:
        """The WebSocket endpoint root (clients get ticketed URLs from apps.connections.open)."""
        return f"ws://{self.host}:{self.port}{SOCKET_PATH}"

    # -- directory: workspaces, tokens, channels, users ------------------------------------

    def add_workspace(
        self,
        team_id: str,
        bot_token: str,
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        enterprise_id: str | None = None,
        *,
        team_name: str | None = None,
        enterprise_name: str | None = None,
        app_id: str = "A111",
        bot_name: str = "supportbot",
        domain: str | None = None,
    ) -> Workspace:
        """Install the app in a workspace: ``bot_token`` becomes valid for that team.

        Also registers the bot user (``users.info`` answers ``is_bot: true``) and the bot
        (``bots.info``). Call it once per workspace to test multi-tenant routing; a second call
        with the same token replaces the first.
        """
        name = team_name or f"Workspace {team_id}"
        workspace = Workspace(
            team_id=team_id,
            bot_token=bot_token,
            bot_user_id=bot_user_id,
            bot_id=bot_id,
            team_name=name,
            domain=domain or _slug(name),
            enterprise_id=enterprise_id,
            enterprise_name=enterprise_name,
            app_id=app_id,
            bot_name=bot_name,
        )
        with self._changed:
            self._workspaces[bot_token] = workspace
            self._teams[team_id] = workspace
            self._revoked.discard(bot_token)
            self.add_bot(bot_id, app_id=app_id, user_id=bot_user_id, name=bot_name, team_id=team_id)
            self.add_user(
                bot_user_id,
                team_id=team_id,
                name=bot_name,
                real_name=bot_name,
                is_bot=True,
                bot_id=bot_id,
                app_id=app_id,
            )
            self._changed.notify_all()
        return workspace

    def workspace(self, team_id: str) -> Workspace:
        """The workspace registered for ``team_id`` (``KeyError`` if none)."""
        with self._lock:
            return self._teams[team_id]

    def add_app_token(self, token: str, app_id: str = "A111") -> None:
        """Register an app-level (``xapp-``) token, the credential of ``apps.connections.open``."""
        with self._lock:
            self._app_tokens[token] = app_id
            self._revoked.discard(token)

    def revoke(self, token: str) -> None:
        """Revoke a bot or app token: every later call with it answers ``token_revoked``."""
        with self._lock:
            self._revoked.add(token)

    def expire(self, token: str) -> None:
        """Expire a rotating token: every later call with it answers ``token_expired``."""
        with self._lock:
            self._expired.add(token)

    def add_refresh_token(
        self,
        refresh_token: str,
        *,
        team_id: str,
        new_token: str,
        next_refresh_token: str | None = None,
        expires_in: int = 43_200,
    ) -> None:
        """Make ``oauth.v2.access`` with ``grant_type=refresh_token`` accept ``refresh_token``
        once (token rotation): it answers ``new_token``, valid for the same workspace."""
        with self._lock:
            self._refresh_tokens[refresh_token] = {
                "team_id": team_id,
                "new_token": new_token,
                "next_refresh_token": next_refresh_token or f"{refresh_token}-next",
                "expires_in": expires_in,
            }

    def add_oauth_code(
        self,
        code: str,
        *,
        team_id: str,
        bot_token: str,
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        team_name: str | None = None,
        enterprise_id: str | None = None,
        enterprise_name: str | None = None,
        app_id: str = "A111",
        scope: str = "app_mentions:read,channels:history,chat:write,im:history,reactions:write",
        authed_user_id: str = "U0INSTALLER",
        is_enterprise_install: bool = False,
    ) -> dict[str, Any]:
        """Make ``oauth.v2.access`` accept ``code`` once; returns the answer it will give.

        The workspace (and its bot token) is registered when the code is exchanged, not
        before -- as in Slack, where the token only exists once the install completes. A second
        exchange of the same code answers ``code_already_used``; unknown codes ``invalid_code``.
        """
        name = team_name or f"Workspace {team_id}"
        enterprise = (
            {"id": enterprise_id, "name": enterprise_name or f"Org {enterprise_id}"}
            if enterprise_id
            else None
        )
        response: dict[str, Any] = {
            "ok": True,
            "app_id": app_id,
            "authed_user": {"id": authed_user_id},
            "scope": scope,
            "token_type": "bot",
            "access_token": bot_token,
            "bot_user_id": bot_user_id,
            "team": {"id": team_id, "name": name},
            "enterprise": enterprise,
            "is_enterprise_install": is_enterprise_install,
        }
        install = {
            "response": response,
            "workspace": {
                "team_id": team_id,
                "bot_token": bot_token,
                "bot_user_id": bot_user_id,
                "bot_id": bot_id,
                "enterprise_id": enterprise_id,
                "team_name": name,
                "enterprise_name": enterprise_name,
                "app_id": app_id,
            },
        }
        with self._lock:
            self._oauth_codes[code] = install
            self._used_codes.discard(code)
        return copy.deepcopy(response)

    def add_channel(
        self,
        channel_id: str,
        *,
        name: str | None = None,
        is_private: bool | None = None,
        is_im: bool | None = None,
        is_mpim: bool = False,
        user: str | None = None,
        team_id: str | None = None,
        is_member: bool = True,
        is_archived: bool = False,
    ) -> dict[str, Any]:
        """Register a conversation; the type defaults from the id prefix (C public, G private,
        D direct message).

        IMs carry ``is_im: true`` and ``is_channel``/``is_private`` false (real IM objects omit
        those two keys, so ``.get()`` is falsy either way). ``is_member=False`` makes
        ``chat.postMessage`` answer ``not_in_channel``, as for a bot not invited to a channel.
        """
        im = channel_id.startswith("D") if is_im is None else is_im
        private = (channel_id.startswith("G") or is_mpim) if is_private is None else is_private
        if im:
            private = False
        channel: dict[str, Any] = {
            "id": channel_id,
            "created": DEFAULT_TS_START,
            "is_archived": is_archived,
            "is_im": im,
            "is_mpim": is_mpim,
            "is_channel": not im and not is_mpim,
            "is_group": False,
            "is_private": private,
            "is_member": is_member,
            "is_general": False,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "context_team_id": team_id,
        }
        if im:
            channel.update({"user": user, "is_user_deleted": False, "priority": 0})
        else:
            channel_name = name or channel_id.lower()
            channel.update(
                {
                    "name": channel_name,
                    "name_normalized": channel_name,
                    "creator": user or "U0CREATOR",
                    "topic": {"value": "", "creator": "", "last_set": 0},
                    "purpose": {"value": "", "creator": "", "last_set": 0},
                }
            )
        with self._lock:
            self._channels[channel_id] = channel
            self._messages.setdefault(channel_id, [])
        return copy.deepcopy(channel)

    def add_user(
        self,
        user_id: str,
        *,
        team_id: str | None = None,
        name: str | None = None,
        real_name: str | None = None,
        is_bot: bool = False,
        bot_id: str | None = None,
        app_id: str | None = None,
        deleted: bool = False,
        email: str | None = None,
        is_restricted: bool = False,
        tz: str = "Etc/UTC",
        locale: str = "en-US",
    ) -> dict[str, Any]:
        """Register a user for ``users.info`` (bots: ``is_bot=True`` plus ``bot_id``).

        ``locale`` (e.g. ``"ko-KR"``) is returned only when the call asks ``include_locale``.
        """
        display = name or user_id.lower()
        profile: dict[str, Any] = {
            "real_name": real_name or display,
            "display_name": display,
            "team": team_id,
        }
        if email:
            profile["email"] = email
        if bot_id:
            profile["bot_id"] = bot_id
        if app_id:
            profile["api_app_id"] = app_id
        user = {
            "id": user_id,
            "team_id": team_id,
            "name": display,
            "deleted": deleted,
            "real_name": real_name or display,
            "tz": tz,
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": is_restricted,
            "is_ultra_restricted": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": DEFAULT_TS_START,
            "profile": profile,
            "locale": locale,
        }
        with self._lock:
            self._users[user_id] = user
        return copy.deepcopy(user)

    def add_bot(
        self,
        bot_id: str,
        *,
        app_id: str = "A111",
        user_id: str | None = None,
        name: str = "bot",
        team_id: str | None = None,
    ) -> dict[str, Any]:
        """Register a bot for ``bots.info`` (e.g. another app whose messages the bot sees)."""
        bot = {
            "id": bot_id,
            "deleted": False,
            "name": name,
            "updated": DEFAULT_TS_START,
            "app_id": app_id,
            "user_id": user_id,
            "team_id": team_id,
            "icons": {"image_36": "", "image_48": "", "image_72": ""},
        }
        with self._lock:
            self._bots[bot_id] = bot
        return copy.deepcopy(bot)

    # -- content: history and threads -----------------------------------------------------

    def seed_message(
        self,
        channel: str,
        user: str,
        text: str,
        ts: str | None = None,
        thread_ts: str | None = None,
        bot_id: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Put an existing message in a channel's history (e.g. earlier messages of a thread).

        ``ts`` defaults to the next generated one; an explicit ``ts`` later than everything so
        far moves the generator past it, so messages the bot posts afterwards still sort last.
        ``fields`` are merged into the message (``subtype``, ``blocks``, ``team``, ...).
        Returns a copy of the stored message.
        """
        with self._changed:
            if channel not in self._channels:
                self.add_channel(channel)
            if ts is None:
                ts = self._next_ts()
            else:
                micros = _parse_ts(ts)
                self._last_ts_us = max(self._last_ts_us, micros)
                ts = _format_ts(micros)
            message: dict[str, Any] = {"type": "message", "user": user, "text": text, "ts": ts}
            if bot_id:
                message["bot_id"] = bot_id
            message.update(fields)
            if thread_ts:
                message["thread_ts"] = self._thread_root(channel, thread_ts)
            self._store(channel, message)
            self._changed.notify_all()
            return copy.deepcopy(message)

    def delete_message(self, channel: str, ts: str) -> None:
        """Delete a message as its author would: a thread parent with replies becomes Slack's
        ``tombstone`` ("This message was deleted."), any other message goes."""
        with self._changed:
            message = self._find(channel, ts)
            if message is None:
                raise KeyError(f"no message {ts} in {channel}")
            if message.get("reply_count"):
                message.update(
                    subtype="tombstone", text="This message was deleted.", user="USLACKBOT"
                )
                message.pop("reactions", None)
            else:
                self._messages[channel].remove(message)
                root = message.get("thread_ts")
                parent = self._find(channel, root) if root and root != ts else None
                if parent is not None:
                    self._refresh_thread_meta(channel, parent)
            self._changed.notify_all()

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """A copy of a channel's whole history, oldest first, thread replies included."""
        with self._lock:
            return copy.deepcopy(self._messages.get(channel, []))

    def add_usergroup(
        self, team_id: str, group_id: str, handle: str, name: str = "", users: Iterable[str] = ()
    ) -> None:
        """A user group of the team (``<!subteam^ID>`` pings its members)."""
        members = list(users)
        with self._lock:
            self._usergroups.setdefault(team_id, []).append(
                {
                    "id": group_id,
                    "team_id": team_id,
                    "is_usergroup": True,
                    "name": name or handle,
                    "description": "",
                    "handle": handle,
                    "is_external": False,
                    "date_create": 1446746793,
                    "date_update": 1446746793,
                    "date_delete": 0,
                    "auto_type": None,
                    "created_by": "U060RNRCZ",
                    "updated_by": "U060RNRCZ",
                    "deleted_by": None,
                    "prefs": {"channels": [], "groups": []},
                    "user_count": len(members),
                    "users": members,
                }
            )

    def pings(self, channel: str | None = None) -> list[tuple[str, str, list[str]]]:
        """Who each stored message would notify: (channel, ts, targets), for messages with
        any. A target is ``@U…`` (a user mention), ``subteam^S…`` (a user group) or
        ``here``/``channel``/``everyone``, read from the text and every ``mrkdwn``/``text``
        field of the blocks, as Slack parses them (escaped ``&lt;…&gt;`` is no mention)."""
        found = []
        with self._lock:
            channels = [channel] if channel else list(self._messages)
            for cid in channels:
                for message in self._messages.get(cid, []):
                    targets = _mentions(message)
                    if targets:
                        found.append((cid, str(message.get("ts")), targets))
        return found

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """A copy of one stored message, or ``None``."""
        with self._lock:
            found = self._find(channel, ts)
            return copy.deepcopy(found) if found else None

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """A copy of a thread (parent first, then replies in order), as conversations.replies."""
        with self._lock:
            return copy.deepcopy(self._thread_messages(channel, ts))

    @property
    def ephemeral_messages(self) -> list[dict[str, Any]]:
        """Copies of every ``chat.postEphemeral`` message (they never enter history)."""
        with self._lock:
            return copy.deepcopy(self._ephemeral)

    def _next_ts(self) -> str:
        self._last_ts_us += TS_STEP_US
        return _format_ts(self._last_ts_us)

    def _find(self, channel: str, ts: str) -> dict[str, Any] | None:
        for message in self._messages.get(channel, []):
            if message["ts"] == ts:
                return message
        return None

    def _thread_root(self, channel: str, thread_ts: str) -> str:
        """Replying to a reply lands in the same thread, as in Slack: resolve to the root."""
        parent = self._find(channel, thread_ts)
        if parent is not None and parent.get("thread_ts") not in (None, parent["ts"]):
            return str(parent["thread_ts"])
        return thread_ts

    def _thread_messages(self, channel: str, ts: str) -> list[dict[str, Any]]:
        root = self._thread_root(channel, ts)
        return [
            m
            for m in self._messages.get(channel, [])
            if m["ts"] == root or m.get("thread_ts") == root
        ]

    def _store(self, channel: str, message: dict[str, Any]) -> None:
        history = self._messages.setdefault(channel, [])
        if any(m["ts"] == message["ts"] for m in history):
            raise ValueError(f"channel {channel} already has a message with ts {message['ts']}")
        history.append(message)
        history.sort(key=_ts_key)
        root = message.get("thread_ts")
        if root and root != message["ts"]:
            parent = self._find(channel, root)
            if parent is not None:
                message.setdefault("parent_user_id", parent.get("user"))
                self._refresh_thread_meta(channel, parent)

    def _refresh_thread_meta(self, channel: str, parent: dict[str, Any]) -> None:
        """Keep the parent's reply_count/reply_users/latest_reply in step with its replies."""
        replies = [
            m
            for m in self._messages.get(channel, [])
            if m.get("thread_ts") == parent["ts"] and m["ts"] != parent["ts"]
        ]
        if not replies:
            for key in ("reply_count", "reply_users", "reply_users_count", "latest_reply"):
                parent.pop(key, None)
            return
        users = list(dict.fromkeys(str(m.get("user")) for m in replies if m.get("user")))
        parent.update(
            {
                "thread_ts": parent["ts"],
                "reply_count": len(replies),
                "reply_users": users,
                "reply_users_count": len(users),
                "latest_reply": replies[-1]["ts"],
            }
        )

    # -- recording ------------------------------------------------------------------------

    @property
    def calls(self) -> list[SlackCall]:
        """A snapshot (copy) of every Web API call so far, in arrival order."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[SlackCall]:
        """The recorded calls of one Web API method (e.g. ``"chat.postMessage"``)."""
        with self._lock:
            return [c for c in self._calls if c.method == method]

    def clear_calls(self) -> None:
        """Forget recorded Web API calls (e.g. between phases of one test)."""
        with self._lock:
            self._calls.clear()

    def wait_for(self, method: str | None, count: int = 1, timeout: float = 5.0) -> list[SlackCall]:
        """Block until ``count`` calls of ``method`` (``None``: any method) have arrived.

        Returns those calls. Raises ``TimeoutError`` listing what did arrive. Called from a
        running event loop it would freeze the very loop the client under test needs, so
        there it raises ``RuntimeError`` unless the calls are already in -- use
        :meth:`async_wait_for` from async code.
        """

        def ready() -> list[SlackCall] | None:
            found = [c for c in self._calls if method is None or c.method == method]
            return found if len(found) >= count else None

        def describe() -> str:
            seen = [c.method for c in self._calls]
            return f"expected {count} call(s) to {method or 'any method'}; received {seen}"

        return self._wait(ready, timeout, describe, "async_wait_for")

    async def async_wait_for(
        self, method: str | None, count: int = 1, timeout: float = 5.0
    ) -> list[SlackCall]:
        """:meth:`wait_for` for async tests (waits in a worker thread, the loop stays free)."""
        return await asyncio.to_thread(self.wait_for, method, count, timeout)

    def _wait(
        self,
        ready: Callable[[], T | None],
        timeout: float,
        describe: Callable[[], str],
        async_name: str,
    ) -> T:
        with self._changed:
            result = ready()
            if result is not None:
                return result
            if _in_running_loop():
                raise RuntimeError(
                    "this wait would block the running event loop (and the client under test "
                    f"on it); use `await sim.{async_name}(...)` instead"
                )
            deadline = time.monotonic() + timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(describe())
                self._changed.wait(remaining)
                result = ready()
                if result is not None:
                    return result

    def _record(self, call: SlackCall) -> None:
        with self._changed:
            self._calls.append(call)
            self._changed.notify_all()
        if self.verbose:
            outcome = "ok" if call.ok else f"{call.status} {call.error}"
            print(f"[slack-sim] {call.method} {call.args} -> {outcome}", file=sys.stderr)

    # -- fault injection ------------------------------------------------------------------

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with HTTP 429 and ``Retry-After``.

        The body is ``{"ok": false, "error": "ratelimited"}`` like Slack's. ``retry_after`` is
        whole seconds because slack_sdk's retry handlers parse the header with ``int()``.
        ``method="*"`` matches any method. Faults queue up in call order.
        """
        if times < 0:
            raise ValueError("times must be >= 0")
        if not isinstance(retry_after, int) or retry_after < 0:
            raise ValueError("retry_after must be a whole number of seconds >= 0")
        fault = _Fault(429, "ratelimited", retry_after=retry_after)
        with self._lock:
            self._faults.setdefault(method, collections.deque()).extend([fault] * times)

    def fail(
        self,
        method: str,
        times: int = 1,
        error: str = "internal_error",
        status: int = 200,
        *,
        body: Mapping[str, Any] | str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail.

        With ``status=200`` (default) the answer is Slack's usual ``{"ok": false, "error":
        error}``; use e.g. ``status=503`` for an outage (slack_sdk's ``ServerErrorRetryHandler``
        retries 500 and 503). ``body`` replaces the JSON body (str/bytes sent verbatim, e.g. an
        HTML error page). ``method="*"`` matches any method.
        """
        if times < 0:
            raise ValueError("times must be >= 0")
        if not 200 <= status <= 599:
            raise ValueError("status must be an HTTP status (200-599)")
        fault = _Fault(status, error, body=body, headers=dict(headers or {}))
        with self._lock:
            self._faults.setdefault(method, collections.deque()).extend([fault] * times)

    def reset_faults(self) -> None:
        """Drop queued faults and set latency back to zero."""
        with self._lock:
            self._faults.clear()
            self._latency = 0.0

    @property
    def latency(self) -> float:
        """Seconds added to every Web API response (after the call took effect and was
        recorded, so a client timeout leaves the side effect behind, as with Slack)."""
        with self._lock:
            return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        with self._lock:
            self._latency = float(seconds)

    def _take_fault(self, method: str) -> _Fault | None:
        with self._lock:
            for key in (method, "*"):
                queue = self._faults.get(key)
                if queue:
                    return queue.popleft()
        return None

    # -- HTTP: Web API --------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        received_at = time.time()
        method = request.match_info["method"]
        headers = {k.lower(): v for k, v in request.headers.items()}
        raw = b""
        args: dict[str, Any] = dict(request.query)
        parse_error: str | None = None
        try:
            if request.content_type.startswith("multipart/"):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        args[key] = value.file.read()  # file uploads: keep the bytes
                    else:
                        args[key] = value
            else:
                raw = await request.read()
                body_args, parse_error = self._parse_body(request.content_type, raw)
                args.update(body_args)
        except Exception:
            parse_error = "invalid_form_data"

        token = self._token_of(headers, args)
        status, body, extra_headers = self._dispatch(method, args, token, headers, parse_error)
        self._record(
            SlackCall(
                method=method,
                http_method=request.method,
                headers=headers,
                args=args,
                token=token,
                status=status,
                response=copy.deepcopy(body) if isinstance(body, dict) else None,
                received_at=received_at,
                raw_body=raw,
            )
        )
        latency = self.latency
        if latency:
            await asyncio.sleep(latency)
        if isinstance(body, bytes | str):
            data = body.encode() if isinstance(body, str) else body
            return web.Response(body=data, status=status, headers=extra_headers)
        return web.Response(
            body=json.dumps(body).encode(),
            status=status,
            headers=extra_headers,
            content_type="application/json",
            charset="utf-8",
        )

    @staticmethod
    def _parse_body(content_type: str, raw: bytes) -> tuple[dict[str, Any], str | None]:
        """Parse a form or JSON body; returns ``(args, slack_error_or_None)``."""
        if not raw:
            return {}, None
        if content_type == "application/json":
            try:
                parsed = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                return {}, "invalid_json"
            if not isinstance(parsed, dict):
                return {}, "json_not_object"
            return parsed, None
        try:
            return dict(parse_qsl(raw.decode(), keep_blank_values=True)), None
        except UnicodeDecodeError:
            return {}, "invalid_charset"

    @staticmethod
    def _token_of(headers: Mapping[str, str], args: Mapping[str, Any]) -> str | None:
        scheme, _, credential = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and credential.strip():
            return credential.strip()
        token = args.get("token")
        return str(token) if token else None

    def _dispatch(
        self,
        method: str,
        args: dict[str, Any],
        token: str | None,
        headers: dict[str, str],
        parse_error: str | None,
    ) -> tuple[int, dict[str, Any] | str | bytes, dict[str, str]]:
        fault = self._take_fault(method)
        if fault is not None:
            return self._fault_response(fault)
        implementation = self._methods().get(method)
        if implementation is None:
            return 200, {"ok": False, "error": "unknown_method", "req_method": method}, {}
        try:
            if parse_error is not None:
                raise _SlackError(parse_error)
            request = _Request(method, args, token, headers)
            with self._changed:
                self._authenticate(request)
                body = implementation(request)
                self._changed.notify_all()
            return 200, body, {}
        except _SlackError as err:
            return 200, {"ok": False, "error": err.error, **err.extra}, {}
        except Exception:  # a simulator bug: make it loud, answer like Slack's fatal_error
            traceback.print_exc()
            return 500, {"ok": False, "error": "fatal_error"}, {}

    @staticmethod
    def _fault_response(
        fault: _Fault,
    ) -> tuple[int, dict[str, Any] | str | bytes, dict[str, str]]:
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        body: dict[str, Any] | str | bytes
        if fault.body is None:
            body = {"ok": False, "error": fault.error}
        elif isinstance(fault.body, str | bytes):
            body = fault.body
        else:
            body = dict(fault.body)
        return fault.status, body, headers

    def _authenticate(self, request: _Request) -> None:
        """Check the credential the method needs; fills ``workspace``/``app_id``."""
        if request.method in _NO_TOKEN_METHODS:
            return
        token = request.token
        if not token:
            raise _SlackError("not_authed")
        if token in self._revoked:
            raise _SlackError("token_revoked")
        if token in self._expired:
            raise _SlackError("token_expired")
        if request.method in _APP_TOKEN_METHODS:
            if token in self._app_tokens:
                request.app_id = self._app_tokens[token]
                return
            raise _SlackError(
                "not_allowed_token_type" if token in self._workspaces else "invalid_auth"
            )
        workspace = self._workspaces.get(token)
        if workspace is None:
            raise _SlackError(
                "not_allowed_token_type" if token in self._app_tokens else "invalid_auth"
            )
        request.workspace = workspace

    def _methods(self) -> dict[str, Callable[[_Request], dict[str, Any]]]:
        return {
            "api.test": self._api_test,
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "usergroups.list": self._usergroups_list,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            "conversations.info": self._conversations_info,
            "users.info": self._users_info,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "bots.info": self._bots_info,
            "oauth.v2.access": self._oauth_v2_access,
            "openid.connect.token": lambda r: self.openid.token(
                r.args, _client_credentials(r.headers, r.args)
            ),
            "openid.connect.userInfo": lambda r: self.openid.user_info(r.token),
            "apps.connections.open": self._apps_connections_open,
            "assistant.threads.setStatus": self._assistant_set_status,
            "assistant.threads.setSuggestedPrompts": self._assistant_set_suggested_prompts,
            "assistant.threads.setTitle": self._assistant_set_title,
            "views.publish": self._views_publish,
            "chat.startStream": self._chat_start_stream,
            "chat.appendStream": self._chat_append_stream,
            "chat.stopStream": self._chat_stop_stream,
        }

    # -- method implementations (called with the lock held) --------------------------------

    @staticmethod
    def _ws(request: _Request) -> Workspace:
        assert request.workspace is not None  # guaranteed by _authenticate
        return request.workspace

    def _channel(self, ref: Any, workspace: Workspace | None = None) -> dict[str, Any]:
        """Resolve a channel argument (id, or ``#name``/``name``) or raise channel_not_found."""
        if not ref or not isinstance(ref, str):
            raise _SlackError("channel_not_found")
        if ref in self._channels:
            return self._channels[ref]
        if _CHANNEL_ID.match(ref):
            if not self.autocreate:
                raise _SlackError("channel_not_found")
            self.add_channel(ref, team_id=workspace.team_id if workspace else None)
            return self._channels[ref]
        name = ref.removeprefix("#")
        for channel in self._channels.values():
            if channel.get("name") == name:
                return channel
        raise _SlackError("channel_not_found")

    def _json_args(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """``blocks``/``attachments``/``metadata`` as objects, whether sent as JSON or strings."""
        parsed: dict[str, Any] = {}
        for name, error in _JSON_ARGS.items():
            value = args.get(name)
            if value is None or value == "":
                continue
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError as exc:
                    raise _SlackError(error) from exc
            if name in ("blocks", "attachments") and not isinstance(value, list):
                raise _SlackError(error)
            if name == "blocks":
                _check_blocks(value, MAX_MESSAGE_BLOCKS)
            parsed[name] = value
        return parsed

    def _bot_profile(self, workspace: Workspace) -> dict[str, Any]:
        return {
            "id": workspace.bot_id,
            "app_id": workspace.app_id,
            "name": workspace.bot_name,
            "team_id": workspace.team_id,
            "deleted": False,
            "updated": DEFAULT_TS_START,
        }

    def _api_test(self, request: _Request) -> dict[str, Any]:
        args = {k: v for k, v in request.args.items() if k != "token"}
        return {"ok": True, "args": args} if args else {"ok": True}

    def _auth_test(self, request: _Request) -> dict[str, Any]:
        ws = self._ws(request)
        body: dict[str, Any] = {
            "ok": True,
            "url": ws.url,
            "team": ws.team_name,
            "user": ws.bot_name,
            "team_id": ws.team_id,
            "user_id": ws.bot_user_id,
            "bot_id": ws.bot_id,
            "is_enterprise_install": False,
        }
        if ws.enterprise_id:
            body["enterprise_id"] = ws.enterprise_id
        return body

    def _chat_post_message(self, request: _Request) -> dict[str, Any]:
        ws, args = self._ws(request), request.args
        channel = self._channel(args.get("channel"), ws)
        extras = self._json_args(args)
        text = _str_arg(args, "text")
        if not text and not extras.get("blocks") and not extras.get("attachments"):
            raise _SlackError("no_text")
        if text and len(text) > MAX_TEXT:
            raise _SlackError("msg_too_long")
        if channel["is_archived"]:
            raise _SlackError("is_archived")
        if not channel["is_member"]:
            # A private channel the bot is not in is invisible to it: Slack says not found.
            raise _SlackError("channel_not_found" if channel["is_private"] else "not_in_channel")
        ts = self._next_ts()
        message: dict[str, Any] = {
            "user": ws.bot_user_id,
            "type": "message",
            "ts": ts,
            "bot_id": ws.bot_id,
            "app_id": ws.app_id,
            "text": text or "",
            "team": ws.team_id,
            "bot_profile": self._bot_profile(ws),
        }
        message.update(extras)
        for name in ("username", "icon_emoji", "icon_url"):
            if args.get(name):
                message[name] = args[name]
        thread_ts = _str_arg(args, "thread_ts")
        if thread_ts:
            message["thread_ts"] = self._thread_root(channel["id"], thread_ts)
            if _flag(args.get("reply_broadcast")):
                message["subtype"] = "thread_broadcast"
        self._store(channel["id"], message)
        return {"ok": True, "channel": channel["id"], "ts": ts, "message": copy.deepcopy(message)}

    def _chat_get_permalink(self, request: _Request) -> dict[str, Any]:
        """``https://<domain>.slack.com/archives/<channel>/p<ts without the dot>``; a thread
        reply's link adds ``?thread_ts=<root>&cid=<channel>`` (as Slack's)."""
        ws, args = self._ws(request), request.args
        channel = self._channel(args.get("channel"), ws)
        ts = _str_arg(args, "message_ts")
        if ts is None:
            raise _missing("message_ts")
        message = self._find(channel["id"], ts)
        if message is None:
            raise _SlackError("message_not_found")
        link = f"{ws.url}archives/{channel['id']}/p{ts.replace('.', '')}"
        root = message.get("thread_ts")
        if root and root != ts:
            link += f"?thread_ts={root}&cid={channel['id']}"
        return {"ok": True, "channel": channel["id"], "permalink": link}

    def _usergroups_list(self, request: _Request) -> dict[str, Any]:
        ws, args = self._ws(request), request.args
        groups = copy.deepcopy(self._usergroups.get(ws.team_id, []))
        if not _flag(args.get("include_users")):
            for group in groups:
                group.pop("users", None)
        return {"ok": True, "usergroups": groups}

    def _own_message(
        self, request: _Request, not_yours: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The (channel, message) a bot may edit or delete -- its own -- or the right error."""
        ws, args = self._ws(request), request.args
        channel = self._channel(args.get("channel"), ws)
        ts = _str_arg(args, "ts")
        if ts is None:
            raise _missing("ts")
        message = self._find(channel["id"], ts)
        if message is None:
            raise _SlackError("message_not_found")
        if message.get("user") != ws.bot_user_id and message.get("bot_id") != ws.bot_id:
            raise _SlackError(not_yours)
        return channel, message

    def _chat_update(self, request: _Request) -> dict[str, Any]:
        ws, args = self._ws(request), request.args
        channel, message = self._own_message(request, "cant_update_message")
        extras = self._json_args(args)
        text = args.get("text")
        if text is None and not extras:
            raise _SlackError("no_text")
        if text is not None and len(str(text)) > MAX_TEXT:
            raise _SlackError("msg_too_long")
        if text is not None:
            message["text"] = str(text)
        message.update(extras)
        message["edited"] = {"user": ws.bot_user_id, "ts": self._next_ts()}
        shown = {
            k: v
            for k, v in message.items()
            if k in ("text", "user", "bot_id", "app_id", "blocks", "attachments", "edited", "team")
        }
        return {
            "ok": True,
            "channel": channel["id"],
            "ts": message["ts"],
            "text": message["text"],
            "message": copy.deepcopy(shown),
        }

    # -- streaming (chat.startStream / appendStream / stopStream) ---------------------------

    def refuse_streaming(self, team_id: str, error: str | None = "not_allowed") -> None:
        """Make ``team_id``'s streaming calls fail with ``error`` (None: allow them again)."""
        with self._lock:
            if error is None:
                self._streaming_refused.pop(team_id, None)
            else:
                self._streaming_refused[team_id] = error

    def streams(self) -> list[dict[str, Any]]:
        """Every streamed message: ``channel``, ``ts``, ``thread_ts``, ``recipient_*``,
        ``appends`` (the Markdown of each start/append/stop call, in order), ``state``
        ("streaming" or "completed"), ``stop_blocks`` and ``text`` (the appends joined)."""
        with self._lock:
            return copy.deepcopy(list(self._streams.values()))

    def _stream_text(self, args: Mapping[str, Any], *, required: bool) -> str:
        """``markdown_text`` and any ``markdown_text`` chunks; each piece within 12,000."""
        pieces: list[str] = []
        text = args.get("markdown_text")
        if text is not None and not isinstance(text, str):
            raise _SlackError("invalid_arguments")
        if text:
            pieces.append(text)
        chunks = args.get("chunks")
        if isinstance(chunks, str) and chunks:
            try:
                chunks = json.loads(chunks)
            except ValueError as exc:
                raise _SlackError("invalid_chunks") from exc
        if chunks:
            if not isinstance(chunks, list):
                raise _SlackError("invalid_chunks")
            for chunk in chunks:
                if not isinstance(chunk, dict) or not isinstance(chunk.get("type"), str):
                    raise _SlackError("invalid_chunks")
                if chunk["type"] == "markdown_text":
                    if not isinstance(chunk.get("text"), str):
                        raise _SlackError("invalid_chunks")
                    pieces.append(chunk["text"])
        for piece in pieces:
            if len(piece) > STREAM_TEXT_LIMIT:
                raise _SlackError("msg_too_long")
        if required and not pieces and not chunks:
            raise _SlackError("no_text")
        return "".join(pieces)

    def _check_streaming(self, ws: Workspace) -> None:
        refused = self._streaming_refused.get(ws.team_id)
        if refused:
            raise _SlackError(refused)

    def _chat_start_stream(self, request: _Request) -> dict[str, Any]:
        ws, args = self._ws(request), request.args
        self._check_streaming(ws)
        channel = self._channel(args.get("channel"), ws)
        thread_ts = _str_arg(args, "thread_ts")
        if thread_ts is None:
            raise _missing("thread_ts")
        if not channel["id"].startswith("D"):  # streaming to a channel: for one person
            if not _str_arg(args, "recipient_team_id"):
                raise _SlackError("missing_recipient_team_id")
            if not _str_arg(args, "recipient_user_id"):
                raise _SlackError("missing_recipient_user_id")
        text = self._stream_text(args, required=False)
        if channel["is_archived"]:
            raise _SlackError("is_archived")
        if not channel["is_member"]:
            raise _SlackError("not_in_channel")
        if self._find(channel["id"], thread_ts) is None:
            raise _SlackError("message_not_found")
        ts = self._next_ts()
        message: dict[str, Any] = {
            "user": ws.bot_user_id,
            "type": "message",
            "ts": ts,
            "bot_id": ws.bot_id,
            "app_id": ws.app_id,
            "text": text,
            "team": ws.team_id,
            "bot_profile": self._bot_profile(ws),
            "thread_ts": self._thread_root(channel["id"], thread_ts),
        }
        self._store(channel["id"], message)
        self._streams[ts] = {
            "channel": channel["id"],
            "ts": ts,
            "thread_ts": message["thread_ts"],
            "recipient_team_id": _str_arg(args, "recipient_team_id"),
            "recipient_user_id": _str_arg(args, "recipient_user_id"),
            "appends": [text] if text else [],
            "state": "streaming",
            "stop_blocks": None,
            "text": text,
        }
        return {"ok": True, "channel": channel["id"], "ts": ts}

    def _streaming_message(self, request: _Request) -> tuple[dict[str, Any], dict[str, Any]]:
        ws = self._ws(request)
        self._check_streaming(ws)
        _, message = self._own_message(request, "cant_update_message")
        record = self._streams.get(message["ts"])
        if record is None or record["state"] != "streaming":
            raise _SlackError("message_not_in_streaming_state")
        return message, record

    def _chat_append_stream(self, request: _Request) -> dict[str, Any]:
        text = self._stream_text(request.args, required=True)
        message, record = self._streaming_message(request)
        record["appends"].append(text)
        record["text"] += text
        message["text"] = record["text"]
        return {"ok": True, "channel": record["channel"], "ts": record["ts"]}

    def _chat_stop_stream(self, request: _Request) -> dict[str, Any]:
        text = self._stream_text(request.args, required=False)
        extras = self._json_args(request.args)
        message, record = self._streaming_message(request)
        if text:
            record["appends"].append(text)
            record["text"] += text
        record["state"] = "completed"
        record["stop_blocks"] = extras.get("blocks")
        message["text"] = record["text"]
        blocks = [{"type": "markdown", "text": record["text"]}] if record["text"] else []
        message["blocks"] = blocks + list(extras.get("blocks") or [])
        if "metadata" in extras:
            message["metadata"] = extras["metadata"]
        shown = {k: v for k, v in message.items() if k != "bot_profile"}
        return {
            "ok": True,
            "channel": record["channel"],
            "ts": record["ts"],
            "message": copy.deepcopy(shown),
        }

    def _chat_delete(self, request: _Request) -> dict[str, Any]:
        channel, message = self._own_message(request, "cant_delete_message")
        history = self._messages[channel["id"]]
        history.remove(message)
        root = message.get("thread_ts")
        if root and root != message["ts"]:
            parent = self._find(channel["id"], root)
            if parent is not None:
                self._refresh_thread_meta(channel["id"], parent)
        return {"ok": True, "channel": channel["id"], "ts": message["ts"]}

    def _chat_post_ephemeral(self, request: _Request) -> dict[str, Any]:
        ws, args = self._ws(request), request.args
        channel = self._channel(args.get("channel"), ws)
        user = _str_arg(args, "user")
        if user is None:
            raise _missing("user")
        extras = self._json_args(args)
        text = _str_arg(args, "text")
        if not text and not extras.get("blocks") and not extras.get("attachments"):
            raise _SlackError("no_text")
        ts = self._next_ts()
        ephemeral = {
            "type": "message",
            "subtype": "ephemeral",
            "channel": channel["id"],
            "user": user,
            "text": text or "",
            "ts": ts,
            "bot_id": ws.bot_id,
            "thread_ts": _str_arg(args, "thread_ts"),
            **extras,
        }
        self._ephemeral.append(ephemeral)
        return {"ok": True, "message_ts": ts}

    @staticmethod
    def _window(items: list[dict[str, Any]], args: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Apply ``oldest``/``latest``/``inclusive`` like Slack (exclusive bounds by default)."""
        inclusive = _flag(args.get("inclusive"))
        oldest, latest = _str_arg(args, "oldest"), _str_arg(args, "latest")
        try:
            low = _parse_ts(oldest) if oldest else None
            high = _parse_ts(latest) if latest else None
        except ValueError as exc:
            raise _SlackError("invalid_ts_oldest" if oldest else "invalid_ts_latest") from exc

        def keep(message: Mapping[str, Any]) -> bool:
            ts = _ts_key(message)
            if low is not None and (ts < low or (ts == low and not inclusive)):
                return False
            return not (high is not None and (ts > high or (ts == high and not inclusive)))

        return [m for m in items if keep(m)]

    @staticmethod
    def _page(
        items: list[dict[str, Any]], args: Mapping[str, Any], default_limit: int
    ) -> dict[str, Any]:
        """One page of ``items`` with Slack's ``has_more`` and ``response_metadata``."""
        limit = _int_arg(args, "limit", default_limit)
        limit = default_limit if limit <= 0 else min(limit, MAX_LIMIT)
        start = 0
        cursor = _str_arg(args, "cursor")
        if cursor:
            ts = _decode_cursor(cursor)
            positions = [i for i, m in enumerate(items) if m["ts"] == ts]
            if not positions:
                raise _SlackError("invalid_cursor")
            start = positions[0]
        page = items[start : start + limit]
        has_more = start + limit < len(items)
        next_cursor = _encode_cursor(items[start + limit]["ts"]) if has_more else ""
        return {
            "ok": True,
            "messages": copy.deepcopy(page),
            "has_more": has_more,
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _conversations_replies(self, request: _Request) -> dict[str, Any]:
        ws, args = self._ws(request), request.args
        channel = self._channel(args.get("channel"), ws)
        ts = _str_arg(args, "ts")
        if ts is None:
            raise _missing("ts")
        thread = self._thread_messages(channel["id"], ts)
        if not thread:
            raise _SlackError("thread_not_found")
        return self._page(self._window(thread, args), args, REPLIES_DEFAULT_LIMIT)

    def _conversations_history(self, request: _Request) -> dict[str, Any]:
        ws, args = self._ws(request), request.args
        channel = self._channel(args.get("channel"), ws)
        top_level = [
            m
            for m in self._messages.get(channel["id"], [])
            if m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast"
        ]
        newest_first = list(reversed(self._window(top_level, args)))
        body = self._page(newest_first, args, HISTORY_DEFAULT_LIMIT)
        body["pin_count"] = 0
        return body

    def _conversations_info(self, request: _Request) -> dict[str, Any]:
        channel = self._channel(request.args.get("channel"), self._ws(request))
        return {"ok": True, "channel": copy.deepcopy(channel)}

    def _users_info(self, request: _Request) -> dict[str, Any]:
        ws = self._ws(request)
        user_id = _str_arg(request.args, "user")
        if user_id is None:
            raise _SlackError("user_not_found")
        user = self._users.get(user_id)
        if user is None:
            if not (self.autocreate and _USER_ID.match(user_id) and user_id[0] in "UW"):
                raise _SlackError("user_not_found")
            self.add_user(user_id, team_id=ws.team_id)
            user = self._users[user_id]
        shown = copy.deepcopy(user)
        if not _flag(request.args.get("include_locale")):
            shown.pop("locale", None)
        return {"ok": True, "user": shown}

    def _reaction_target(self, request: _Request) -> tuple[dict[str, Any], str]:
        args = request.args
        channel = self._channel(args.get("channel"), self._ws(request))
        name = (_str_arg(args, "name") or "").strip(":")
        if not name:
            raise _SlackError("invalid_name")
        ts = _str_arg(args, "timestamp")
        if ts is None:
            raise _SlackError("no_item_specified")
        message = self._find(channel["id"], ts)
        if message is None:
            raise _SlackError("message_not_found")
        return message, name

    def _reactions_add(self, request: _Request) -> dict[str, Any]:
        message, name = self._reaction_target(request)
        user = self._ws(request).bot_user_id
        reactions: list[dict[str, Any]] = message.setdefault("reactions", [])
        for reaction in reactions:
            if reaction["name"] == name:
                if user in reaction["users"]:
                    raise _SlackError("already_reacted")
                reaction["users"].append(user)
                reaction["count"] += 1
                break
        else:
            reactions.append({"name": name, "users": [user], "count": 1})
        return {"ok": True}

    def _reactions_remove(self, request: _Request) -> dict[str, Any]:
        message, name = self._reaction_target(request)
        user = self._ws(request).bot_user_id
        reactions: list[dict[str, Any]] = message.get("reactions", [])
        for reaction in reactions:
            if reaction["name"] == name and user in reaction["users"]:
                reaction["users"].remove(user)
                reaction["count"] -= 1
                if not reaction["count"]:
                    reactions.remove(reaction)
                if not reactions:
                    message.pop("reactions", None)
                return {"ok": True}
        raise _SlackError("no_reaction")

    def _bots_info(self, request: _Request) -> dict[str, Any]:
        bot_id = _str_arg(request.args, "bot")
        bot = self._bots.get(bot_id or "")
        if bot is None:
            raise _SlackError("bot_not_found")
        return {"ok": True, "bot": copy.deepcopy(bot)}

    def _oauth_v2_access(self, request: _Request) -> dict[str, Any]:
        args = request.args
        if self.client_id is not None:
            client_id, client_secret = _client_credentials(request.headers, args)
            if client_id != self.client_id:
                raise _SlackError("invalid_client_id")
            if self.client_secret is not None and client_secret != self.client_secret:
                raise _SlackError("bad_client_secret")
        if _str_arg(args, "grant_type") == "refresh_token":
            return self._refresh_grant(args)
        code = _str_arg(args, "code")
        if code is None:
            raise _SlackError("invalid_code")
        if code in self._used_codes:
            raise _SlackError("code_already_used")
        install = self._oauth_codes.get(code)
        if install is None:
            raise _SlackError("invalid_code")
        self._used_codes.add(code)
        spec = install["workspace"]
        self.add_workspace(
            spec["team_id"],
            spec["bot_token"],
            spec["bot_user_id"],
            spec["bot_id"],
            spec["enterprise_id"],
            team_name=spec["team_name"],
            enterprise_name=spec["enterprise_name"],
            app_id=spec["app_id"],
        )
        return copy.deepcopy(install["response"])

    def _refresh_grant(self, args: Mapping[str, Any]) -> dict[str, Any]:
        grant = self._refresh_tokens.pop(_str_arg(args, "refresh_token") or "", None)
        if grant is None:
            raise _SlackError("invalid_refresh_token")
        old = self._teams[grant["team_id"]]
        self.add_workspace(
            old.team_id,
            grant["new_token"],
            old.bot_user_id,
            old.bot_id,
            old.enterprise_id,
            team_name=old.team_name,
            enterprise_name=old.enterprise_name,
            app_id=old.app_id,
            bot_name=old.bot_name,
            domain=old.domain,
        )
        return {
            "ok": True,
            "app_id": old.app_id,
            "access_token": grant["new_token"],
            "refresh_token": grant["next_refresh_token"],
            "expires_in": grant["expires_in"],
            "token_type": "bot",
            "team": {"id": old.team_id, "name": old.team_name},
        }

    # -- AI apps: assistant threads, App Home ------------------------------------------------

    def _assistant_thread(self, request: _Request, *, need_ts: bool) -> dict[str, Any]:
        """The assistant thread a call names (``channel_id`` + ``thread_ts``), made on first use.

        Slack answers ``channel_not_found`` for a channel that is not a DM with the app and
        ``invalid_thread_ts`` for a ``ts`` that is not a thread root there.
        """
        ws, args = self._ws(request), request.args
        channel_id = _str_arg(args, "channel_id")
        if channel_id is None:
            raise _missing("channel_id")
        channel = self._channel(channel_id, ws)
        if not channel["id"].startswith("D"):
            raise _SlackError("channel_not_found")
        thread_ts = _str_arg(args, "thread_ts")
        if thread_ts is None:
            if need_ts:
                raise _missing("thread_ts")
            thread_ts = ""
        elif not _TS.match(thread_ts):
            raise _SlackError("invalid_thread_ts")
        key = (channel["id"], thread_ts)
        return self._assistant_threads.setdefault(
            key, {"channel_id": channel["id"], "thread_ts": thread_ts, "status": "", "title": ""}
        )

    def _assistant_set_status(self, request: _Request) -> dict[str, Any]:
        thread = self._assistant_thread(request, need_ts=True)
        status = request.args.get("status")
        if status is None:
            raise _missing("status")
        loading = request.args.get("loading_messages")
        if isinstance(loading, str) and loading:
            try:
                loading = json.loads(loading)
            except ValueError as exc:
                raise _SlackError("invalid_arguments") from exc
        if loading is not None and loading != "":
            if not isinstance(loading, list) or not all(isinstance(m, str) for m in loading):
                raise _SlackError("invalid_arguments")
            if len(loading) > MAX_LOADING_MESSAGES:
                raise _SlackError("invalid_arguments")
        thread["status"] = str(status)
        thread.setdefault("statuses", []).append(str(status))
        return {"ok": True}

    def _assistant_set_suggested_prompts(self, request: _Request) -> dict[str, Any]:
        thread = self._assistant_thread(request, need_ts=False)
        prompts = request.args.get("prompts")
        if prompts is None or prompts == "":
            raise _missing("prompts")
        if isinstance(prompts, str):
            try:
                prompts = json.loads(prompts)
            except ValueError as exc:
                raise _SlackError("invalid_arguments") from exc
        if not isinstance(prompts, list) or not 1 <= len(prompts) <= MAX_SUGGESTED_PROMPTS:
            raise _SlackError("invalid_arguments")
        for prompt in prompts:
            if not isinstance(prompt, dict) or not prompt.get("title") or not prompt.get("message"):
                raise _SlackError("invalid_arguments")
        thread["prompts"] = copy.deepcopy(prompts)
        thread["prompts_title"] = _str_arg(request.args, "title")
        return {"ok": True}

    def _assistant_set_title(self, request: _Request) -> dict[str, Any]:
        thread = self._assistant_thread(request, need_ts=True)
        title = _str_arg(request.args, "title")
        if title is None:
            raise _missing("title")
        thread["title"] = title
        return {"ok": True}

    def _views_publish(self, request: _Request) -> dict[str, Any]:
        ws, args = self._ws(request), request.args
        user_id = _str_arg(args, "user_id")
        if user_id is None:
            raise _missing("user_id")
        view = args.get("view")
        if isinstance(view, str):
            try:
                view = json.loads(view)
            except ValueError as exc:
                raise _SlackError("invalid_arguments") from exc
        if not isinstance(view, dict) or view.get("type") != "home":
            raise _SlackError("invalid_arguments")
        blocks = view.get("blocks")
        if not isinstance(blocks, list):
            raise _SlackError("invalid_arguments")
        _check_blocks(blocks, MAX_VIEW_BLOCKS)
        self._home_views[user_id] = copy.deepcopy(view)
        published = {
            "id": f"V{len(self._home_views):08d}",
            "team_id": ws.team_id,
            "app_id": ws.app_id,
            "bot_id": ws.bot_id,
            **copy.deepcopy(view),
        }
        return {"ok": True, "view": published}

    def assistant_thread(self, channel_id: str, thread_ts: str = "") -> dict[str, Any] | None:
        """What the app set in an assistant thread: ``status`` (now), ``statuses`` (every
        one, in order), ``title``, ``prompts`` / ``prompts_title``; ``thread_ts`` "" is the
        DM itself (the agent view's prompts, set without a thread)."""
        with self._lock:
            found = self._assistant_threads.get((channel_id, thread_ts))
            return copy.deepcopy(found) if found is not None else None

    def start_assistant_thread(
        self, team_id: str, user_id: str, channel_id: str, *, context_channel: str | None = None
    ) -> dict[str, Any]:
        """A user opens a new chat in the AI app view: the thread's root message (subtype
        ``assistant_app_thread``) is made in the DM, and the ``assistant_thread_started``
        inner event Slack sends is returned (wrap it with :func:`event_envelope`)."""
        with self._changed:
            ts = self._next_ts()
            self._store(
                channel_id,
                {
                    "type": "message",
                    "subtype": "assistant_app_thread",
                    "user": user_id,
                    "text": "New chat",
                    "ts": ts,
                    "thread_ts": ts,
                    "team": team_id,
                    "assistant_app_thread": {"title": "", "title_blocks": [], "artifacts": []},
                },
            )
        context: dict[str, Any] = {"team_id": team_id}
        if context_channel:
            context["channel_id"] = context_channel
        return {
            "type": "assistant_thread_started",
            "assistant_thread": {
                "user_id": user_id,
                "context": context,
                "channel_id": channel_id,
                "thread_ts": ts,
            },
            "event_ts": self._next_ts(),
        }

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        """The App Home view last published for ``user_id`` (None if none)."""
        with self._lock:
            view = self._home_views.get(user_id)
            return copy.deepcopy(view) if view is not None else None

    # -- slash commands: response_url ------------------------------------------------------

    def response_url_for(self, team_id: str, channel_id: str, user_id: str) -> str:
        """A working ``response_url`` for a command or an interaction, as Slack makes one.

        Messages POSTed to it (JSON: ``text``/``blocks``, ``response_type`` ``ephemeral``
        (default) or ``in_channel``, ``replace_original``, ``delete_original``) are recorded
        in :attr:`responses` and change :meth:`response_messages`; Slack allows 5 uses in
        30 minutes, and so does this.
        """
        token = uuid.uuid4().hex
        with self._lock:
            self._response_urls[token] = {
                "team_id": team_id,
                "channel_id": channel_id,
                "user_id": user_id,
                "messages": [],
                "uses": 0,
                "created": time.time(),
            }
        return f"{self.url}{RESPONSE_PREFIX}{token}"

    @property
    def responses(self) -> list[dict[str, Any]]:
        """Every POST to a response_url, in order: ``{"url", "body", "status"}``."""
        with self._lock:
            return copy.deepcopy(self._responses)

    def response_messages(self, url: str) -> list[dict[str, Any]]:
        """The messages a response_url's user sees now (ephemeral) or the channel has."""
        token = url.rsplit("/", 1)[-1]
        with self._lock:
            entry = self._response_urls.get(token)
            return copy.deepcopy(entry["messages"]) if entry else []

    async def wait_for_responses(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait (async) until :attr:`responses` holds ``count`` POSTs; returns them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.responses
            if len(found) >= count:
                return found
            await asyncio.sleep(0.02)
        raise AssertionError(f"{len(self.responses)} response_url POSTs, wanted {count}")

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        status, text = self._apply_response(token, body)
        with self._changed:
            self._responses.append({"url": str(request.url), "body": body, "status": status})
            self._changed.notify_all()
        return web.Response(status=status, text=text)

    def _apply_response(self, token: str, body: Any) -> tuple[int, str]:
        with self._lock:
            entry = self._response_urls.get(token)
            if entry is None:
                return 404, "no_such_response_url"
            if entry["uses"] >= 5 or time.time() - entry["created"] > 1800:
                return 404, "expired_url"
            if not isinstance(body, dict):
                return 400, "invalid_payload"
            entry["uses"] += 1
            messages: list[dict[str, Any]] = entry["messages"]
            if _flag(body.get("delete_original")):
                if messages:
                    messages.pop()
                return 200, "ok"
            blocks = body.get("blocks")
            if blocks is not None:
                try:
                    if not isinstance(blocks, list):
                        raise _SlackError("invalid_blocks")
                    _check_blocks(blocks, MAX_MESSAGE_BLOCKS)
                except _SlackError as err:
                    return 400, err.error
            if not body.get("text") and not blocks:
                return 400, "no_text"
            message = {
                "text": body.get("text") or "",
                "blocks": copy.deepcopy(blocks) if blocks else [],
                "response_type": body.get("response_type") or "ephemeral",
                "user": entry["user_id"],
                "channel": entry["channel_id"],
            }
            if message["response_type"] == "in_channel":
                ws = self._teams.get(entry["team_id"])
                stored = {
                    "type": "message",
                    "ts": self._next_ts(),
                    "text": message["text"],
                    "blocks": message["blocks"],
                    "bot_id": ws.bot_id if ws else None,
                }
                self._store(entry["channel_id"], stored)
            if _flag(body.get("replace_original")) and messages:
                messages[-1] = message
            else:
                messages.append(message)
            return 200, "ok"

    def slash_command(
        self,
        command: str,
        text: str,
        *,
        team_id: str,
        channel_id: str,
        user_id: str,
        channel_name: str = "general",
        enterprise_id: str | None = None,
    ) -> dict[str, Any]:
        """The fields Slack sends for a slash command (form-encoded over HTTP, the
        ``payload`` of a ``slash_commands`` envelope over Socket Mode), with a working
        ``response_url`` (:meth:`response_url_for`)."""
        ws = self._teams.get(team_id)
        fields = {
            "token": "verification_token",
            "team_id": team_id,
            "team_domain": ws.domain if ws else team_id.lower(),
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": ws.app_id if ws else "A111",
            "is_enterprise_install": "false",
            "response_url": self.response_url_for(team_id, channel_id, user_id),
            "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}",
        }
        if enterprise_id:
            fields["enterprise_id"] = enterprise_id
        return fields

    def _apps_connections_open(self, request: _Request) -> dict[str, Any]:
        assert request.app_id is not None  # guaranteed by _authenticate
        self._ticket_counter += 1
        ticket = f"sim-ticket-{self._ticket_counter}"
        self._tickets[ticket] = request.app_id
        url = f"{self.socket_url}?{urlencode({'ticket': ticket, 'app_id': request.app_id})}"
        return {"ok": True, "url": url}

    # -- Socket Mode: server side ------------------------------------------------------------

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        with self._lock:
            app_id = self._tickets.pop(ticket, None)  # tickets are single-use, as in Slack
        if app_id is None:
            return web.json_response({"ok": False, "error": "invalid_ticket"}, status=401)
        ws = web.WebSocketResponse(autoping=True, timeout=2.0)
        await ws.prepare(request)
        with self._lock:
            self._conn_counter += 1
            conn = _Conn(self._conn_counter, app_id, ticket, ws, time.time())
            same_app = [
                c for c in self._conns.values() if c.closed_at is None and c.app_id == app_id
            ]
            hello = {
                "type": "hello",
                "num_connections": len(same_app) + 1,
                "debug_info": {
                    "host": f"applink-sim-{conn.id}",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": app_id},
            }
        await ws.send_str(json.dumps(hello))
        with self._changed:
            self._conns[conn.id] = conn
            self._changed.notify_all()
        if self.verbose:
            print(f"[slack-sim] socket #{conn.id} connected ({app_id})", file=sys.stderr)
        try:
            async for frame in ws:
                if frame.type == WSMsgType.TEXT:
                    self._on_client_text(conn, frame.data)
        finally:
            with self._changed:
                conn.closed_at = time.time()
                self._changed.notify_all()
            if self.verbose:
                print(f"[slack-sim] socket #{conn.id} closed", file=sys.stderr)
        return ws

    def _on_client_text(self, conn: _Conn, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            message = text
        with self._changed:
            if isinstance(message, dict) and isinstance(message.get("envelope_id"), str):
                envelope_id = message["envelope_id"]
                self._acks.append(
                    SocketAck(
                        envelope_id=envelope_id,
                        payload=message.get("payload"),
                        connection_id=conn.id,
                        received_at=time.time(),
                        raw=text,
                        known=envelope_id in self._envelope_ids,
                    )
                )
            else:
                self._client_messages.append(message)
            self._changed.notify_all()

    def _open_conns(self) -> list[_Conn]:
        with self._lock:
            return [c for c in self._conns.values() if c.closed_at is None]

    async def _deliver(
        self, envelope: dict[str, Any], timeout: float, connection_id: int | None, hint: str
    ) -> SocketEnvelope:
        """Send one envelope to the newest open connection (waiting up to ``timeout`` for one)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            conns = [c for c in self._open_conns() if connection_id in (None, c.id)]
            if conns:
                conn = conns[-1]
                break
            if loop.time() >= deadline:
                raise SocketModeNotConnected(
                    "no Socket Mode client is connected"
                    + (f" (connection #{connection_id})" if connection_id else "")
                    + hint
                )
            await asyncio.sleep(0.01)
        record = SocketEnvelope(
            envelope_id=envelope["envelope_id"],
            type=envelope["type"],
            body=copy.deepcopy(envelope),
            connection_id=conn.id,
            sent_at=time.time(),
        )
        with self._changed:  # recorded before sending, so an instant ack is already "known"
            self._envelopes.append(record)
            self._envelope_ids.add(record.envelope_id)
            self._changed.notify_all()
        await conn.ws.send_str(json.dumps(envelope))
        if self.verbose:
            print(
                f"[slack-sim] socket #{conn.id} <- {record.type} {record.envelope_id}",
                file=sys.stderr,
            )
        return record

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("SlackSimulator is not running; call start() first")
        return self._loop

    # -- Socket Mode: test API --------------------------------------------------------------

    @staticmethod
    def build_envelope(
        envelope_type: str,
        payload: Mapping[str, Any],
        *,
        envelope_id: str | None = None,
        accepts_response_payload: bool = False,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The Socket Mode envelope Slack wraps around a payload (uuid4 id unless given)."""
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id or str(uuid.uuid4()),
            "payload": copy.deepcopy(dict(payload)),
            "type": envelope_type,
            "accepts_response_payload": accepts_response_payload,
        }
        envelope.update(extra or {})
        return envelope

    def push_envelope(
        self,
        envelope_type: str,
        payload: Mapping[str, Any],
        *,
        envelope_id: str | None = None,
        accepts_response_payload: bool = False,
        extra: Mapping[str, Any] | None = None,
        connection_id: int | None = None,
        timeout: float = 5.0,
    ) -> str:
        """Send an envelope to the newest open Socket Mode connection; returns its id.

        Slack delivers each envelope over one of the app's connections, not all of them, so
        this does too (``connection_id`` picks a specific one). Without a connection it waits up
        to ``timeout`` for one -- except when called from a running event loop, where waiting
        would starve a client on that loop: there it fails at once (use the ``async_`` variant).
        """
        envelope = self.build_envelope(
            envelope_type,
            payload,
            envelope_id=envelope_id,
            accepts_response_payload=accepts_response_payload,
            extra=extra,
        )
        loop = self._require_loop()
        in_loop = _in_running_loop()
        wait = 0.0 if in_loop else timeout
        hint = "; from async code use `await sim.async_push_...(...)`" if in_loop else ""
        future = asyncio.run_coroutine_threadsafe(
            self._deliver(envelope, wait, connection_id, hint), loop
        )
        return future.result(wait + 5).envelope_id

    async def async_push_envelope(
        self,
        envelope_type: str,
        payload: Mapping[str, Any],
        *,
        envelope_id: str | None = None,
        accepts_response_payload: bool = False,
        extra: Mapping[str, Any] | None = None,
        connection_id: int | None = None,
        timeout: float = 5.0,
    ) -> str:
        """:meth:`push_envelope` for async tests (the caller's loop keeps running meanwhile)."""
        envelope = self.build_envelope(
            envelope_type,
            payload,
            envelope_id=envelope_id,
            accepts_response_payload=accepts_response_payload,
            extra=extra,
        )
        future = asyncio.run_coroutine_threadsafe(
            self._deliver(envelope, timeout, connection_id, ""), self._require_loop()
        )
        return (await asyncio.wrap_future(future)).envelope_id

    @staticmethod
    def _event_extra(retry_attempt: int, retry_reason: str) -> dict[str, Any]:
        return {"retry_attempt": retry_attempt, "retry_reason": retry_reason}

    def push_event(
        self,
        payload: Mapping[str, Any],
        *,
        retry_attempt: int = 0,
        retry_reason: str = "",
        envelope_id: str | None = None,
        connection_id: int | None = None,
        timeout: float = 5.0,
    ) -> str:
        """Deliver an Events API ``event_callback`` body as an ``events_api`` envelope.

        ``retry_attempt``/``retry_reason`` (e.g. ``1``/``"timeout"``) simulate Slack's
        redelivery of an event that was not acked within 3 seconds: same ``event_id`` in the
        payload, new envelope -- the bot must deduplicate on ``event_id``.
        """
        return self.push_envelope(
            "events_api",
            payload,
            envelope_id=envelope_id,
            extra=self._event_extra(retry_attempt, retry_reason),
            connection_id=connection_id,
            timeout=timeout,
        )

    async def async_push_event(
        self,
        payload: Mapping[str, Any],
        *,
        retry_attempt: int = 0,
        retry_reason: str = "",
        envelope_id: str | None = None,
        connection_id: int | None = None,
        timeout: float = 5.0,
    ) -> str:
        """:meth:`push_event` for async tests."""
        return await self.async_push_envelope(
            "events_api",
            payload,
            envelope_id=envelope_id,
            extra=self._event_extra(retry_attempt, retry_reason),
            connection_id=connection_id,
            timeout=timeout,
        )

    def push_interactive(
        self,
        payload: Mapping[str, Any],
        *,
        envelope_id: str | None = None,
        connection_id: int | None = None,
        timeout: float = 5.0,
    ) -> str:
        """Deliver an interactivity payload (e.g. ``block_actions`` for a button click)."""
        return self.push_envelope(
            "interactive",
            payload,
            envelope_id=envelope_id,
            connection_id=connection_id,
            timeout=timeout,
        )

    async def async_push_interactive(
        self,
        payload: Mapping[str, Any],
        *,
        envelope_id: str | None = None,
        connection_id: int | None = None,
        timeout: float = 5.0,
    ) -> str:
        """:meth:`push_interactive` for async tests."""
        return await self.async_push_envelope(
            "interactive",
            payload,
            envelope_id=envelope_id,
            connection_id=connection_id,
            timeout=timeout,
        )

    def push_slash_command(
        self,
        payload: Mapping[str, Any],
        *,
        envelope_id: str | None = None,
        connection_id: int | None = None,
        timeout: float = 5.0,
    ) -> str:
        """Deliver a slash command (``accepts_response_payload: true``: the ack may answer)."""
        return self.push_envelope(
            "slash_commands",
            payload,
            envelope_id=envelope_id,
            accepts_response_payload=True,
            connection_id=connection_id,
            timeout=timeout,
        )

    def send_disconnect(
        self,
        reason: str = "refresh_requested",
        *,
        close_after: float | None = None,
        connection_id: int | None = None,
    ) -> int:
        """Send Slack's ``{"type": "disconnect", "reason": ...}`` to open connections.

        Slack sends ``refresh_requested`` (and ``warning`` shortly before) when it recycles a
        connection; the client should open a new one through ``apps.connections.open``.
        ``close_after`` also closes the socket server-side that many seconds later, as Slack
        does if the client lingers. Returns how many connections were told.
        """
        conns = [c for c in self._open_conns() if connection_id in (None, c.id)]
        loop = self._require_loop()

        async def send() -> None:
            for conn in conns:
                message = {
                    "type": "disconnect",
                    "reason": reason,
                    "debug_info": {"host": f"applink-sim-{conn.id}"},
                }
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await conn.ws.send_str(json.dumps(message))
                if close_after is not None:
                    loop.call_later(close_after, self._schedule_close, conn)

        asyncio.run_coroutine_threadsafe(send(), loop).result(5)
        return len(conns)

    def disconnect_all(self, code: int = WSCloseCode.GOING_AWAY) -> int:
        """Close every open connection server-side (a dropped link or a Slack restart).

        Returns at once (the close handshake needs the client, which may live on the
        caller's loop); wait with :meth:`wait_for_connections` for the client to come back.
        """
        conns = self._open_conns()
        loop = self._require_loop()
        for conn in conns:
            loop.call_soon_threadsafe(self._schedule_close, conn, code)
        return len(conns)

    def _schedule_close(self, conn: _Conn, code: int = WSCloseCode.GOING_AWAY) -> None:
        """Start closing ``conn`` on the simulator loop without waiting for the handshake."""

        async def close() -> None:
            with contextlib.suppress(Exception):
                await conn.ws.close(code=code)

        if conn.closed_at is None:
            task = asyncio.ensure_future(close())
            self._tasks.add(task)  # keep a reference until done (the loop only holds weak ones)
            task.add_done_callback(self._tasks.discard)

    @property
    def connections(self) -> list[SocketConnection]:
        """Snapshots of every Socket Mode connection ever opened, oldest first."""
        with self._lock:
            return [c.snapshot() for c in self._conns.values()]

    @property
    def open_connection_count(self) -> int:
        """How many Socket Mode connections are open now."""
        return len(self._open_conns())

    def wait_for_connections(self, count: int = 1, timeout: float = 5.0) -> list[SocketConnection]:
        """Block until ``count`` connections have been opened in total (reconnects count).

        After a disconnect, ``wait_for_connections(previous + 1)`` waits for the reconnect.
        Returns the snapshots.
        """

        def ready() -> list[SocketConnection] | None:
            return self.connections if len(self._conns) >= count else None

        def describe() -> str:
            return f"expected {count} Socket Mode connection(s); {len(self._conns)} opened"

        return self._wait(ready, timeout, describe, "async_wait_for_connections")

    async def async_wait_for_connections(
        self, count: int = 1, timeout: float = 5.0
    ) -> list[SocketConnection]:
        """:meth:`wait_for_connections` for async tests."""
        return await asyncio.to_thread(self.wait_for_connections, count, timeout)

    @property
    def envelopes(self) -> list[SocketEnvelope]:
        """Every envelope sent over Socket Mode, in order."""
        with self._lock:
            return list(self._envelopes)

    @property
    def acks(self) -> list[SocketAck]:
        """Every ack received from Socket Mode clients, in order."""
        with self._lock:
            return list(self._acks)

    @property
    def client_messages(self) -> list[Any]:
        """Non-ack text frames the clients sent (parsed JSON where possible)."""
        with self._lock:
            return list(self._client_messages)

    def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> SocketAck:
        """Block until the client acks ``envelope_id``; returns the (first) ack."""

        def ready() -> SocketAck | None:
            return next((a for a in self._acks if a.envelope_id == envelope_id), None)

        def describe() -> str:
            seen = [a.envelope_id for a in self._acks]
            return f"no ack for envelope {envelope_id!r} within {timeout}s; acked: {seen}"

        return self._wait(ready, timeout, describe, "async_wait_for_ack")

    async def async_wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> SocketAck:
        """:meth:`wait_for_ack` for async tests."""
        return await asyncio.to_thread(self.wait_for_ack, envelope_id, timeout)

    # -- control endpoints (manual trials through the CLI) ------------------------------------

    async def _handle_control(self, request: web.Request) -> web.StreamResponse:
        """``/_sim/*``: drive a CLI-started simulator with curl (push events, read calls)."""
        action = request.match_info["action"]
        body: Any = {}
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                return web.json_response({"ok": False, "error": "invalid_json"}, status=400)
        try:
            if action == "calls":
                calls = [
                    {"method": c.method, "args": c.args, "status": c.status, "response": c.response}
                    for c in self.calls
                ]
                return web.json_response({"ok": True, "calls": calls})
            if action in ("events", "interactive") and request.method == "POST":
                envelope_type = "events_api" if action == "events" else "interactive"
                extra = self._event_extra(0, "") if action == "events" else None
                envelope = self.build_envelope(envelope_type, body, extra=extra)
                record = await self._deliver(envelope, 0.0, None, "")
                return web.json_response({"ok": True, "envelope_id": record.envelope_id})
            if action == "disconnect" and request.method == "POST":
                reason = body.get("reason", "refresh_requested") if isinstance(body, dict) else ""
                for conn in self._open_conns():
                    await conn.ws.send_str(json.dumps({"type": "disconnect", "reason": reason}))
                return web.json_response({"ok": True})
        except SocketModeNotConnected as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=409)
        return web.json_response({"ok": False, "error": "unknown_action"}, status=404)

    async def _handle_not_found(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"ok": False, "error": "not_found"}, status=404)


def _client_credentials(
    headers: Mapping[str, str], args: Mapping[str, Any]
) -> tuple[str | None, str | None]:
    """OAuth client credentials from HTTP Basic auth (what slack_sdk sends) or form fields."""
    scheme, _, encoded = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic" and encoded:
        with contextlib.suppress(binascii.Error, UnicodeDecodeError):
            client_id, _, secret = base64.b64decode(encoded.strip()).decode().partition(":")
            return client_id, secret
    return _str_arg(args, "client_id"), _str_arg(args, "client_secret")


# --------------------------------------------------------------------------- signed HTTP events


def sign_request(body: bytes | str, signing_secret: str, timestamp: int | str) -> str:
    """Slack's request signature: ``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    raw = body.encode() if isinstance(body, str) else body
    base = b"v0:" + str(timestamp).encode() + b":" + raw
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def _signed_headers(
    raw: bytes,
    signing_secret: str,
    content_type: str,
    timestamp: int | None,
    retry_num: int | None,
    retry_reason: str | None,
) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else int(timestamp)
    headers = {
        "Content-Type": content_type,
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": sign_request(raw, signing_secret, ts),
    }
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
    if retry_reason is not None:
        headers["X-Slack-Retry-Reason"] = retry_reason
    return headers


def signed_event_request(
    body: Mapping[str, Any] | str,
    signing_secret: str,
    *,
    timestamp: int | None = None,
    retry_num: int | None = None,
    retry_reason: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The exact body bytes and headers Slack POSTs to an Events API Request URL.

    The signature covers the raw bytes, so send the returned bytes unchanged (re-serialising
    the dict would break it). ``timestamp`` defaults to now; pass an old one to test replay
    protection (slack_sdk rejects timestamps more than 5 minutes off). ``retry_num``/
    ``retry_reason`` (e.g. ``1``/``"http_timeout"``) add Slack's redelivery headers.
    """
    if isinstance(body, str):
        raw = body.encode()
    else:
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    headers = _signed_headers(
        raw, signing_secret, "application/json", timestamp, retry_num, retry_reason
    )
    return raw, headers


def signed_interactive_request(
    payload: Mapping[str, Any],
    signing_secret: str,
    *,
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """Body and headers of an interactivity POST (button clicks): form field ``payload=<json>``."""
    raw = urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()
    headers = _signed_headers(
        raw, signing_secret, "application/x-www-form-urlencoded", timestamp, None, None
    )
    return raw, headers


_BLOCK_TYPES = frozenset(
    {
        "actions", "context", "context_actions", "divider", "file", "header", "image",
        "input", "markdown", "rich_text", "section", "video", "table", "plan", "task_card",
    }
)  # fmt: skip


def _check_blocks(blocks: list[Any], limit: int) -> None:
    """Slack's checks of a ``blocks`` list that the bot's messages and views could fail:
    at most ``limit`` blocks, known types, and the ``context_actions`` block's elements
    (1-5 ``feedback_buttons``/``icon_button``; feedback buttons with a plain-text ``text``
    of at most 75 characters and a ``value`` each). Raises ``invalid_blocks``."""
    if len(blocks) > limit:
        raise _SlackError("invalid_blocks", errors=[f"must provide at most {limit} items"])
    for block in blocks:
        if not isinstance(block, dict) or block.get("type") not in _BLOCK_TYPES:
            raise _SlackError("invalid_blocks")
        if block["type"] != "context_actions":
            continue
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 5:
            raise _SlackError("invalid_blocks")
        for element in elements:
            kind = element.get("type") if isinstance(element, dict) else None
            if kind == "icon_button":
                continue
            if kind != "feedback_buttons":
                raise _SlackError("invalid_blocks")
            for side in ("positive_button", "negative_button"):
                button = element.get(side)
                text = button.get("text") if isinstance(button, dict) else None
                if (
                    not isinstance(text, dict)
                    or text.get("type") != "plain_text"
                    or not 0 < len(str(text.get("text") or "")) <= 75
                    or not isinstance(button.get("value"), str)
                ):
                    raise _SlackError("invalid_blocks")


def signed_command_request(
    fields: Mapping[str, Any], signing_secret: str, *, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """Body and headers of a slash command POST, as Slack sends it: form-encoded and signed."""
    raw = urlencode({k: str(v) for k, v in fields.items()}).encode()
    headers = _signed_headers(
        raw, signing_secret, "application/x-www-form-urlencoded", timestamp, None, None
    )
    return raw, headers


def event_envelope(
    event: Mapping[str, Any],
    *,
    team_id: str,
    event_id: str,
    api_app_id: str = "A111",
    enterprise_id: str | None = None,
    authorizations: Iterable[Mapping[str, Any]] | None = None,
    event_time: int | None = None,
    bot_user_id: str | None = None,
    token: str = "verification_token",
    is_ext_shared_channel: bool = False,
    event_context: str | None = None,
) -> dict[str, Any]:
    """Wrap an inner event (``app_mention``, ``message``, ...) as Slack's ``event_callback``.

    ``event_time`` defaults to the whole seconds of the event's ``event_ts``/``ts`` (else
    ``1700000000``) so envelopes are reproducible. ``authorizations`` is built from
    ``bot_user_id`` when not given (Bolt reads it to find the installation); without either it
    is omitted.
    """
    if event_time is None:
        stamp = event.get("event_ts") or event.get("ts")
        try:
            event_time = _parse_ts(str(stamp)) // 1_000_000 if stamp else DEFAULT_TS_START
        except ValueError:
            event_time = DEFAULT_TS_START
    envelope: dict[str, Any] = {"token": token, "team_id": team_id}
    if enterprise_id is not None:
        envelope["enterprise_id"] = enterprise_id
    envelope.update(
        {
            "api_app_id": api_app_id,
            "event": copy.deepcopy(dict(event)),
            "type": "event_callback",
            "event_id": event_id,
            "event_time": event_time,
        }
    )
    if authorizations is None and bot_user_id is not None:
        authorizations = [
            {
                "enterprise_id": enterprise_id,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ]
    if authorizations is not None:
        envelope["authorizations"] = [dict(a) for a in authorizations]
    envelope["is_ext_shared_channel"] = is_ext_shared_channel
    if event_context is not None:
        envelope["event_context"] = event_context
    return envelope


def load_shared_fixture(name: str, *, root: Path | None = None) -> dict[str, Any]:
    """Load a real Slack payload from the shared fixtures (``<repo>/../shared/data/slack``).

    ``name`` is a file name with or without ``.json`` -- looked up in
    ``bolt_python_test_fixtures/`` first, then the other fixture folders -- or a path relative
    to the fixture root (``"python_slack_events_api_fixtures/reaction_added"``). Returns a fresh
    dict each call, so tests may modify it.
    """
    base = root or SHARED_SLACK_DIR
    if not base.is_dir():
        raise FileNotFoundError(
            f"shared Slack fixtures not found at {base}; they live next to the repository in "
            "shared/data/slack (see shared/data/SOURCES.md)"
        )
    file_name = name if name.endswith(".json") else f"{name}.json"
    candidates = [base / file_name, base / "bolt_python_test_fixtures" / file_name]
    candidates += sorted(p / file_name for p in base.iterdir() if p.is_dir())
    for candidate in candidates:
        if candidate.is_file():
            loaded = json.loads(candidate.read_text(encoding="utf-8"))
            if not isinstance(loaded, dict):
                raise ValueError(f"{candidate} does not hold a JSON object")
            return loaded
    raise FileNotFoundError(
        f"no shared Slack fixture {file_name!r} under {base} (looked in: "
        + ", ".join(str(c.parent.relative_to(base)) or "." for c in candidates)
        + ")"
    )


# --------------------------------------------------------------------------- command line

DEMO_TEAM_ID = "T111"
DEMO_BOT_TOKEN = "xoxb-test"
DEMO_APP_TOKEN = "xapp-test"


def main(argv: list[str] | None = None) -> int:
    """Serve from the command line until Ctrl-C (or SIGTERM), with a demo workspace."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.servers.slack",
        description="Local Slack simulator (Web API + Socket Mode) for manual trials.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8098, help="port, 0 for any free one (default: %(default)s)"
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--verbose", action="store_true", help="log every call to stderr")
    args = parser.parse_args(argv)

    simulator = SlackSimulator(
        host=args.host, port=args.port, latency=args.latency, verbose=args.verbose
    )

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_signal)
    with simulator:
        simulator.add_workspace(
            DEMO_TEAM_ID, DEMO_BOT_TOKEN, "U0BOT", "B0BOT", team_name="Demo Workspace"
        )
        simulator.add_app_token(DEMO_APP_TOKEN, app_id="A111")
        print(simulator.base_url, flush=True)
        print(
            f"# workspace {DEMO_TEAM_ID}: bot token {DEMO_BOT_TOKEN}, app token {DEMO_APP_TOKEN}"
            f"\n# push an event: curl -d @event.json {simulator.url}{CONTROL_PREFIX}events"
            f"\n# recorded calls: curl {simulator.url}{CONTROL_PREFIX}calls",
            file=sys.stderr,
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())


_MENTION = re.compile(
    r"<(@[UW][A-Z0-9]+|!subteam\^[A-Z0-9]+|!here|!channel|!everyone)(?:\|[^>]*)?>"
)


def _mentions(message: Mapping[str, Any]) -> list[str]:
    """The mentions Slack would notify for ``message`` (see :meth:`SlackSimulator.pings`)."""
    texts = [str(message.get("text") or "")]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
                texts.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message.get("blocks") or [])
    found: list[str] = []
    for text in texts:
        for match in _MENTION.finditer(text):
            target = match.group(1).removeprefix("!")
            if target not in found:
                found.append(target)
    return found
