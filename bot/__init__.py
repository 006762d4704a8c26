"""Platform adapters and the neutral core they share.

Slack and Discord adapters turn platform events into one :class:`IncomingMessage`; everything
that decides what to do with it (answer, ignore, ask for setup) and how an answer is laid out
lives here in platform-free code, so both bots behave alike and it is tested without either.
"""

from bot.decide import Action, ChannelMode, Decision, decide
from bot.formatting import format_answer, split_message
from bot.message import IncomingMessage

__all__ = [
    "Action",
    "ChannelMode",
    "Decision",
    "IncomingMessage",
    "decide",
    "format_answer",
    "split_message",
]
