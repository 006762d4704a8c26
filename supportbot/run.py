"""``supportbot run``: start the bots whose tokens are set, until interrupted."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from bot.slack.app import SlackBot, slack_web_client
from supportbot.app import App

logger = logging.getLogger(__name__)


class RunError(Exception):
    """The bots cannot start with these settings (the message says which setting to fix)."""


def build_slack_bot(application: App, *, http: bool) -> SlackBot:
    s = application.settings
    if s.slack_bot_token is None:
        raise RunError("SLACK_BOT_TOKEN is not set: copy the Bot User OAuth Token (xoxb-...)")
    if http and s.slack_signing_secret is None:
        raise RunError(
            "--slack-http needs SLACK_SIGNING_SECRET (Basic Information > Signing Secret)"
        )
    if not http and s.slack_app_token is None:
        raise RunError(
            "Socket Mode needs SLACK_APP_TOKEN (an xapp- token with connections:write); "
            "or run with --slack-http behind a public URL"
        )
    client = slack_web_client(token=s.slack_bot_token.get_secret_value(), api_url=s.slack_api_url)
    secret = s.slack_signing_secret.get_secret_value() if s.slack_signing_secret else None
    return SlackBot(application.conversations, client=client, signing_secret=secret)


async def run_bots(application: App, *, slack_http: bool, host: str, port: int) -> None:
    s = application.settings
    if s.slack_bot_token is None:
        raise RunError(
            "no bot token is set: set SLACK_BOT_TOKEN (and SLACK_APP_TOKEN for Socket Mode); "
            "see the README's Slack section"
        )
    # Touch the store and the model now, so a broken setup fails at start, not at the first
    # question.
    application.knowledge  # noqa: B018
    bot = build_slack_bot(application, http=slack_http)
    if slack_http:
        runner = web.AppRunner(bot.app.web_app(path="/slack/events", port=port))
        await runner.setup()
        await web.TCPSite(runner, host=host, port=port).start()
        logger.warning("Slack events at http://%s:%s/slack/events", host, port)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
    else:
        assert s.slack_app_token is not None
        handler = bot.socket_mode_handler(s.slack_app_token.get_secret_value())
        logger.warning("connecting to Slack over Socket Mode")
        await handler.start_async()
