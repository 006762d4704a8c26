"""The Slack adapter: slack-bolt listeners around the neutral core."""

from bot.slack.app import SlackBot
from bot.slack.events import incoming_from_event

__all__ = ["SlackBot", "incoming_from_event"]
