"""A local server that speaks Discord's wire protocols: the REST API (v10) and the Gateway.

Why this exists: the Discord adapter must be tested without reaching Discord (no network, no
bot account, no flakiness), yet mocking ``discord.py`` would hide exactly the bugs we care
about -- a wrong API base, a missing intent, a reply without ``message_reference``, a 429 that
is not waited out, a reconnect that IDENTIFYs instead of RESUMEing, an interaction answered
too late. So instead of a mock we run a real HTTP + WebSocket server on ``127.0.0.1`` (aiohttp,
on the test's own event loop) and point the *real* discord.py client at it.

Pointing discord.py 2.7 at the simulator
----------------------------------------
discord.py has no endpoint options; both endpoints are process-wide class attributes:

* **REST** -- every ``discord.http.Route`` builds its URL as ``Route.BASE + path``, and BASE
  carries the API version (``https://discord.com/api/v10``). Assign
  ``discord.http.Route.BASE = sim.api_url`` (``http://127.0.0.1:PORT/api/v10``). Interaction
  callbacks and followups (``discord.webhook.async_``) use the same ``Route``.
* **Gateway** -- a plain ``discord.Client`` never calls ``GET /gateway/bot``: it connects to
  ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` (``wss://gateway.discord.gg/``), resumes
  at READY's ``resume_gateway_url``, and goes back to DEFAULT_GATEWAY after a non-resumable
  INVALID_SESSION (``AutoShardedClient`` asks ``/gateway/bot`` first, but has the same
  fallback). So the adapter must set DEFAULT_GATEWAY too, from the ``GET /gateway/bot`` answer,
  exactly as it would for Discord::

      class Bot(discord.Client):
          async def setup_hook(self) -> None:  # after login, before the gateway connects
              _shards, url, _limits = await self.http.get_bot_gateway()
              DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)

  In tests set both attributes with ``monkeypatch.setattr`` so that they are restored.
* discord.py asks for ``compress=zstd-stream`` when ``zstandard`` is importable (it is, through
  langsmith) and ``zlib-stream`` otherwise; the simulator answers in kind, with one
  compression context per connection as Discord does, so the client's real decompression path
  runs. ``compression=False`` sends plain text frames instead (discord.py accepts both).
* Speed: discord.py sleeps 5 s before every non-initial IDENTIFY
  (``Client.before_identify_hook``) and waits ``guild_ready_timeout`` (2 s) after the last
  GUILD_CREATE before ``on_ready``. Test clients should override the hook and pass
  ``guild_ready_timeout=0.05``. RESUMEs after a drop, op 7 or op 9(true) are immediate (no
  backoff); a server error status 500/502/504 makes discord.py sleep 1 s before retrying, so
  prefer 503 (raised at once as ``DiscordServerError``) in quick tests.

Gateway (``ws://127.0.0.1:PORT/gateway``; resumes at ``/gateway/resume``)
------------------------------------------------------------------------
HELLO (op 10, ``heartbeat_interval_ms``) on connect; HEARTBEAT (op 1) -> ACK (op 11);
IDENTIFY (op 2) is checked (token -> close 4004, privileged intents not enabled with
``privileged_intents`` -> close 4014, second IDENTIFY -> 4005) and answered with READY
(``session_id``, ``resume_gateway_url``, the bot ``user``, ``application``, every guild as
unavailable) and one GUILD_CREATE per guild. RESUME (op 6) replays the events after the given
``seq`` and then dispatches RESUMED; an unknown or invalidated session gets INVALID_SESSION
(op 9, ``false``). Sequence numbers are per session. Test controls: :meth:`dispatch`,
:meth:`send_reconnect` (op 7), :meth:`drop_connection` (TCP abort, or a close frame with a
code), :meth:`invalidate_session`, :meth:`request_heartbeat`, :meth:`gateway_paused` (hold new
connections before HELLO, so that events dispatched meanwhile must be replayed).

Like Discord, the simulator only sends an event to a session whose IDENTIFY intents cover it
(``enforce_intents``; MESSAGE_CREATE in a guild needs GUILD_MESSAGES, in a DM DIRECT_MESSAGES,
reactions GUILD/DIRECT_MESSAGE_REACTIONS, threads GUILDS...; a dropped event is recorded with
the reason), and without the MESSAGE_CONTENT intent it blanks ``content``, ``embeds``,
``attachments`` and ``components`` of guild messages that neither mention the bot nor come
from it (DMs keep them). The same rule applies to REST message reads unless MESSAGE_CONTENT is
in ``privileged_intents`` (the developer-portal switch).

Also like Discord, what the bot does through REST comes back over the gateway
(``echo_bot_events``): its own MESSAGE_CREATE/UPDATE/DELETE, MESSAGE_REACTION_ADD/REMOVE and
THREAD_CREATE, so an adapter that answers its own messages loops here as it would live.

REST (``http://127.0.0.1:PORT/api/v10``)
-----------------------------------------
Every call needs ``Authorization: Bot <token>`` (401 otherwise), except the interaction
callback and webhook routes, which are authorised by the token in their path, as on Discord.
Routes: ``GET /users/@me``, ``GET /users/{id}``, ``POST /users/@me/channels`` (open a DM),
``GET /users/@me/guilds``, ``GET /gateway``, ``GET /gateway/bot``,
``GET /applications/@me`` (and ``/oauth2/applications/@me``), ``GET|PUT
/applications/{app}/commands`` and ``/applications/{app}/guilds/{g}/commands`` (bulk
overwrite, recorded), ``GET /channels/{c}``, ``GET|POST /channels/{c}/messages`` (history with
``limit``/``before``/``after``/``around``; create with ``message_reference``,
``allowed_mentions``, ``embeds``, ``components``, multipart files), ``GET|PATCH|DELETE
/channels/{c}/messages/{m}``, ``POST /channels/{c}/typing``, ``PUT|DELETE
/channels/{c}/messages/{m}/reactions/{emoji}/@me``, ``GET .../reactions/{emoji}``,
``POST /channels/{c}/threads``, ``POST /channels/{c}/messages/{m}/threads``,
``PUT /channels/{t}/thread-members/@me``, ``GET /guilds/{g}``, ``GET /guilds/{g}/channels``,
``GET /guilds/{g}/roles``, ``GET /guilds/{g}/members/{u}`` (404 code 10007 "Unknown Member"
for a non-member), ``PATCH /channels/{thread}`` (a thread's name, archived/locked and a forum
post's ``applied_tags``: at most 5 of the forum's tags, Manage Threads unless the bot owns the
thread; echoed as THREAD_UPDATE), ``POST /interactions/{id}/{token}/callback``,
``POST /webhooks/{app}/{token}`` and
``GET|PATCH|DELETE /webhooks/{app}/{token}/messages/{m|@original}``. Anything else: 404
``{"message": "404: Not Found", "code": 0}`` (405 for a known path with another method),
recorded and listed by :meth:`unknown_calls`.

Errors use Discord's JSON (``{"message", "code", "errors"?}``) and codes: 10003 Unknown
Channel, 10004 Unknown Guild, 10007 Unknown Member, 10008 Unknown Message, 10013 Unknown User,
10015 Unknown Webhook, 10062 Unknown interaction (also when the callback comes later than
``interaction_deadline``, 3 s like Discord), 40060 already acknowledged, 50005 editing another
user's message, 50006 empty message, 50007 DMs refused (:meth:`refuse_dms`), 50035 Invalid Form
Body (content over 2000 characters, more than 10 embeds, a reply to an unknown message,
``components`` that are not action rows of buttons/one select, a button without its
``custom_id`` or with one over 100 characters or used twice...).

Forums: :meth:`add_forum` (type 15 with ``available_tags``) and :meth:`forum_post`, a user's
new post as Discord sends it: THREAD_CREATE (a public thread whose parent is the forum, with
``applied_tags``) then MESSAGE_CREATE of its starter message (same id as the thread, in the
thread). Slash-command registration can be switched to fail in the ways of
:data:`COMMAND_REGISTRATION_FAILURES` (:attr:`command_registration_failure`).
Interaction members carry the permissions of their roles (:meth:`permissions`).

Success answers carry ``X-RateLimit-Limit/Remaining/Reset/Reset-After/Bucket`` from real
per-route buckets (``bucket_limit`` calls per ``bucket_reset_after`` seconds per route and
channel/guild/webhook, 429 beyond). :meth:`rate_limit_next` answers 429 with Discord's body and
headers (``Retry-After``, ``X-RateLimit-*``, ``X-RateLimit-Scope``, and ``Via``, without which
discord.py takes a 429 for a Cloudflare ban and raises); :meth:`fail_next` answers any status
(500/503/403...) a number of times; :attr:`latency` delays every answer.

Recording: :meth:`calls` (:class:`DiscordCall`: method, path, route template, parsed JSON body
or multipart ``payload_json`` plus files, headers, query, status, response),
:meth:`sent_messages`, :meth:`history`, :meth:`commands`, :meth:`interaction_replies`,
:attr:`identifies`, :attr:`resumes`, :attr:`intents`, :meth:`events`, :meth:`frames`,
:meth:`connections`, and async waits with timeouts (:meth:`wait_for_call`,
:meth:`wait_for_identify`, :meth:`wait_for_resume`, :meth:`wait_for_live_session`,
:meth:`wait_for_heartbeats`, :meth:`wait_for_sent_message`).

State and payload builders: :meth:`add_user`, :meth:`add_guild` (channels, members, roles),
:meth:`add_channel`, :meth:`add_thread`, :meth:`add_member`, :meth:`add_dm_channel`,
:meth:`refuse_dms`, :meth:`store_message` (history from before the bot connected), and
:meth:`message_create`, :meth:`reaction_add`, :meth:`reaction_remove`, :meth:`interaction`
(slash command), :meth:`component_interaction` (button), :meth:`thread_create`,
:meth:`guild_create`. Their shapes follow the real payloads in ``shared/data/discord`` (see
:func:`load_shared_fixture`, and :func:`rewrite_ids` to move a fixture into the simulator's
guild). Ids are deterministic snowflakes from a counter (each new id advances a simulated
clock by 1 ms from ``clock_start_ms``), so timestamps agree with ids and nothing is random.

Usage in a test (pytest-asyncio, the client on the same loop)::

    async with DiscordSimulator(heartbeat_interval_ms=500) as sim:
        sim.add_user("200", "alice")
        sim.add_guild("100", "Acme", channels=[("101", "support")], members=["200"])
        monkeypatch.setattr(discord.http.Route, "BASE", sim.api_url)
        ...start the bot (see above), then:
        await sim.wait_for_live_session()
        message = sim.message_create("101", "200", "hi", mention_bot=True)
        await sim.dispatch("MESSAGE_CREATE", message)
        reply = await sim.wait_for_sent_message("101")
        assert reply["message_reference"]["message_id"] == message["id"]

From the command line (serves until Ctrl-C, with a demo guild)::

    python -m tests.servers.discord --port 8097
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import datetime
import enum
import hashlib
import json
import re
import sys
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote

from aiohttp import WSMsgType, web

__all__ = [
    "API_PREFIX",
    "COMMAND_REGISTRATION_FAILURES",
    "DEFAULT_BOT_ID",
    "DEFAULT_TOKEN",
    "PRIVILEGED_INTENTS",
    "SHARED_DISCORD_DIR",
    "DiscordCall",
    "DiscordSimulator",
    "DiscordSimulatorError",
    "GatewayConnection",
    "GatewayEvent",
    "GatewayFrame",
    "GatewayNotConnected",
    "Identify",
    "Intent",
    "InteractionReply",
    "Resume",
    "UploadedFile",
    "load_shared_fixture",
    "rewrite_ids",
    "snowflake_ms",
]

API_VERSION = 10
API_PREFIX = f"/api/v{API_VERSION}"
GATEWAY_PATH = "/gateway"
RESUME_GATEWAY_PATH = "/gateway/resume"
ATTACHMENTS_PATH = "/attachments"
DISCORD_EPOCH_MS = 1_420_070_400_000
DEFAULT_CLOCK_START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
DEFAULT_TOKEN = "sim-bot-token"
DEFAULT_BOT_ID = "1100000000000000001"
DEFAULT_JOINED_AT = "2023-06-01T00:00:00.000000+00:00"
MAX_CONTENT = 2000
MAX_EMBEDS = 10
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
EVERYONE_PERMISSIONS = "1071698529857"  # Discord's default @everyone permission set
BOT_PERMISSIONS = "2248473465835073"  # what a typical invite link grants a bot

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DISCORD_DIR = REPO_ROOT.parent / "shared" / "data" / "discord"
"""Where the shared Discord payload fixtures live (``<repo>/../shared/data/discord``)."""

_TRACE = ['["gateway-sim",{"micros":0.0}]']
_MENTION_USER = re.compile(r"<@!?(\d+)>")
_MENTION_ROLE = re.compile(r"<@&(\d+)>")
_SNOWFLAKE = re.compile(r"^\d{1,20}$")
# Application command names: lower-case letters of any script, digits, - _ ' (Discord's rule).
_COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")


# The switchable ways command registration fails (:attr:`DiscordSimulator.command_registration_
# failure`): (status, body); a str body goes out as text/plain, like a proxy's error page.
COMMAND_REGISTRATION_FAILURES: dict[str, tuple[int, Any]] = {
    # Discord refuses the body (discord.py: CommandSyncFailure, an HTTPException).
    "invalid_form": (
        400,
        {
            "message": "Invalid Form Body",
            "code": 50035,
            "errors": {
                "0": {
                    "name": {
                        "_errors": [
                            {
                                "code": "APPLICATION_COMMAND_INVALID_NAME",
                                "message": "Command name is invalid",
                            }
                        ]
                    }
                }
            },
        },
    ),
    "forbidden": (403, {"message": "Missing Access", "code": 50001}),
    "unavailable": (503, {"message": "503: Service Unavailable", "code": 0}),
    # 2xx bodies that are not the list of commands discord.py expects.
    "not_json": (200, "<html><body><h1>502 Bad Gateway</h1></body></html>"),
    "wrong_shape": (200, {"commands": [], "message": "ok"}),
    "missing_fields": (200, [{"name": "ask"}, {"name": "workspace"}]),
}


class Intent(enum.IntFlag):
    """Gateway intents (the bits of IDENTIFY's ``intents``)."""

    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_MODERATION = 1 << 2
    GUILD_EXPRESSIONS = 1 << 3
    GUILD_INTEGRATIONS = 1 << 4
    GUILD_WEBHOOKS = 1 << 5
    GUILD_INVITES = 1 << 6
    GUILD_VOICE_STATES = 1 << 7
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    GUILD_MESSAGE_REACTIONS = 1 << 10
    GUILD_MESSAGE_TYPING = 1 << 11
    DIRECT_MESSAGES = 1 << 12
    DIRECT_MESSAGE_REACTIONS = 1 << 13
    DIRECT_MESSAGE_TYPING = 1 << 14
    MESSAGE_CONTENT = 1 << 15


PRIVILEGED_INTENTS = Intent.GUILD_MEMBERS | Intent.GUILD_PRESENCES | Intent.MESSAGE_CONTENT

_GUILDS_EVENTS = frozenset(
    {
        "GUILD_CREATE",
        "GUILD_UPDATE",
        "GUILD_DELETE",
        "GUILD_ROLE_CREATE",
        "GUILD_ROLE_UPDATE",
        "GUILD_ROLE_DELETE",
        "CHANNEL_CREATE",
        "CHANNEL_UPDATE",
        "CHANNEL_DELETE",
        "THREAD_CREATE",
        "THREAD_UPDATE",
        "THREAD_DELETE",
        "THREAD_LIST_SYNC",
        "THREAD_MEMBER_UPDATE",
    }
)
_MEMBER_EVENTS = frozenset(
    {"GUILD_MEMBER_ADD", "GUILD_MEMBER_UPDATE", "GUILD_MEMBER_REMOVE", "THREAD_MEMBERS_UPDATE"}
)
_MESSAGE_EVENTS = frozenset(
    {"MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE", "MESSAGE_DELETE_BULK"}
)
_REACTION_EVENTS = frozenset(
    {
        "MESSAGE_REACTION_ADD",
        "MESSAGE_REACTION_REMOVE",
        "MESSAGE_REACTION_REMOVE_ALL",
        "MESSAGE_REACTION_REMOVE_EMOJI",
    }
)

# Callback types of POST /interactions/{id}/{token}/callback.
_PONG, _MESSAGE, _DEFERRED_MESSAGE, _DEFERRED_UPDATE, _UPDATE_MESSAGE = 1, 4, 5, 6, 7
_FLAG_EPHEMERAL, _FLAG_LOADING, _FLAG_HAS_THREAD = 64, 128, 32
_MENTION_EVERYONE = 1 << 17  # may ping @everyone, @here and every role


@dataclass(frozen=True)
class Ping:
    """Who one of the bot's messages notifies (:meth:`DiscordSimulator.pings`)."""

    channel_id: str
    message_id: str
    users: list[str]
    roles: list[str]
    everyone: bool


_ADMINISTRATOR, _MANAGE_THREADS = 1 << 3, 1 << 34
MAX_APPLIED_TAGS = 5  # tags on one forum post
MAX_FORUM_TAGS = 20  # tags a forum offers
_FORUM_TYPES = (15, 16)  # forum, media
# Message components (the classic ones a bot's message carries): rows of buttons or one select.
_ACTION_ROW, _BUTTON = 1, 2
_SELECTS = (3, 5, 6, 7, 8)
_BUTTON_STYLES = (1, 2, 3, 4, 5, 6)  # primary, secondary, success, danger, link, premium
_LINK_STYLE, _PREMIUM_STYLE = 5, 6


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class UploadedFile:
    """One file of a multipart request (``field`` is the form name, e.g. ``files[0]``)."""

    field: str
    filename: str
    content_type: str | None
    data: bytes


@dataclass(frozen=True)
class DiscordCall:
    """One REST call as the simulator received and answered it.

    ``path`` is relative to the API base (``/channels/101/messages``), percent-decoded per
    segment; ``route`` is the matched template (``/channels/{channel_id}/messages``), ``None``
    for unknown routes. ``body`` is the parsed JSON body, or for multipart requests the parsed
    ``payload_json`` (other form fields are merged in as strings), with the files in ``files``.
    ``headers`` and ``response_headers`` keys are lower-cased. A call is recorded when it is
    answered, before any injected :attr:`DiscordSimulator.latency`. Injected faults are
    answered before the token check.
    """

    method: str
    path: str
    route: str | None
    params: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    files: tuple[UploadedFile, ...]
    status: int
    response: Any
    response_headers: dict[str, str]
    received_at: float

    @property
    def ok(self) -> bool:
        """Whether the call was answered with a 2xx status."""
        return 200 <= self.status < 300

    @property
    def error_code(self) -> int | None:
        """Discord's JSON error ``code`` of a failed answer, else ``None``."""
        if self.ok or not isinstance(self.response, dict):
            return None
        code = self.response.get("code")
        return code if isinstance(code, int) else None


@dataclass(frozen=True)
class GatewayConnection:
    """One gateway WebSocket connection (a snapshot; ``closed_at`` is None while open)."""

    id: int
    path: str
    query: dict[str, str]
    compression: str | None
    opened_at: float
    closed_at: float | None
    close_code: int | None
    session_id: str | None
    resumed: bool
    heartbeats: int

    @property
    def open(self) -> bool:
        """Whether the connection was open when this snapshot was taken."""
        return self.closed_at is None


@dataclass(frozen=True)
class Identify:
    """One IDENTIFY (op 2) received; ``close_code`` is set when it was refused."""

    connection_id: int
    token: str | None
    intents: int | None
    properties: dict[str, Any]
    shard: tuple[int, int] | None
    compress: bool | None
    large_threshold: int | None
    presence: dict[str, Any] | None
    session_id: str | None
    close_code: int | None
    raw: dict[str, Any]

    @property
    def accepted(self) -> bool:
        """Whether a session was started (READY sent)."""
        return self.close_code is None


@dataclass(frozen=True)
class Resume:
    """One RESUME (op 6) received; ``replayed`` counts the events sent again."""

    connection_id: int
    session_id: str | None
    seq: int | None
    token: str | None
    accepted: bool
    replayed: int


@dataclass(frozen=True)
class GatewayEvent:
    """One event handed to :meth:`DiscordSimulator.dispatch` (or echoed from REST).

    ``seq`` is its sequence number in ``session_id``; it is ``None`` when the event was not
    sent, and ``dropped`` says why (a missing intent).
    """

    type: str
    data: dict[str, Any]
    session_id: str
    seq: int | None
    dropped: str | None = None


@dataclass(frozen=True)
class GatewayFrame:
    """One gateway frame, as sent (``direction == "out"``) or received (``"in"``).

    ``replay`` marks dispatches sent again after a RESUME.
    """

    connection_id: int
    direction: str
    op: int | None
    t: str | None
    s: int | None
    d: Any
    replay: bool = False


@dataclass(frozen=True)
class InteractionReply:
    """One answer the bot gave to an interaction.

    ``kind`` is ``"callback"`` (``type`` is the callback type: 4 message, 5 deferred, 6
    deferred update, 7 update, 9 modal...), ``"followup"``, ``"edit"`` or ``"delete"``
    (``message_id`` is the followup id or the original's). ``message`` is the message the
    answer created or changed, as it was right after.
    """

    interaction_id: str
    kind: str
    type: int | None
    body: Any
    message_id: str | None
    message: dict[str, Any] | None


class DiscordSimulatorError(RuntimeError):
    """Base error of the simulator's test-facing API."""


class GatewayNotConnected(DiscordSimulatorError):
    """Raised by gateway controls when no client session (or live connection) exists."""


class _ApiError(Exception):
    """Raised by a route handler to answer with Discord's JSON error shape."""

    def __init__(
        self, status: int, code: int, message: str, errors: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, "code": code}
        if errors:
            self.body["errors"] = dict(errors)


def _form_error(errors: Mapping[str, Any]) -> _ApiError:
    return _ApiError(400, 50035, "Invalid Form Body", errors)


def _field_error(code: str, message: str) -> dict[str, Any]:
    return {"_errors": [{"code": code, "message": message}]}


@dataclass(frozen=True)
class _Fault:
    status: int
    body: Any
    headers: Mapping[str, str]


@dataclass
class _FaultRule:
    method: str | None
    pattern: re.Pattern[str]
    remaining: int
    fault: _Fault


@dataclass
class _Bucket:
    hash: str
    count: int = 0
    reset_at: float = 0.0


@dataclass
class _Session:
    session_id: str
    token: str
    intents: int
    shard: tuple[int, int] | None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    seq: int = 0
    log: list[tuple[int, str, dict[str, Any], bool]] = field(default_factory=list)
    conn: _Conn | None = None
    invalid: bool = False


@dataclass(eq=False)
class _Conn:
    id: int
    ws: web.WebSocketResponse
    transport: Any
    path: str
    query: dict[str, str]
    compression: str | None
    encoder: Callable[[bytes], bytes] | None
    opened_at: float
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    session: _Session | None = None
    resumed: bool = False
    heartbeats: int = 0
    closed_at: float | None = None
    close_code: int | None = None
    cut: bool = False

    def snapshot(self) -> GatewayConnection:
        return GatewayConnection(
            id=self.id,
            path=self.path,
            query=dict(self.query),
            compression=self.compression,
            opened_at=self.opened_at,
            closed_at=self.closed_at,
            close_code=self.close_code,
            session_id=self.session.session_id if self.session else None,
            resumed=self.resumed,
            heartbeats=self.heartbeats,
        )


@dataclass
class _Interaction:
    id: str
    token: str
    application_id: str
    type: int
    channel_id: str | None
    guild_id: str | None
    user: dict[str, Any]
    name: str | None
    message_id: str | None
    dispatched_at: float | None = None
    response_type: int | None = None
    original_id: str | None = None
    followup_ids: list[str] = field(default_factory=list)


@dataclass
class _Request:
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    files: list[UploadedFile]


_Handler = Callable[[_Request], Any]


@dataclass(frozen=True)
class _Route:
    method: str
    template: str
    segments: tuple[str, ...]
    handler: _Handler
    auth: bool

    @property
    def literal_count(self) -> int:
        return sum(1 for s in self.segments if not s.startswith("{"))


# --------------------------------------------------------------------------- small helpers


def snowflake_ms(snowflake: str | int) -> int:
    """Unix milliseconds encoded in a Discord snowflake."""
    return (int(snowflake) >> 22) + DISCORD_EPOCH_MS


def _iso(ms: int) -> str:
    """Discord's timestamp format: ``2024-01-01T00:00:00.001000+00:00``."""
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return moment.isoformat(timespec="microseconds")


def _compile_pattern(pattern: str) -> re.Pattern[str]:
    """``/channels/{id}/messages`` -> a regex where ``{...}`` is one segment and ``*`` anything."""
    parts = re.split(r"(\{[^}/]*\}|\*)", pattern)
    regex = "".join(
        "[^/]+" if p.startswith("{") else ".*" if p == "*" else re.escape(p) for p in parts
    )
    return re.compile(f"^{regex}$")


def _method_matches(wanted: str | None, method: str) -> bool:
    return wanted in (None, "*") or wanted.upper() == method


def _emoji_from_path(segment: str) -> dict[str, Any]:
    """``👍`` or ``name:id`` (discord.py's reaction path format) -> an emoji object."""
    name, sep, emoji_id = segment.partition(":")
    if sep and _SNOWFLAKE.match(emoji_id):
        return {"id": emoji_id, "name": name}
    return {"id": None, "name": segment}


def _emoji_key(emoji: Mapping[str, Any]) -> str:
    return str(emoji.get("id") or emoji.get("name"))


def _deep_copy(value: Any) -> Any:
    return copy.deepcopy(value)


def _json_body(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _zlib_encoder() -> Callable[[bytes], bytes]:
    """One zlib stream per connection, each message ending in a sync flush (``00 00 ff ff``)."""
    compressor = zlib.compressobj()
    return lambda data: compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


def _zstd_encoder() -> Callable[[bytes], bytes] | None:
    """One zstd stream per connection, flushed at each message end; None without zstandard."""
    try:
        import zstandard
    except ImportError:
        return None
    compressor = zstandard.ZstdCompressor().compressobj()
    flush = zstandard.COMPRESSOBJ_FLUSH_BLOCK
    return lambda data: compressor.compress(data) + compressor.flush(flush)


def rewrite_ids(payload: Any, mapping: Mapping[str, str]) -> Any:
    """Return a copy of ``payload`` with every string equal to a key of ``mapping`` replaced.

    Why: the shared fixtures are real payloads with real guild, channel and user ids; moving
    one into the simulator's guild means replacing those ids everywhere they occur (``d``,
    nested ``member.user``, ``message_reference``...) -- dict keys included (``resolved``).
    """
    if isinstance(payload, dict):
        return {
            mapping.get(k, k) if isinstance(k, str) else k: rewrite_ids(v, mapping)
            for k, v in payload.items()
        }
    if isinstance(payload, list):
        return [rewrite_ids(v, mapping) for v in payload]
    if isinstance(payload, str):
        return mapping.get(payload, payload)
    return payload


def load_shared_fixture(name: str, *, root: Path | None = None) -> dict[str, Any]:
    """Load a real Discord payload from the shared fixtures (``<repo>/../shared/data/discord``).

    ``name`` is a file name with or without ``.json`` -- looked up in
    ``discord4j_discord_json_fixtures/`` (gateway envelopes ``{"op", "t", "s", "d"}`` such as
    ``MessageCreate.Type0``, ``MessageReactionAdd``, ``Ready``), then
    ``discord_api_docs_examples/`` (objects such as ``channel__03__Example_DM_Channel``), then
    the other folders -- or a path relative to the fixture root. Returns a fresh dict each call.

    The captures are a few years old: MessageReactionAdd's ``member`` lacks ``flags`` and
    InteractionCreate lacks ``attachment_size_limit``, both of which Discord sends today and
    discord.py 2.7 requires (its gateway task dies with ``KeyError`` without them). Add them
    before dispatching those fixtures; the simulator's builders include them.
    """
    base = root or SHARED_DISCORD_DIR
    if not base.is_dir():
        raise FileNotFoundError(
            f"shared Discord fixtures not found at {base}; they live next to the repository in "
            "shared/data/discord (see shared/data/SOURCES.md)"
        )
    file_name = name if name.endswith(".json") else f"{name}.json"
    folders = [
        base,
        base / "discord4j_discord_json_fixtures",
        base / "discord_api_docs_examples",
        base / "discord4j_discord_json_fixtures" / "outbound",
    ]
    folders += sorted(p for p in base.iterdir() if p.is_dir() and p not in folders)
    for folder in folders:
        candidate = folder / file_name
        if candidate.is_file():
            loaded = json.loads(candidate.read_text(encoding="utf-8"))
            if not isinstance(loaded, dict):
                raise ValueError(f"{candidate} does not hold a JSON object")
            return loaded
    raise FileNotFoundError(
        f"no shared Discord fixture {file_name!r} under {base} (looked in: "
        + ", ".join(str(f.relative_to(base)) or "." for f in folders)
        + ")"
    )


# --------------------------------------------------------------------------- the simulator


def _component_errors(components: Any) -> dict[str, Any]:
    """Discord's form errors for a message's ``components`` (classic layout), {} when valid.

    Top level: at most 5 action rows (type 1). A row: 1-5 buttons, or exactly one select. A
    button (type 2): a style 1-6; a link (5) has a ``url`` and no ``custom_id``, a premium
    button (6) a ``sku_id``, any other a ``custom_id`` of 1-100 characters; a label of at most
    80 characters, and a label or an emoji. ``custom_id`` is unique within the message.
    """
    if not isinstance(components, list):
        return _field_error("LIST_TYPE_CONVERT", "Must be an array.")
    if len(components) > 5:
        return _field_error("BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
    errors: dict[str, Any] = {}
    seen: set[str] = set()
    for r, row in enumerate(components):
        if not isinstance(row, dict) or row.get("type") != _ACTION_ROW:
            errors[str(r)] = _field_error(
                "UNION_TYPE_CHOICES", 'Value of field "type" must be one of (1,).'
            )
            continue
        children = row.get("components")
        if not isinstance(children, list) or not 1 <= len(children) <= 5:
            errors[str(r)] = {
                "components": _field_error(
                    "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."
                )
            }
            continue
        kinds = [c.get("type") if isinstance(c, dict) else None for c in children]
        if any(k in _SELECTS for k in kinds) and len(children) != 1:
            errors[str(r)] = {
                "components": _field_error(
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                    "The specified component exceeds the maximum width",
                )
            }
            continue
        for c, child in enumerate(children):
            problems: dict[str, Any] = {}
            kind = kinds[c]
            if kind not in (_BUTTON, *_SELECTS):
                problems["type"] = _field_error(
                    "UNION_TYPE_CHOICES", 'Value of field "type" must be one of (2, 3, 5, 6, 7, 8).'
                )
            elif kind == _BUTTON:
                style = child.get("style")
                custom_id = child.get("custom_id")
                if style not in _BUTTON_STYLES:
                    problems["style"] = _field_error(
                        "BASE_TYPE_CHOICES", "Value must be one of {1, 2, 3, 4, 5, 6}."
                    )
                elif style == _LINK_STYLE:
                    if not child.get("url"):
                        problems["url"] = _field_error(
                            "BUTTON_COMPONENT_URL_REQUIRED", "A url is required"
                        )
                    if custom_id is not None:
                        problems["custom_id"] = _field_error(
                            "BUTTON_COMPONENT_CUSTOM_ID_NOT_ALLOWED",
                            "A custom id cannot be specified",
                        )
                elif style == _PREMIUM_STYLE:
                    if not child.get("sku_id"):
                        problems["sku_id"] = _field_error(
                            "BUTTON_COMPONENT_SKU_ID_REQUIRED", "A sku id is required"
                        )
                elif not isinstance(custom_id, str) or not custom_id:
                    problems["custom_id"] = _field_error(
                        "BUTTON_COMPONENT_CUSTOM_ID_REQUIRED", "A custom id is required"
                    )
                label = child.get("label")
                if isinstance(label, str) and len(label) > 80:
                    problems["label"] = _field_error(
                        "BASE_TYPE_MAX_LENGTH", "Must be 80 or fewer in length."
                    )
                if style in (1, 2, 3, 4) and not label and not child.get("emoji"):
                    problems["label"] = _field_error(
                        "BUTTON_COMPONENT_LABEL_OR_EMOJI_REQUIRED",
                        "A label or an emoji is required",
                    )
            else:
                custom_id = child.get("custom_id")
                if not isinstance(custom_id, str) or not custom_id:
                    problems["custom_id"] = _field_error(
                        "BASE_TYPE_REQUIRED", "This field is required"
                    )
            custom_id = child.get("custom_id") if isinstance(child, dict) else None
            if isinstance(custom_id, str):
                if len(custom_id) > 100:
                    problems["custom_id"] = _field_error(
                        "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                    )
                elif custom_id in seen:
                    problems["custom_id"] = _field_error(
                        "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated"
                    )
                seen.add(custom_id)
            if problems:
                errors.setdefault(str(r), {}).setdefault("components", {})[str(c)] = problems
    return errors


class DiscordSimulator:
    """Local Discord (REST API v10 + Gateway) for tests; an async context manager.

    Nothing happens in ``__init__``; :meth:`start` binds an aiohttp server on the *running*
    event loop (the test's), :meth:`stop` closes the gateway connections and the listener.

    Args:
        token: the bot token REST calls and IDENTIFY must present.
        bot_id, bot_name: the bot user (also the application id unless ``application_id``).
        host, port: where to listen (port 0: any free port).
        heartbeat_interval_ms: HELLO's interval (Discord: 41250; tests: a few hundred).
        privileged_intents: the privileged intents "enabled in the developer portal"; IDENTIFY
            asking for others is closed with 4014. MESSAGE_CONTENT here also un-blanks REST
            message reads (see the module docstring).
        enforce_intents: drop events the session's intents do not cover, and blank message
            content without MESSAGE_CONTENT, as Discord does.
        echo_bot_events: send the bot's own REST actions back over the gateway, as Discord does.
        interaction_deadline: seconds after dispatch within which the first interaction
            callback must come (Discord: 3); None to disable.
        bucket_limit, bucket_reset_after: per-route bucket size and window.
        latency: seconds added before every REST answer (see :attr:`latency`).
        clock_start_ms: Unix ms of the first generated snowflake.
        wall_clock: the clock for ``X-RateLimit-Reset`` (epoch seconds).
        compression: answer ``compress=zlib-stream``/``zstd-stream`` in kind (else text).
        verbose: print one line per REST call and gateway event to stderr.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        bot_id: str = DEFAULT_BOT_ID,
        bot_name: str = "supportbot",
        application_id: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        heartbeat_interval_ms: int = 41_250,
        privileged_intents: int = 0,
        enforce_intents: bool = True,
        echo_bot_events: bool = True,
        interaction_deadline: float | None = 3.0,
        bucket_limit: int = 50,
        bucket_reset_after: float = 1.0,
        latency: float = 0.0,
        clock_start_ms: int = DEFAULT_CLOCK_START_MS,
        wall_clock: Callable[[], float] = time.time,
        compression: bool = True,
        verbose: bool = False,
    ) -> None:
        self.token = token
        self.host = host
        self.requested_port = port
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.privileged_intents = int(privileged_intents)
        self.enforce_intents = enforce_intents
        self.echo_bot_events = echo_bot_events
        self.interaction_deadline = interaction_deadline
        self.bucket_limit = bucket_limit
        self.bucket_reset_after = bucket_reset_after
        self.latency = latency
        """Seconds to wait before every REST answer; may be changed at any time."""
        self.ack_heartbeats = True
        """Whether op 1 is answered with op 11; set False to play a zombie connection."""
        self.command_registration_failure: str | None = None
        """How every bulk overwrite of commands (``PUT .../commands``) fails until set back to
        None: one of :data:`COMMAND_REGISTRATION_FAILURES` (a switch, unlike :meth:`fail_next`)."""
        self.compression = compression
        self.verbose = verbose
        self._wall_clock = wall_clock
        self._clock_ms = clock_start_ms
        self._counter = 0
        self.bot_user: dict[str, Any] = {
            "id": bot_id,
            "username": bot_name,
            "global_name": None,
            "discriminator": "0",
            "avatar": None,
            "public_flags": 0,
            "flags": 0,
            "bot": True,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
        }
        self.application_id = application_id or bot_id
        # directory
        self._users: dict[str, dict[str, Any]] = {bot_id: self.bot_user}
        self._guilds: dict[str, dict[str, Any]] = {}
        self._members: dict[str, dict[str, dict[str, Any]]] = {}
        self._channels: dict[str, dict[str, Any]] = {}
        self._dm_by_user: dict[str, str] = {}
        self._dm_refused: set[str] = set()
        # content
        self._messages: dict[str, dict[str, Any]] = {}
        self._history: dict[str, list[str]] = {}
        self._bot_message_ids: list[str] = []
        self._reactors: dict[tuple[str, str], list[str]] = {}
        self._attachments: dict[str, tuple[bytes, str | None]] = {}
        self._global_commands: list[dict[str, Any]] = []
        self._guild_commands: dict[str, list[dict[str, Any]]] = {}
        self._interactions: dict[str, _Interaction] = {}
        self._interaction_replies: list[InteractionReply] = []
        # recording and faults
        self._calls: list[DiscordCall] = []
        self._faults: list[_FaultRule] = []
        self._buckets: dict[str, _Bucket] = {}
        # gateway
        self._conn_counter = 0
        self._conns: dict[int, _Conn] = {}
        self._sessions: dict[str, _Session] = {}
        self._current: _Session | None = None
        self._identifies: list[Identify] = []
        self._resumes: list[Resume] = []
        self._events: list[GatewayEvent] = []
        self._frames: list[GatewayFrame] = []
        self._gateway_open = asyncio.Event()
        self._gateway_open.set()
        self._waiters: set[asyncio.Future[None]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        # server plumbing
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._routes = self._route_table()

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> Self:
        """Bind the socket and serve on the running event loop; returns ``self``."""
        if self._runner is not None:
            raise DiscordSimulatorError("DiscordSimulator is already running")
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get(GATEWAY_PATH, self._handle_gateway)
        app.router.add_get(RESUME_GATEWAY_PATH, self._handle_gateway)
        app.router.add_get(ATTACHMENTS_PATH + "/{tail:.*}", self._handle_attachment)
        app.router.add_route("*", "/{tail:.*}", self._handle_rest)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.requested_port)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        """Close every gateway connection (1001) and stop serving; safe to call twice."""
        runner = self._runner
        if runner is None:
            return
        self._gateway_open.set()
        for conn in list(self._conns.values()):
            if conn.closed_at is None:
                await self._close_conn(conn, 1001, wait=1.0)
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await runner.cleanup()
        self._runner = None
        self._port = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._runner is not None

    @property
    def port(self) -> int:
        """The bound TCP port (only after :meth:`start`)."""
        if self._port is None:
            raise DiscordSimulatorError("DiscordSimulator is not running; await start() first")
        return self._port

    @property
    def url(self) -> str:
        """Server root, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """The value for ``discord.http.Route.BASE``: ``http://127.0.0.1:PORT/api/v10``."""
        return f"{self.url}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """What ``GET /gateway/bot`` answers: ``ws://127.0.0.1:PORT/gateway``."""
        return f"ws://{self.host}:{self.port}{GATEWAY_PATH}"

    @property
    def resume_gateway_url(self) -> str:
        """READY's ``resume_gateway_url``: ``ws://127.0.0.1:PORT/gateway/resume``."""
        return f"ws://{self.host}:{self.port}{RESUME_GATEWAY_PATH}"

    @property
    def bot_id(self) -> str:
        """The bot user's id."""
        return str(self.bot_user["id"])

    # -- ids and time ---------------------------------------------------------------------

    def new_id(self) -> str:
        """A fresh snowflake; each call advances the simulated clock by 1 ms."""
        self._clock_ms += 1
        return str((self._clock_ms - DISCORD_EPOCH_MS) << 22)

    def _next(self) -> int:
        self._counter += 1
        return self._counter

    def _loop_time(self) -> float:
        return asyncio.get_running_loop().time()

    # -- directory ----------------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        username: str,
        *,
        global_name: str | None = None,
        bot: bool = False,
        avatar: str | None = None,
    ) -> dict[str, Any]:
        """Register a Discord user (as the API returns it) and return the user object."""
        user: dict[str, Any] = {
            "id": str(user_id),
            "username": username,
            "global_name": global_name,
            "discriminator": "0",
            "avatar": avatar,
            "public_flags": 0,
            "avatar_decoration_data": None,
        }
        if bot:
            user["bot"] = True
        self._users[user["id"]] = user
        return _deep_copy(user)

    def user(self, user_id: str) -> dict[str, Any]:
        """A registered user object (``KeyError`` if unknown)."""
        return _deep_copy(self._users[str(user_id)])

    def _resolve_user(self, user: str | Mapping[str, Any]) -> dict[str, Any]:
        """A user id or user object -> the registered user object (registering a new one)."""
        if isinstance(user, Mapping):
            if "user" in user and isinstance(user["user"], Mapping):
                user = user["user"]
            user_id = str(user["id"])
            if user_id not in self._users:
                self._users[user_id] = {
                    "discriminator": "0",
                    "global_name": None,
                    "avatar": None,
                    "public_flags": 0,
                    **_deep_copy(dict(user)),
                    "id": user_id,
                }
            return self._users[user_id]
        try:
            return self._users[str(user)]
        except KeyError:
            raise KeyError(f"unknown user {user!r}; register it with add_user() first") from None

    def add_guild(
        self,
        guild_id: str,
        name: str,
        *,
        channels: Iterable[Mapping[str, Any] | tuple[str, str]] = (),
        members: Iterable[str | Mapping[str, Any]] = (),
        roles: Iterable[Mapping[str, Any]] = (),
        owner_id: str | None = None,
        preferred_locale: str = "en-US",
    ) -> dict[str, Any]:
        """Add a guild the bot is in (announced in READY and GUILD_CREATE on IDENTIFY).

        ``channels``: channel objects (``{"id", "name", "type"?, "topic"?, "parent_id"?}``,
        missing fields get Discord's defaults) or ``(id, name)`` text channels. ``members``:
        user ids (already added with :meth:`add_user`), user objects or member objects
        (``{"user": {...}, "roles": [...], "nick": ...}``); the bot is always a member.
        ``roles``: extra role objects (``@everyone`` has the guild's id). Add guilds before the
        client connects; later, dispatch ``GUILD_CREATE`` with :meth:`guild_create` yourself.
        """
        guild_id = str(guild_id)
        everyone = {
            "id": guild_id,
            "name": "@everyone",
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": 0,
            "permissions": EVERYONE_PERMISSIONS,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }
        guild_roles = [everyone]
        for position, role in enumerate(roles, start=1):
            guild_roles.append(
                {
                    **everyone,
                    "name": f"role-{role['id']}",
                    "position": position,
                    "permissions": "0",
                    **_deep_copy(dict(role)),
                    "id": str(role["id"]),
                }
            )
        self._guilds[guild_id] = {
            "id": guild_id,
            "name": name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(owner_id or self.bot_id),
            "application_id": None,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "nsfw": False,
            "features": [],
            "roles": guild_roles,
            "emojis": [],
            "stickers": [],
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": preferred_locale,
            "vanity_url_code": None,
            "max_members": 500_000,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "hub_type": None,
            "incidents_data": None,
        }
        self._members.setdefault(guild_id, {})
        self.add_member(guild_id, self.bot_user)
        for member in members:
            self.add_member(guild_id, member)
        for position, channel in enumerate(channels):
            if isinstance(channel, tuple):
                channel_id, channel_name = channel
                self.add_channel(guild_id, channel_id, channel_name, position=position)
            else:
                data = dict(channel)
                channel_id = str(data.pop("id"))
                channel_name = str(data.pop("name", f"channel-{channel_id}"))
                data.setdefault("position", position)
                self.add_channel(guild_id, channel_id, channel_name, **data)
        return _deep_copy(self._guilds[guild_id])

    def add_role(
        self, guild_id: str, role_id: str, name: str, *, mentionable: bool = False, **extra: Any
    ) -> dict[str, Any]:
        """Add a role to a guild (a Role object with Discord's defaults); returns it. Before
        the client connects (GUILD_CREATE carries the roles), like :meth:`add_guild`."""
        guild = self._guilds[str(guild_id)]
        role = {
            **guild["roles"][0],
            "id": str(role_id),
            "name": name,
            "position": len(guild["roles"]),
            "permissions": "0",
            "mentionable": mentionable,
            **_deep_copy(extra),
        }
        guild["roles"].append(role)
        return _deep_copy(role)

    def add_member(
        self,
        guild_id: str,
        user: str | Mapping[str, Any],
        *,
        roles: Sequence[str] = (),
        nick: str | None = None,
    ) -> dict[str, Any]:
        """Make a user a member of a guild; returns the member object (with ``user``)."""
        guild_id = str(guild_id)
        if guild_id not in self._guilds:
            raise KeyError(f"unknown guild {guild_id!r}; add it with add_guild() first")
        extra: dict[str, Any] = {}
        if isinstance(user, Mapping) and isinstance(user.get("user"), Mapping):
            extra = {k: v for k, v in user.items() if k != "user"}
        resolved = self._resolve_user(user)
        member = {
            "user": resolved,
            "nick": nick,
            "avatar": None,
            "banner": None,
            "roles": [str(r) for r in roles],
            "joined_at": DEFAULT_JOINED_AT,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
            **_deep_copy(extra),
        }
        self._members[guild_id][resolved["id"]] = member
        return _deep_copy(member)

    def remove_member(self, guild_id: str, user_id: str) -> None:
        """Remove a member (``GET /guilds/{g}/members/{u}`` then answers 10007)."""
        self._members.get(str(guild_id), {}).pop(str(user_id), None)

    def add_channel(
        self,
        guild_id: str,
        channel_id: str,
        name: str,
        *,
        type: int = 0,
        topic: str | None = None,
        parent_id: str | None = None,
        position: int = 0,
        **extra: Any,
    ) -> dict[str, Any]:
        """Add a guild channel (type 0 text by default); returns the channel object."""
        guild_id = str(guild_id)
        if guild_id not in self._guilds:
            raise KeyError(f"unknown guild {guild_id!r}; add it with add_guild() first")
        channel = {
            "id": str(channel_id),
            "type": type,
            "guild_id": guild_id,
            "name": name,
            "position": position,
            "permission_overwrites": [],
            "rate_limit_per_user": 0,
            "nsfw": False,
            "topic": topic,
            "last_message_id": None,
            "parent_id": parent_id,
            "flags": 0,
            **_deep_copy(extra),
        }
        self._channels[channel["id"]] = channel
        return _deep_copy(channel)

    def add_thread(
        self,
        parent_id: str,
        thread_id: str,
        name: str,
        *,
        owner_id: str | None = None,
        type: int = 11,
    ) -> dict[str, Any]:
        """Add a thread (11 public, 12 private) under a guild text channel."""
        parent = self._channel(parent_id)
        if parent.get("guild_id") is None:
            raise KeyError(f"channel {parent_id!r} is not a guild channel; threads need one")
        thread = self._thread_object(parent, str(thread_id), name, owner_id or self.bot_id, type)
        self._channels[thread["id"]] = thread
        return _deep_copy(thread)

    def add_forum(
        self,
        guild_id: str,
        channel_id: str,
        name: str,
        *,
        tags: Iterable[Mapping[str, Any]] = (),
        type: int = 15,
        **extra: Any,
    ) -> dict[str, Any]:
        """Add a forum channel (type 15; 16 media) offering ``tags`` (ForumTagResponse objects:
        ``{"id", "name", "moderated"?, "emoji_id"?, "emoji_name"?}``, at most 20)."""
        available = [
            {
                "id": str(tag["id"]),
                "name": str(tag["name"]),
                "moderated": bool(tag.get("moderated", False)),
                "emoji_id": tag.get("emoji_id"),
                "emoji_name": tag.get("emoji_name"),
            }
            for tag in tags
        ]
        if len(available) > MAX_FORUM_TAGS:
            raise ValueError(f"a forum offers at most {MAX_FORUM_TAGS} tags")
        fields = {
            "available_tags": available,
            "default_reaction_emoji": None,
            "default_thread_rate_limit_per_user": 0,
            "default_sort_order": None,
            "default_forum_layout": 0,
            "template": "",
            **extra,
        }
        return self.add_channel(guild_id, channel_id, name, type=type, **fields)

    def forum_post(
        self,
        forum_id: str,
        author: str | Mapping[str, Any],
        title: str,
        content: str,
        *,
        applied_tags: Sequence[str] = (),
        post_id: str | None = None,
        mention_bot: bool = False,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A user's new post in a forum: the ``d`` of THREAD_CREATE and of MESSAGE_CREATE.

        Dispatch them in that order, as Discord does. The post is a public thread (type 11)
        whose parent is the forum, owned by the author, with ``applied_tags`` (ids of the
        forum's tags, at most 5); its starter message has the thread's id and is in the
        thread. The thread is known to the simulator from now on (REST can read it).
        """
        forum = self._channel(forum_id)
        if forum["type"] not in _FORUM_TYPES:
            raise KeyError(f"channel {forum_id!r} is not a forum")
        known = {tag["id"] for tag in forum.get("available_tags", [])}
        tags = [str(t) for t in applied_tags]
        if len(tags) > MAX_APPLIED_TAGS or not set(tags) <= known:
            raise ValueError(f"a post takes at most {MAX_APPLIED_TAGS} of the forum's tags")
        owner = self._resolve_user(author)
        thread = self._thread_object(forum, str(post_id or self.new_id()), title, owner["id"], 11)
        thread.update(applied_tags=tags, last_message_id=thread["id"])
        thread["thread_metadata"]["auto_archive_duration"] = 4320
        self._channels[thread["id"]] = _deep_copy(thread)
        starter = self.message_create(
            thread["id"], owner, content, message_id=thread["id"], mention_bot=mention_bot
        )
        forum["last_message_id"] = thread["id"]
        return {**thread, "newly_created": True}, starter

    def permissions(self, guild_id: str, user_id: str) -> int:
        """A member's guild permissions: @everyone's and their roles' (all for ADMINISTRATOR)."""
        guild = self._guilds[str(guild_id)]
        member = self._members.get(str(guild_id), {}).get(str(user_id)) or {}
        wanted = {str(guild_id), *(str(r) for r in member.get("roles", []))}
        value = 0
        for role in guild["roles"]:
            if role["id"] in wanted:
                value |= int(role.get("permissions") or 0)
        return (1 << 53) - 1 if value & _ADMINISTRATOR else value

    def _thread_object(
        self, parent: Mapping[str, Any], thread_id: str, name: str, owner_id: str, type: int
    ) -> dict[str, Any]:
        return {
            "id": thread_id,
            "guild_id": parent["guild_id"],
            "parent_id": parent["id"],
            "owner_id": str(owner_id),
            "name": name,
            "type": type,
            "last_message_id": None,
            "message_count": 0,
            "member_count": 1,
            "rate_limit_per_user": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": _iso(snowflake_ms(thread_id)),
                "locked": False,
                "create_timestamp": _iso(snowflake_ms(thread_id)),
            },
            "total_message_sent": 0,
        }

    def archive_thread(self, thread_id: str, *, archived: bool = True) -> None:
        """Archive (or unarchive) a thread: it moves between the active and archived lists."""
        metadata = self._channel(thread_id)["thread_metadata"]
        metadata["archived"] = archived
        metadata["archive_timestamp"] = _iso(snowflake_ms(self.new_id()))

    def delete_thread(self, thread_id: str) -> None:
        """Delete a thread with its messages (it is in no list any more)."""
        self._channels.pop(str(thread_id))
        for mid in self._history.pop(str(thread_id), []):
            self._messages.pop(mid, None)

    def add_dm_channel(
        self, user: str | Mapping[str, Any], *, channel_id: str | None = None
    ) -> dict[str, Any]:
        """Open (or return) the DM channel between the bot and ``user``; returns the channel."""
        resolved = self._resolve_user(user)
        existing = self._dm_by_user.get(resolved["id"])
        if existing is not None:
            return _deep_copy(self._channels[existing])
        channel: dict[str, Any] = {
            "id": str(channel_id or self.new_id()),
            "type": 1,
            "last_message_id": None,
            "flags": 0,
            "recipients": [resolved],
        }
        self._channels[channel["id"]] = channel
        self._dm_by_user[resolved["id"]] = channel["id"]
        return _deep_copy(channel)

    def refuse_dms(self, user_id: str, refuse: bool = True) -> None:
        """Make DMs to ``user_id`` fail with 403 code 50007, as when a user closes their DMs."""
        (self._dm_refused.add if refuse else self._dm_refused.discard)(str(user_id))

    def channel(self, channel_id: str) -> dict[str, Any]:
        """A channel object (``KeyError`` if unknown)."""
        return _deep_copy(self._channel(channel_id))

    def _channel(self, channel_id: str) -> dict[str, Any]:
        try:
            return self._channels[str(channel_id)]
        except KeyError:
            raise KeyError(
                f"unknown channel {channel_id!r}; add it with add_guild(), add_channel(), "
                "add_thread() or add_dm_channel() first"
            ) from None

    def _member_view(self, guild_id: str, user_id: str, *, with_user: bool) -> dict[str, Any]:
        member = self._members.get(guild_id, {}).get(user_id)
        if member is None:
            user = self._users.get(user_id, {"id": user_id})
            member = {"user": user, "roles": [], "joined_at": DEFAULT_JOINED_AT, "nick": None}
            member.update(deaf=False, mute=False, flags=0, pending=False, premium_since=None)
        view = _deep_copy(member)
        if not with_user:
            view.pop("user", None)
        return view

    # -- payload builders -----------------------------------------------------------------

    def guild_create(self, guild_id: str) -> dict[str, Any]:
        """The ``d`` of GUILD_CREATE for a guild (shape of the shared GuildCreate.json)."""
        guild = _deep_copy(self._guilds[str(guild_id)])
        members = [_deep_copy(m) for m in self._members.get(guild["id"], {}).values()]
        channels, threads = [], []
        for channel in self._channels.values():
            if channel.get("guild_id") != guild["id"]:
                continue
            if channel["type"] in (10, 11, 12):
                threads.append(_deep_copy(channel))
            else:
                view = _deep_copy(channel)
                view.pop("guild_id", None)  # GUILD_CREATE's channels carry no guild_id
                channels.append(view)
        guild.update(
            joined_at=DEFAULT_JOINED_AT,
            large=False,
            unavailable=False,
            member_count=len(members),
            voice_states=[],
            members=members,
            channels=channels,
            threads=threads,
            presences=[],
            stage_instances=[],
            guild_scheduled_events=[],
            soundboard_sounds=[],
            embedded_activities=[],
            application_command_counts={},
            application_command_count=len(self._guild_commands.get(guild["id"], [])),
            guild_hashes={},
            lazy=True,
        )
        return guild

    def message_create(
        self,
        channel_id: str,
        author: str | Mapping[str, Any],
        content: str = "",
        *,
        mention_bot: bool = False,
        mentions: Sequence[str] = (),
        reply_to: str | None = None,
        attachments: Sequence[tuple[str, bytes] | tuple[str, bytes, str]] = (),
        embeds: Sequence[Mapping[str, Any]] = (),
        message_id: str | None = None,
        forward_of: str | None = None,
    ) -> dict[str, Any]:
        """The ``d`` of MESSAGE_CREATE for a user's message (dispatch it with :meth:`dispatch`).

        Guild messages carry ``guild_id`` and ``member`` (like MessageCreate.Type0.json), DMs do
        not (like the docs' Example Message). ``mention_bot`` prefixes ``<@bot>`` unless the
        content already mentions the bot; ``mentions`` adds user ids to ``mentions``;
        ``reply_to`` makes it a reply (type 19) to a message the simulator knows;
        ``attachments`` are ``(filename, data[, content_type])``, served at their ``url``.
        ``forward_of`` makes it a forward of a message the simulator knows: empty content, a
        ``message_reference`` of type 1 (FORWARD) and the original's fields in
        ``message_snapshots[0].message`` (the subset the docs list), flag HAS_SNAPSHOT.
        """
        channel = self._channel(channel_id)
        user = self._resolve_user(author)
        bot_mention = f"<@{self.bot_id}>"
        if mention_bot and bot_mention not in content and f"<@!{self.bot_id}>" not in content:
            content = f"{bot_mention} {content}".rstrip()
        mid = str(message_id or self.new_id())
        referenced = self._messages.get(str(reply_to)) if reply_to else None
        if reply_to and referenced is None:
            raise KeyError(f"unknown message {reply_to!r} to reply to")
        ids = [m for m in _MENTION_USER.findall(content)] + [str(m) for m in mentions]
        if referenced is not None:
            ids.append(referenced["author"]["id"])
        message: dict[str, Any] = {
            "type": 19 if referenced is not None else 0,
            "tts": False,
            "timestamp": _iso(snowflake_ms(mid)),
            "pinned": False,
            "nonce": str(int(mid) - 1),
            "mentions": self._mention_objects(ids),
            "mention_roles": list(dict.fromkeys(_MENTION_ROLE.findall(content))),
            "mention_everyone": False,
            "id": mid,
            "flags": 0,
            "embeds": [{"type": "rich", **_deep_copy(dict(e))} for e in embeds],
            "edited_timestamp": None,
            "content": content,
            "components": [],
            "channel_id": channel["id"],
            "author": _deep_copy(user),
            "attachments": [
                self._store_attachment(channel["id"], *attachment) for attachment in attachments
            ],
        }
        if referenced is not None:
            message["message_reference"] = self._reference_object(referenced)
            message["referenced_message"] = self._referenced_view(referenced)
        if forward_of is not None:
            original = self._messages.get(str(forward_of))
            if original is None:
                raise KeyError(f"unknown message {forward_of!r} to forward")
            snapshot_fields = (
                "type", "content", "embeds", "attachments", "timestamp", "edited_timestamp",
                "flags", "mentions", "mention_roles", "components",
            )  # fmt: skip
            snapshot = {key: _deep_copy(original.get(key)) for key in snapshot_fields}
            snapshot.update(stickers=[], sticker_items=[])
            message.update(
                content="",
                flags=1 << 14,  # HAS_SNAPSHOT
                message_reference={**self._reference_object(original), "type": 1},
                message_snapshots=[{"message": snapshot}],
            )
        return self._gateway_message(message)

    def reaction_add(
        self,
        channel_id: str,
        message_id: str,
        user: str | Mapping[str, Any],
        emoji: str | Mapping[str, Any] = "👍",
    ) -> dict[str, Any]:
        """The ``d`` of MESSAGE_REACTION_ADD (shape of MessageReactionAdd.json)."""
        payload = self._reaction_payload(channel_id, message_id, user, emoji)
        if payload.get("guild_id"):
            payload["member"] = self._member_view(
                payload["guild_id"], payload["user_id"], with_user=True
            )
        stored = self._messages.get(str(message_id))
        if stored is not None:
            payload["message_author_id"] = stored["author"]["id"]
        payload["burst_colors"] = []
        return payload

    def reaction_remove(
        self,
        channel_id: str,
        message_id: str,
        user: str | Mapping[str, Any],
        emoji: str | Mapping[str, Any] = "👍",
    ) -> dict[str, Any]:
        """The ``d`` of MESSAGE_REACTION_REMOVE (shape of MessageReactionRemove.json)."""
        return self._reaction_payload(channel_id, message_id, user, emoji)

    def _reaction_payload(
        self,
        channel_id: str,
        message_id: str,
        user: str | Mapping[str, Any],
        emoji: str | Mapping[str, Any],
    ) -> dict[str, Any]:
        channel = self._channel(channel_id)
        resolved = self._resolve_user(user)
        emoji_object = (
            {"id": None, "name": emoji} if isinstance(emoji, str) else _deep_copy(dict(emoji))
        )
        payload: dict[str, Any] = {
            "user_id": resolved["id"],
            "channel_id": channel["id"],
            "message_id": str(message_id),
            "emoji": emoji_object,
            "burst": False,
            "type": 0,
        }
        if channel.get("guild_id"):
            payload["guild_id"] = channel["guild_id"]
        return payload

    def thread_create(
        self,
        parent_id: str,
        name: str,
        owner: str | Mapping[str, Any],
        *,
        thread_id: str | None = None,
        type: int = 11,
    ) -> dict[str, Any]:
        """The ``d`` of THREAD_CREATE for a new thread a user opened (registered on dispatch)."""
        parent = self._channel(parent_id)
        if parent.get("guild_id") is None:
            raise KeyError(f"channel {parent_id!r} is not a guild channel; threads need one")
        owner_user = self._resolve_user(owner)
        thread = self._thread_object(
            parent, str(thread_id or self.new_id()), name, owner_user["id"], type
        )
        thread["newly_created"] = True
        return thread

    def interaction(
        self,
        name: str,
        *,
        user: str | Mapping[str, Any],
        channel_id: str,
        options: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        locale: str = "en-US",
        interaction_id: str | None = None,
    ) -> dict[str, Any]:
        """The ``d`` of INTERACTION_CREATE for a slash command (type 2, shape of the fixture).

        ``options`` is ``{"name": value}`` (types inferred: str 3, bool 5, int 4, float 10) or
        a list of raw option objects. ``data.id`` is the id the command got from the last bulk
        overwrite (guild commands first, then global), and ``data.guild_id`` is set for a guild
        command, as discord.py's CommandTree expects. The interaction token is deterministic.
        """
        channel = self._channel(channel_id)
        guild_id = channel.get("guild_id")
        command = self._find_command(name, guild_id)
        data: dict[str, Any] = {
            "id": command["id"] if command else self.new_id(),
            "name": name,
            "type": 1,
        }
        if command is not None and command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        if options:
            data["options"] = self._command_options(options)
            resolved = self._resolved_for(data["options"], guild_id)
            if resolved:
                data["resolved"] = resolved
        return self._interaction_payload(
            2, data, user, channel, locale, interaction_id=interaction_id
        )

    def component_interaction(
        self,
        message_id: str,
        custom_id: str,
        *,
        user: str | Mapping[str, Any],
        component_type: int = 2,
        values: Sequence[str] | None = None,
        locale: str = "en-US",
    ) -> dict[str, Any]:
        """The ``d`` of INTERACTION_CREATE for a click on a message component (type 3).

        ``message_id`` must be a message the simulator knows (usually one the bot sent with
        ``components``); it is included as ``message``, as Discord does.
        """
        message = self._messages.get(str(message_id))
        if message is None:
            raise KeyError(f"unknown message {message_id!r}")
        channel = self._channel(message["channel_id"])
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = list(values)
        return self._interaction_payload(
            3, data, user, channel, locale, message=self._gateway_message(message)
        )

    def _interaction_payload(
        self,
        type: int,
        data: dict[str, Any],
        user: str | Mapping[str, Any],
        channel: Mapping[str, Any],
        locale: str,
        *,
        interaction_id: str | None = None,
        message: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        resolved_user = self._resolve_user(user)
        guild_id = channel.get("guild_id")
        channel_view = _deep_copy(dict(channel))
        payload: dict[str, Any] = {
            "version": 1,
            "type": type,
            "token": f"sim-interaction-token-{self._next()}",
            "id": str(interaction_id or self.new_id()),
            "application_id": self.application_id,
            "data": data,
            "channel_id": channel["id"],
            "channel": channel_view,
            "locale": locale,
            "app_permissions": BOT_PERMISSIONS,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        }
        if guild_id:
            guild = self._guilds[guild_id]
            member = self._member_view(guild_id, resolved_user["id"], with_user=True)
            member["permissions"] = str(self.permissions(guild_id, resolved_user["id"]))
            channel_view["permissions"] = EVERYONE_PERMISSIONS
            payload.update(
                guild_id=guild_id,
                guild={"id": guild_id, "locale": guild["preferred_locale"], "features": []},
                guild_locale=guild["preferred_locale"],
                member=member,
                authorizing_integration_owners={"0": guild_id},
                context=0,
            )
        else:
            payload.update(
                user=_deep_copy(resolved_user),
                authorizing_integration_owners={"0": "0"},
                context=1,
            )
        if message is not None:
            payload["message"] = message
        return payload

    def _command_options(
        self, options: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        if not isinstance(options, Mapping):
            return [_deep_copy(dict(o)) for o in options]
        built = []
        for name, value in options.items():
            if isinstance(value, bool):
                option_type = 5
            elif isinstance(value, int):
                option_type = 4
            elif isinstance(value, float):
                option_type = 10
            else:
                option_type, value = 3, str(value)
            built.append({"name": name, "type": option_type, "value": value})
        return built

    def _resolved_for(
        self, options: Sequence[Mapping[str, Any]], guild_id: str | None
    ) -> dict[str, Any]:
        """``resolved`` users/members/channels for user (6) and channel (7) options."""
        resolved: dict[str, dict[str, Any]] = {}
        for option in options:
            value = str(option.get("value"))
            if option.get("type") == 6 and value in self._users:
                resolved.setdefault("users", {})[value] = _deep_copy(self._users[value])
                if guild_id and value in self._members.get(guild_id, {}):
                    member = self._member_view(guild_id, value, with_user=False)
                    resolved.setdefault("members", {})[value] = member
            elif option.get("type") == 7 and value in self._channels:
                channel = self._channels[value]
                resolved.setdefault("channels", {})[value] = {
                    "id": value,
                    "name": channel.get("name"),
                    "type": channel["type"],
                    "permissions": EVERYONE_PERMISSIONS,
                }
        return resolved

    def _find_command(self, name: str, guild_id: str | None) -> dict[str, Any] | None:
        candidates = list(self._guild_commands.get(guild_id, [])) if guild_id else []
        candidates += self._global_commands
        for command in candidates:
            if command["name"] == name and command.get("type", 1) == 1:
                return command
        return None

    # -- messages -------------------------------------------------------------------------

    def _mention_objects(self, user_ids: Iterable[str]) -> list[dict[str, Any]]:
        return [
            _deep_copy(self._users[uid]) for uid in dict.fromkeys(user_ids) if uid in self._users
        ]

    def _reference_object(self, referenced: Mapping[str, Any]) -> dict[str, Any]:
        reference: dict[str, Any] = {
            "type": 0,
            "message_id": referenced["id"],
            "channel_id": referenced["channel_id"],
        }
        guild_id = self._channels.get(referenced["channel_id"], {}).get("guild_id")
        if guild_id:
            reference["guild_id"] = guild_id
        return reference

    def _referenced_view(self, referenced: Mapping[str, Any]) -> dict[str, Any]:
        view = _deep_copy(dict(referenced))
        view.pop("referenced_message", None)
        return view

    def _gateway_message(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """A stored (REST-shaped) message -> MESSAGE_CREATE's ``d`` (adds guild_id, member)."""
        view = _deep_copy(dict(message))
        guild_id = self._channels.get(view["channel_id"], {}).get("guild_id")
        if guild_id:
            view["guild_id"] = guild_id
            if not view["author"].get("webhook_id"):
                view["member"] = self._member_view(guild_id, view["author"]["id"], with_user=False)
        return view

    def _store_message(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """Keep a message (REST shape: no guild_id/member) in its channel's history."""
        stored = _deep_copy(dict(message))
        stored.pop("guild_id", None)
        stored.pop("member", None)
        mid = str(stored["id"])
        is_new = mid not in self._messages
        self._messages[mid] = stored
        if is_new:
            history = self._history.setdefault(stored["channel_id"], [])
            history.append(mid)
            history.sort(key=int)
            channel = self._channels.get(stored["channel_id"])
            if channel is not None:
                channel["last_message_id"] = mid
                if "message_count" in channel:
                    channel["message_count"] += 1
                    channel["total_message_sent"] = channel.get("total_message_sent", 0) + 1
        return stored

    def _store_attachment(
        self, channel_id: str, filename: str, data: bytes, content_type: str | None = None
    ) -> dict[str, Any]:
        attachment_id = self.new_id()
        path = f"{ATTACHMENTS_PATH}/{channel_id}/{attachment_id}/{filename}"
        self._attachments[path] = (data, content_type)
        url = f"{self.url}{path}" if self._port is not None else path
        attachment: dict[str, Any] = {
            "id": attachment_id,
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
        }
        if content_type:
            attachment["content_type"] = content_type
        return attachment

    def _needs_blanking(self, message: Mapping[str, Any], intents: int) -> bool:
        """Whether Discord would withhold this message's content from the bot."""
        if intents & Intent.MESSAGE_CONTENT:
            return False
        channel = self._channels.get(str(message.get("channel_id")), {})
        if not (message.get("guild_id") or channel.get("guild_id")):
            return False  # DMs keep their content
        if (message.get("author") or {}).get("id") == self.bot_id:
            return False
        return not any(m.get("id") == self.bot_id for m in message.get("mentions") or [])

    def _content_view(self, message: dict[str, Any], intents: int) -> dict[str, Any]:
        if not self.enforce_intents:
            return message
        if self._needs_blanking(message, intents):
            message = {**message, "content": "", "embeds": [], "attachments": []}
            message["components"] = []
            message.pop("poll", None)
            if message.get("message_snapshots"):  # a forward's copy is withheld the same way
                message["message_snapshots"] = [
                    {"message": {**s["message"], "content": "", "embeds": [], "attachments": []}}
                    for s in message["message_snapshots"]
                ]
        referenced = message.get("referenced_message")
        if isinstance(referenced, dict):
            message = {**message, "referenced_message": self._content_view(referenced, intents)}
        return message

    def _rest_message(self, message: Mapping[str, Any]) -> dict[str, Any]:
        return self._content_view(_deep_copy(dict(message)), self.privileged_intents)

    def store_message(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """Put a message (e.g. from :meth:`message_create`) into its channel's history without
        dispatching it: history from before the bot connected. Returns the stored copy."""
        return _deep_copy(self._store_message(message))

    # -- state read-back ------------------------------------------------------------------

    def history(self, channel_id: str) -> list[dict[str, Any]]:
        """Every message the simulator knows in a channel (dispatched or sent), oldest first."""
        ids = self._history.get(str(channel_id), [])
        return [_deep_copy(self._messages[mid]) for mid in ids if mid in self._messages]

    def message(self, message_id: str) -> dict[str, Any]:
        """A stored message as it is now (``KeyError`` if unknown or deleted)."""
        return _deep_copy(self._messages[str(message_id)])

    def sent_messages(self, channel_id: str | None = None) -> list[dict[str, Any]]:
        """Messages the bot created through REST (channel posts, interaction responses and
        followups, ephemeral ones included), current versions, oldest first."""
        found = []
        for mid in self._bot_message_ids:
            message = self._messages.get(mid)
            if message is None:
                continue
            if channel_id is None or message["channel_id"] == str(channel_id):
                found.append(_deep_copy(message))
        return found

    def pings(self, channel_id: str | None = None) -> list[Ping]:
        """Who each message the bot sent (current version) notifies, as Discord decides it:
        the users and roles its ``allowed_mentions`` let through (``mentions``,
        ``mention_roles``), a role only when it is mentionable or the bot has
        MENTION_EVERYONE, and ``@everyone``/``@here`` only with MENTION_EVERYONE (the docs'
        Allowed Mentions reference). Messages that notify nobody are left out."""
        found = []
        for message in self.sent_messages(channel_id):
            guild_id = self._channels.get(message["channel_id"], {}).get("guild_id")
            guild = self._guilds.get(str(guild_id)) if guild_id else None
            may_all = bool(guild) and bool(
                self.permissions(str(guild_id), self.bot_id) & _MENTION_EVERYONE
            )
            mentionable = {
                r["id"] for r in (guild or {}).get("roles", []) if r.get("mentionable") or may_all
            }
            users = [u["id"] for u in message.get("mentions") or []]
            roles = [r for r in message.get("mention_roles") or [] if r in mentionable]
            everyone = bool(message.get("mention_everyone")) and may_all
            if users or roles or everyone:
                found.append(Ping(message["channel_id"], message["id"], users, roles, everyone))
        return found

    def message_edits(self, message_id: str) -> list[DiscordCall]:
        """The edits (``PATCH``) of one message, oldest first: their contents and times
        (``received_at``), for checking how fast a bot edits (Discord allows about 5 edits
        per 5 s per channel)."""
        return self.calls("PATCH", f"/channels/{{id}}/messages/{message_id}")

    def max_edits_within(self, message_id: str, seconds: float) -> int:
        """The most edits of ``message_id`` that fell within any ``seconds``-long window."""
        times = [c.received_at for c in self.message_edits(message_id)]
        return max(
            (sum(1 for t in times[i:] if t - start < seconds) for i, start in enumerate(times)),
            default=0,
        )

    def commands(self, guild_id: str | None = None) -> list[dict[str, Any]]:
        """Application commands as last bulk-overwritten (global, or for one guild)."""
        if guild_id is None:
            return _deep_copy(self._global_commands)
        return _deep_copy(self._guild_commands.get(str(guild_id), []))

    def interaction_replies(self, interaction_id: str | None = None) -> list[InteractionReply]:
        """Callbacks, followups, edits and deletes the bot made for interactions, in order."""
        return [
            r
            for r in self._interaction_replies
            if interaction_id is None or r.interaction_id == str(interaction_id)
        ]

    def original_response(self, interaction_id: str) -> dict[str, Any] | None:
        """The interaction's original response message as it is now (None if none)."""
        interaction = self._interactions.get(str(interaction_id))
        if interaction is None or interaction.original_id is None:
            return None
        message = self._messages.get(interaction.original_id)
        return _deep_copy(message) if message is not None else None

    # -- recording --------------------------------------------------------------------------

    def calls(self, method: str | None = None, path: str | None = None) -> list[DiscordCall]:
        """Recorded REST calls, oldest first, optionally filtered.

        ``path`` is an exact path (``/channels/101/messages``) or a pattern where ``{...}``
        matches one segment and ``*`` anything (``/channels/{id}/messages``, ``/webhooks/*``).
        """
        regex = _compile_pattern(path) if path is not None else None
        return [
            c
            for c in self._calls
            if _method_matches(method, c.method) and (regex is None or regex.match(c.path))
        ]

    def unknown_calls(self) -> list[DiscordCall]:
        """Calls to routes the simulator does not implement (answered 404/405)."""
        return [c for c in self._calls if c.route is None]

    def clear_calls(self) -> None:
        """Forget the recorded REST calls (state is kept)."""
        self._calls.clear()

    @property
    def identifies(self) -> list[Identify]:
        """Every IDENTIFY received, oldest first."""
        return list(self._identifies)

    @property
    def identify_count(self) -> int:
        """How many IDENTIFYs were received."""
        return len(self._identifies)

    @property
    def resumes(self) -> list[Resume]:
        """Every RESUME received, oldest first."""
        return list(self._resumes)

    @property
    def resume_count(self) -> int:
        """How many RESUMEs were received."""
        return len(self._resumes)

    @property
    def intents(self) -> int | None:
        """The intents of the last IDENTIFY (None before any)."""
        return self._identifies[-1].intents if self._identifies else None

    @property
    def session_id(self) -> str | None:
        """The current (last identified, not invalidated) session's id."""
        return self._current.session_id if self._current else None

    @property
    def heartbeat_count(self) -> int:
        """Heartbeats (op 1) received over all connections."""
        return sum(c.heartbeats for c in self._conns.values())

    def connections(self) -> list[GatewayConnection]:
        """Every gateway connection so far (snapshots), oldest first."""
        return [c.snapshot() for c in self._conns.values()]

    def events(self, type: str | None = None) -> list[GatewayEvent]:
        """Dispatched events (sent, queued for replay or dropped), oldest first."""
        return [e for e in self._events if type is None or e.type == type]

    def frames(self, direction: str | None = None) -> list[GatewayFrame]:
        """Gateway frames sent (``"out"``) and received (``"in"``), oldest first."""
        return [f for f in self._frames if direction is None or f.direction == direction]

    # -- waiting ------------------------------------------------------------------------------

    def _notify(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def _wait_until(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = check()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.add(waiter)
            try:
                await asyncio.wait({waiter}, timeout=remaining)
            finally:
                self._waiters.discard(waiter)
                waiter.cancel()

    async def wait_for_call(
        self, method: str | None, path: str | None, *, count: int = 1, timeout: float = 5.0
    ) -> DiscordCall:
        """Wait until ``count`` matching REST calls were answered; returns the ``count``-th."""

        def check() -> DiscordCall | None:
            found = self.calls(method, path)
            return found[count - 1] if len(found) >= count else None

        result: DiscordCall = await self._wait_until(
            check, timeout, f"{count} call(s) to {method} {path}"
        )
        return result

    async def wait_for_identify(self, count: int = 1, *, timeout: float = 5.0) -> Identify:
        """Wait until ``count`` IDENTIFYs were received in all; returns the ``count``-th."""
        result: Identify = await self._wait_until(
            lambda: self._identifies[count - 1] if len(self._identifies) >= count else None,
            timeout,
            f"IDENTIFY #{count}",
        )
        return result

    async def wait_for_resume(self, count: int = 1, *, timeout: float = 5.0) -> Resume:
        """Wait until ``count`` RESUMEs were received in all; returns the ``count``-th."""
        result: Resume = await self._wait_until(
            lambda: self._resumes[count - 1] if len(self._resumes) >= count else None,
            timeout,
            f"RESUME #{count}",
        )
        return result

    async def wait_for_live_session(self, *, timeout: float = 5.0) -> str:
        """Wait until a session has a live connection (READY or RESUMED sent); its id."""
        result: str = await self._wait_until(
            lambda: self._current.session_id if self._current and self._current.conn else None,
            timeout,
            "a live gateway session",
        )
        return result

    async def wait_for_heartbeats(self, count: int = 1, *, timeout: float = 5.0) -> int:
        """Wait until ``count`` heartbeats (op 1) were received in all; returns the count."""
        result: int = await self._wait_until(
            lambda: self.heartbeat_count if self.heartbeat_count >= count else 0,
            timeout,
            f"{count} heartbeat(s)",
        )
        return result

    async def wait_for_sent_message(
        self, channel_id: str | None = None, *, count: int = 1, timeout: float = 5.0
    ) -> dict[str, Any]:
        """Wait until the bot created ``count`` messages (in a channel); returns the last."""

        def check() -> dict[str, Any] | None:
            found = self.sent_messages(channel_id)
            return found[count - 1] if len(found) >= count else None

        result: dict[str, Any] = await self._wait_until(
            check, timeout, f"{count} bot message(s) in {channel_id or 'any channel'}"
        )
        return result

    # -- fault injection --------------------------------------------------------------------

    def rate_limit_next(
        self,
        method: str | None,
        path_pattern: str,
        retry_after: float = 0.3,
        global_: bool = False,
        times: int = 1,
        scope: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching calls with 429 as Discord does.

        Body ``{"message": "You are being rate limited.", "retry_after": ..., "global": ...}``;
        headers ``Retry-After``, ``X-RateLimit-Limit/Remaining(0)/Reset/Reset-After/Bucket``
        (not for a global limit), ``X-RateLimit-Global``, ``X-RateLimit-Scope``
        (``user``/``global``/``shared``) and ``Via``.
        """
        scope = scope or ("global" if global_ else "user")
        headers = {
            "Retry-After": str(max(1, int(-(-retry_after // 1)))),
            "X-RateLimit-Scope": scope,
            "Via": "1.1 google",
        }
        if global_:
            headers["X-RateLimit-Global"] = "true"
        else:
            headers.update(
                {
                    "X-RateLimit-Limit": str(self.bucket_limit),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": f"{self._wall_clock() + retry_after:.3f}",
                    "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                    "X-RateLimit-Bucket": self._bucket_hash(f"{method} {path_pattern}"),
                }
            )
        body = {"message": "You are being rate limited.", "retry_after": retry_after}
        body["global"] = global_
        self._add_fault(method, path_pattern, times, _Fault(429, body, headers))

    def fail_next(
        self,
        method: str | None,
        path_pattern: str,
        status: int = 500,
        times: int = 1,
        *,
        code: int = 0,
        message: str | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` matching calls with ``status``.

        The body is Discord's ``{"message", "code"}`` unless ``body`` is given (a str body is
        sent as text/plain, like a proxy's error page). 403 + code 50013 plays "Missing
        Permissions". discord.py retries 500/502/504 after 1 s, 3 s...; 503 raises at once.
        """
        if body is None:
            body = {"message": message or f"{status}: simulated failure", "code": code}
        self._add_fault(method, path_pattern, times, _Fault(status, body, dict(headers or {})))

    def _add_fault(self, method: str | None, pattern: str, times: int, fault: _Fault) -> None:
        if times < 1:
            raise ValueError("times must be at least 1")
        method = None if method in (None, "*") else method.upper()
        self._faults.append(_FaultRule(method, _compile_pattern(pattern), times, fault))

    def clear_faults(self) -> None:
        """Drop every queued injected failure."""
        self._faults.clear()

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for rule in self._faults:
            if _method_matches(rule.method, method) and rule.pattern.match(path):
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._faults.remove(rule)
                return rule.fault
        return None

    # -- gateway: test controls -------------------------------------------------------------

    async def dispatch(
        self, event: str, data: Mapping[str, Any], *, session_id: str | None = None
    ) -> int | None:
        """Send a dispatch (op 0) to the bot's session; returns its ``s`` (None if dropped).

        The simulator's state follows the event first (a MESSAGE_CREATE joins the channel's
        history, reactions are counted, a THREAD_CREATE registers the thread, an
        INTERACTION_CREATE starts its callback deadline). Then, unless the session's intents do
        not cover the event, it gets the next sequence number and is sent now if the session is
        connected, or replayed when the client RESUMEs. Raises :class:`GatewayNotConnected`
        when no client has IDENTIFYed (or the session was invalidated).
        """
        payload = _deep_copy(dict(data))
        session = self._session_for_dispatch(session_id)
        self._apply_event(event, payload)
        return await self._send_event(session, event, payload)

    async def _echo(self, event: str, data: Mapping[str, Any]) -> None:
        """Send an event caused by the bot's own REST call (quietly skipped when offline)."""
        if not self.echo_bot_events or self._current is None:
            return
        await self._send_event(self._current, event, _deep_copy(dict(data)))

    def _session_for_dispatch(self, session_id: str | None) -> _Session:
        if session_id is not None:
            session = self._sessions.get(session_id)
            if session is None:
                raise GatewayNotConnected(f"unknown gateway session {session_id!r}")
            return session
        if self._current is None:
            raise GatewayNotConnected(
                "no gateway session: has the client connected and IDENTIFYed? "
                "(await sim.wait_for_live_session() first)"
            )
        return self._current

    async def _send_event(
        self, session: _Session, event: str, payload: dict[str, Any]
    ) -> int | None:
        reason = self._drop_reason(session.intents, event, payload)
        if reason is not None:
            self._events.append(GatewayEvent(event, payload, session.session_id, None, reason))
            self._log(f"gateway: dropped {event} ({reason})")
            self._notify()
            return None
        view = payload
        if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE"):
            view = self._content_view(payload, session.intents)
        async with session.lock:
            seq = self._append(session, event, view)
            self._events.append(GatewayEvent(event, view, session.session_id, seq))
            if session.conn is not None:
                await self._deliver(session.conn, seq, event, view)
        self._notify()
        return seq

    def _drop_reason(self, intents: int, event: str, data: Mapping[str, Any]) -> str | None:
        if not self.enforce_intents:
            return None
        in_guild = bool(data.get("guild_id"))
        needed: Intent | None = None
        if event in _GUILDS_EVENTS:
            needed = Intent.GUILDS
        elif event in _MEMBER_EVENTS:
            needed = Intent.GUILD_MEMBERS
        elif event in _MESSAGE_EVENTS:
            needed = Intent.GUILD_MESSAGES if in_guild else Intent.DIRECT_MESSAGES
        elif event in _REACTION_EVENTS:
            needed = Intent.GUILD_MESSAGE_REACTIONS if in_guild else Intent.DIRECT_MESSAGE_REACTIONS
        elif event == "TYPING_START":
            needed = Intent.GUILD_MESSAGE_TYPING if in_guild else Intent.DIRECT_MESSAGE_TYPING
        elif event == "PRESENCE_UPDATE":
            needed = Intent.GUILD_PRESENCES
        if needed is not None and not intents & needed:
            return f"session intents lack {needed.name}"
        return None

    async def send_reconnect(self) -> None:
        """Send op 7 RECONNECT on the live connection; later events wait for the RESUME."""
        conn = self._live_conn()
        if conn.session is not None:
            conn.session.conn = None
        await self._send(conn, {"op": 7, "d": None, "s": None, "t": None})

    async def request_heartbeat(self) -> None:
        """Send op 1 HEARTBEAT from the server (the client must answer with a heartbeat)."""
        await self._send(self._live_conn(), {"op": 1, "d": None, "s": None, "t": None})

    async def drop_connection(self, code: int | None = None) -> None:
        """Cut the live connection: with ``code`` None abort the TCP connection (no close
        frame, as a network failure does), else close it with that code (4000 and 1001 are
        resumable; 4004, 4010-4014 are fatal for discord.py)."""
        conn = self._live_conn()
        self._detach(conn)
        if code is None:
            conn.cut = True
            if conn.transport is not None:
                conn.transport.abort()
        else:
            self._spawn(self._close_conn(conn, code))
            await asyncio.sleep(0)
        self._notify()

    async def invalidate_session(self, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION (``d`` = ``resumable``) on the live connection, if any.

        Not resumable: the session is ended (a later RESUME of it gets op 9 ``false``), so the
        client must IDENTIFY again. Works while disconnected too (only the state changes).
        """
        session = self._current
        if session is None:
            raise GatewayNotConnected("no gateway session to invalidate")
        conn = session.conn
        if not resumable:
            session.invalid = True
            self._current = None
        if conn is not None:
            self._detach(conn)
            await self._send(conn, {"op": 9, "d": resumable, "s": None, "t": None})
        self._notify()

    def pause_gateway(self) -> None:
        """Hold new gateway connections before HELLO until :meth:`resume_gateway`."""
        self._gateway_open.clear()

    def resume_gateway(self) -> None:
        """Let held gateway connections proceed (HELLO is sent)."""
        self._gateway_open.set()

    @contextlib.asynccontextmanager
    async def gateway_paused(self) -> AsyncIterator[None]:
        """``async with sim.gateway_paused():`` -- reconnects wait until the block ends, so
        events dispatched inside it can only reach the client by RESUME replay."""
        self.pause_gateway()
        try:
            yield
        finally:
            self.resume_gateway()

    def _live_conn(self) -> _Conn:
        session = self._current
        if session is not None and session.conn is not None:
            return session.conn
        open_conns = [c for c in self._conns.values() if c.closed_at is None and not c.cut]
        if not open_conns:
            raise GatewayNotConnected("no live gateway connection")
        return open_conns[-1]

    def _detach(self, conn: _Conn) -> None:
        if conn.session is not None and conn.session.conn is conn:
            conn.session.conn = None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- gateway: protocol ------------------------------------------------------------------

    async def _handle_gateway(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        compression, encoder = None, None
        if self.compression and query.get("compress") == "zlib-stream":
            compression, encoder = "zlib-stream", _zlib_encoder()
        elif self.compression and query.get("compress") == "zstd-stream":
            encoder = _zstd_encoder()
            compression = "zstd-stream" if encoder else None
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        transport = request.transport
        await ws.prepare(request)
        self._conn_counter += 1
        conn = _Conn(
            id=self._conn_counter,
            ws=ws,
            transport=transport,
            path=request.path,
            query=query,
            compression=compression,
            encoder=encoder,
            opened_at=self._loop_time(),
        )
        self._conns[conn.id] = conn
        self._log(f"gateway: connection {conn.id} on {request.path_qs}")
        self._notify()
        try:
            await self._gateway_open.wait()
            if query.get("v") not in (None, str(API_VERSION), "9"):
                await self._close_conn(conn, 4012, "Invalid API version.")
            elif query.get("encoding", "json") != "json":
                await self._close_conn(conn, 4002, "Only the json encoding is simulated.")
            else:
                hello = {"heartbeat_interval": self.heartbeat_interval_ms, "_trace": _TRACE}
                await self._send(conn, {"t": None, "s": None, "op": 10, "d": hello})
                async for msg in ws:
                    if msg.type == WSMsgType.TEXT:
                        await self._on_client_frame(conn, msg.data)
                    elif msg.type == WSMsgType.BINARY:
                        await self._on_client_frame(conn, msg.data.decode("utf-8", "replace"))
                    elif msg.type == WSMsgType.ERROR:
                        break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            conn.closed_at = self._loop_time()
            if conn.close_code is None:
                conn.close_code = ws.close_code
            self._detach(conn)
            self._log(f"gateway: connection {conn.id} closed ({conn.close_code})")
            self._notify()
        return ws

    async def _on_client_frame(self, conn: _Conn, text: str) -> None:
        try:
            frame = json.loads(text)
            op = frame.get("op")
        except (ValueError, AttributeError):
            self._frames.append(GatewayFrame(conn.id, "in", None, None, None, text))
            await self._close_conn(conn, 4002, "Error while decoding payload.")
            return
        data = frame.get("d")
        self._frames.append(GatewayFrame(conn.id, "in", op, frame.get("t"), frame.get("s"), data))
        if op == 1:
            conn.heartbeats += 1
            self._notify()
            if self.ack_heartbeats:
                await self._send(conn, {"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            await self._on_identify(conn, data if isinstance(data, dict) else {})
        elif op == 6:
            await self._on_resume(conn, data if isinstance(data, dict) else {})
        elif op in (3, 4, 8, 31):  # presence, voice state, request members, soundboard
            if conn.session is None:
                await self._close_conn(conn, 4003, "Not authenticated.")
        else:
            await self._close_conn(conn, 4001, "Unknown opcode.")

    async def _on_identify(self, conn: _Conn, data: dict[str, Any]) -> None:
        intents = data.get("intents")
        shard = data.get("shard")
        close: tuple[int, str] | None = None
        if conn.session is not None:
            close = (4005, "Already authenticated.")
        elif data.get("token") != self.token:
            close = (4004, "Authentication failed.")
        elif not isinstance(intents, int) or intents < 0 or intents >= 1 << 26:
            close = (4013, "Invalid intent(s).")
        elif intents & PRIVILEGED_INTENTS & ~self.privileged_intents:
            close = (4014, "Disallowed intent(s).")
        elif shard is not None and (
            not isinstance(shard, list) or len(shard) != 2 or not 0 <= shard[0] < shard[1]
        ):
            close = (4010, "Invalid shard.")
        session: _Session | None = None
        if close is None:
            session = _Session(
                session_id=hashlib.md5(f"sim-session-{self._next()}".encode()).hexdigest(),
                token=str(data["token"]),
                intents=int(intents),  # type: ignore[arg-type]
                shard=(int(shard[0]), int(shard[1])) if shard else None,
            )
        self._identifies.append(
            Identify(
                connection_id=conn.id,
                token=data.get("token"),
                intents=intents if isinstance(intents, int) else None,
                properties=dict(data.get("properties") or {}),
                shard=(int(shard[0]), int(shard[1])) if close is None and shard else None,
                compress=data.get("compress"),
                large_threshold=data.get("large_threshold"),
                presence=data.get("presence"),
                session_id=session.session_id if session else None,
                close_code=close[0] if close else None,
                raw=_deep_copy(data),
            )
        )
        self._notify()
        if close is not None or session is None:
            self._log(f"gateway: IDENTIFY refused with {close}")
            await self._close_conn(conn, *(close or (4000, "Unknown error.")))
            return
        self._sessions[session.session_id] = session
        self._current = session
        conn.session = session
        async with session.lock:
            ready = self._ready_payload(session)
            seq = self._append(session, "READY", ready, replayable=False)
            await self._deliver(conn, seq, "READY", ready)
            for guild_id in self._guilds:
                guild = self.guild_create(guild_id)
                seq = self._append(session, "GUILD_CREATE", guild, replayable=False)
                await self._deliver(conn, seq, "GUILD_CREATE", guild)
            if not conn.cut and conn.closed_at is None and not session.invalid:
                session.conn = conn
        self._log(f"gateway: session {session.session_id} ready (intents {session.intents})")
        self._notify()

    def _ready_payload(self, session: _Session) -> dict[str, Any]:
        user = _deep_copy(self.bot_user)
        user.update(verified=True, mfa_enabled=False, email=None)
        ready: dict[str, Any] = {
            "v": API_VERSION,
            "user_settings": {},
            "user": user,
            "session_type": "normal",
            "session_id": session.session_id,
            "resume_gateway_url": self.resume_gateway_url,
            "relationships": [],
            "private_channels": [],
            "presences": [],
            "guilds": [{"id": gid, "unavailable": True} for gid in self._guilds],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["seoul", "japan", "us-west"],
            "application": {"id": self.application_id, "flags": 0},
            "auth": {},
            "_trace": _TRACE,
        }
        if session.shard is not None:
            ready["shard"] = list(session.shard)
        return ready

    async def _on_resume(self, conn: _Conn, data: dict[str, Any]) -> None:
        session = self._sessions.get(str(data.get("session_id")))
        seq = data.get("seq")
        token = data.get("token")
        accepted = (
            conn.session is None
            and session is not None
            and not session.invalid
            and token == session.token == self.token
        )
        if not accepted or session is None:
            self._resumes.append(Resume(conn.id, data.get("session_id"), seq, token, False, 0))
            self._notify()
            await self._send(conn, {"op": 9, "d": False, "s": None, "t": None})
            return
        if session.conn is not None and session.conn is not conn:
            old = session.conn
            self._detach(old)
            self._spawn(self._close_conn(old, 4000, "Session resumed elsewhere."))
        last = seq if isinstance(seq, int) else 0
        replayed = 0
        async with session.lock:
            for event_seq, event, payload, replayable in list(session.log):
                if event_seq > last and replayable:
                    await self._deliver(conn, event_seq, event, payload, replay=True)
                    replayed += 1
            resumed = {"_trace": _TRACE}
            resumed_seq = self._append(session, "RESUMED", resumed, replayable=False)
            await self._deliver(conn, resumed_seq, "RESUMED", resumed)
            conn.session = session
            conn.resumed = True
            if not conn.cut and conn.closed_at is None:
                session.conn = conn
        self._resumes.append(
            Resume(conn.id, session.session_id, seq, token, accepted=True, replayed=replayed)
        )
        self._log(f"gateway: session {session.session_id} resumed, {replayed} replayed")
        self._notify()

    def _append(
        self, session: _Session, event: str, payload: dict[str, Any], *, replayable: bool = True
    ) -> int:
        session.seq += 1
        session.log.append((session.seq, event, payload, replayable))
        return session.seq

    async def _deliver(
        self, conn: _Conn, seq: int, event: str, payload: Any, *, replay: bool = False
    ) -> None:
        frame = {"t": event, "s": seq, "op": 0, "d": payload}
        await self._send(conn, frame, replay=replay)

    async def _send(self, conn: _Conn, frame: Mapping[str, Any], *, replay: bool = False) -> bool:
        """Encode and send one frame in order (compression contexts are order-sensitive)."""
        data = _json_body(frame)
        async with conn.send_lock:
            if conn.cut or conn.closed_at is not None or conn.ws.closed:
                return False
            try:
                if conn.encoder is not None:
                    await conn.ws.send_bytes(conn.encoder(data))
                else:
                    await conn.ws.send_str(data.decode())
            except (ConnectionError, RuntimeError):
                return False
        self._frames.append(
            GatewayFrame(
                conn.id,
                "out",
                frame.get("op"),
                frame.get("t"),
                frame.get("s"),
                frame.get("d"),
                replay,
            )
        )
        return True

    async def _close_conn(
        self, conn: _Conn, code: int, message: str = "", *, wait: float = 5.0
    ) -> None:
        self._detach(conn)
        conn.close_code = code
        try:
            await asyncio.wait_for(conn.ws.close(code=code, message=message.encode()), wait)
        except (TimeoutError, ConnectionError, RuntimeError):
            if conn.transport is not None:
                conn.transport.abort()

    # -- state changes that follow dispatched events ----------------------------------------

    def _apply_event(self, event: str, data: dict[str, Any]) -> None:
        if event == "MESSAGE_CREATE" and data.get("id") and data.get("channel_id"):
            self._store_message(data)
        elif event == "MESSAGE_UPDATE":
            stored = self._messages.get(str(data.get("id")))
            if stored is not None:
                stored.update({k: _deep_copy(v) for k, v in data.items() if k != "member"})
                stored.pop("guild_id", None)
        elif event == "MESSAGE_DELETE":
            self._delete_message(str(data.get("id")))
        elif event == "MESSAGE_REACTION_ADD":
            self._count_reaction(data, +1)
        elif event == "MESSAGE_REACTION_REMOVE":
            self._count_reaction(data, -1)
        elif event in ("THREAD_CREATE", "THREAD_UPDATE", "CHANNEL_CREATE") and data.get("guild_id"):
            channel = {k: _deep_copy(v) for k, v in data.items() if k != "newly_created"}
            self._channels[str(data["id"])] = channel
        elif event in ("THREAD_DELETE", "CHANNEL_DELETE"):
            self._channels.pop(str(data.get("id")), None)
        elif event == "GUILD_MEMBER_ADD" and data.get("guild_id") in self._guilds:
            self.add_member(data["guild_id"], {k: v for k, v in data.items() if k != "guild_id"})
        elif event == "GUILD_MEMBER_REMOVE":
            self.remove_member(str(data.get("guild_id")), str((data.get("user") or {}).get("id")))
        elif event == "INTERACTION_CREATE" and data.get("id") and data.get("token"):
            user = data.get("user") or (data.get("member") or {}).get("user") or {}
            self._interactions[str(data["id"])] = _Interaction(
                id=str(data["id"]),
                token=str(data["token"]),
                application_id=str(data.get("application_id") or self.application_id),
                type=int(data.get("type", 2)),
                channel_id=data.get("channel_id") or (data.get("channel") or {}).get("id"),
                guild_id=data.get("guild_id"),
                user=_deep_copy(user),
                name=(data.get("data") or {}).get("name"),
                message_id=(data.get("message") or {}).get("id"),
                dispatched_at=self._loop_time(),
            )

    def _count_reaction(self, data: Mapping[str, Any], delta: int) -> None:
        message = self._messages.get(str(data.get("message_id")))
        emoji = data.get("emoji")
        if message is None or not isinstance(emoji, Mapping):
            return
        key = (message["id"], _emoji_key(emoji))
        users = self._reactors.setdefault(key, [])
        user_id = str(data.get("user_id"))
        if delta > 0 and user_id not in users:
            users.append(user_id)
        elif delta < 0 and user_id in users:
            users.remove(user_id)
        reactions = [r for r in message.get("reactions", []) if _emoji_key(r["emoji"]) != key[1]]
        if users:
            reactions.append(
                {
                    "count": len(users),
                    "count_details": {"burst": 0, "normal": len(users)},
                    "me": self.bot_id in users,
                    "me_burst": False,
                    "emoji": {"id": emoji.get("id"), "name": emoji.get("name")},
                    "burst_colors": [],
                }
            )
        if reactions:
            message["reactions"] = reactions
        else:
            message.pop("reactions", None)

    def _delete_message(self, message_id: str) -> dict[str, Any] | None:
        message = self._messages.pop(message_id, None)
        if message is not None:
            history = self._history.get(message["channel_id"], [])
            if message_id in history:
                history.remove(message_id)
        return message

    # -- REST: plumbing ---------------------------------------------------------------------

    def _route_table(self) -> list[_Route]:
        def route(method: str, template: str, handler: _Handler, auth: bool = True) -> _Route:
            return _Route(method, template, tuple(template.split("/")), handler, auth)

        c, m = "/channels/{channel_id}", "/channels/{channel_id}/messages/{message_id}"
        apps = "/applications/{application_id}"
        hook = "/webhooks/{webhook_id}/{webhook_token}"
        return [
            route("GET", "/users/@me", self._r_me),
            route("GET", "/users/@me/guilds", self._r_my_guilds),
            route("POST", "/users/@me/channels", self._r_open_dm),
            route("GET", "/users/{user_id}", self._r_user),
            route("GET", "/gateway", self._r_gateway),
            route("GET", "/gateway/bot", self._r_gateway_bot),
            route("GET", "/applications/@me", self._r_application),
            route("GET", "/oauth2/applications/@me", self._r_application),
            route("GET", apps + "/commands", self._r_get_commands),
            route("PUT", apps + "/commands", self._r_put_commands),
            route("GET", apps + "/guilds/{guild_id}/commands", self._r_get_commands),
            route("PUT", apps + "/guilds/{guild_id}/commands", self._r_put_commands),
            route("GET", c, self._r_channel),
            route("PATCH", c, self._r_modify_channel),
            route("GET", c + "/messages", self._r_history),
            route("POST", c + "/messages", self._r_create_message),
            route("GET", m, self._r_get_message),
            route("PATCH", m, self._r_edit_message),
            route("DELETE", m, self._r_delete_message),
            route("POST", c + "/typing", self._r_typing),
            route("PUT", m + "/reactions/{emoji}/@me", self._r_add_reaction),
            route("DELETE", m + "/reactions/{emoji}/@me", self._r_remove_reaction),
            route("DELETE", m + "/reactions/{emoji}/{user_id}", self._r_remove_reaction),
            route("GET", m + "/reactions/{emoji}", self._r_reaction_users),
            route("POST", m + "/threads", self._r_thread_from_message),
            route("POST", c + "/threads", self._r_thread),
            route("PUT", c + "/thread-members/@me", self._r_join_thread),
            route("GET", c + "/threads/archived/public", self._r_archived_threads),
            route("GET", "/guilds/{guild_id}/threads/active", self._r_active_threads),
            route("GET", "/guilds/{guild_id}", self._r_guild),
            route("GET", "/guilds/{guild_id}/channels", self._r_guild_channels),
            route("GET", "/guilds/{guild_id}/roles", self._r_guild_roles),
            route("GET", "/guilds/{guild_id}/members/{user_id}", self._r_member),
            route(
                "POST",
                "/interactions/{interaction_id}/{interaction_token}/callback",
                self._r_interaction_callback,
                auth=False,
            ),
            route("POST", hook, self._r_followup, auth=False),
            route("GET", hook + "/messages/{message_id}", self._r_get_webhook_message, auth=False),
            route(
                "PATCH", hook + "/messages/{message_id}", self._r_edit_webhook_message, auth=False
            ),
            route(
                "DELETE",
                hook + "/messages/{message_id}",
                self._r_delete_webhook_message,
                auth=False,
            ),
        ]

    def _match(
        self, method: str, segments: Sequence[str]
    ) -> tuple[_Route | None, dict[str, str], bool]:
        """(route, params, path_known) for a path: the most literal route of that method;
        ``path_known`` tells a wrong method (405) from an unknown path (404)."""
        matches: list[tuple[_Route, dict[str, str]]] = []
        for route in self._routes:
            if len(route.segments) != len(segments):
                continue
            params: dict[str, str] = {}
            for pattern, actual in zip(route.segments, segments, strict=True):
                if pattern.startswith("{"):
                    if not actual:
                        break
                    params[pattern[1:-1]] = actual
                elif pattern != actual:
                    break
            else:
                matches.append((route, params))
        same_method = [m for m in matches if m[0].method == method]
        if not same_method:
            return None, {}, bool(matches)
        route, params = max(same_method, key=lambda m: m[0].literal_count)
        return route, params, True

    async def _handle_rest(self, request: web.Request) -> web.StreamResponse:
        method = request.method.upper()
        raw_path = request.raw_path.split("?", 1)[0]
        headers = {k.lower(): v for k, v in request.headers.items()}
        query = {k: v for k, v in request.query.items()}
        body, files = await self._read_body(request)
        in_api = raw_path == API_PREFIX or raw_path.startswith(API_PREFIX + "/")
        path_segments = raw_path[len(API_PREFIX) :].split("/") if in_api else []
        segments = [unquote(s) for s in path_segments]
        path = "/".join(segments) if in_api else unquote(raw_path)
        route: _Route | None = None
        params: dict[str, str] = {}
        response_headers: dict[str, str] = {"Via": "1.1 google"}
        status: int
        answer: Any
        fault = self._take_fault(method, path)
        if fault is not None:
            status, answer = fault.status, fault.body
            response_headers.update(fault.headers)
            if in_api:
                route, params, _known = self._match(method, segments)
        else:
            status, answer, route, params = await self._answer(
                method,
                path,
                segments if in_api else None,
                headers,
                query,
                body,
                files,
                response_headers,
            )
        call = DiscordCall(
            method=method,
            path=path,
            route=route.template if route else None,
            params=params,
            query=query,
            headers=headers,
            body=body,
            files=tuple(files),
            status=status,
            response=_deep_copy(answer),
            response_headers={k.lower(): v for k, v in response_headers.items()},
            received_at=self._loop_time(),
        )
        self._calls.append(call)
        self._log(f"rest: {method} {path} -> {status}")
        self._notify()
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        if status == 204 or answer is None:
            return web.Response(status=status, headers=response_headers)
        if isinstance(answer, (bytes, str)):
            response_headers.setdefault("Content-Type", "text/plain")
            raw = answer.encode() if isinstance(answer, str) else answer
            return web.Response(status=status, body=raw, headers=response_headers)
        # Exactly "application/json": discord.py compares the header verbatim.
        response_headers["Content-Type"] = "application/json"
        return web.Response(status=status, body=_json_body(answer), headers=response_headers)

    async def _read_body(self, request: web.Request) -> tuple[Any, list[UploadedFile]]:
        files: list[UploadedFile] = []
        if request.content_type == "multipart/form-data":
            fields: dict[str, Any] = {}
            form = await request.post()
            for name, value in form.items():
                if isinstance(value, web.FileField):
                    data = value.file.read()
                    files.append(UploadedFile(name, value.filename, value.content_type, data))
                else:
                    fields[name] = value if isinstance(value, str) else bytes(value).decode()
            body: Any = fields
            if "payload_json" in fields:
                try:
                    payload = json.loads(fields.pop("payload_json"))
                except ValueError:
                    payload = None
                body = {**fields, **payload} if isinstance(payload, dict) else payload
            return body, files
        raw = await request.read()
        if not raw:
            return None, files
        try:
            return json.loads(raw), files
        except ValueError:
            return raw.decode("utf-8", "replace"), files

    async def _answer(
        self,
        method: str,
        path: str,
        segments: list[str] | None,
        headers: Mapping[str, str],
        query: dict[str, str],
        body: Any,
        files: list[UploadedFile],
        response_headers: dict[str, str],
    ) -> tuple[int, Any, _Route | None, dict[str, str]]:
        if segments is None:
            return 404, {"message": "404: Not Found", "code": 0}, None, {}
        route, params, known = self._match(method, segments)
        if route is None:
            if known:
                return 405, {"message": "405: Method Not Allowed", "code": 0}, None, {}
            return 404, {"message": "404: Not Found", "code": 0}, None, {}
        if route.auth and headers.get("authorization") != f"Bot {self.token}":
            return 401, {"message": "401: Unauthorized", "code": 0}, route, params
        for name in ("channel_id", "guild_id", "message_id", "user_id", "application_id"):
            value = params.get(name)
            if value is not None and not value.startswith("@") and not _SNOWFLAKE.match(value):
                error = _field_error("NUMBER_TYPE_COERCE", f'Value "{value}" is not snowflake.')
                return 400, _form_error({name: error}).body, route, params
        limited = self._bucket(route, params, response_headers)
        if limited is not None:
            return 429, limited, route, params
        request = _Request(method, path, params, query, dict(headers), body, files)
        try:
            status, answer = await route.handler(request)
        except _ApiError as error:
            return error.status, error.body, route, params
        return status, answer, route, params

    def _bucket_hash(self, key: str) -> str:
        return hashlib.md5(key.encode()).hexdigest()

    def _bucket(
        self, route: _Route, params: Mapping[str, str], headers: dict[str, str]
    ) -> dict[str, Any] | None:
        """Count the call in its bucket, set the X-RateLimit headers; a 429 body if over."""
        major = "+".join(
            params[k]
            for k in ("channel_id", "guild_id", "webhook_id", "webhook_token")
            if k in params
        )
        route_key = f"{route.method} {route.template}"
        key = f"{route_key}:{major}"
        now = self._loop_time()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self._bucket_hash(route_key))
        if now >= bucket.reset_at:
            bucket.count, bucket.reset_at = 0, now + self.bucket_reset_after
        bucket.count += 1
        reset_after = max(bucket.reset_at - now, 0.0)
        headers.update(
            {
                "X-RateLimit-Limit": str(self.bucket_limit),
                "X-RateLimit-Remaining": str(max(self.bucket_limit - bucket.count, 0)),
                "X-RateLimit-Reset": f"{self._wall_clock() + reset_after:.3f}",
                "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                "X-RateLimit-Bucket": bucket.hash,
            }
        )
        if bucket.count <= self.bucket_limit:
            return None
        headers.update({"Retry-After": str(max(1, int(-(-reset_after // 1))))})
        headers["X-RateLimit-Scope"] = "user"
        return {
            "message": "You are being rate limited.",
            "retry_after": round(reset_after, 3),
            "global": False,
        }

    async def _handle_attachment(self, request: web.Request) -> web.StreamResponse:
        stored = self._attachments.get(unquote(request.raw_path.split("?", 1)[0]))
        if stored is None:
            return web.Response(status=404, text="Not Found")
        data, content_type = stored
        return web.Response(body=data, content_type=content_type or "application/octet-stream")

    def _log(self, line: str) -> None:
        if self.verbose:
            print(f"[discord-sim] {line}", file=sys.stderr)

    # -- REST: lookups ----------------------------------------------------------------------

    def _channel_or_404(self, channel_id: str) -> dict[str, Any]:
        channel = self._channels.get(channel_id)
        if channel is None:
            raise _ApiError(404, 10003, "Unknown Channel")
        return channel

    def _message_or_404(self, channel_id: str, message_id: str) -> dict[str, Any]:
        self._channel_or_404(channel_id)
        message = self._messages.get(message_id)
        if message is None or message["channel_id"] != channel_id:
            raise _ApiError(404, 10008, "Unknown Message")
        return message

    def _guild_or_404(self, guild_id: str) -> dict[str, Any]:
        guild = self._guilds.get(guild_id)
        if guild is None:
            raise _ApiError(404, 10004, "Unknown Guild")
        return guild

    def _object_body(self, request: _Request) -> dict[str, Any]:
        if request.body is None:
            return {}
        if not isinstance(request.body, dict):
            raise _ApiError(400, 50109, "The request body contains invalid JSON.")
        return request.body

    # -- REST: users, gateway, application -------------------------------------------------

    async def _r_me(self, request: _Request) -> tuple[int, Any]:
        user = _deep_copy(self.bot_user)
        user.update(verified=True, mfa_enabled=False, email=None, locale="en-US")
        return 200, user

    async def _r_user(self, request: _Request) -> tuple[int, Any]:
        user = self._users.get(request.params["user_id"])
        if user is None:
            raise _ApiError(404, 10013, "Unknown User")
        return 200, _deep_copy(user)

    async def _r_my_guilds(self, request: _Request) -> tuple[int, Any]:
        return 200, [
            {
                "id": g["id"],
                "name": g["name"],
                "icon": None,
                "banner": None,
                "owner": g["owner_id"] == self.bot_id,
                "permissions": BOT_PERMISSIONS,
                "features": [],
            }
            for g in self._guilds.values()
        ]

    async def _r_open_dm(self, request: _Request) -> tuple[int, Any]:
        body = self._object_body(request)
        recipient = str(body.get("recipient_id"))
        if recipient not in self._users or recipient == self.bot_id:
            raise _ApiError(400, 50033, "Invalid Recipient(s)")
        return 200, self.add_dm_channel(recipient)

    async def _r_gateway(self, request: _Request) -> tuple[int, Any]:
        return 200, {"url": self.gateway_url}

    async def _r_gateway_bot(self, request: _Request) -> tuple[int, Any]:
        return 200, {
            "url": self.gateway_url,
            "shards": 1,
            "session_start_limit": {
                "total": 1000,
                "remaining": max(1000 - len(self._identifies), 0),
                "reset_after": 86_400_000,
                "max_concurrency": 1,
            },
        }

    async def _r_application(self, request: _Request) -> tuple[int, Any]:
        return 200, {
            "id": self.application_id,
            "name": self.bot_user["username"],
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": 0,
            "owner": {"id": "1", "username": "owner", "discriminator": "0", "avatar": None},
            "team": None,
            "bot": _deep_copy(self.bot_user),
            "rpc_origins": [],
            "redirect_uris": [],
            "tags": [],
            "install_params": None,
            "custom_install_url": None,
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "integration_types_config": {"0": {}, "1": {}},
            "approximate_guild_count": len(self._guilds),
        }

    def _check_application(self, request: _Request) -> str | None:
        if request.params["application_id"] != self.application_id:
            raise _ApiError(403, 50001, "Missing Access")
        guild_id = request.params.get("guild_id")
        if guild_id is not None:
            self._guild_or_404(guild_id)
        return guild_id

    async def _r_get_commands(self, request: _Request) -> tuple[int, Any]:
        guild_id = self._check_application(request)
        return 200, self.commands(guild_id)

    async def _r_put_commands(self, request: _Request) -> tuple[int, Any]:
        guild_id = self._check_application(request)
        failure = self.command_registration_failure
        if failure is not None:
            return COMMAND_REGISTRATION_FAILURES[failure]
        if not isinstance(request.body, list):
            raise _form_error(
                {"_errors": [{"code": "LIST_TYPE_CONVERT", "message": "Must be an array."}]}
            )
        existing = {(c["name"], c.get("type", 1)): c for c in self.commands(guild_id)}
        errors: dict[str, Any] = {}
        commands = []
        for index, raw in enumerate(request.body):
            if not isinstance(raw, dict):
                errors[str(index)] = _field_error(
                    "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType"
                )
                continue
            name, kind = raw.get("name"), raw.get("type", 1)
            problems: dict[str, Any] = {}
            if (
                not isinstance(name, str)
                or not _COMMAND_NAME.match(name)
                or (kind == 1 and name != name.lower())
            ):
                problems["name"] = _field_error(
                    "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
                )
            description = raw.get("description", "")
            if kind == 1 and not 1 <= len(description or "") <= 100:
                problems["description"] = _field_error(
                    "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                )
            if problems:
                errors[str(index)] = problems
                continue
            previous = existing.get((name, kind))
            command = {
                "id": previous["id"] if previous else self.new_id(),
                "application_id": self.application_id,
                "version": self.new_id(),
                "type": kind,
                "name": name,
                "name_localizations": raw.get("name_localizations"),
                "description": description,
                "description_localizations": raw.get("description_localizations"),
                "options": raw.get("options", []),
                "default_member_permissions": raw.get("default_member_permissions"),
                "dm_permission": raw.get("dm_permission", True),
                "nsfw": raw.get("nsfw", False),
                "integration_types": raw.get("integration_types", [0]),
                "contexts": raw.get("contexts"),
            }
            if guild_id is not None:
                command["guild_id"] = guild_id
            commands.append(command)
        if errors:
            raise _form_error(errors)
        if guild_id is None:
            self._global_commands = commands
        else:
            self._guild_commands[guild_id] = commands
        return 200, _deep_copy(commands)

    # -- REST: channels and messages -------------------------------------------------------

    async def _r_channel(self, request: _Request) -> tuple[int, Any]:
        return 200, _deep_copy(self._channel_or_404(request.params["channel_id"]))

    async def _r_modify_channel(self, request: _Request) -> tuple[int, Any]:
        """Modify a thread (name, archived, locked, auto_archive_duration, applied_tags...).

        As on Discord: the bot needs MANAGE_THREADS unless it owns the thread (403 50013);
        ``applied_tags`` are only for posts in a forum, at most 5, each one of the forum's
        tags (400 50035 otherwise), and a moderated tag needs MANAGE_THREADS. Other channels
        are not modelled (400 50024). The change is echoed as THREAD_UPDATE.
        """
        thread = self._channel_or_404(request.params["channel_id"])
        if thread["type"] not in (10, 11, 12):
            raise _ApiError(400, 50024, "Cannot execute action on this channel type")
        body = self._object_body(request)
        manages = bool(self.permissions(thread["guild_id"], self.bot_id) & _MANAGE_THREADS)
        if thread["owner_id"] != self.bot_id and not manages:
            raise _ApiError(403, 50013, "Missing Permissions")
        parent = self._channels.get(str(thread.get("parent_id")), {})
        errors: dict[str, Any] = {}
        tags = body.get("applied_tags")
        if tags is not None:
            offered = {t["id"]: t for t in parent.get("available_tags", [])}
            if parent.get("type") not in _FORUM_TYPES:
                errors["applied_tags"] = _field_error(
                    "CHANNEL_PARENT_INVALID_TYPE", "Tags can only be applied to forum posts."
                )
            elif not isinstance(tags, list):
                errors["applied_tags"] = _field_error("LIST_TYPE_CONVERT", "Must be an array.")
            elif len(tags) > MAX_APPLIED_TAGS:
                errors["applied_tags"] = _field_error(
                    "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_APPLIED_TAGS} or fewer in length."
                )
            else:
                for index, tag in enumerate(tags):
                    if str(tag) not in offered:
                        errors.setdefault("applied_tags", {})[str(index)] = _field_error(
                            "TAG_NOT_FOUND", f"Unknown tag {tag}."
                        )
                    elif offered[str(tag)]["moderated"] and not manages:
                        raise _ApiError(403, 50013, "Missing Permissions")
        name = body.get("name")
        if name is not None and (not isinstance(name, str) or not 1 <= len(name) <= 100):
            errors["name"] = _field_error(
                "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
            )
        if errors:
            raise _form_error(errors)
        if tags is not None:
            thread["applied_tags"] = list(dict.fromkeys(str(t) for t in tags))
        if name is not None:
            thread["name"] = name
        metadata = thread["thread_metadata"]
        for key in ("archived", "locked", "auto_archive_duration", "invitable"):
            if body.get(key) is not None:
                metadata[key] = body[key]
        if body.get("archived") is not None:
            metadata["archive_timestamp"] = _iso(snowflake_ms(self.new_id()))
        await self._echo("THREAD_UPDATE", thread)
        return 200, _deep_copy(thread)

    async def _r_history(self, request: _Request) -> tuple[int, Any]:
        channel_id = request.params["channel_id"]
        self._channel_or_404(channel_id)
        try:
            limit = int(request.query.get("limit", 50))
        except ValueError:
            raise _form_error(
                {"limit": _field_error("NUMBER_TYPE_COERCE", "Value is not int.")}
            ) from None
        if not 1 <= limit <= 100:
            raise _form_error(
                {"limit": _field_error("NUMBER_TYPE_MAX", "int value should be <= 100 and >= 1.")}
            )
        ids = [int(mid) for mid in self._history.get(channel_id, []) if mid in self._messages]
        before, after, around = (request.query.get(k) for k in ("before", "after", "around"))
        if around is not None:
            pivot = int(around)
            older = [i for i in ids if i < pivot][-(limit // 2) :] if limit > 1 else []
            newer = [i for i in ids if i >= pivot][: limit - len(older)]
            chosen = older + newer
        elif after is not None:
            chosen = [i for i in ids if i > int(after)][:limit]
        else:
            pool = [i for i in ids if before is None or i < int(before)]
            chosen = pool[-limit:]
        return 200, [
            self._rest_message(self._messages[str(i)]) for i in sorted(chosen, reverse=True)
        ]

    async def _r_get_message(self, request: _Request) -> tuple[int, Any]:
        message = self._message_or_404(request.params["channel_id"], request.params["message_id"])
        return 200, self._rest_message(message)

    def _validate_message(
        self, body: Mapping[str, Any], files: Sequence[UploadedFile], *, creating: bool
    ) -> None:
        """Raise Discord's 400 for what it rejects in a message body."""
        errors: dict[str, Any] = {}
        content = body.get("content")
        if content is not None and not isinstance(content, str):
            errors["content"] = _field_error(
                "STRING_TYPE_CONVERT", "Could not interpret as string."
            )
        elif isinstance(content, str) and len(content) > MAX_CONTENT:
            errors["content"] = _field_error(
                "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length."
            )
        embeds = body.get("embeds")
        if embeds is not None:
            if not isinstance(embeds, list) or len(embeds) > MAX_EMBEDS:
                errors["embeds"] = _field_error(
                    "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length."
                )
            else:
                total = 0
                for index, embed in enumerate(embeds):
                    embed_errors: dict[str, Any] = {}
                    for key, limit in (("title", 256), ("description", 4096)):
                        value = embed.get(key) if isinstance(embed, dict) else None
                        if isinstance(value, str):
                            total += len(value)
                            if len(value) > limit:
                                embed_errors[key] = _field_error(
                                    "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length."
                                )
                    if embed_errors:
                        errors.setdefault("embeds", {})[str(index)] = embed_errors
                if total > 6000 and "embeds" not in errors:
                    errors["embeds"] = _field_error(
                        "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
                    )
        components = body.get("components")
        if components is not None:
            problems = _component_errors(components)
            if problems:
                errors["components"] = problems
        allowed = body.get("allowed_mentions")
        if isinstance(allowed, dict):
            parse = allowed.get("parse") or []
            for kind in ("users", "roles"):
                if kind in parse and allowed.get(kind):
                    errors["allowed_mentions"] = _field_error(
                        "SET_TYPE_ALREADY_CONTAINS_VALUE",
                        f'parse:["{kind}"] and {kind}: [ids] are mutually exclusive.',
                    )
        if errors:
            raise _form_error(errors)
        if creating and not (
            content
            or embeds
            or body.get("components")
            or files
            or body.get("sticker_ids")
            or body.get("poll")
        ):
            raise _ApiError(400, 50006, "Cannot send an empty message")

    def _mentions_for(
        self,
        content: str,
        allowed: Mapping[str, Any] | None,
        replied: Mapping[str, Any] | None,
    ) -> tuple[list[dict[str, Any]], list[str], bool]:
        """(mentions, mention_roles, mention_everyone) as Discord computes them for a bot's
        message: only who ``allowed_mentions`` lets be pinged (default: everyone mentioned)."""
        parse = ["users", "roles", "everyone"] if allowed is None else allowed.get("parse") or []
        allowed_users = {str(u) for u in (allowed or {}).get("users") or []}
        allowed_roles = {str(r) for r in (allowed or {}).get("roles") or []}
        users = [
            uid
            for uid in _MENTION_USER.findall(content)
            if "users" in parse or uid in allowed_users
        ]
        replied_user = True if allowed is None else bool(allowed.get("replied_user", False))
        if replied is not None and replied_user:
            users.append(replied["author"]["id"])
        roles = [
            rid
            for rid in _MENTION_ROLE.findall(content)
            if "roles" in parse or rid in allowed_roles
        ]
        everyone = "everyone" in parse and ("@everyone" in content or "@here" in content)
        return self._mention_objects(users), list(dict.fromkeys(roles)), everyone

    def _build_bot_message(
        self,
        channel: Mapping[str, Any],
        body: Mapping[str, Any],
        files: Sequence[UploadedFile],
        *,
        referenced: Mapping[str, Any] | None = None,
        message_type: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        content = body.get("content") or ""
        allowed = body.get("allowed_mentions")
        mentions, roles, everyone = self._mentions_for(
            content, allowed if isinstance(allowed, dict) else None, referenced
        )
        mid = self.new_id()
        flags = int(body.get("flags") or 0) & (4 | 64 | 128 | 4096)
        message: dict[str, Any] = {
            "id": mid,
            "channel_id": channel["id"],
            "type": message_type if message_type is not None else (19 if referenced else 0),
            "content": content,
            "author": _deep_copy(self.bot_user),
            "attachments": self._attachments_for(channel["id"], body, files),
            "embeds": [{"type": "rich", **e} for e in body.get("embeds") or []],
            "mentions": mentions,
            "mention_roles": roles,
            "mention_everyone": everyone,
            "pinned": False,
            "tts": bool(body.get("tts", False)),
            "timestamp": _iso(snowflake_ms(mid)),
            "edited_timestamp": None,
            "flags": flags,
            "components": _deep_copy(body.get("components") or []),
        }
        if body.get("nonce") is not None:
            message["nonce"] = body["nonce"]
        if referenced is not None:
            message["message_reference"] = self._reference_object(referenced)
            message["referenced_message"] = self._referenced_view(referenced)
        if extra:
            message.update(_deep_copy(dict(extra)))
        return message

    def _attachments_for(
        self, channel_id: str, body: Mapping[str, Any], files: Sequence[UploadedFile]
    ) -> list[dict[str, Any]]:
        described = {
            str(a.get("id")): a for a in body.get("attachments") or [] if isinstance(a, dict)
        }
        attachments = []
        for index, upload in enumerate(files):
            meta = described.get(str(index), {})
            attachment = self._store_attachment(
                channel_id,
                meta.get("filename") or upload.filename,
                upload.data,
                upload.content_type,
            )
            if meta.get("description"):
                attachment["description"] = meta["description"]
            attachments.append(attachment)
        return attachments

    async def _r_create_message(self, request: _Request) -> tuple[int, Any]:
        channel = self._channel_or_404(request.params["channel_id"])
        body = self._object_body(request)
        if channel["type"] == 1:
            recipients = {u["id"] for u in channel.get("recipients", [])}
            if recipients & self._dm_refused:
                raise _ApiError(403, 50007, "Cannot send messages to this user")
        self._validate_message(body, request.files, creating=True)
        referenced = None
        reference = body.get("message_reference")
        if isinstance(reference, dict):
            ref_channel = str(reference.get("channel_id") or channel["id"])
            referenced = self._messages.get(str(reference.get("message_id")))
            if referenced is not None and referenced["channel_id"] != ref_channel:
                referenced = None
            if referenced is None and reference.get("fail_if_not_exists", True):
                raise _form_error(
                    {
                        "message_reference": _field_error(
                            "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                        )
                    }
                )
        message = self._build_bot_message(channel, body, request.files, referenced=referenced)
        self._store_message(message)
        self._bot_message_ids.append(message["id"])
        await self._echo("MESSAGE_CREATE", self._gateway_message(message))
        return 200, _deep_copy(message)

    async def _r_edit_message(self, request: _Request) -> tuple[int, Any]:
        message = self._message_or_404(request.params["channel_id"], request.params["message_id"])
        if message["author"]["id"] != self.bot_id:
            raise _ApiError(403, 50005, "Cannot edit a message authored by another user")
        body = self._object_body(request)
        self._edit(message, body, request.files)
        await self._echo("MESSAGE_UPDATE", self._gateway_message(message))
        return 200, _deep_copy(message)

    def _edit(
        self, message: dict[str, Any], body: Mapping[str, Any], files: Sequence[UploadedFile]
    ) -> None:
        self._validate_message(body, files, creating=False)
        if "content" in body:
            message["content"] = body.get("content") or ""
            allowed = body.get("allowed_mentions")
            mentions, roles, everyone = self._mentions_for(
                message["content"], allowed if isinstance(allowed, dict) else None, None
            )
            message.update(mentions=mentions, mention_roles=roles, mention_everyone=everyone)
        if "embeds" in body:
            message["embeds"] = [{"type": "rich", **e} for e in body.get("embeds") or []]
        if "components" in body:
            message["components"] = _deep_copy(body.get("components") or [])
        if "flags" in body and body["flags"] is not None:
            message["flags"] = (message.get("flags", 0) & ~4) | (int(body["flags"]) & 4)
        if files or "attachments" in body:
            kept_ids = {
                str(a.get("id")) for a in body.get("attachments") or [] if isinstance(a, dict)
            }
            kept = [a for a in message.get("attachments", []) if a["id"] in kept_ids]
            message["attachments"] = kept + self._attachments_for(
                message["channel_id"], body, files
            )
        message["flags"] = message.get("flags", 0) & ~_FLAG_LOADING
        message["edited_timestamp"] = _iso(snowflake_ms(self.new_id()))

    async def _r_delete_message(self, request: _Request) -> tuple[int, Any]:
        channel_id, message_id = request.params["channel_id"], request.params["message_id"]
        self._message_or_404(channel_id, message_id)
        self._delete_message(message_id)
        event: dict[str, Any] = {"id": message_id, "channel_id": channel_id}
        guild_id = self._channels[channel_id].get("guild_id")
        if guild_id:
            event["guild_id"] = guild_id
        await self._echo("MESSAGE_DELETE", event)
        return 204, None

    async def _r_typing(self, request: _Request) -> tuple[int, Any]:
        self._channel_or_404(request.params["channel_id"])
        return 204, None

    async def _r_add_reaction(self, request: _Request) -> tuple[int, Any]:
        channel_id, message_id = request.params["channel_id"], request.params["message_id"]
        message = self._message_or_404(channel_id, message_id)
        emoji = _emoji_from_path(request.params["emoji"])
        if self.bot_id in self._reactors.get((message_id, _emoji_key(emoji)), []):
            return 204, None
        payload = self._reaction_payload(channel_id, message_id, self.bot_user, emoji)
        if payload.get("guild_id"):
            payload["member"] = self._member_view(payload["guild_id"], self.bot_id, with_user=True)
        payload["message_author_id"] = message["author"]["id"]
        self._count_reaction(payload, +1)
        await self._echo("MESSAGE_REACTION_ADD", payload)
        return 204, None

    async def _r_remove_reaction(self, request: _Request) -> tuple[int, Any]:
        channel_id, message_id = request.params["channel_id"], request.params["message_id"]
        self._message_or_404(channel_id, message_id)
        emoji = _emoji_from_path(request.params["emoji"])
        user_id = request.params.get("user_id", self.bot_id)
        if user_id not in self._reactors.get((message_id, _emoji_key(emoji)), []):
            return 204, None
        payload = self._reaction_payload(channel_id, message_id, user_id, emoji)
        self._count_reaction(payload, -1)
        await self._echo("MESSAGE_REACTION_REMOVE", payload)
        return 204, None

    async def _r_reaction_users(self, request: _Request) -> tuple[int, Any]:
        message_id = request.params["message_id"]
        self._message_or_404(request.params["channel_id"], message_id)
        key = _emoji_key(_emoji_from_path(request.params["emoji"]))
        users = self._reactors.get((message_id, key), [])
        return 200, [_deep_copy(self._users.get(uid, {"id": uid})) for uid in users]

    def _new_thread(
        self, parent: Mapping[str, Any], thread_id: str, body: Mapping[str, Any], type: int
    ) -> dict[str, Any]:
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise _form_error(
                {
                    "name": _field_error(
                        "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                    )
                }
            )
        if parent.get("guild_id") is None or parent["type"] not in (0, 5, 15):
            raise _ApiError(400, 50024, "Cannot execute action on this channel type")
        thread = self._thread_object(parent, thread_id, name, self.bot_id, type)
        if body.get("auto_archive_duration"):
            thread["thread_metadata"]["auto_archive_duration"] = int(body["auto_archive_duration"])
        if body.get("rate_limit_per_user") is not None:
            thread["rate_limit_per_user"] = int(body["rate_limit_per_user"])
        self._channels[thread_id] = thread
        return thread

    async def _r_thread_from_message(self, request: _Request) -> tuple[int, Any]:
        channel_id, message_id = request.params["channel_id"], request.params["message_id"]
        parent = self._channel_or_404(channel_id)
        message = self._message_or_404(channel_id, message_id)
        if message_id in self._channels:
            raise _ApiError(400, 160004, "A thread has already been created for this message")
        # A thread started from a message has the message's id, as on Discord.
        thread = self._new_thread(parent, message_id, self._object_body(request), 11)
        message["flags"] = message.get("flags", 0) | _FLAG_HAS_THREAD
        message["thread"] = _deep_copy(thread)
        await self._echo("THREAD_CREATE", {**thread, "newly_created": True})
        return 201, _deep_copy(thread)

    async def _r_thread(self, request: _Request) -> tuple[int, Any]:
        parent = self._channel_or_404(request.params["channel_id"])
        body = self._object_body(request)
        thread_type = int(body.get("type") or 12)
        if thread_type not in (10, 11, 12):
            raise _form_error(
                {"type": _field_error("BASE_TYPE_CHOICES", "Value must be one of {10, 11, 12}.")}
            )
        thread = self._new_thread(parent, self.new_id(), body, thread_type)
        await self._echo("THREAD_CREATE", {**thread, "newly_created": True})
        return 201, _deep_copy(thread)

    async def _r_join_thread(self, request: _Request) -> tuple[int, Any]:
        channel = self._channel_or_404(request.params["channel_id"])
        if channel["type"] not in (10, 11, 12):
            raise _ApiError(400, 50024, "Cannot execute action on this channel type")
        return 204, None

    # -- REST: guilds -----------------------------------------------------------------------

    async def _r_guild(self, request: _Request) -> tuple[int, Any]:
        guild = _deep_copy(self._guild_or_404(request.params["guild_id"]))
        guild["approximate_member_count"] = len(self._members.get(guild["id"], {}))
        return 200, guild

    async def _r_guild_channels(self, request: _Request) -> tuple[int, Any]:
        guild_id = request.params["guild_id"]
        self._guild_or_404(guild_id)
        return 200, [
            _deep_copy(c)
            for c in self._channels.values()
            if c.get("guild_id") == guild_id and c["type"] not in (10, 11, 12)
        ]

    async def _r_active_threads(self, request: _Request) -> tuple[int, Any]:
        """Every unarchived thread of the guild (sorted by id), as Discord lists them."""
        guild_id = request.params["guild_id"]
        self._guild_or_404(guild_id)
        threads = [
            _deep_copy(c)
            for c in self._channels.values()
            if c.get("guild_id") == guild_id
            and c["type"] in (10, 11, 12)
            and not c["thread_metadata"]["archived"]
        ]
        threads.sort(key=lambda t: int(t["id"]))
        return 200, {"threads": threads, "members": []}

    async def _r_archived_threads(self, request: _Request) -> tuple[int, Any]:
        """Archived public threads of a channel, newest archive first, paged by ``before``
        (an ISO timestamp) and ``limit``, with ``has_more``."""
        channel_id = request.params["channel_id"]
        self._channel_or_404(channel_id)
        limit = max(1, min(100, int(request.query.get("limit", 50))))
        before = request.query.get("before")
        threads = [
            _deep_copy(c)
            for c in self._channels.values()
            if c.get("parent_id") == channel_id
            and c["type"] in (10, 11)
            and c["thread_metadata"]["archived"]
            and (before is None or c["thread_metadata"]["archive_timestamp"] < before)
        ]
        threads.sort(key=lambda t: t["thread_metadata"]["archive_timestamp"], reverse=True)
        return 200, {"threads": threads[:limit], "members": [], "has_more": len(threads) > limit}

    async def _r_guild_roles(self, request: _Request) -> tuple[int, Any]:
        return 200, _deep_copy(self._guild_or_404(request.params["guild_id"])["roles"])

    async def _r_member(self, request: _Request) -> tuple[int, Any]:
        guild_id, user_id = request.params["guild_id"], request.params["user_id"]
        self._guild_or_404(guild_id)
        member = self._members.get(guild_id, {}).get(user_id)
        if member is None:
            raise _ApiError(404, 10007, "Unknown Member")
        return 200, _deep_copy(member)

    # -- REST: interactions ----------------------------------------------------------------

    def _interaction_message(
        self,
        interaction: _Interaction,
        body: Mapping[str, Any],
        files: Sequence[UploadedFile],
        *,
        original: bool,
        loading: bool = False,
    ) -> dict[str, Any]:
        channel = self._channels.get(str(interaction.channel_id)) or {
            "id": str(interaction.channel_id),
            "type": 0,
        }
        metadata = {
            "id": interaction.id,
            "type": interaction.type,
            "user": _deep_copy(interaction.user),
            "authorizing_integration_owners": (
                {"0": interaction.guild_id}
                if interaction.guild_id
                else {"1": interaction.user.get("id")}
            ),
        }
        if interaction.name:
            metadata["name"] = interaction.name
        if not original:
            metadata["original_response_message_id"] = interaction.original_id
        extra: dict[str, Any] = {
            "webhook_id": self.application_id,
            "application_id": self.application_id,
            "interaction_metadata": metadata,
        }
        if interaction.type == 2 and original:
            extra["interaction"] = {
                "id": interaction.id,
                "type": interaction.type,
                "name": interaction.name,
                "user": _deep_copy(interaction.user),
            }
        message_type = 20 if interaction.type == 2 and original else 0
        message = self._build_bot_message(
            channel, body, files, message_type=message_type, extra=extra
        )
        if loading:
            message["flags"] |= _FLAG_LOADING
        return message

    def _keep_bot_message(self, message: dict[str, Any]) -> None:
        """Store a bot-authored message; ephemeral ones stay out of the channel history."""
        if message["flags"] & _FLAG_EPHEMERAL:
            self._messages[message["id"]] = message
        else:
            self._store_message(message)
        self._bot_message_ids.append(message["id"])

    async def _r_interaction_callback(self, request: _Request) -> tuple[int, Any]:
        interaction = self._interactions.get(request.params["interaction_id"])
        if interaction is None or interaction.token != request.params["interaction_token"]:
            raise _ApiError(404, 10062, "Unknown interaction")
        late = (
            self.interaction_deadline is not None
            and interaction.dispatched_at is not None
            and self._loop_time() - interaction.dispatched_at > self.interaction_deadline
        )
        if late and interaction.response_type is None:
            raise _ApiError(404, 10062, "Unknown interaction")
        if interaction.response_type is not None:
            raise _ApiError(400, 40060, "Interaction has already been acknowledged.")
        body = self._object_body(request)
        callback_type = body.get("type")
        raw_data = body.get("data")
        data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
        if callback_type not in (1, 4, 5, 6, 7, 8, 9, 10, 12):
            raise _form_error(
                {
                    "type": _field_error(
                        "BASE_TYPE_CHOICES", "Value must be one of {1, 4, 5, 6, 7, 8, 9, 10, 12}."
                    )
                }
            )
        message: dict[str, Any] | None = None
        if callback_type == _MESSAGE:
            self._validate_message(data, request.files, creating=True)
            message = self._interaction_message(interaction, data, request.files, original=True)
        elif callback_type == _DEFERRED_MESSAGE:
            message = self._interaction_message(
                interaction, {"flags": data.get("flags", 0)}, [], original=True, loading=True
            )
        elif callback_type == _UPDATE_MESSAGE and interaction.message_id in self._messages:
            message = self._messages[str(interaction.message_id)]
            self._edit(message, data, request.files)
        interaction.response_type = int(callback_type)
        if message is not None and callback_type in (_MESSAGE, _DEFERRED_MESSAGE):
            interaction.original_id = message["id"]
            self._keep_bot_message(message)
            if not message["flags"] & _FLAG_EPHEMERAL:
                await self._echo("MESSAGE_CREATE", self._gateway_message(message))
        elif message is not None:
            interaction.original_id = interaction.original_id or message["id"]
            await self._echo("MESSAGE_UPDATE", self._gateway_message(message))
        self._interaction_replies.append(
            InteractionReply(
                interaction.id,
                "callback",
                int(callback_type),
                _deep_copy(body),
                message["id"] if message else None,
                _deep_copy(message),
            )
        )
        if request.query.get("with_response") not in ("1", "true", "True"):
            return 204, None
        answer: dict[str, Any] = {
            "interaction": {
                "id": interaction.id,
                "type": interaction.type,
                "response_message_loading": callback_type == _DEFERRED_MESSAGE,
                "response_message_ephemeral": bool(message and message["flags"] & _FLAG_EPHEMERAL),
            },
            "resource": {"type": callback_type},
        }
        if message is not None:
            answer["interaction"]["response_message_id"] = message["id"]
            answer["resource"]["message"] = self._rest_message(message)
        return 200, answer

    def _webhook_interaction(self, request: _Request) -> _Interaction:
        if request.params["webhook_id"] != self.application_id:
            raise _ApiError(404, 10015, "Unknown Webhook")
        token = request.params["webhook_token"]
        for interaction in self._interactions.values():
            if interaction.token == token:
                return interaction
        raise _ApiError(404, 10015, "Unknown Webhook")

    def _webhook_message(self, interaction: _Interaction, message_id: str) -> dict[str, Any]:
        if message_id == "@original":
            target = interaction.original_id
        else:
            known = [*interaction.followup_ids, interaction.original_id]
            target = message_id if message_id in known else None
        message = self._messages.get(str(target)) if target else None
        if message is None:
            raise _ApiError(404, 10008, "Unknown Message")
        return message

    async def _r_followup(self, request: _Request) -> tuple[int, Any]:
        interaction = self._webhook_interaction(request)
        if interaction.response_type is None:
            raise _ApiError(400, 40061, "Interaction has not been acknowledged.")
        body = self._object_body(request)
        self._validate_message(body, request.files, creating=True)
        message = self._interaction_message(interaction, body, request.files, original=False)
        interaction.followup_ids.append(message["id"])
        self._keep_bot_message(message)
        if not message["flags"] & _FLAG_EPHEMERAL:
            await self._echo("MESSAGE_CREATE", self._gateway_message(message))
        self._interaction_replies.append(
            InteractionReply(
                interaction.id,
                "followup",
                None,
                _deep_copy(body),
                message["id"],
                _deep_copy(message),
            )
        )
        return 200, _deep_copy(message)

    async def _r_get_webhook_message(self, request: _Request) -> tuple[int, Any]:
        interaction = self._webhook_interaction(request)
        return 200, self._rest_message(
            self._webhook_message(interaction, request.params["message_id"])
        )

    async def _r_edit_webhook_message(self, request: _Request) -> tuple[int, Any]:
        interaction = self._webhook_interaction(request)
        message = self._webhook_message(interaction, request.params["message_id"])
        body = self._object_body(request)
        self._edit(message, body, request.files)
        if not message["flags"] & _FLAG_EPHEMERAL:
            await self._echo("MESSAGE_UPDATE", self._gateway_message(message))
        self._interaction_replies.append(
            InteractionReply(
                interaction.id, "edit", None, _deep_copy(body), message["id"], _deep_copy(message)
            )
        )
        return 200, _deep_copy(message)

    async def _r_delete_webhook_message(self, request: _Request) -> tuple[int, Any]:
        interaction = self._webhook_interaction(request)
        message = self._webhook_message(interaction, request.params["message_id"])
        self._delete_message(message["id"])
        self._interaction_replies.append(
            InteractionReply(interaction.id, "delete", None, None, message["id"], None)
        )
        if not message["flags"] & _FLAG_EPHEMERAL:
            event = {"id": message["id"], "channel_id": message["channel_id"]}
            guild_id = self._channels.get(message["channel_id"], {}).get("guild_id")
            if guild_id:
                event["guild_id"] = guild_id
            await self._echo("MESSAGE_DELETE", event)
        return 204, None


# --------------------------------------------------------------------------- command line

DEMO_GUILD_ID = "1100000000000000100"
DEMO_CHANNEL_ID = "1100000000000000101"
DEMO_USER_ID = "1100000000000000200"


async def _serve(port: int, token: str, heartbeat_ms: int, verbose: bool) -> None:
    sim = DiscordSimulator(
        token=token, port=port, heartbeat_interval_ms=heartbeat_ms, verbose=verbose
    )
    sim.add_user(DEMO_USER_ID, "demo-user", global_name="Demo User")
    sim.add_guild(
        DEMO_GUILD_ID, "Demo Guild", channels=[(DEMO_CHANNEL_ID, "support")], members=[DEMO_USER_ID]
    )
    sim.add_dm_channel(DEMO_USER_ID)
    async with sim:
        print(f"Discord simulator on {sim.url}", file=sys.stderr)
        print(f"  DISCORD_API_URL={sim.api_url}  (token: {token})", file=sys.stderr)
        print(f"  gateway (from GET /gateway/bot): {sim.gateway_url}", file=sys.stderr)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    """Serve from the command line until Ctrl-C, with a demo guild, channel and user."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.servers.discord", description="Local Discord REST + gateway."
    )
    parser.add_argument("--port", type=int, default=8097)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--heartbeat-ms", type=int, default=41_250)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, args.token, args.heartbeat_ms, args.verbose))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
