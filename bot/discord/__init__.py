"""The Discord adapter: discord.py events in, the core's decisions out."""

from bot.discord.app import DiscordBot, bot_intents

__all__ = ["DiscordBot", "bot_intents"]
