"""The one message type every platform event becomes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Platform = Literal["slack", "discord"]


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A user's message as the core sees it, whatever the platform.

    ``delivery_id`` identifies the delivery (Slack's ``event_id``, Discord's message id);
    ``message_id`` the platform message (Slack ``ts``, a Discord message id), the same for
    every delivery and every edit of one message. ``thread_id`` is the conversation the reply
    belongs in (Slack ``thread_ts`` or the message's own ts, a Discord thread or reply chain
    root), ``None`` for a DM without one. ``reply_to``: the message this one replies to, when
    the platform says (a Discord reply).

    ``text`` is plain text, decoded once by the adapter (:mod:`bot.markup`): no platform
    escaping or markup, NFC, the bot's own mention removed. ``bare_text``: the same without
    mentions, channel references and custom emoji (what says whether the message has words);
    None when it equals ``text``. ``edited``: the platform re-sent the message after an edit.
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
    bare_text: str | None = None
    reply_to: str | None = None
    edited: bool = False

    @property
    def words(self) -> str:
        """The text without mentions and the like: what :mod:`bot.chatter` judges."""
        return self.text if self.bare_text is None else self.bare_text

    @property
    def identity(self) -> str:
        """The platform message, whatever delivered it: ``team:channel:message``.

        A retry, a second replica's copy and an edit's re-sent event all share it, so
        claiming it makes one answer per message.
        """
        return f"{self.team_id}:{self.channel_id}:{self.message_id}"
