"""``supportbot run``: start the bots whose tokens are set, until interrupted."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
from collections.abc import Iterator

import discord
import uvicorn
from aiohttp import ClientSession
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.discord import DiscordBot
from bot.slack.app import SlackBot, ThreadReplyHook, slack_web_client
from bot.slack.http import events_asgi_app
from bot.slack.installations import (
    DEFAULT_STATE_EXPIRATION_S,
    InstallationKeyError,
    SqlInstallationStore,
    SqlOAuthStateStore,
)
from bot.slack.takeover import SlackResumer
from bot.takeover import Sweeper
from console.app import build_console
from retrieval.embeddings import LocalE5Embeddings
from supportbot.app import App
from supportbot.background_sync import EventSyncs, sync_alongside_bots

logger = logging.getLogger(__name__)

INSTALL_PATH = "/slack/install"
REDIRECT_URI_PATH = "/slack/oauth_redirect"


class RunError(Exception):
    """The bots cannot start with these settings (the message says which setting to fix)."""


def build_slack_bot(
    application: App,
    *,
    http: bool,
    session: ClientSession | None = None,
    on_thread_reply: ThreadReplyHook | None = None,
) -> SlackBot:
    """The Slack bot in the mode the settings choose: OAuth (multi-workspace) or one token.

    ``SLACK_CLIENT_ID`` and ``SLACK_CLIENT_SECRET`` select OAuth: workspaces install the app
    at ``/slack/install`` and their tokens live, encrypted, in the database. Otherwise the
    single workspace of ``SLACK_BOT_TOKEN`` is served, as before.
    """
    s = application.settings
    if s.slack_client_id or s.slack_client_secret:
        return _build_oauth_slack_bot(
            application, http=http, session=session, on_thread_reply=on_thread_reply
        )
    if s.slack_bot_token is None:
        raise RunError("SLACK_BOT_TOKEN is not set: copy the Bot User OAuth Token (xoxb-...)")
    _check_transport(application, http=http)
    client = slack_web_client(
        token=s.slack_bot_token.get_secret_value(), api_url=s.slack_api_url, session=session
    )
    secret = s.slack_signing_secret.get_secret_value() if s.slack_signing_secret else None
    return SlackBot(
        application.conversations,
        client=client,
        signing_secret=secret,
        on_thread_reply=on_thread_reply,
        streaming=application.settings.answer_streaming,
    )


def _check_transport(application: App, *, http: bool) -> None:
    s = application.settings
    if http and s.slack_signing_secret is None:
        raise RunError(
            "--slack-http needs SLACK_SIGNING_SECRET (Basic Information > Signing Secret)"
        )
    if not http and s.slack_app_token is None:
        raise RunError(
            "Socket Mode needs SLACK_APP_TOKEN (an xapp- token with connections:write); "
            "or run with --slack-http behind a public URL"
        )


def _build_oauth_slack_bot(
    application: App,
    *,
    http: bool,
    session: ClientSession | None,
    on_thread_reply: ThreadReplyHook | None,
) -> SlackBot:
    s = application.settings
    if not s.slack_client_id or s.slack_client_secret is None:
        missing = "SLACK_CLIENT_SECRET" if s.slack_client_id else "SLACK_CLIENT_ID"
        raise RunError(
            f"{missing} is not set: OAuth installation needs both SLACK_CLIENT_ID and "
            "SLACK_CLIENT_SECRET (Basic Information > App Credentials)"
        )
    if not http:
        raise RunError(
            "OAuth installation (SLACK_CLIENT_ID) needs --slack-http: the install pages "
            "/slack/install and /slack/oauth_redirect are served over HTTP"
        )
    _check_transport(application, http=http)
    assert s.slack_signing_secret is not None  # checked by _check_transport
    if s.slack_bot_token is not None:
        logger.warning(
            "SLACK_CLIENT_ID is set: SLACK_BOT_TOKEN is ignored (tokens come from installs)"
        )
    store = SqlInstallationStore(
        application.engine, client_id=s.slack_client_id, secret_key=application.secret_key()
    )
    try:
        store.check_key()
    except InstallationKeyError as e:
        raise RunError(str(e)) from None
    state_store = SqlOAuthStateStore(
        application.engine, expiration_seconds=DEFAULT_STATE_EXPIRATION_S
    )
    oauth_settings = AsyncOAuthSettings(
        client_id=s.slack_client_id,
        client_secret=s.slack_client_secret.get_secret_value(),
        scopes=s.slack_scope_list,
        user_scopes=[],  # the bot acts as itself only; and bolt would read SLACK_USER_SCOPES
        redirect_uri=s.slack_redirect_uri,
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_URI_PATH,
        installation_store=store,
        state_store=state_store,
        state_expiration_seconds=DEFAULT_STATE_EXPIRATION_S,
    )
    # No token: bolt authorizes per team from the store. This client is also the one bolt's
    # OAuth flow exchanges codes (oauth.v2.access) and rotates tokens with, so SLACK_API_URL
    # reaches every call.
    client = slack_web_client(token=None, api_url=s.slack_api_url, session=session)
    return SlackBot(
        application.conversations,
        client=client,
        signing_secret=s.slack_signing_secret.get_secret_value(),
        installation_store=store,
        oauth_settings=oauth_settings,
        on_thread_reply=on_thread_reply,
        streaming=application.settings.answer_streaming,
    )


def build_discord_bot(application: App) -> DiscordBot:
    """The Discord bot; Message Content only when some channel answers every question."""
    s = application.settings
    service = application.conversations
    if s.discord_message_content == "auto":
        message_content = service.any_channel_answering_all("discord")
    else:
        message_content = s.discord_message_content == "on"
    if s.discord_dm_workspace:
        application.registry.get(s.discord_dm_workspace)  # unknown: fail now, clearly
    return DiscordBot(
        service,
        api_url=s.discord_api_url,
        public_dm_workspace=s.discord_dm_workspace,
        message_content=message_content,
        streaming=s.answer_streaming,
    )


def ready_to_serve(application: App) -> None:
    """Get ready before the first event: a broken setup fails now, not at the first question.

    Connects the store and loads the local embedding model, then freezes the start-up heap:
    ``gc.freeze()`` puts every object alive now (modules, clients, settings) out of the
    collector's reach, so a full collection walks only what answering creates. Without it one
    full collection paused the event loop for 190 ms under load (bench/slack_bench.py).
    """
    application.knowledge  # noqa: B018
    if isinstance(application.embedder, LocalE5Embeddings):
        application.embedder.embed_query("warm-up")
    gc.collect()
    gc.freeze()


async def run_bots(application: App, *, slack_http: bool, host: str, port: int) -> None:
    """Run every bot whose tokens are set, until interrupted or one of them fails."""
    s = application.settings
    slack_on = bool(s.slack_bot_token or s.slack_client_id or s.slack_client_secret)
    discord_on = s.discord_bot_token is not None
    if not (slack_on or discord_on):
        raise RunError(
            "no bot token is set: set SLACK_BOT_TOKEN (and SLACK_APP_TOKEN for Socket Mode), "
            "or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET to install in many workspaces, "
            "and/or DISCORD_BOT_TOKEN; see the README's Slack and Discord sections"
        )
    ready_to_serve(application)
    try:
        events = EventSyncs(application)
        async with ClientSession() as session, asyncio.TaskGroup() as bots:
            if slack_on:
                slack = build_slack_bot(
                    application,
                    http=slack_http,
                    session=session,
                    on_thread_reply=events.slack_thread_replied,
                )
                bots.create_task(
                    _run_slack(application, slack, http=slack_http, host=host, port=port)
                )
                # Questions of a replica that died mid-answer: taken over and answered here.
                bots.create_task(slack_sweeper(application, slack).run())
            if discord_on:
                bots.create_task(_run_discord(application, build_discord_bot(application)))
            # Knowledge sync (README), fed by Slack's thread-reply events.
            bots.create_task(sync_alongside_bots(application, events=events))
    except BaseExceptionGroup as group:  # one bot failed to start: say which setting, plainly
        refusals = [e for e in group.exceptions if isinstance(e, RunError)]
        if refusals:
            raise refusals[0] from None
        raise
    finally:
        await application.aclose()


def slack_sweeper(application: App, bot: SlackBot) -> Sweeper:
    """The claim sweeper of a Slack bot (:mod:`bot.takeover`); it also makes the bot remove a
    dead replica's placeholder when a Slack retry takes its question over."""
    resumer = SlackResumer(bot)
    bot.flow.discard_progress = resumer.discard
    return Sweeper(
        bot.flow,
        {"slack": resumer.outbound},
        interval_s=application.settings.claim_sweep_interval_s,
    )


async def _run_discord(application: App, bot: DiscordBot) -> None:
    token = application.settings.discord_bot_token
    assert token is not None
    logger.warning("connecting to Discord at %s", application.settings.discord_api_url)
    try:
        await bot.start(token.get_secret_value())
    except discord.LoginFailure as e:
        raise RunError(
            "DISCORD_BOT_TOKEN was refused by Discord: copy a fresh token from the Developer "
            "Portal (Bot > Reset Token)"
        ) from e
    except discord.PrivilegedIntentsRequired as e:
        raise RunError(
            "Discord refused the Message Content intent: switch it on in the Developer Portal "
            "(Bot > Privileged Gateway Intents), or set DISCORD_MESSAGE_CONTENT=off"
        ) from e
    finally:
        await bot.close()


def slack_http_app(application: App, bot: SlackBot, *, path: str = "/slack/events") -> ASGIApp:
    """What ``supportbot run --slack-http`` serves on its one port: Slack's events (and the
    OAuth install pages, in OAuth mode) at their paths, the web console at every other path.

    One ASGI application for one server (uvicorn): the Slack edge is Starlette routes
    (bot/slack/http.py, with its checks), the console its own Starlette app, so the console's
    middleware (sessions, CSRF, security headers) wraps every console response, static files
    and streamed downloads included, and never a Slack one.
    """
    s = application.settings
    assert s.slack_signing_secret is not None  # checked when the bot was built
    slack = events_asgi_app(
        bot.app, signing_secret=s.slack_signing_secret.get_secret_value(), path=path
    )
    slack_paths = {path}
    if bot.app.oauth_flow is not None:
        slack_paths |= {bot.app.oauth_flow.install_path, bot.app.oauth_flow.redirect_uri_path}
    console = build_console(application)

    async def one_port(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in slack_paths:
            await slack(scope, receive, send)
        else:
            await console(scope, receive, send)

    return one_port


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: an interrupt stops every bot at once (as
    ``asyncio.run`` delivers it), not the web server alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listening_socket(host: str, port: int) -> socket.socket:
    """Bound here, so that a port in use is a one-line RunError (uvicorn would exit)."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as e:
        raise RunError(f"cannot listen on {host}:{port} ({e.strerror}): choose --port") from None
    sock.set_inheritable(True)
    return sock


async def _run_slack(application: App, bot: SlackBot, *, http: bool, host: str, port: int) -> None:
    s = application.settings
    if http:
        sock = _listening_socket(host, port)
        server = _Server(
            uvicorn.Config(
                slack_http_app(application, bot),
                lifespan="off",
                log_config=None,
                access_log=False,
                server_header=False,
            )
        )
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not serving.done():
            await asyncio.sleep(0.05)
        if serving.done():
            serving.result()
            raise RunError(f"the web server on {host}:{port} did not start")
        logger.warning("Slack events at http://%s:%s/slack/events", host, port)
        logger.warning("web console at http://%s:%s/", host, port)
        if bot.app.oauth_flow is not None:
            logger.warning("Slack app installation at http://%s:%s%s", host, port, INSTALL_PATH)
        try:
            await asyncio.shield(serving)  # a cancelled bot stops the server gracefully:
        finally:
            server.should_exit = True  # the requests in flight finish, for a few seconds
            with contextlib.suppress(Exception):
                await asyncio.wait_for(serving, timeout=5)
            sock.close()
    else:
        assert s.slack_app_token is not None
        handler = bot.socket_mode_handler(s.slack_app_token.get_secret_value())
        logger.warning("connecting to Slack over Socket Mode")
        try:
            await handler.start_async()
        finally:
            await handler.close_async()
