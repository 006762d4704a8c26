"""The one message type every platform event becomes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Platform = Literal["slack", "discord"]


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A user's message as the core sees it, whatever the platform.

    ``delivery_id`` identifies the delivery for de-duplication (Slack's ``event_id``, Discord's
    message id); ``thread_id`` is the conversation the reply belongs in (Slack ``thread_ts`` or
    the message's own ts, a Discord thread or reply chain root), ``None`` for a DM without one.
    ``text`` has the bot's own mention removed.
    """

    platform: Platform
    delivery_id: str
    team_id: str
    channel_id: str
    message_id: str
    user_id: str
    text: str
    thread_id: str | None = None
    enterprise_id: str | None = None
    is_direct: bool = False
    mentions_bot: bool = False
    from_bot: bool = False
    in_thread: bool = False
